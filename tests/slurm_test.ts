// Plans on a real scheduler: a one-node Slurm cluster on this machine (scripts/slurm_local.sh installs
// Debian's Slurm when missing and root), a tiny `compare` plan (two methods x two seeds) and a tiny dissect
// plan submitted through sbatch; one array task is killed mid-run and requeued. `collect` must give the
// numbers of the single-process commands with the same seeds. Skips, saying why, when Slurm cannot be
// installed.
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { compareCommand } from "../cli/compare.ts";
import { collect } from "../cli/collect.ts";
import { writePlan } from "../cli/plan.ts";
import type { CompareReport } from "../gan/cocktail/report.ts";
import { type CheckpointResult, runDissectStudy } from "../gan/toy2d/dissect.ts";
import { tinyStyleGAN2 } from "./tiny_stylegan2.ts";
import { Discriminator } from "../gan/stylegan2/discriminator.ts";
import { Generator } from "../gan/stylegan2/generator.ts";
import { saveSnapshot, untrainedState } from "../gan/train/snapshot.ts";
import { manualSeed } from "../nn/creation.ts";

const SCRIPT = new URL("../scripts/slurm_local.sh", import.meta.url).pathname;

async function sh(cmd: string, args: string[], env: Record<string, string> = {}) {
  const r = await new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped" }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: r.code, out: text(r.stdout), err: text(r.stderr) };
}

/** Installs Slurm when missing (root + apt-get); the reason when it cannot. */
async function slurmAvailable(): Promise<string | null> {
  if (Deno.build.os !== "linux") return `Slurm's local cluster needs Linux, this is ${Deno.build.os}`;
  const r = await sh("bash", [SCRIPT, "install"]);
  return r.code === 0 ? null : r.err.trim() || `slurm_local.sh install exited ${r.code}`;
}

const skip = await slurmAvailable();
if (skip) console.log(`slurm_test: skipped: ${skip}`);

const ARCH = tinyStyleGAN2();

async function saveSource(path: string, seed: number): Promise<void> {
  manualSeed(seed);
  const G = Generator.fromConfig(ARCH), D = Discriminator.fromConfig(ARCH);
  await saveSnapshot(path, { G, D, Gema: G }, untrainedState(seed));
  G.dispose();
  D.dispose();
}

/** The options both the plan's tasks and the single-process command get (tiny budget: test time). */
const compareArgs = (a: string, b: string) => [
  "--sources",
  a,
  b,
  "--kimg",
  "0.008",
  "--preset",
  "tiny16",
  "--batch",
  "4",
  "--tick",
  "0.004",
  "--samples",
  "12",
  "--features",
  "pixels:4",
];
const DISSECT = { checkpoints: 2, every: 2, finetuneSteps: 2, seed: 0, batch: 16, dSteps: 1, evalEvery: 2 };
const dissectArgs = [
  "--checkpoints",
  "2",
  "--every",
  "2",
  "--finetune-steps",
  "2",
  "--batch",
  "16",
  "--d-steps",
  "1",
  "--eval-every",
  "2",
  "--eval-samples",
  "64",
];
/** Waits on a loaded machine (the test takes about 2-3 minutes on a busy 2-core one). */
const WAIT_MS = 600_000;
const RESOURCES = ["--scheduler", "slurm", "--gpus-per-task", "0", "--cpus-per-task", "1", "--time", "10:00"];

/** Submits a plan; the job id of each stage, in order. */
async function submit(jobDir: string, env: Record<string, string>): Promise<Map<string, string>> {
  const r = await sh("bash", [`${jobDir}/submit.sh`], env);
  assert.equal(r.code, 0, `submit.sh failed: ${r.err}`);
  const ids = new Map<string, string>();
  for (const line of r.out.trim().split("\n")) {
    const [stage, id] = line.split(" ");
    assert.match(id, /^\d+$/, `submit.sh prints "STAGE JOBID", got '${line}'`);
    ids.set(stage, id);
  }
  return ids;
}

const scores = (m: { unionFid: number; perClass: unknown; union: unknown }) => ({
  unionFid: m.unionFid,
  perClass: m.perClass,
  union: m.union,
});
const numbers = (rs: CheckpointResult[]) => rs.map(({ wallMs: _w, timing: _t, ...r }) => r);

Deno.test({
  name:
    "slurm: compare and dissect plans through sbatch, one task requeued mid-run, collect = single process",
  ignore: skip !== null,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const { initGPU } = await import("../kernels/runtime.ts");
    await initGPU();
    const dir = await Deno.makeTempDir({ prefix: "gc-slurm-" });
    const cluster = `${dir}/cluster`;
    const started = await sh("bash", [SCRIPT, "start", cluster]);
    assert.equal(started.code, 0, `the local cluster did not start: ${started.err}`);
    const env = { SLURM_CONF: `${cluster}/slurm.conf` };
    const ids: string[] = [];
    const t00 = Date.now();
    const mark = (what: string) =>
      console.log(`slurm_test: ${what} at ${((Date.now() - t00) / 1000).toFixed(1)} s`);
    try {
      const [a, b] = [`${dir}/a.safetensors`, `${dir}/b.safetensors`];
      await saveSource(a, 21);
      await saveSource(b, 22);
      const cmpDir = `${dir}/job-compare`, disDir = `${dir}/job-dissect`;
      const cmpPlan = await writePlan([
        "compare",
        ...compareArgs(a, b),
        "--methods",
        "cocktail,transfer",
        "--seeds",
        "0,1",
        ...RESOURCES,
        "--out",
        cmpDir,
      ]);
      await writePlan(["dissect", ...dissectArgs, ...RESOURCES, "--out", disDir]);
      const sbatch = readFileSync(`${cmpDir}/slurm/01-train.sbatch`, "utf8");
      for (const l of ["--array=0-3", "--requeue", "--time=10:00", "--cpus-per-task=1"]) {
        assert.ok(sbatch.includes(`#SBATCH ${l}`), `sbatch script has ${l}`);
      }
      assert.ok(!sbatch.includes("--gpus-per-task"), "no GPU line with --gpus-per-task 0");
      assert.match(readFileSync(`${disDir}/submit.sh`, "utf8"), /--dependency=afterok:\$prev/);

      const cmpIds = await submit(cmpDir, env);
      ids.push(...cmpIds.values());
      const disIds = await submit(disDir, env);
      ids.push(...disIds.values());
      // The scheduler holds the fine-tunes until source I's job succeeded.
      const dep = await sh("scontrol", ["show", "job", disIds.get("finetune")!], env);
      assert.match(dep.out, new RegExp(`Dependency=afterok:${disIds.get("source")}`));
      assert.match(dep.out, /ArrayTaskId=0-1/);

      // Kill seed 0's cocktail task (array index 0) once its rooting run has written a snapshot, and requeue
      // it: the second attempt resumes the run directory.
      const victim = cmpPlan.stages[0].tasks.findIndex((t) =>
        t.meta.seed === 0 && t.meta.method === "cocktail"
      );
      const rootingDir = `${cmpPlan.stages[0].tasks[victim].out}/cocktail/stage1-root0-to-1`;
      const killed = (async (): Promise<Error | null> => {
        const t0 = Date.now();
        while (Date.now() - t0 < WAIT_MS) {
          const snap = existsSync(rootingDir) &&
            readdirSync(rootingDir).some((f) => f.endsWith(".safetensors"));
          if (snap) {
            assert.ok(!existsSync(`${cmpDir}/status/train.${victim}.done`), "the task is still running");
            const task = `${cmpIds.get("train")}_${victim}`;
            const rq = await sh("scontrol", ["requeue", task], env);
            assert.equal(rq.code, 0, `scontrol requeue: ${rq.err}`);
            // A requeued job waits for a begin time; let it start when a CPU is free.
            await sh("scontrol", ["update", `JobId=${task}`, "StartTime=now"], env);
            mark(`requeued ${task}`);
            return null;
          }
          await new Promise((r) => setTimeout(r, 100));
        }
        throw new Error("the cocktail task never wrote its rooting snapshot");
      })().catch((e: Error) => e); // awaited below: a rejection must not escape while the references run

      mark("plans submitted");
      // Meanwhile, the single-process commands with the same options and seeds.
      for (const seed of [0, 1]) {
        await compareCommand([
          ...compareArgs(a, b),
          "--methods",
          "cocktail,transfer",
          "--seed",
          String(seed),
          "--out",
          `${dir}/single/seed-${seed}`,
        ]);
      }
      const single = await runDissectStudy({ ...DISSECT, evalSamples: 64, out: `${dir}/single/dissect` });
      mark("single-process runs done");
      const killError = await killed;
      if (killError) throw killError;

      const t0 = Date.now();
      while ((await sh("squeue", ["-h", "-j", ids.join(",")], env)).out.trim()) {
        assert.ok(Date.now() - t0 < WAIT_MS, "the Slurm jobs did not finish in time");
        await new Promise((r) => setTimeout(r, 500));
      }

      mark("Slurm jobs done");
      const c = await collect(cmpDir);
      assert.deepEqual(c.missing, [], "every compare task done");
      assert.equal(c.attempts[`train.${victim}`], 2, "the killed task ran twice");
      for (const seed of [0, 1]) {
        const got: CompareReport = JSON.parse(
          readFileSync(`${cmpDir}/collected/seed-${seed}/report.json`, "utf8"),
        );
        const want: CompareReport = JSON.parse(
          readFileSync(`${dir}/single/seed-${seed}/report.json`, "utf8"),
        );
        assert.deepEqual(Object.keys(got.methods), ["cocktail", "transfer"]);
        for (const m of ["cocktail", "transfer"]) {
          assert.ok(Number.isFinite(want.methods[m].unionFid), `seed ${seed} ${m}: a finite FID`);
          assert.deepEqual(scores(got.methods[m]), scores(want.methods[m]), `seed ${seed} ${m}: same scores`);
        }
        assert.deepEqual(Object.keys(got.references!).sort(), Object.keys(want.references!).sort());
        for (const k of Object.keys(want.references!)) {
          assert.deepEqual(scores(got.references![k]), scores(want.references![k]), `seed ${seed}: ${k}`);
        }
        assert.deepEqual(got.weightDistances, want.weightDistances);
        for (const f of got.methods.cocktail.grids) {
          assert.ok(existsSync(`${cmpDir}/collected/seed-${seed}/${f}`));
        }
        assert.ok(existsSync(`${cmpDir}/collected/seed-${seed}/index.html`));
      }
      const resumed = JSON.parse(readFileSync(`${cmpDir}/collected/seed-0/report.json`, "utf8"));
      assert.equal(
        resumed.methods.cocktail.stages[0].resumed,
        true,
        "the requeued task resumed its rooting run",
      );

      const d = await collect(disDir);
      assert.deepEqual(d.missing, [], "every dissect task done");
      const joined = JSON.parse(readFileSync(`${disDir}/collected/dissect/dissect.json`, "utf8"));
      assert.deepEqual(numbers(joined.checkpoints), numbers(single.checkpoints), "dissect: same checkpoints");
      const whole = JSON.parse(readFileSync(single.files.json, "utf8")); // as written (NaN is null in JSON)
      assert.deepEqual(joined.pearson, whole.pearson);
      assert.deepEqual(joined.pearsonBest, whole.pearsonBest);
      assert.deepEqual(joined.config, whole.config, "the same protocol settings recorded");
      assert.ok(existsSync(`${disDir}/collected/dissect/dissect.png`));
      mark(`collected (load average ${Deno.loadavg().map((x) => x.toFixed(1)).join(" ")})`);
    } finally {
      if (ids.length) await sh("scancel", ids, env); // nothing left running when the test failed midway
      await sh("bash", [SCRIPT, "stop", cluster]);
      await Deno.remove(dir, { recursive: true });
    }
  },
});
