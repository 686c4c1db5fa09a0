// Quick throughput of the StyleGAN2 operators on the current adapter: upfirdn2d (direct and separable
// kernels), bias_act (forward and fused backward), modulated conv (fused and not), minibatch std.
// Usage: deno run -A bench/stylegan_ops_quick.ts [--batch N] [--channels C] [--res R]

import { parseArgs } from "node:util";
import { gpu, initGPU } from "../kernels/runtime.ts";
import {
  resampledLength,
  upfirdn2dBytes,
  upfirdn2dDirect,
  upfirdn2dMacs,
  type Upfirdn2dParams,
  upfirdn2dSeparable,
} from "../kernels/upfirdn2d.ts";
import { grad } from "../nn/autograd.ts";
import { biasAct } from "../nn/bias_act.ts";
import { randn } from "../nn/creation.ts";
import { minibatchStd } from "../nn/mbstd.ts";
import { modulatedConv2d } from "../nn/modulated_conv.ts";
import { scope, type Tensor } from "../nn/tensor.ts";
import { setupFilter } from "../nn/upfirdn2d.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    batch: { type: "string", default: "4" },
    channels: { type: "string", default: "64" },
    res: { type: "string", default: "64" },
  },
});
const N = Number(values.batch), C = Number(values.channels), R = Number(values.res);

await initGPU();
const rt = gpu();
console.log(
  `adapter: ${rt.info.description || rt.info.vendor} (${rt.info.architecture}); N=${N} C=${C} R=${R}`,
);

/** Seconds per run: records runs in batches and waits once per batch, for at least `minMs`. */
async function secondsPerRun(run: () => void, minMs = 1500): Promise<number> {
  run();
  await rt.sync();
  let reps = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < minMs || reps < 3) {
    run();
    reps++;
    if (reps % 4 === 0) await rt.sync();
  }
  await rt.sync();
  return (performance.now() - t0) / 1000 / reps;
}

function report(name: string, s: number, flops: number, bytes: number) {
  const parts = [`${name.padEnd(44)} ${(s * 1e3).toFixed(2).padStart(9)} ms`];
  if (flops) parts.push(`${(flops / s / 1e9).toFixed(2).padStart(7)} GFLOP/s`);
  if (bytes) parts.push(`${(bytes / s / 1e9).toFixed(2).padStart(7)} GB/s`);
  console.log(parts.join("  "));
}

// ---- upfirdn2d kernels ----
const f1 = [1, 3, 3, 1].map((v) => v / 8);
const f2 = Float32Array.from(f1.flatMap((a) => f1.map((b) => a * b)));
const fb = rt.alloc(64);
rt.upload(fb, f2);
const xb = rt.alloc(N * C * R * R * 4);
rt.upload(xb, Float32Array.from({ length: N * C * R * R }, () => Math.random() - 0.5));
const geoms: [string, number, number, number, number][] = [
  // name, up, down, pad0, pad1 (SGA helper paddings for a 4-tap filter)
  ["upsample2d x2", 2, 1, 2, 1],
  ["downsample2d x2", 1, 2, 1, 1],
  ["filter2d", 1, 1, 2, 1],
];
const layout = { xBase: 0, xStride: 1, yBase: 0, yStride: 4, normIdx: 0 };
for (const [name, up, down, p0, p1] of geoms) {
  const len = resampledLength(R, up, down, p0, p1, 4);
  const axis = { inLen: R, outLen: len, up, down, pad0: p0, taps: 4 };
  const p: Upfirdn2dParams = { planes: N * C, x: axis, y: axis, flip: false, gain: up * up };
  const ob = rt.alloc(N * C * len * len * 4);
  const macs = upfirdn2dMacs(p);
  const sd = await secondsPerRun(() => upfirdn2dDirect(xb, fb, ob, p));
  report(`upfirdn2d ${name} [${N},${C},${R},${R}] direct`, sd, 2 * macs.direct, upfirdn2dBytes(p, false));
  const ss = await secondsPerRun(() => upfirdn2dSeparable(xb, fb, ob, p, layout));
  report(
    `upfirdn2d ${name} [${N},${C},${R},${R}] separable`,
    ss,
    2 * macs.separable,
    upfirdn2dBytes(p, true),
  );
  rt.release(ob);
}
rt.release(xb);
rt.release(fb);

// ---- bias_act ----
{
  const x = randn([N, C, R, R]), b = randn([C]);
  x.requiresGrad = true;
  const bytes = 4 * x.size * 2;
  const sf = await secondsPerRun(() => scope(() => void biasAct(x, b, { act: "lrelu", clamp: 256 })));
  report(`biasAct lrelu+clamp forward [${N},${C},${R},${R}]`, sf, 0, bytes);
  const gy = randn([N, C, R, R]);
  const sb = await secondsPerRun(() =>
    scope(() => {
      // grad() frees its gradOutputs: hand it a view so gy itself survives.
      grad(biasAct(x, b, { act: "lrelu", clamp: 256 }), [x], { gradOutputs: [gy.view(gy.shape)] });
    })
  );
  // forward (read x, write y) + backward (read x, g; write dx)
  report(`biasAct lrelu forward+backward [${N},${C},${R},${R}]`, sb, 0, 4 * x.size * 5);
}

// ---- modulated conv ----
const Rm = Math.max(4, R / 2);
for (const [label, up] of [["3x3", 1], ["3x3 up 2", 2]] as const) {
  const x = randn([N, C, Rm, Rm]), w = randn([C, C, 3, 3]), s = randn([N, C]);
  const f = setupFilter([1, 3, 3, 1]);
  const outR = Rm * up;
  // Nominal FLOPs: a direct 3x3 conv at the output size (the transposed up path does a quarter of them).
  const flops = 2 * N * C * C * 9 * outR * outR;
  for (const fused of [true, false]) {
    const run = () =>
      scope(() =>
        void modulatedConv2d(x, w, s, { padding: 1, up, resampleFilter: f, flipWeight: up === 1, fused })
      );
    const sec = await secondsPerRun(run);
    report(
      `modulatedConv2d ${label} [${N},${C},${Rm},${Rm}] ${fused ? "fused" : "non-fused"}`,
      sec,
      flops,
      0,
    );
  }
}

// ---- minibatch std ----
{
  const x: Tensor = randn([Math.max(4, N), 4 * C, 4, 4]);
  const sec = await secondsPerRun(() => scope(() => void minibatchStd(x, { groupSize: 4, numChannels: 1 })));
  report(`minibatchStd [${x.shape}]`, sec, 0, 4 * x.size * 2);
}
