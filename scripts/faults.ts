// `deno task faults`: kill -9 at seeded random moments, then resume, for tiny `train`, `study transfer`
// and `compare` runs. For each command an uninterrupted run gives the reference and the times at which
// its phases start (compare: the rooting stage, the merge stage, the evaluation). Each kill point starts
// the same command in a fresh directory and SIGKILLs it a seeded fraction of its phase after that phase
// starts; a kill that would fall after the run ended is rescheduled earlier in the same phase (at most 6
// tries), so every kill point fires. Then it checks that every JSON and snapshot file there is whole,
// reruns the command with --resume (study transfer resumes from its directory), and compares the final
// numbers with the reference.
//   deno run -A scripts/faults.ts [--kills 7 | --kills train=6,study=6,compare=3] [--seed 1]
//     [--commands train,study,compare] [--work DIR] [--json out.json]
// --kills is per phase: train and study transfer have one phase, compare three (rooting, merge, evaluation),
// so the default gives 7 + 7 + 21 = 35 kill points; train=6,study=6,compare=3 gives 21.

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
// "--kills N" (every phase) or "--kills train=6,study=6,compare=3" (per phase of each command).
const killSpec = String(values.kills);
const killsFor = (key: string): number => {
  if (/^\d+$/.test(killSpec)) return Number(killSpec);
  const m = killSpec.split(",").map((x) => x.split("=")).find(([k]) => k === key);
  if (!m || !/^\d+$/.test(m[1] ?? "")) throw new Error(`--kills ${killSpec}: no count for '${key}'`);
  return Number(m[1]);
};
const seed = Number(values.seed);
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
interface Phase {
  name: string;
  /** The output that marks the phase's start; none: the command's start. */
  marker?: RegExp;
}
const commands: Record<string, FaultCommand & { phases: Phase[] }> = {
  train: {
    name: "train",
    args: (out) => trainArgs(out),
    resumeArgs: ["--resume"],
    result: "train",
    phases: [{ name: "training" }],
  },
  study: {
    name: "study transfer",
    args: (out) => ["study", "transfer", "--g-steps", "20", "--out", out],
    resumeArgs: [],
    result: "transfer.json",
    phases: [{ name: "study" }],
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
    phases: [
      { name: "rooting stage", marker: /^root \d+->\d+ \[/m },
      { name: "merge stage", marker: /^merge \[/m },
      { name: "evaluation", marker: /^evaluating cocktail$/m },
    ],
  },
};

const chosen = String(values.commands).split(",");
if (chosen.includes("compare")) {
  for (const [i, dir] of [`${work}/src0`, `${work}/src1`].entries()) {
    // --resume: a source left by an earlier run with the same --work is not trained again.
    const r = await runCli([...trainArgs(dir, i), "--resume"]);
    if (r.code !== 0) throw new Error(`making compare source ${dir} failed:\n${r.output}`);
  }
}
const began = new Date().toISOString(), load0 = Deno.loadavg(), t00 = performance.now();
const rng = mulberry32(seed);
const TRIES = 6;
const results: unknown[] = [];
for (const key of chosen) {
  const cmd = commands[key];
  if (!cmd) throw new Error(`unknown command '${key}' (train, study, compare)`);
  const ref = `${work}/${key}-reference`;
  const markers = cmd.phases.map((p) => p.marker ?? /(?:)/);
  const full = await runCli(cmd.args(ref), undefined, markers);
  if (full.code !== 0) throw new Error(`${cmd.name} reference run failed:\n${full.output}`);
  const want = await finalNumbers(ref, cmd.result);
  // Each phase runs from its marker to the next phase's marker (the last one to the end of the run).
  const starts = full.markMs.map((m, i) => {
    if (m === null) throw new Error(`${cmd.name}: the reference run never printed ${markers[i]}`);
    return cmd.phases[i].marker ? m : 0;
  });
  const spans = starts.map((s0, i) => (starts[i + 1] ?? full.ms) - s0);
  console.log(
    `${cmd.name}: reference run ${(full.ms / 1000).toFixed(1)} s; phases ${
      cmd.phases.map((p, i) =>
        `${p.name} at ${(starts[i] / 1000).toFixed(1)} s for ${(spans[i] / 1000).toFixed(1)} s`
      )
        .join(", ")
    }`,
  );
  for (const [pi, phase] of cmd.phases.entries()) {
    for (let k = 0; k < killsFor(key); k++) {
      const dir = `${work}/${key}-${phase.name.replaceAll(" ", "_")}-kill${k}`;
      // Past start-up for a phase that starts the command: its first 15% is process start.
      let delayMs = Math.round(((phase.marker ? 0.02 : 0.15) + 0.8 * rng()) * spans[pi]);
      let killed = false, tries = 0;
      const delays: number[] = [];
      while (!killed && tries < TRIES) {
        await Deno.remove(dir, { recursive: true }).catch(() => {});
        tries++;
        delays.push(delayMs);
        killed = (await runCli(cmd.args(dir), { ms: delayMs, after: phase.marker })).killed;
        if (!killed) delayMs = Math.round(delayMs * 0.5);
      }
      const broken = await checkRunDir(dir);
      const resumed = await runCli([...cmd.args(dir), ...cmd.resumeArgs]);
      const got = resumed.code === 0 ? await finalNumbers(dir, cmd.result) : null;
      const same = got !== null && sameNumbers(got, want);
      const r = {
        command: cmd.name,
        phase: phase.name,
        kill: k,
        delaysMs: delays,
        killed,
        broken,
        resumedCode: resumed.code,
        same,
      };
      results.push(r);
      console.log(JSON.stringify(r));
      if (!same && resumed.code !== 0) console.log(resumed.output.slice(-2000));
    }
  }
}
const failures = results.filter((r: any) => !r.same || r.broken.length || !r.killed);
const fired = results.filter((r: any) => r.killed).length;
console.log(
  `faults: ${results.length} kill points, ${fired} fired, ${failures.length} failures; work dir ${work}`,
);
const wallS = (performance.now() - t00) / 1000, load1 = Deno.loadavg();
console.log(
  `wall ${(wallS / 60).toFixed(1)} min; load average ${load0.join(" ")} at start, ${load1.join(" ")} at end`,
);
if (values.json) {
  const summary = {
    began,
    wallS,
    loadAverage: { start: load0, end: load1 },
    kills: killSpec,
    seed,
    fired,
    failures: failures.length,
  };
  await writeFileAtomic(values.json, JSON.stringify({ ...summary, results }, null, 1) + "\n");
}
if (failures.length) Deno.exit(1);
