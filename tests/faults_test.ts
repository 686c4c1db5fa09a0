// The CI slice of the kill -9 fault runs (`deno task faults` runs 20+ kill points over train, study
// transfer and compare): a tiny `train` is SIGKILLed once mid-run, its directory holds only whole JSON and
// snapshot files, and `train --resume` ends on exactly the reference run's final snapshot.

import { checkRunDir, finalNumbers, runCli, sameNumbers } from "./faults_lib.ts";

const TRAIN = [
  "train",
  "--data",
  "mnist:0-1",
  "--max-images",
  "32",
  "--preset",
  "tiny16",
  "--kimg",
  "0.012",
  "--batch",
  "4",
  "--tick",
  "0.004",
  "--snap",
  "1",
  "--grid",
  "0",
];

Deno.test({
  name: "faults: train killed with SIGKILL mid-run resumes to the uninterrupted run's final snapshot",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "faults_test_" });
    const t0 = performance.now();
    const ref = await runCli([...TRAIN, "--out", `${dir}/ref`]);
    if (ref.code !== 0) throw new Error(`reference run failed:\n${ref.output}`);
    const fullMs = performance.now() - t0;
    // Half-way: past start-up, with snapshots being written.
    const killed = await runCli([...TRAIN, "--out", `${dir}/killed`], Math.round(fullMs * 0.6));
    const broken = await checkRunDir(`${dir}/killed`);
    if (broken.length) throw new Error(`half-written files after kill -9: ${broken}`);
    const resumed = await runCli([...TRAIN, "--out", `${dir}/killed`, "--resume"]);
    if (resumed.code !== 0) throw new Error(`resume failed:\n${resumed.output}`);
    const [want, got] = [
      await finalNumbers(`${dir}/ref`, "train"),
      await finalNumbers(`${dir}/killed`, "train"),
    ];
    if (!sameNumbers(got, want)) throw new Error(`resumed run differs (killed: ${killed.killed})`);
    await Deno.remove(dir, { recursive: true });
  },
});
