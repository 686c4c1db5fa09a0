// Kubernetes manifests of a plan: one Indexed Job per stage with one completion per task, the shared volume,
// the environment run_task.sh reads, resources from the flags, and apply.sh applying the stages in order.
// run_task.sh, run with a stand-in for deno, maps every (stage, index) to exactly its task's command.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { writePlan } from "../cli/plan.ts";
import { k8sMemory, slurmTimeSeconds } from "../cli/plan/k8s.ts";
import type { Plan } from "../cli/plan/model.ts";

interface Job {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels: Record<string, string>; annotations: Record<string, string> };
  spec: {
    completionMode: string;
    completions: number;
    parallelism: number;
    backoffLimit: number;
    activeDeadlineSeconds?: number;
    template: {
      spec: {
        restartPolicy: string;
        containers: {
          image: string;
          command: string[];
          env: { name: string; value: string }[];
          resources: { requests: Record<string, string>; limits?: Record<string, string> };
          volumeMounts: { name: string; mountPath: string }[];
        }[];
        volumes: { name: string; persistentVolumeClaim: { claimName: string } }[];
      };
    };
  };
}

const K8S = [
  "--scheduler",
  "k8s",
  "--image",
  "registry.example/gc:1",
  "--pvc",
  "shared-rwx",
  "--namespace",
  "gan",
];

async function plan(dir: string, args: string[]): Promise<{ plan: Plan; jobs: Job[] }> {
  const p = await writePlan([...args, ...K8S, "--shared", dir, "--out", `${dir}/job`]);
  const jobs = p.stages.map((s, k) =>
    JSON.parse(readFileSync(`${dir}/job/k8s/${String(k + 1).padStart(2, "0")}-${s.name}.json`, "utf8")) as Job
  );
  return { plan: p, jobs };
}

Deno.test("k8s: an Indexed Job per stage, with indexes, env, volumes and resources; apply.sh keeps the order", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gc-k8s-" });
  const cwd = Deno.cwd();
  Deno.chdir(dir);
  try {
    const { plan: p, jobs } = await plan(dir, [
      "compare",
      "--sources",
      "a.safetensors",
      "b.safetensors",
      "c.safetensors",
      "--kimg",
      "2",
      "--methods",
      "cocktail,transfer,ewc",
      "--seeds",
      "0,1",
      "--gpus-per-task",
      "2",
      "--mem",
      "32G",
      "--time",
      "1-02:00:00",
    ]);
    assert.equal(jobs.length, 1);
    const job = jobs[0], c = job.spec.template.spec.containers[0];
    assert.equal(job.apiVersion, "batch/v1");
    assert.equal(job.kind, "Job");
    assert.equal(job.spec.completionMode, "Indexed");
    assert.equal(job.spec.completions, 6, "3 methods x 2 seeds");
    assert.equal(job.spec.parallelism, 6);
    assert.equal(job.spec.template.spec.restartPolicy, "Never");
    assert.ok(job.spec.backoffLimit >= 1, "failed pods are retried (and resume)");
    assert.equal(job.spec.activeDeadlineSeconds, 26 * 3600);
    assert.match(job.metadata.name, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    assert.ok(job.metadata.name.length <= 63);
    assert.equal(c.image, "registry.example/gc:1");
    assert.deepEqual(c.command.slice(0, 2), ["bash", "-c"]);
    assert.ok(c.command[2].includes(`run_task.sh" train "$JOB_COMPLETION_INDEX"`), c.command[2]);
    const env = Object.fromEntries(c.env.map((e) => [e.name, e.value]));
    assert.deepEqual(env, { GC_JOB_DIR: `${dir}/job`, GC_CWD: dir, GC_CLI: "/app/cli.ts", GC_DENO: "deno" });
    assert.deepEqual(job.spec.template.spec.volumes, [{
      name: "shared",
      persistentVolumeClaim: { claimName: "shared-rwx" },
    }]);
    assert.deepEqual(c.volumeMounts, [{ name: "shared", mountPath: dir }]);
    assert.deepEqual(c.resources.limits, { "nvidia.com/gpu": "2", memory: "32Gi" });
    assert.equal(c.resources.requests.memory, "32Gi");

    // Each index runs its own task: run_task.sh with a stand-in for deno that prints its arguments.
    const fake = `${dir}/fake-deno.sh`;
    await Deno.writeTextFile(fake, '#!/usr/bin/env bash\nprintf "%s\\n" "$@"\n');
    await Deno.chmod(fake, 0o755);
    for (const [i, t] of p.stages[0].tasks.entries()) {
      const r = await new Deno.Command("bash", {
        args: [`${dir}/job/run_task.sh`, "train", String(i)],
        env: { ...env, GC_DENO: fake },
        stdout: "piped",
      }).output();
      assert.equal(r.code, 0);
      const argv = new TextDecoder().decode(r.stdout).trim().split("\n");
      assert.deepEqual(argv, ["run", "-A", "/app/cli.ts", ...t.args], `index ${i}`);
      assert.ok(readFileSync(`${dir}/job/status/train.${i}.done`, "utf8").length > 0, "status written");
    }
    assert.deepEqual(
      p.stages[0].tasks.map((t) => `${t.meta.seed}:${t.meta.method}`),
      ["0:cocktail", "0:transfer", "0:ewc", "1:cocktail", "1:transfer", "1:ewc"],
    );
    const floorless = p.stages[0].tasks.map((t) => t.args.includes("--no-floor"));
    assert.deepEqual(floorless, [false, true, true, false, true, true], "one floor per seed");
    const bad = await new Deno.Command("bash", { args: [`${dir}/job/run_task.sh`, "train", "6"], env })
      .output();
    assert.equal(bad.code, 2, "an index outside the Job is refused");

    // A merge: rooting (one index per non-root source) -> merge -> evaluation, applied in this order.
    await assert.rejects(writePlan(["--out", `${dir}/nokind`]), /plan needs one of/);
    await Deno.remove(`${dir}/job`, { recursive: true });
    const { plan: mp, jobs: mj } = await plan(dir, [
      "merge",
      "--sources",
      "a",
      "b",
      "c",
      "--root",
      "1",
      "--kimg",
      "4",
      "--real",
      "mnist:0-4",
      "mnist:5-9",
      "emoji:google",
    ]);
    assert.deepEqual(mp.stages.map((s) => s.name), ["root", "merge", "evaluate"]);
    assert.deepEqual(mj.map((j) => j.spec.completions), [2, 1, 1]);
    assert.deepEqual(mp.stages[0].tasks.map((t) => t.meta.source), [0, 2]);
    assert.ok(!mp.stages[1].tasks[0].args.includes("--real"), "merge does not take compare's --real");
    assert.ok(mp.stages[2].tasks[0].args.includes("--real"), "the evaluation does");
    mj.forEach((j, k) => {
      assert.equal(j.metadata.annotations["gan-cocktail/order"], `${k + 1} of 3`);
      assert.equal(j.metadata.annotations["gan-cocktail/after"], k ? mj[k - 1].metadata.name : "");
      assert.equal(
        j.spec.template.spec.containers[0].resources.limits?.["nvidia.com/gpu"],
        "1",
        "default 1 GPU",
      );
    });
    const apply = readFileSync(`${dir}/job/k8s/apply.sh`, "utf8");
    const order = mj.map((j, k) =>
      apply.indexOf(`run_stage k8s/0${k + 1}-${mp.stages[k].name}.json ${j.metadata.name}`)
    );
    assert.ok(
      order.every((x, k) => x > 0 && (k === 0 || x > order[k - 1])),
      `stages applied in order: ${order}`,
    );
    assert.match(apply, /-n gan get job/);
  } finally {
    Deno.chdir(cwd);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("plan dissect: by default the protocol's 101 checkpoints (steps 0..5000 every 50), as study dissect", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gc-k8s-" });
  try {
    const p = await writePlan(["dissect", "--scheduler", "slurm", "--out", `${dir}/job`]);
    const finetune = p.stages.find((s) => s.name === "finetune")!;
    assert.equal(finetune.tasks.length, 101);
    assert.deepEqual(finetune.tasks.at(-1)!.meta, { checkpoint: 100 });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("k8s: the job directory must be on the shared volume; bad resources are named", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gc-k8s-" });
  try {
    await assert.rejects(
      writePlan(["dissect", "--checkpoints", "2", ...K8S, "--shared", "/elsewhere", "--out", `${dir}/j`]),
      /not inside --shared \/elsewhere/,
    );
    await assert.rejects(
      writePlan(["dissect", ...K8S, "--mem", "lots", "--shared", "/", "--out", `${dir}/j2`]),
      /--mem must look like 16G/,
    );
    await assert.rejects(
      writePlan(["compare", "--sources", "a", "--kimg", "1", "--out", `${dir}/j3`]),
      /two/,
    );
    await assert.rejects(
      writePlan(["merge", "--sources", "a", "b", "--kimg", "1", "--root", "auto", "--out", `${dir}/j4`]),
      /--root/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assert.equal(k8sMemory("4000M"), "4000Mi");
  assert.equal(k8sMemory("16g"), "16Gi");
  assert.equal(slurmTimeSeconds("90"), 5400, "minutes");
  assert.equal(slurmTimeSeconds("10:30"), 630, "MM:SS");
  assert.equal(slurmTimeSeconds("4:00:00"), 14400);
  assert.equal(slurmTimeSeconds("2-12"), 2 * 86400 + 12 * 3600, "D-HH");
  assert.throws(() => slurmTimeSeconds("soon"), /--time/);
});

Deno.test("collect: names the failed, unfinished and unstarted tasks and writes nothing incomplete", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gc-collect-" });
  try {
    const p = await writePlan([
      "dissect",
      "--checkpoints",
      "3",
      "--scheduler",
      "slurm",
      "--out",
      `${dir}/job`,
    ]);
    const run = async (stage: string, index: number, exit: number) => {
      const fake = `${dir}/deno-${exit}.sh`;
      await Deno.writeTextFile(fake, `#!/usr/bin/env bash\nexit ${exit}\n`);
      await Deno.chmod(fake, 0o755);
      const r = await new Deno.Command("bash", {
        args: [`${p.jobDir}/run_task.sh`, stage, String(index)],
        env: { GC_DENO: fake },
      }).output();
      assert.equal(r.code, exit, "run_task.sh exits with the task's code");
    };
    await run("source", 0, 0);
    await run("finetune", 0, 7);
    await run("finetune", 1, 0);
    await run("finetune", 1, 0); // retried: two attempts recorded
    await Deno.writeTextFile(`${p.jobDir}/status/finetune.2.started`, "2026-01-01T00:00:00Z killed\n");
    const { collect } = await import("../cli/collect.ts");
    const r = await collect(p.jobDir);
    assert.deepEqual(r.outputs, []);
    assert.equal(r.attempts["finetune.1"], 2);
    assert.equal(r.missing.length, 3);
    assert.match(r.missing[0], /^finetune\[0\] \(checkpoint 0\): failed \(exit 7, 1 attempt\(s\)\)/);
    assert.match(r.missing[1], /^finetune\[2\] \(checkpoint 2\): started 1 time\(s\), not finished/);
    assert.match(r.missing[2], /not written: dissect/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
