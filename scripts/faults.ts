// `deno task faults`: kill -9 at seeded random moments, then resume, for tiny `train`, `study transfer`
// and `compare` runs. For each command an uninterrupted run gives the reference; each kill point starts
// the same command in a fresh directory, SIGKILLs it after a seeded delay, checks that every JSON and
// snapshot file there is whole, reruns it with --resume (study transfer resumes from its directory), and
// compares the final numbers with the reference.
//   deno run -A scripts/faults.ts [--kills 8] [--seed 1] [--commands train,study,compare] [--json out.json]
// --kills is per command; the 20+ kill points are --kills 7 over the three commands.

import { parseArgs } from "node:util";
import { mulberry32 } from "../nn/host_random.ts";
import { checkRunDir, type FaultCommand, finalNumbers, runCli, sameNumbers } from "../tests/faults_lib.ts";
import { writeFileAtomic } from "../nn/checkpoint.ts";

const { values } = parseArgs({
  options: {
    kills: { type: "string", default: "7" },
    seed: { type: "string", default: "1" },
    commands: { type: "string", default: "train,study,compare" },
    work: { type: "string" },
    json: { type: "string" },
  },
});
const kills = Number(values.kills), seed = Number(values.seed);
const work = values.work ?? await Deno.makeTempDir({ prefix: "faults_" });
const trainArgs = (out: string, s = 0) => [
  "train",
  "--data",
  "mnist:0-1",
  "--max-images",
  "64",
  "--preset",
  "tiny16",
  "--kimg",
  "0.016",
  "--batch",
  "4",
  "--tick",
  "0.004",
  "--snap",
  "1",
  "--grid",
  "0",
  "--seed",
  String(s),
  "--out",
  out,
];
const commands: Record<string, FaultCommand> = {
  train: { name: "train", args: (out) => trainArgs(out), resumeArgs: ["--resume"], result: "train" },
  study: {
    name: "study transfer",
    args: (out) => ["study", "transfer", "--g-steps", "20", "--out", out],
    resumeArgs: [],
    result: "transfer.json",
  },
  compare: {
    name: "compare",
    args: (out) => [
      "compare",
      "--sources",
      `${work}/src0`,
      `${work}/src1`,
      "--out",
      out,
      "--kimg",
      "0.008",
      "--methods",
      "cocktail",
      "--root",
      "0",
      "--features",
      "pixels:4",
      "--samples",
      "12",
      "--batch",
      "4",
      "--tick",
      "0.004",
      "--no-floor",
    ],
    resumeArgs: ["--resume"],
    result: "report.json",
  },
};

const chosen = String(values.commands).split(",");
if (chosen.includes("compare")) {
  for (const [i, dir] of [`${work}/src0`, `${work}/src1`].entries()) {
    const r = await runCli(trainArgs(dir, i));
    if (r.code !== 0) throw new Error(`making compare source ${dir} failed:\n${r.output}`);
  }
}
const rng = mulberry32(seed);
const results: unknown[] = [];
for (const key of chosen) {
  const cmd = commands[key];
  if (!cmd) throw new Error(`unknown command '${key}' (train, study, compare)`);
  const ref = `${work}/${key}-reference`;
  const t0 = performance.now();
  const full = await runCli(cmd.args(ref));
  const fullMs = performance.now() - t0;
  if (full.code !== 0) throw new Error(`${cmd.name} reference run failed:\n${full.output}`);
  const want = await finalNumbers(ref, cmd.result);
  console.log(`${cmd.name}: reference run ${(fullMs / 1000).toFixed(0)} s`);
  for (let k = 0; k < kills; k++) {
    const dir = `${work}/${key}-kill${k}`;
    const delayMs = Math.round((0.1 + 0.85 * rng()) * fullMs);
    const killed = await runCli(cmd.args(dir), delayMs);
    const broken = await checkRunDir(dir);
    const resumed = await runCli([...cmd.args(dir), ...cmd.resumeArgs]);
    const got = resumed.code === 0 ? await finalNumbers(dir, cmd.result) : null;
    const same = got !== null && sameNumbers(got, want);
    const r = {
      command: cmd.name,
      kill: k,
      delayMs,
      killed: killed.killed,
      broken,
      resumedCode: resumed.code,
      same,
    };
    results.push(r);
    console.log(JSON.stringify(r));
    if (!same && resumed.code !== 0) console.log(resumed.output.slice(-2000));
  }
}
const failures = results.filter((r: any) => !r.same || r.broken.length);
console.log(`faults: ${results.length} kill points, ${failures.length} failures; work dir ${work}`);
if (values.json) await writeFileAtomic(values.json, JSON.stringify({ seed, results }, null, 1) + "\n");
if (failures.length) Deno.exit(1);
