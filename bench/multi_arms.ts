// `deno run -A bench/multi_arms.ts [REPS]`: what a multi-tensor dispatch's arms cost on this adapter, the
// number behind kernels/multi_tensor.ts multiArmBudget. One 64-workgroup Adam item (16384 values) is updated
// alone, with 1, 3 and 7 one-value items beside it in one dispatch (kernels/adam.ts adamStepMulti), and as
// separate dispatches. Where every arm runs under a lane mask (llvmpipe), each extra item costs a masked
// pass over all 64 workgroups; where uniform branches are real (GPUs) it costs almost nothing. Rounds
// alternate the variants, so drift in the machine's speed hits them alike; medians over the rounds.

import { adamStep, adamStepMulti } from "../kernels/adam.ts";
import { multiArmBudget } from "../kernels/multi_tensor.ts";
import { gpu, initGPU } from "../kernels/runtime.ts";

const reps = Number(Deno.args[0] ?? 100), rounds = 5;
await initGPU();
const rt = gpu();
const item = (n: number) => {
  const b = () => rt.alloc(4 * n);
  return { param: b(), grad: b(), m: b(), v: b(), n };
};
const big = item(16384), small = Array.from({ length: 7 }, () => item(1));
const s = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, bc1: 0.1, bc2: 0.01 };
const single = (it: ReturnType<typeof item>) => adamStep(it.param, it.grad, it.m, it.v, it.n, s);
const variants: Record<string, () => void> = {
  "1 item": () => single(big),
  "2 items, one dispatch": () => adamStepMulti([big, small[0]], s),
  "4 items, one dispatch": () => adamStepMulti([big, ...small.slice(0, 3)], s),
  "8 items, one dispatch": () => adamStepMulti([big, ...small], s),
  "8 items, 8 dispatches": () => [big, ...small].forEach(single),
};

async function time(f: () => void, n: number): Promise<number> {
  await rt.device.queue.onSubmittedWorkDone();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) f();
  rt.flush();
  await rt.device.queue.onSubmittedWorkDone();
  return (performance.now() - t0) / n;
}

for (const f of Object.values(variants)) await time(f, 5); // compile
const ms: Record<string, number[]> = {};
for (let r = 0; r < rounds; r++) {
  for (const [name, f] of Object.entries(variants)) (ms[name] ??= []).push(await time(f, reps));
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
console.log(`adapter: ${rt.info.description || rt.info.vendor}; ${reps} updates per round, ${rounds} rounds`);
const m: Record<string, number> = {};
for (const [name, xs] of Object.entries(ms)) {
  m[name] = median(xs);
  console.log(`${name.padEnd(24)} ${m[name].toFixed(3)} ms`);
}
// Seven masked arms over 64 workgroups, and seven dispatches of a one-workgroup item.
const armPassUs = 1000 * (m["8 items, one dispatch"] - m["1 item"]) / (7 * 64);
const dispatchUs = 1000 * (m["8 items, 8 dispatches"] - m["1 item"]) / 7;
const worth = (dispatchUs / armPassUs).toFixed(0);
console.log(
  `masked arm pass per workgroup ${armPassUs.toFixed(2)} us, dispatch ${dispatchUs.toFixed(1)} us: ` +
    `a dispatch is worth ${worth} arm passes (multiArmBudget here: ${multiArmBudget()})`,
);
