// `deno run -A bench/dispatch_profile.ts [REGEX] [RUNS]`: for each training-iteration case whose name
// matches (default: the SGA and train iteration rows), one warm-up run, one counted run with its
// dispatches by kernel family, copies and bound bytes, then RUNS (default 0) timed runs whose median wall
// time is printed (timings skew under load; the counts are deterministic). Lighter than `bench --counts`,
// which builds and checks every row. With `--time`, one more run with every dispatch timed on the GPU
// (timestamp-query, one pass per dispatch): GPU milliseconds by kernel family, largest first;
// `--time-keys`: the 40 costliest pipeline keys with their workgroup grids instead.

import { gpu, initGPU } from "../kernels/runtime.ts";
import { applyGemmEnv } from "../cli/gemm_env.ts";
import { caseInput, numel } from "./harness.ts";
import { STYLEGAN_CASES } from "./cases_stylegan.ts";

applyGemmEnv();
await initGPU();
const rt = gpu();
const timed = Deno.args.includes("--time") || Deno.args.includes("--time-keys");
const byKey = Deno.args.includes("--time-keys");
const args = Deno.args.filter((a) => !a.startsWith("--time"));
const filter = new RegExp(args[0] ?? "train iter tiny32|SGA iter", "i");
const runs = Number(args[1] ?? 0);
for (const c of STYLEGAN_CASES.filter((c) => filter.test(c.name))) {
  const inputs = c.inputs.map((shape, i) => {
    const buf = rt.alloc(4 * numel(shape));
    rt.upload(buf, caseInput(c, i));
    return buf;
  });
  const out = rt.alloc(4 * numel(c.output));
  const made = c.ours(inputs, out);
  const runner = typeof made === "function" ? { run: made, dispose: undefined } : made;
  await rt.sync();
  let t0 = performance.now();
  runner.run();
  await rt.sync();
  const warmMs = performance.now() - t0;
  rt.dispatchCounts = new Map();
  const d = rt.totalDispatches, cp = rt.totalCopies, b = rt.totalBoundBytes;
  t0 = performance.now();
  runner.run();
  await rt.sync();
  const ms = performance.now() - t0;
  const families = [...rt.dispatchCounts].sort((x, y) => y[1] - x[1]);
  rt.dispatchCounts = null;
  console.log(
    `${c.name}: ${rt.totalDispatches - d} dispatches, ${rt.totalCopies - cp} copies, ` +
      `${((rt.totalBoundBytes - b) / 1e6).toFixed(0)} MB bound; first run ${warmMs.toFixed(0)} ms, ` +
      `second ${ms.toFixed(0)} ms (load ${Deno.loadavg()[0].toFixed(1)})`,
  );
  console.log("  " + families.map(([f, n]) => `${f} ${n}`).join(", "));
  if (runs > 0) {
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t = performance.now();
      runner.run();
      await rt.sync();
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    console.log(
      `  ${runs} timed runs: median ${times[runs >> 1].toFixed(0)} ms, ` +
        `min ${times[0].toFixed(0)} ms, max ${times[runs - 1].toFixed(0)} ms (load ${
          Deno.loadavg()[0].toFixed(1)
        })`,
    );
  }
  if (timed) {
    rt.startTiming(byKey);
    const t = performance.now();
    runner.run();
    const byFamily = [...(await rt.stopTiming())].sort((x, y) => y[1].ms - x[1].ms);
    const wall = performance.now() - t;
    const gpuMs = byFamily.reduce((a, [, v]) => a + v.ms, 0);
    console.log(
      `  timed run: ${gpuMs.toFixed(0)} ms in kernels, ${wall.toFixed(0)} ms wall (one pass per dispatch)`,
    );
    for (const [f, v] of byKey ? byFamily.slice(0, 40) : byFamily) {
      console.log(
        `    ${f.padEnd(22)} ${v.dispatches.toString().padStart(5)} dispatches ${
          v.ms.toFixed(1).padStart(8)
        } ms ` +
          `${(100 * v.ms / gpuMs).toFixed(1).padStart(5)}%`,
      );
    }
  }
  runner.dispose?.();
  for (const x of [...inputs, out]) rt.release(x);
  rt.trimPool();
}
