// Multi-tensor EMA (kernels/axpby_multi.ts through nn/module.ts emaInto): one dispatch updates many
// tensors, against a float64 reference and bit-identical to the per-tensor axpby it replaces, on sizes
// that are not multiples of the workgroup, with more pairs than one dispatch takes, lazy sources, and
// pairs that chain (one pair's target is a later pair's source: order is kept).

import { axpbyIntoMulti } from "../kernels/axpby_multi.ts";
import { multiArmBudget } from "../kernels/multi_tensor.ts";
import { gpu } from "../kernels/runtime.ts";
import { tensor } from "../nn/creation.ts";
import { axpbyInto, copyInto, emaInto } from "../nn/module.ts";
import * as o from "../nn/ops.ts";
import { scope, type Tensor } from "../nn/tensor.ts";
import { assertClose, gpuTest, randArray } from "./harness.ts";

const SIZES = [1, 257, 105, 1000, 600, 13, 36, 256, 513];
const BETA = 0.9;

function make(count: number, seed: number): Tensor[] {
  return Array.from({ length: count }, (_, j) => {
    const n = SIZES[j % SIZES.length];
    return tensor(randArray(n, seed + j), [n]);
  });
}

async function values(ts: Tensor[]): Promise<Float32Array[]> {
  return await Promise.all(ts.map((t) => t.data()));
}

gpuTest(
  "emaInto: float64 reference, bit-identical to per-tensor axpby, one dispatch for nine tensors",
  async () => {
    const dstA = make(SIZES.length, 10), dstB = make(SIZES.length, 10), src = make(SIZES.length, 50);
    const d0 = await values(dstA), s0 = await values(src);
    const rt = gpu();
    const before = rt.totalDispatches;
    emaInto(dstA, src, BETA);
    const used = rt.totalDispatches - before;
    scope(() => dstB.forEach((d, j) => copyInto(o.axpby(src[j], 1 - BETA, d, BETA), d)));
    const a = await values(dstA), b = await values(dstB);
    a.forEach((x, j) => {
      const ref = Float64Array.from(d0[j], (d, i) => BETA * d + (1 - BETA) * s0[j][i]);
      assertClose(x, ref, { rtol: 1e-6, atol: 1e-7, what: `tensor ${j} vs float64` });
      assertClose(x, b[j], { rtol: 0, atol: 0, what: `tensor ${j} vs axpby` });
    });
    const perDispatch = Math.min(16, rt.device.limits.maxStorageBuffersPerShaderStage >> 1);
    // On a CPU adapter every join stays within the arm budget (the costliest, the last tensor's: 14 + 3 x 8
    // = 38 passes), so there too the binding limit decides.
    if (multiArmBudget() < 38) throw new Error("this test assumes the nine fit the arm budget");
    const expected = Math.ceil(SIZES.length / perDispatch);
    if (used !== expected) throw new Error(`expected ${expected} dispatches, got ${used}`);
    for (const t of [...dstA, ...dstB, ...src]) t.dispose();
  },
);

gpuTest("emaInto: 40 pairs split across dispatches, lazy sources, still bit-identical", async () => {
  const dstA = make(40, 100), dstB = make(40, 100), base = make(40, 200);
  scope(() => {
    // Lazy sources (elementwise trees) are computed before the update reads them.
    const srcA = base.map((b) => o.tanh(o.mul(b, 3)));
    const srcB = base.map((b) => o.tanh(o.mul(b, 3)));
    emaInto(dstA, srcA, 0.75);
    dstB.forEach((d, j) => copyInto(o.axpby(srcB[j], 0.25, d, 0.75), d));
  });
  const a = await values(dstA), b = await values(dstB);
  a.forEach((x, j) => assertClose(x, b[j], { rtol: 0, atol: 0, what: `tensor ${j}` }));
  for (const t of [...dstA, ...dstB, ...base]) t.dispose();
});

gpuTest("emaInto: a target that a later pair reads is updated first (pairs run in order)", async () => {
  const run = async (multi: boolean) => {
    const [y, z, p] = [1, 2, 3].map((seed) => tensor(randArray(257, 400 + seed), [257]));
    // Pairs: y <- ema(y, p), then z <- ema(z, y) reads the new y, then y <- ema(y, z) writes y again.
    const dsts = [y, z, y], srcs = [p, y, z];
    if (multi) emaInto(dsts, srcs, BETA);
    else scope(() => dsts.forEach((d, j) => copyInto(o.axpby(srcs[j], 1 - BETA, d, BETA), d)));
    const out = await values([y, z]);
    for (const t of [y, z, p]) t.dispose();
    return out;
  };
  const m = await run(true), s = await run(false);
  m.forEach((v, j) => assertClose(v, s[j], { rtol: 0, atol: 0, what: `tensor ${j}` }));
});

gpuTest("emaInto and axpbyIntoMulti: bad input is refused with a clear error", () => {
  const [a, b] = make(2, 500);
  const c = tensor(randArray(7, 1), [7]);
  const expectThrow = (f: () => void, what: RegExp) => {
    try {
      f();
    } catch (e) {
      if (what.test(String(e))) return;
      throw new Error(`wrong error: ${e}`);
    }
    throw new Error(`no error for ${what}`);
  };
  expectThrow(() => emaInto([a], [c], 0.5), /pair 0 is \[7\] into \[1\]/);
  expectThrow(() => emaInto([a], [a, b], 0.5), /1 targets, 2 sources/);
  expectThrow(() => emaInto([a], [c], 1.5), /beta must be in \[0, 1\]/);
  expectThrow(() => emaInto([c], [c], 0.5), /update 0 reads and writes the same buffer/);
  const cb = c.buffer, ab = a.buffer;
  expectThrow(
    () => axpbyIntoMulti([{ dst: cb, src: ab, n: 7, a: 1, b: 0 }, { dst: cb, src: ab, n: 7, a: 1, b: 0 }]),
    /two items/,
  );
  expectThrow(
    () => axpbyIntoMulti([{ dst: cb, src: ab, n: 7, a: 1, b: 0 }, { dst: ab, src: cb, n: 1, a: 1, b: 0 }]),
    /also read/,
  );
  for (const t of [a, b, c]) t.dispose();
});

gpuTest(
  "axpbyInto: f16 state (after toPrecision) takes the elementwise path, stored back as f16",
  async () => {
    const probe = await gpu().probeShaderF16();
    if (!probe.ok) {
      console.log(`skipped: shader-f16 is not usable here: ${probe.detail}`);
      return;
    }
    const d0 = randArray(300, 900), s0 = randArray(300, 901);
    const dst = tensor(d0, [300]), src16 = tensor(s0, [300]), src32 = tensor(s0, [300]);
    dst.castInPlace("f16");
    src16.castInPlace("f16");
    axpbyInto([{ dst, src: src16, a: 0.25, b: 0.75 }, { dst, src: src32, a: 0.5, b: 0.5 }]);
    if (dst.dtype !== "f16") throw new Error(`dst became ${dst.dtype}`);
    const f16 = Math.f16round;
    const ref = Float64Array.from(d0, (d, i) => {
      const s = f16(s0[i]);
      const once = f16(0.25 * s + 0.75 * f16(d));
      return f16(0.5 * s0[i] + 0.5 * once);
    });
    assertClose(await dst.data(), ref, { rtol: 2e-3, atol: 2e-3, what: "f16 updates" });
    for (const t of [dst, src16, src32]) t.dispose();
  },
);
