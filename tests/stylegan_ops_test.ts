// StyleGAN2 operators: upfirdn2d (both kernels) against a float64 reference on awkward sizes, bias_act,
// conv2d_resample, modulated conv (fused == non-fused), minibatch std; first- and second-order gradient
// checks; golden values from an independent PyTorch implementation (tests/golden/make_ops_golden.py).

import { upfirdn2dDirect, type Upfirdn2dParams, upfirdn2dSeparable } from "../kernels/upfirdn2d.ts";
import { gpu } from "../kernels/runtime.ts";
import { grad } from "../nn/autograd.ts";
import { type Activation, biasAct } from "../nn/bias_act.ts";
import { tensor } from "../nn/creation.ts";
import { type HostArray, toFloat32, toFloat64 } from "../nn/io/host.ts";
import { parseNpz } from "../nn/io/npz.ts";
import { minibatchStd } from "../nn/mbstd.ts";
import { conv2dResample, modulatedConv2d, type ModulatedConv2dOptions } from "../nn/modulated_conv.ts";
import { square } from "../nn/ops.ts";
import { scopeAsync, type Tensor } from "../nn/tensor.ts";
import {
  downsample2d,
  filter2d,
  isMarkedSeparable,
  setupFilter,
  upfirdn2d,
  upsample2d,
} from "../nn/upfirdn2d.ts";
import { Module } from "../nn/module.ts";
import assert from "node:assert/strict";
import { loadedTensor } from "../gan/train/snapshot.ts";
import { gradcheck } from "./gradcheck.ts";
import { assertClose, gpuTest, randArray } from "./harness.ts";

// ---- float64 references ----

interface Cfg {
  up: [number, number];
  down: [number, number];
  pad: [number, number, number, number];
  flip: boolean;
  gain: number;
}

/** Literal upfirdn2d: zero-insert, pad (negative crops), true convolution (unless flip), subsample. */
function upfirdnRef(
  x: ArrayLike<number>,
  shape: number[],
  f: number[][],
  c: Cfg,
): { y: number[]; shape: number[] } {
  const [n, ch, h, w] = shape;
  const fh = f.length, fw = f[0].length;
  const [ux, uy] = c.up, [dx, dy] = c.down, [x0, x1, y0, y1] = c.pad;
  const vh = h * uy + y0 + y1, vw = w * ux + x0 + x1;
  const oh = Math.floor((vh - fh) / dy) + 1, ow = Math.floor((vw - fw) / dx) + 1;
  const v = (p: number, m: number, l: number) => {
    const jy = m - y0, jx = l - x0;
    if (jy < 0 || jx < 0 || jy % uy || jx % ux || jy / uy >= h || jx / ux >= w) return 0;
    return x[(p * h + jy / uy) * w + jx / ux];
  };
  const y: number[] = [];
  for (let p = 0; p < n * ch; p++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        let acc = 0;
        for (let ky = 0; ky < fh; ky++) {
          for (let kx = 0; kx < fw; kx++) {
            const tap = c.flip ? f[ky][kx] : f[fh - 1 - ky][fw - 1 - kx];
            acc += tap * v(p, oy * dy + ky, ox * dx + kx);
          }
        }
        y.push(acc * c.gain);
      }
    }
  }
  return { y, shape: [n, ch, oh, ow] };
}

const outer = (a: number[], b: number[]) => a.map((u) => b.map((v) => u * v));
const norm2 = (f: number[][]) => {
  const s = f.flat().reduce((a, b) => a + b, 0);
  return f.map((r) => r.map((v) => v / s));
};
function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

function closeTo(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol: number, what: string) {
  assertClose(actual, expected, { rtol, atol: rtol * Math.max(maxAbs(expected), 1e-30), what });
}

// ---- upfirdn2d ----

const cases: { name: string; shape: number[]; cfg: Cfg; fw: number; fh: number }[] = [
  {
    name: "up 2 (helper pads)",
    shape: [2, 3, 5, 7],
    cfg: { up: [2, 2], down: [1, 1], pad: [2, 1, 2, 1], flip: false, gain: 4 },
    fw: 4,
    fh: 4,
  },
  {
    name: "down 2 (helper pads)",
    shape: [1, 3, 9, 8],
    cfg: { up: [1, 1], down: [2, 2], pad: [1, 1, 1, 1], flip: false, gain: 1 },
    fw: 4,
    fh: 4,
  },
  {
    name: "filter only, odd pads",
    shape: [3, 1, 6, 11],
    cfg: { up: [1, 1], down: [1, 1], pad: [2, 1, 0, 3], flip: false, gain: 1 },
    fw: 4,
    fh: 4,
  },
  {
    name: "mixed up/down, crops, flip",
    shape: [1, 2, 7, 5],
    cfg: { up: [3, 2], down: [2, 3], pad: [3, -1, -2, 4], flip: true, gain: 1.3 },
    fw: 3,
    fh: 5,
  },
  {
    name: "up 3 / down 2, negative pads",
    shape: [2, 1, 7, 6],
    cfg: { up: [3, 1], down: [1, 2], pad: [-2, 4, 3, -1], flip: false, gain: 1 },
    fw: 5,
    fh: 3,
  },
  {
    name: "11 taps: wider than a tile window (generic kernel)",
    shape: [1, 2, 5, 13],
    cfg: { up: [1, 1], down: [1, 1], pad: [5, 4, 1, 1], flip: true, gain: 1 },
    fw: 11,
    fh: 2,
  },
  {
    name: "large plane, not a tile multiple",
    shape: [1, 2, 37, 29],
    cfg: { up: [2, 2], down: [1, 1], pad: [1, 2, 2, 1], flip: false, gain: 4 },
    fw: 4,
    fh: 3,
  },
];

gpuTest("upfirdn2d kernels (direct and separable) match a float64 reference on awkward sizes", async () => {
  const rt = gpu();
  let seed = 10;
  for (const c of cases) {
    const n = c.shape.reduce((a, b) => a * b);
    const x = randArray(n, seed++);
    const a = Array.from(randArray(c.fh, seed++, 0.2, 1)), b = Array.from(randArray(c.fw, seed++, -0.5, 1));
    const fsep = outer(a, b); // separable, with negative taps
    const fgen = Array.from({ length: c.fh }, (_, i) => Array.from(randArray(c.fw, seed + 50 + i))); // general
    for (
      const [kind, f] of [["direct", fgen], ["direct (separable f)", fsep], ["separable", fsep]] as const
    ) {
      const ref = upfirdnRef(x, c.shape, f, c.cfg);
      const [, , oh, ow] = ref.shape;
      const p: Upfirdn2dParams = {
        planes: c.shape[0] * c.shape[1],
        x: {
          inLen: c.shape[3],
          outLen: ow,
          up: c.cfg.up[0],
          down: c.cfg.down[0],
          pad0: c.cfg.pad[0],
          taps: c.fw,
        },
        y: {
          inLen: c.shape[2],
          outLen: oh,
          up: c.cfg.up[1],
          down: c.cfg.down[1],
          pad0: c.cfg.pad[2],
          taps: c.fh,
        },
        flip: c.cfg.flip,
        gain: c.cfg.gain,
      };
      const xb = rt.alloc(n * 4), fb = rt.alloc(c.fw * c.fh * 4), ob = rt.alloc(ref.y.length * 4);
      rt.upload(xb, x);
      rt.upload(fb, Float32Array.from(f.flat()));
      // Row 0 / column 0 of outer(a, b) carry the 1-D factors (a[0] > 0, so the division is safe).
      if (kind === "separable") {
        upfirdn2dSeparable(xb, fb, ob, p, { xBase: 0, xStride: 1, yBase: 0, yStride: c.fw, normIdx: 0 });
      } else upfirdn2dDirect(xb, fb, ob, p);
      const got = new Float32Array(await rt.read(ob, ref.y.length * 4));
      closeTo(got, ref.y, 1e-5, `${c.name} ${kind}`);
      for (const buf of [xb, fb, ob]) rt.release(buf);
    }
  }
});

gpuTest(
  "upfirdn2d op: helpers, rank-1 filters and the separable fast path agree with the reference",
  async () => {
    const x = randArray(2 * 3 * 6 * 7, 3);
    const shape = [2, 3, 6, 7];
    const f = setupFilter([1, 3, 3, 1]);
    const f1 = tensor([1 / 8, 3 / 8, 3 / 8, 1 / 8]);
    const f2 = norm2(outer([1, 3, 3, 1], [1, 3, 3, 1]));
    const cfg = (up: number, down: number, pad: Cfg["pad"], gain: number): Cfg => ({
      up: [up, up],
      down: [down, down],
      pad,
      flip: false,
      gain,
    });
    const checks: [(t: Tensor) => Tensor, Cfg][] = [
      [(t) => upsample2d(t, f), cfg(2, 1, [2, 1, 2, 1], 4)],
      [(t) => downsample2d(t, f), cfg(1, 2, [1, 1, 1, 1], 1)],
      [(t) => filter2d(t, f, { padding: 1 }), cfg(1, 1, [3, 2, 3, 2], 1)],
      [(t) => upfirdn2d(t, f1, { up: 2, padding: [2, 1, 2, 1], gain: 4 }), cfg(2, 1, [2, 1, 2, 1], 4)],
    ];
    for (const [i, [fn, c]] of checks.entries()) {
      const ref = upfirdnRef(x, shape, f2, c);
      const got = await scopeAsync(async () => {
        const y = fn(tensor(x, shape));
        if (y.shape.join() !== ref.shape.join()) {
          throw new Error(`case ${i}: shape [${y.shape}] != [${ref.shape}]`);
        }
        return await y.data();
      });
      closeTo(got, ref.y, 1e-5, `helper case ${i}`);
    }
    const g = setupFilter([[1, 2], [3, 4]], { flip: true, gain: 2 });
    assertClose(await g.data(), [0.8, 0.6, 0.4, 0.2], { rtol: 1e-6 });
  },
);

gpuTest("upfirdn2d: a filter overwritten by a state-dict load runs on the values it holds", async () => {
  // Before: setupFilter's "separable" mark survived the load, and the two-pass path used the old layout
  // on non-separable values.
  const x = randArray(2 * 3 * 9 * 8, 11);
  const shape = [2, 3, 9, 8];
  const fresh = [[0.1, 0.4, -0.2, 0.3], [0.5, -0.1, 0.2, 0.0], [0.3, 0.3, 0.1, -0.4], [0.0, 0.2, 0.6, 0.1]];
  class Holder extends Module {
    constructor() {
      super();
      this.buffer("resample_filter", setupFilter([1, 3, 3, 1]));
    }
  }
  const m = new Holder();
  const f = m.stateDict().get("resample_filter")!;
  assert(isMarkedSeparable(f), "setupFilter marks [1,3,3,1] separable");
  const c: Cfg = { up: [1, 1], down: [1, 1], pad: [3, 2, 3, 2], flip: false, gain: 1 };
  m.loadStateDict(new Map([["resample_filter", tensor(Float32Array.from(fresh.flat()), [4, 4])]]));
  assert(!isMarkedSeparable(f), "the load clears the mark");
  const got = await scopeAsync(async () => await filter2d(tensor(x, shape), f, { padding: 1 }).data());
  closeTo(got, upfirdnRef(x, shape, fresh, c).y, 1e-5, "non-separable values after a load");
  // A snapshot's separable filter comes back marked, so the fast path stays for real models.
  const sep = norm2(outer([1, 2, 1, 3], [2, 1, 1, 1]));
  m.loadStateDict(
    new Map([[
      "resample_filter",
      loadedTensor("b8.resample_filter", {
        dtype: "f32",
        shape: [4, 4],
        data: Float32Array.from(sep.flat()),
      }),
    ]]),
  );
  assert(isMarkedSeparable(f), "a loaded outer product is marked again");
  const got2 = await scopeAsync(async () => await filter2d(tensor(x, shape), f, { padding: 1 }).data());
  closeTo(got2, upfirdnRef(x, shape, sep, c).y, 1e-5, "separable values after a load");
  m.dispose();
});

gpuTest("upfirdn2d gradients of first and second order", async () => {
  const f = setupFilter([1, 3, 3, 1]);
  const fodd = tensor(randArray(6, 4), [2, 3]);
  const x = { data: randArray(2 * 2 * 5 * 6, 5), shape: [2, 2, 5, 6] };
  // Squared so that the second-order gradient passes through the backward-of-backward.
  await gradcheck((t) => square(upsample2d(t, f)), [x]);
  await gradcheck((t) => square(downsample2d(t, f)), [x]);
  await gradcheck(
    (t) => square(upfirdn2d(t, fodd, { up: [2, 3], down: [3, 1], padding: [2, -1, 1, 3], flipFilter: true })),
    [x],
  );
  await gradcheck((t) => square(filter2d(t, f, { padding: [1, 0, 2, 1] })), [x]);
});

// ---- bias_act ----

const ACTS: Record<Activation, { f: (z: number, a: number) => number; gain: number; kinks: number[] }> = {
  linear: { f: (z) => z, gain: 1, kinks: [] },
  relu: { f: (z) => Math.max(z, 0), gain: Math.SQRT2, kinks: [0] },
  lrelu: { f: (z, a) => (z > 0 ? z : a * z), gain: Math.SQRT2, kinks: [0] },
  tanh: { f: Math.tanh, gain: 1, kinks: [] },
  sigmoid: { f: (z) => 1 / (1 + Math.exp(-z)), gain: 1, kinks: [] },
  elu: { f: (z) => (z >= 0 ? z : Math.expm1(z)), gain: 1, kinks: [0] },
  selu: {
    f: (z) => 1.0507009873554805 * (z >= 0 ? z : 1.6732632423543772 * Math.expm1(z)),
    gain: 1,
    kinks: [0],
  },
  softplus: { f: (z) => Math.log1p(Math.exp(z)), gain: 1, kinks: [] },
  swish: { f: (z) => z / (1 + Math.exp(-z)), gain: Math.SQRT2, kinks: [] },
};

// Values whose z = x + b stay away from the activation's and the clamp's kinks (finite differences).
function awayFrom(x: Float32Array, b: Float32Array, inner: number, kinks: number[]): Float32Array {
  return x.map((v, i) => {
    const z = v + b[Math.floor(i / inner) % b.length];
    return kinks.some((k) => Math.abs(z - k) < 0.06) ? v + 0.15 : v;
  });
}

for (const act of Object.keys(ACTS) as Activation[]) {
  gpuTest(`biasAct ${act}: values (with clamp, along dim 1 and 2) and gradients`, async () => {
    const spec = ACTS[act];
    const shape = [2, 3, 5];
    const b = randArray(3, 21, -0.5, 0.5);
    const clampAt = 0.9;
    const alpha = 0.3;
    const kinksZ = [...spec.kinks];
    const x = awayFrom(randArray(30, 20, -2.5, 2.5), b, 5, kinksZ);
    for (const clamp of [undefined, clampAt]) {
      const y = await biasAct(tensor(x, shape), tensor(b, [3]), { act, alpha, clamp }).data();
      const want = Array.from(x, (v, i) => {
        const r = spec.gain * spec.f(v + b[Math.floor(i / 5) % 3], alpha);
        return clamp === undefined ? r : Math.min(Math.max(r, -clamp), clamp);
      });
      closeTo(y, want, 2e-6, `${act} clamp ${clamp}`);
    }
    const b5 = randArray(5, 22);
    const y2 = await biasAct(tensor(x, shape), tensor(b5, [5]), { act, dim: 2, gain: 0.7, alpha }).data();
    closeTo(y2, Array.from(x, (v, i) => 0.7 * spec.f(v + b5[i % 5], alpha)), 2e-6, `${act} dim 2`);
    // Keep z away from where gain * act(z) crosses the clamp, too.
    const xc = x.map((v, i) => {
      const z = v + b[Math.floor(i / 5) % 3];
      return Math.abs(Math.abs(spec.gain * spec.f(z, alpha)) - clampAt) < 0.08 ? v + 0.2 : v;
    });
    const inputs = [{ data: xc, shape }, { data: b, shape: [3] }];
    const squared = (t: Tensor, u: Tensor) => square(biasAct(t, u, { act, alpha, clamp: clampAt }));
    await gradcheck((t, u) => biasAct(t, u, { act, alpha, clamp: clampAt }), inputs);
    await gradcheck(squared, inputs);
    await gradcheck((t) => biasAct(t, null, { act, alpha }), [{ data: xc, shape }]);
  });
}

// ---- conv2dResample and modulated conv ----

function rnd(shape: number[], seed: number, lo = -1, hi = 1) {
  return { data: randArray(shape.reduce((a, b) => a * b), seed, lo, hi), shape };
}

const modCases: { name: string; x: number[]; w: number[]; o: ModulatedConv2dOptions; noise?: number[] }[] = [
  { name: "3x3", x: [2, 3, 5, 4], w: [2, 3, 3, 3], o: { padding: 1 }, noise: [2, 1, 5, 4] },
  {
    name: "3x3 up 2",
    x: [2, 3, 4, 3],
    w: [2, 3, 3, 3],
    o: { padding: 1, up: 2, flipWeight: false },
    noise: [2, 1, 8, 6],
  },
  { name: "3x3 down 2", x: [2, 2, 6, 5], w: [3, 2, 3, 3], o: { padding: 1, down: 2 } },
  { name: "1x1 no demod", x: [3, 4, 3, 2], w: [3, 4, 1, 1], o: { demodulate: false } },
  { name: "1x1 up 2", x: [2, 2, 3, 3], w: [2, 2, 1, 1], o: { up: 2 } },
];

gpuTest("modulatedConv2d: fused and non-fused agree in values and gradients", async () => {
  const f = setupFilter([1, 3, 3, 1]);
  for (const [i, c] of modCases.entries()) {
    const x = rnd(c.x, 30 + i), w = rnd(c.w, 40 + i), s = rnd([c.x[0], c.x[1]], 50 + i, 0.3, 1.5);
    const noise = c.noise ? rnd(c.noise, 60 + i) : null;
    const gy: Float32Array[] = [];
    const run = (fused: boolean) =>
      scopeAsync(async () => {
        const ts = [tensor(x.data, x.shape), tensor(w.data, w.shape), tensor(s.data, s.shape)];
        for (const t of ts) t.requiresGrad = true;
        const y = modulatedConv2d(ts[0], ts[1], ts[2], {
          ...c.o,
          resampleFilter: f,
          fused,
          noise: noise ? tensor(noise.data, noise.shape) : null,
        });
        gy[0] ??= randArray(y.size, 70 + i);
        const gs = grad(y, ts, { gradOutputs: [tensor(gy[0], y.shape)] });
        return [await y.data(), ...(await Promise.all(gs.map((g) => g.data())))];
      });
    const a = await run(true), b = await run(false);
    ["y", "dx", "dweight", "dstyles"].forEach((what, j) => closeTo(a[j], b[j], 2e-5, `${c.name} ${what}`));
  }
});

gpuTest("modulatedConv2d and conv2dResample gradients of first and second order", async () => {
  const f = setupFilter([1, 3, 3, 1]);
  for (const [i, c] of modCases.entries()) {
    const inputs = [rnd(c.x, 80 + i), rnd(c.w, 90 + i), rnd([c.x[0], c.x[1]], 100 + i, 0.3, 1.5)];
    for (const fused of [true, false]) {
      await gradcheck((x, w, s) => modulatedConv2d(x, w, s, { ...c.o, resampleFilter: f, fused }), inputs, {
        secondOrder: fused === (i % 2 === 0), // every case once, each path on some cases
      });
    }
  }
  const cr = [rnd([2, 2, 6, 5], 110), rnd([3, 2, 3, 3], 111)];
  await gradcheck((x, w) => square(conv2dResample(x, w, { f, down: 2, padding: 1 })), cr);
  await gradcheck((x, w) => square(conv2dResample(x, w, { f, up: 2, padding: 1, flipWeight: false })), cr);
  await gradcheck((x, w) => square(conv2dResample(x, w, { padding: [1, -1, 0, 2] })), cr);
});

gpuTest(
  "conv2dResample: the transposed up path, cropping paddings and up+down match explicit compositions",
  async () => {
    const f = setupFilter([1, 3, 3, 1]);
    let seed = 120;
    // Up 2 runs as a transposed convolution; it must equal upfirdn2d (helper pads + conv padding) + valid conv.
    for (const k of [3, 4, 5]) {
      for (const [pad, flipWeight, groups] of [[0, false, 1], [1, true, 2], [2, false, 2]] as const) {
        await scopeAsync(async () => {
          const x = tensor(randArray(2 * 4 * 5 * 4, seed++), [2, 4, 5, 4]);
          const w = tensor(randArray(6 * (4 / groups) * k * k, seed++), [6, 4 / groups, k, k]);
          const a = conv2dResample(x, w, { f, up: 2, padding: pad, flipWeight, groups });
          const u = upfirdn2d(x, f, { up: 2, padding: [pad + 2, pad + 1, pad + 2, pad + 1], gain: 4 });
          const b = conv2dResample(u, w, { flipWeight, groups });
          if (a.shape.join() !== b.shape.join()) {
            throw new Error(`k ${k}: shape [${a.shape}] != [${b.shape}]`);
          }
          closeTo(
            await a.data(),
            await b.data(),
            1e-5,
            `up 2, k ${k}, padding ${pad}, flipWeight ${flipWeight}`,
          );
        });
      }
    }
    const x = tensor(randArray(2 * 2 * 6 * 5, 150), [2, 2, 6, 5]);
    const w = tensor(randArray(3 * 2 * 3 * 3, 151), [3, 2, 3, 3]);
    // Padding [x0, x1, y0, y1] = [1, -1, 0, 2]: the same as padding the input explicitly first.
    const a = conv2dResample(x, w, { padding: [1, -1, 0, 2] });
    const b = conv2dResample(upfirdn2d(x, tensor([[1]]), { padding: [1, -1, 0, 2] }), w);
    closeTo(await a.data(), await b.data(), 1e-6, "cropping padding");
    // up 2 then down 2 == the filtered upsample, valid conv, then a filtered downsample.
    const c = conv2dResample(x, w, { f, up: 2, down: 2, padding: 1, flipWeight: false });
    const u = upfirdn2d(x, f, { up: 2, padding: [4, 3, 4, 3], gain: 4 });
    const d = downsample2d(conv2dResample(u, w, { flipWeight: false }), f, 2, { padding: -1 });
    if (c.shape.join() !== d.shape.join()) throw new Error(`up+down shape [${c.shape}] != [${d.shape}]`);
    closeTo(await c.data(), await d.data(), 1e-5, "up and down");
  },
);

// ---- minibatch std ----

gpuTest("minibatchStd against float64 and its gradients", async () => {
  const shape = [6, 4, 2, 3];
  const x = randArray(144, 130, -2, 2);
  for (const [G, F] of [[3, 2], [2, 1], [6, 4]]) {
    const n = 6, c = 4, hw = 6;
    const g = Math.min(G, n), groups = n / g;
    const y = await minibatchStd(tensor(x, shape), { groupSize: G, numChannels: F }).data();
    const stat: number[][] = [];
    for (let j = 0; j < groups; j++) {
      stat.push([]);
      for (let fi = 0; fi < F; fi++) {
        let acc = 0;
        for (let cc = 0; cc < c / F; cc++) {
          for (let p = 0; p < hw; p++) {
            const vals = Array.from(
              { length: g },
              (_, k) => x[((k * groups + j) * c + fi * (c / F) + cc) * hw + p],
            );
            const m = vals.reduce((a, b) => a + b, 0) / g;
            acc += Math.sqrt(vals.reduce((a, b) => a + (b - m) ** 2, 0) / g + 1e-8);
          }
        }
        stat[j].push(acc / ((c / F) * hw));
      }
    }
    const want: number[] = [];
    for (let i = 0; i < n; i++) {
      for (let ch = 0; ch < c + F; ch++) {
        for (let p = 0; p < hw; p++) want.push(ch < c ? x[(i * c + ch) * hw + p] : stat[i % groups][ch - c]);
      }
    }
    closeTo(y, want, 1e-5, `mbstd G${G} F${F}`);
  }
  await gradcheck((t) => minibatchStd(t, { groupSize: 3, numChannels: 2 }), [{ data: x, shape }]);
});

// ---- goldens from PyTorch ----

const GOLDEN = new URL("./golden/ops/", import.meta.url);
function golden(name: string): Map<string, HostArray> {
  return parseNpz(Deno.readFileSync(new URL(`${name}.npz`, GOLDEN)));
}

/** Runs fn on the golden inputs (in order), compares y and the gradients d<name> to 1e-4 relative. */
async function checkGolden(name: string, inputNames: string[], fn: (...ts: Tensor[]) => Tensor) {
  const g = golden(name);
  await scopeAsync(async () => {
    const ts = inputNames.map((k) => {
      const a = g.get(k);
      if (!a) throw new Error(`${name}: golden has no ${k}`);
      const t = tensor(toFloat32(a), a.shape);
      t.requiresGrad = g.has("d" + k);
      return t;
    });
    const y = fn(...ts);
    const want = g.get("y")!;
    if (y.shape.join() !== want.shape.join()) {
      throw new Error(`${name}: shape [${y.shape}] != [${want.shape}]`);
    }
    closeTo(await y.data(), toFloat64(want), 1e-4, `${name} y`);
    const wrt = ts.filter((t) => t.requiresGrad);
    const gy = g.get("gy")!;
    const grads = grad(y, wrt, { gradOutputs: [tensor(toFloat32(gy), gy.shape)] });
    const names = inputNames.filter((k) => g.has("d" + k));
    for (const [j, k] of names.entries()) {
      closeTo(await grads[j].data(), toFloat64(g.get("d" + k)!), 1e-4, `${name} d${k}`);
    }
  });
}

gpuTest("goldens: upfirdn2d", async () => {
  const f = setupFilter([1, 3, 3, 1]);
  await checkGolden("upfirdn_up2", ["x"], (x) => upsample2d(x, f));
  await checkGolden("upfirdn_down2", ["x"], (x) => downsample2d(x, f));
  const fo = golden("upfirdn_odd").get("f")!;
  const fodd = tensor(toFloat32(fo), fo.shape);
  await checkGolden(
    "upfirdn_odd",
    ["x"],
    (x) =>
      upfirdn2d(x, fodd, { up: [3, 2], down: [2, 3], padding: [3, -1, 2, 0], flipFilter: true, gain: 1.7 }),
  );
  const f3 = setupFilter([1, 2, 3]);
  await checkGolden(
    "upfirdn_flip",
    ["x"],
    (x) => upfirdn2d(x, f3, { up: 2, padding: [1, 2, 0, 3], flipFilter: true, gain: 2 }),
  );
});

gpuTest("goldens: biasAct", async () => {
  await checkGolden("biasact_lrelu_clamp", ["x", "b"], (x, b) => biasAct(x, b, { act: "lrelu", clamp: 0.8 }));
  for (const act of ["tanh", "sigmoid", "elu", "selu", "softplus", "swish"] as Activation[]) {
    await checkGolden(`biasact_${act}`, ["x", "b"], (x, b) => biasAct(x, b, { act }));
  }
});

gpuTest("goldens: modulatedConv2d (fused and not) and conv2dResample down 2", async () => {
  const f = setupFilter([1, 3, 3, 1]);
  for (const fused of [true, false]) {
    await checkGolden(
      "modconv_up2",
      ["x", "weight", "styles", "noise"],
      (x, w, s, noise) =>
        modulatedConv2d(x, w, s, { up: 2, padding: 1, resampleFilter: f, flipWeight: false, noise, fused }),
    );
    await checkGolden(
      "modconv_3x3",
      ["x", "weight", "styles", "noise"],
      (x, w, s, noise) => modulatedConv2d(x, w, s, { padding: 1, noise, fused }),
    );
    await checkGolden(
      "modconv_torgb",
      ["x", "weight", "styles"],
      (x, w, s) => modulatedConv2d(x, w, s, { demodulate: false, fused }),
    );
  }
  await checkGolden("conv_down2", ["x", "w"], (x, w) => conv2dResample(x, w, { f, down: 2, padding: 1 }));
  await checkGolden("conv_skip_down2", ["x", "w"], (x, w) => conv2dResample(x, w, { f, down: 2 }));
});

gpuTest("goldens: minibatchStd", async () => {
  await checkGolden("mbstd", ["x"], (x) => minibatchStd(x, { groupSize: 4, numChannels: 2 }));
});

// ---- errors ----

gpuTest("clear errors for bad arguments", () => {
  const expectThrow = (fn: () => unknown, re: RegExp) => {
    try {
      fn();
    } catch (e) {
      if (!re.test((e as Error).message)) throw new Error(`wrong message: ${(e as Error).message}`);
      return;
    }
    throw new Error(`expected an error matching ${re}`);
  };
  const x = tensor(randArray(2 * 3 * 4 * 4, 1), [2, 3, 4, 4]);
  const f = setupFilter([1, 3, 3, 1]);
  expectThrow(() => setupFilter([]), /non-empty/);
  expectThrow(() => setupFilter([1, -1]), /sum to 0/);
  expectThrow(() => upfirdn2d(tensor([1, 2]), f), /\[N, C, H, W\]/);
  expectThrow(() => upfirdn2d(x, f, { up: 0 }), /positive integer/);
  expectThrow(() => upfirdn2d(x, f, { padding: -3 }), /leaves no output/);
  expectThrow(() => biasAct(x, tensor([1, 2]), { act: "lrelu" }), /b must have shape \[3\]/);
  expectThrow(() => biasAct(x, null, { act: "gelu" as Activation }), /unknown activation/);
  expectThrow(
    () => minibatchStd(tensor(randArray(48, 4), [3, 1, 4, 4]), { groupSize: 2 }),
    /divisible by the group size/,
  );
  expectThrow(
    () => modulatedConv2d(x, tensor(randArray(18, 2), [2, 1, 3, 3]), tensor(randArray(6, 3), [2, 3])),
    /do not match/,
  );
  expectThrow(
    () => conv2dResample(x, tensor(randArray(27, 2), [1, 3, 3, 3]), { up: 1.5 }),
    /positive integer/,
  );
});
