// `deno task fuzz`: the full seeded fuzzing run over every file format the project reads.
//   deno run -A scripts/fuzz.ts [--cases 20000] [--seed 1] [--start 0] [--workers 2] [--timeout-ms 1000]
//     [--json report.json]
// Prints progress, the outcome counts and every failure (rebuild one with makeCase(seeds, seed, index)).

import { parseArgs } from "node:util";
import { runFuzz } from "../tests/fuzz_runner.ts";
import { writeFileAtomic } from "../nn/checkpoint.ts";

const { values } = parseArgs({
  options: {
    cases: { type: "string", default: "20000" },
    seed: { type: "string", default: "1" },
    start: { type: "string", default: "0" },
    workers: { type: "string", default: "2" },
    "timeout-ms": { type: "string", default: "1000" },
    json: { type: "string" },
  },
});
const num = (k: keyof typeof values) => {
  const v = Number(values[k]);
  if (!Number.isSafeInteger(v) || v < 0) {
    throw new Error(`--${k} must be a non-negative integer, got ${values[k]}`);
  }
  return v;
};
const cases = num("cases"), seed = num("seed");
let last = 0;
const report = await runFuzz({
  seed,
  cases,
  start: num("start"),
  workers: Math.max(1, num("workers")),
  timeoutMs: num("timeout-ms"),
  onProgress: (done, total) => {
    const now = performance.now();
    if (now - last > 5000 || done === total) {
      last = now;
      console.error(`fuzz: ${done}/${total} cases`);
    }
  },
});
for (const f of report.failures) {
  console.log(`FAIL #${f.index} [${f.outcome}] ${f.seed} (${f.format}) ${f.mutation}: ${f.message}`);
}
console.log(
  `fuzz seed ${seed}: ${report.cases} cases in ${report.wallS.toFixed(1)} s; outcomes ${
    JSON.stringify(report.outcomes)
  }; ${report.failures.length} failures; ${report.retried} overran once and were rerun; slowest case ${
    report.slowestMs.toFixed(0)
  } ms; largest allocation ${(report.largestAllocation / 2 ** 20).toFixed(1)} MiB`,
);
if (values.json) await writeFileAtomic(values.json, JSON.stringify(report, null, 1) + "\n");
if (report.failures.length) Deno.exit(1);
