// Elementwise, shape and reduction ops against float64 references, with first- and second-order
// finite-difference gradient checks.

import { grad } from "../nn/autograd.ts";
import { manualSeed, rand, randint, randn, tensor, zeros } from "../nn/creation.ts";
import * as o from "../nn/ops.ts";
import * as r from "../nn/reduce.ts";
import * as s from "../nn/shape.ts";
import { scope, scopeAsync, Tensor } from "../nn/tensor.ts";
import { columnMoments } from "../kernels/reduce.ts";
import { gpu } from "../kernels/runtime.ts";
import { gradcheck } from "./gradcheck.ts";
import { assertClose, gpuTest, randArray, sameFormulaTolerance } from "./harness.ts";

const SHAPE = [3, 5, 7]; // not a multiple of any workgroup size

type Ref1 = (x: number) => number;
const unary: [string, (t: Tensor) => Tensor, Ref1, [number, number]][] = [
  ["neg", o.neg, (x) => -x, [-2, 2]],
  ["exp", o.exp, Math.exp, [-2, 2]],
  ["log", o.log, Math.log, [0.5, 3]],
  ["sqrt", o.sqrt, Math.sqrt, [0.5, 3]],
  ["rsqrt", o.rsqrt, (x) => 1 / Math.sqrt(x), [0.5, 3]],
  ["square", o.square, (x) => x * x, [-2, 2]],
  ["reciprocal", o.reciprocal, (x) => 1 / x, [0.5, 3]],
  ["abs", o.abs, Math.abs, [-2, 2]],
  ["relu", o.relu, (x) => Math.max(x, 0), [-2, 2]],
  ["leakyRelu", (t) => o.leakyRelu(t, 0.2), (x) => (x > 0 ? x : 0.2 * x), [-2, 2]],
  ["sigmoid", o.sigmoid, (x) => 1 / (1 + Math.exp(-x)), [-4, 4]],
  ["tanh", o.tanh, Math.tanh, [-3, 3]],
  ["softplus", o.softplus, (x) => Math.log1p(Math.exp(x)), [-4, 4]],
  ["pow 3", (t) => o.pow(t, 3), (x) => x ** 3, [-2, 2]],
  ["pow 1.5", (t) => o.pow(t, 1.5), (x) => x ** 1.5, [0.5, 2]],
  ["clamp", (t) => o.clamp(t, -0.5, 0.7), (x) => Math.min(Math.max(x, -0.5), 0.7), [-2, 2]],
];

// Inputs for the kinked functions avoid the kinks so finite differences are meaningful.
function awayFromKinks(x: Float32Array, kinks: number[]): Float32Array {
  return x.map((v) => (kinks.some((k) => Math.abs(v - k) < 0.05) ? v + 0.1 : v));
}

for (const [name, f, ref, [lo, hi]] of unary) {
  gpuTest(`unary ${name}: values and gradients`, async () => {
    const n = SHAPE.reduce((a, b) => a * b);
    const x = awayFromKinks(randArray(n, 11, lo, hi), [0, -0.5, 0.7]);
    const got = await scope(() => f(tensor(x, SHAPE))).data();
    assertClose(got, Array.from(x, ref), { rtol: 2e-6, atol: 1e-6, what: name });
    const secondOrder = !["relu", "abs", "leakyRelu", "clamp", "neg"].includes(name);
    await gradcheck(f, [{ data: x.slice(0, 12), shape: [3, 4] }], { secondOrder });
  });
}

const binary: [string, (a: Tensor, b: Tensor) => Tensor, (a: number, b: number) => number][] = [
  ["add", o.add, (a, b) => a + b],
  ["sub", o.sub, (a, b) => a - b],
  ["mul", o.mul, (a, b) => a * b],
  ["div", o.div, (a, b) => a / b],
  ["maximum", o.maximum, Math.max],
];

for (const [name, f, ref] of binary) {
  gpuTest(`binary ${name}: broadcasting values and gradients`, async () => {
    const sa = [3, 1, 7], sb = [5, 1];
    // For maximum, keep every pair apart (a in [0.5, 1] or [2, 2.5], b in [1.2, 1.8]): no kinks in reach.
    const a = randArray(21, 1, 0.5, 1).map((v, i) => (name !== "maximum" ? 2 * v : i % 2 ? v + 1.5 : v));
    const b = name === "maximum" ? randArray(5, 2, 1.2, 1.8) : randArray(5, 2, 0.5, 2);
    const got = await f(tensor(a, sa), tensor(b, sb)).data();
    const want: number[] = [];
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 5; j++) for (let k = 0; k < 7; k++) want.push(ref(a[i * 7 + k], b[j]));
    }
    assertClose(got, want, { rtol: 2e-6, what: name });
    await gradcheck(f, [{ data: a, shape: sa }, { data: b, shape: sb }], { secondOrder: name !== "maximum" });
  });
}

gpuTest("where selects and routes gradients", async () => {
  const c = tensor([1, 0, 1, 0]);
  const y = o.where(c, tensor([1, 2, 3, 4]), tensor([10, 20, 30, 40]));
  assertClose(await y.data(), [1, 20, 3, 40]);
  await gradcheck((a, b) => o.mul(o.where(c, a, b), o.add(a, b)), [
    { data: randArray(4, 3), shape: [4] },
    { data: randArray(4, 4), shape: [4] },
  ]);
});

gpuTest("reductions over axes against float64", async () => {
  const shape = [4, 6, 5];
  const x = randArray(120, 5, -3, 3);
  const at = (i: number, j: number, k: number) => x[(i * 6 + j) * 5 + k];
  const t = tensor(x, shape);
  // sum over axis 1
  const s1: number[] = [];
  for (let i = 0; i < 4; i++) {
    for (let k = 0; k < 5; k++) {
      let acc = 0;
      for (let j = 0; j < 6; j++) acc += at(i, j, k);
      s1.push(acc);
    }
  }
  assertClose(await r.sum(t, 1).data(), s1, { rtol: 1e-5, atol: 1e-5 });
  // max over non-adjacent axes 0 and 2
  const m02: number[] = [];
  for (let j = 0; j < 6; j++) {
    let acc = -Infinity;
    for (let i = 0; i < 4; i++) for (let k = 0; k < 5; k++) acc = Math.max(acc, at(i, j, k));
    m02.push(acc);
  }
  assertClose(await r.max(t, [0, 2]).data(), m02);
  const mean = x.reduce((a, b) => a + b, 0) / x.length;
  assertClose(await r.mean(t).data(), [mean], { rtol: 1e-5, atol: 1e-6 });
  const v = x.reduce((a, b) => a + (b - mean) ** 2, 0) / (x.length - 1);
  assertClose(await r.variance(t, undefined, false, 1).data(), [v], { rtol: 1e-5 });
  assertClose(
    await r.min(t, -1, true).data(),
    Array.from({ length: 24 }, (_, q) => Math.min(...x.slice(q * 5, q * 5 + 5))),
  );
  await gradcheck((a) => r.sum(o.square(a), [0, 2]), [{ data: x, shape }]);
  await gradcheck((a) => r.variance(a, 1), [{ data: x, shape }]);
  await gradcheck((a) => r.max(a, 1), [{ data: x, shape }], { secondOrder: false });
});

gpuTest(
  "columnMoments: mean and biased variance per column against float64, from a buffer or a lazy tree",
  async () => {
    const rt = gpu();
    // [outer, r, inner] = [3, 37, 70]: more columns than one workgroup, none a multiple of it.
    const [outer, n, inner] = [3, 37, 70];
    const xs = randArray(outer * n * inner, 40, -2, 5);
    const wantMean: number[] = [], wantVar: number[] = [];
    for (let a = 0; a < outer; a++) {
      for (let j = 0; j < inner; j++) {
        let m = 0;
        for (let k = 0; k < n; k++) m += xs[(a * n + k) * inner + j] / n;
        let v = 0;
        for (let k = 0; k < n; k++) v += (xs[(a * n + k) * inner + j] - m) ** 2 / n;
        wantMean.push(m);
        wantVar.push(v);
      }
    }
    const x = rt.alloc(xs.length * 4), mu = rt.alloc(outer * inner * 4), v = rt.alloc(outer * inner * 4);
    rt.upload(x, xs);
    const d0 = rt.totalDispatches;
    columnMoments(x, mu, v, outer, n, inner);
    if (rt.totalDispatches - d0 !== 1) throw new Error("columnMoments must be one dispatch");
    assertClose(new Float32Array(await rt.read(mu, outer * inner * 4)), wantMean, { rtol: 1e-5, atol: 1e-5 });
    assertClose(new Float32Array(await rt.read(v, outer * inner * 4)), wantVar, { rtol: 1e-4, atol: 1e-5 });
    for (const b of [x, mu, v]) rt.release(b);
    // batchMoments over a lazy [N, C] tree (x * 2 + 1, read through the prologue) gives exactly what the two
    // composed reductions give.
    const ys = randArray(37 * 70, 41, -1, 1);
    const [m1, v1, m2, v2] = await scopeAsync(async () => {
      const t = o.add(o.mul(tensor(ys, [37, 70]), 2), 1);
      const a = r.batchMoments(t);
      const m = r.mean(t, 0, true), vv = r.mean(o.square(o.sub(t, m)), 0, true);
      return await Promise.all([a.mean, a.variance, m, vv].map((q) => q.data()));
    });
    assertClose(m1, m2, sameFormulaTolerance());
    assertClose(v1, v2, sameFormulaTolerance());
  },
);

gpuTest("long-row reductions use two passes and stay exact", async () => {
  const n = 40000 * 3 + 17;
  const x = randArray(n, 9, 0, 1);
  let acc = 0;
  for (const v of x) acc += v;
  assertClose(await r.sum(tensor(x, [n])).data(), [acc], { rtol: 1e-5 });
  assertClose(await r.max(tensor(x, [1, n]), 1).data(), [Math.max(...x)]);
});

gpuTest(
  "row reductions (one workgroup per row) on row lengths that are no multiple of the workgroup",
  async () => {
    // 37, 70 and 1001 elements per row (the row kernel takes rows of 32 or more), 53 rows, against float64;
    // the squared input is a fused prologue of the reduction.
    for (const len of [37, 70, 1001]) {
      const rows = 53;
      const x = randArray(rows * len, len, -2, 2);
      const row = (q: number) => Array.from(x.subarray(q * len, (q + 1) * len));
      const t = tensor(x, [rows, len]);
      const sq = Array.from({ length: rows }, (_, q) => row(q).reduce((a, v) => a + v * v, 0));
      assertClose(await r.sum(o.square(t), 1).data(), sq, { rtol: 1e-5, atol: 1e-5 });
      assertClose(await r.max(t, 1).data(), Array.from({ length: rows }, (_, q) => Math.max(...row(q))));
      assertClose(await r.min(t, 1).data(), Array.from({ length: rows }, (_, q) => Math.min(...row(q))));
    }
    await gradcheck((a) => r.sum(o.square(a), 1), [{ data: randArray(3 * 45, 4, -1, 1), shape: [3, 45] }]);
  },
);

gpuTest("shape ops: permute, slice, pad, concat, flip, broadcast with gradients", async () => {
  const x = randArray(60, 6);
  const t = tensor(x, [3, 4, 5]);
  const p = await s.permute(t, [2, 0, 1]).data();
  const want: number[] = [];
  for (let k = 0; k < 5; k++) {
    for (let i = 0; i < 3; i++) for (let j = 0; j < 4; j++) want.push(x[(i * 4 + j) * 5 + k]);
  }
  assertClose(p, want);
  const sl = await s.slice(t, [1, 1, 2], [3, 3, 5]).data();
  const wsl: number[] = [];
  for (let i = 1; i < 3; i++) {
    for (let j = 1; j < 3; j++) for (let k = 2; k < 5; k++) wsl.push(x[(i * 4 + j) * 5 + k]);
  }
  assertClose(sl, wsl);
  const fl = await s.flip(tensor([1, 2, 3, 4, 5, 6], [2, 3]), [1]).data();
  assertClose(fl, [3, 2, 1, 6, 5, 4]);
  const pd = await s.pad(tensor([1, 2, 3, 4], [2, 2]), [[1, 0], [0, 2]]).data();
  assertClose(pd, [0, 0, 0, 0, 1, 2, 0, 0, 3, 4, 0, 0]);
  const cr = await s.pad(tensor([1, 2, 3, 4, 5, 6], [1, 6]), [[0, 0], [-2, -1]]).data();
  assertClose(cr, [3, 4, 5]);
  const cc = await s.concat([tensor([1, 2], [1, 2]), tensor([3, 4, 5, 6], [2, 2])], 0).data();
  assertClose(cc, [1, 2, 3, 4, 5, 6]);
  const bc = await s.broadcastTo(tensor([1, 2], [2, 1]), [3, 2, 2]).data();
  assertClose(bc, [1, 1, 2, 2, 1, 1, 2, 2, 1, 1, 2, 2]);
  const sh = [3, 4, 5];
  await gradcheck((a) => o.square(s.permute(a, [1, 2, 0])), [{ data: x, shape: sh }]);
  await gradcheck((a) => o.square(s.slice(a, [0, 1, 1], [2, 4, 4])), [{ data: x, shape: sh }]);
  await gradcheck((a) => o.square(s.flip(a, [0, 2])), [{ data: x, shape: sh }]);
  await gradcheck((a, b) => o.square(s.concat([a, b], 1)), [
    { data: x.slice(0, 15), shape: [3, 1, 5] },
    { data: x.slice(15, 60), shape: [3, 3, 5] },
  ]);
  await gradcheck((a) => o.square(s.pad(a, [[1, 1], [0, 2]])), [{ data: x.slice(0, 12), shape: [3, 4] }]);
  await gradcheck((a) => o.square(s.broadcastTo(a, [2, 3, 4])), [{ data: x.slice(0, 4), shape: [1, 4] }]);
});

gpuTest("random numbers are seeded and have the right moments", async () => {
  manualSeed(42);
  const a = await randn([50000]).data();
  manualSeed(42);
  const b = await randn([50000]).data();
  assertClose(a, b, { rtol: 0, atol: 0, what: "same seed" });
  const mean = a.reduce((x, y) => x + y, 0) / a.length;
  const v = a.reduce((x, y) => x + (y - mean) ** 2, 0) / a.length;
  if (Math.abs(mean) > 0.02 || Math.abs(v - 1) > 0.03) throw new Error(`randn moments ${mean}, ${v}`);
  const u = await rand([50000], 2, 4).data();
  const um = u.reduce((x, y) => x + y, 0) / u.length;
  if (Math.abs(um - 3) > 0.02 || Math.min(...u) <= 2 || Math.max(...u) > 4) {
    throw new Error(`rand mean ${um}`);
  }
  const k = await randint([10000], 7).data();
  const counts = new Array(7).fill(0);
  for (const v of k) counts[v]++;
  if (counts.some((c) => Math.abs(c - 10000 / 7) > 150)) throw new Error(`randint counts ${counts}`);
  const c = await randn([4]).data();
  if (c[0] === a[0]) throw new Error("successive calls must differ");
});

gpuTest("gradients of gradients: d/dx of (d/dx x^3) = 6x", async () => {
  const x = tensor([0.5, -1.5, 2]);
  x.requiresGrad = true;
  const [g] = grad(r.sum(o.pow(x, 3)), [x], { createGraph: true });
  assertClose(await g.data(), [0.75, 6.75, 12], { rtol: 1e-5 });
  const [h] = grad(r.sum(g), [x]);
  assertClose(await h.data(), [3, -9, 12], { rtol: 1e-5 });
});

gpuTest("clear errors for bad shapes", () => {
  const a = zeros([2, 3]), b = zeros([4]);
  const expectThrow = (fn: () => unknown, re: RegExp) => {
    try {
      fn();
    } catch (e) {
      if (!re.test((e as Error).message)) throw new Error(`wrong message: ${(e as Error).message}`);
      return;
    }
    throw new Error(`expected an error matching ${re}`);
  };
  expectThrow(() => o.add(a, b), /cannot be broadcast/);
  expectThrow(() => s.reshape(a, [4, 2]), /cannot reshape/);
  expectThrow(() => s.permute(a, [0, 0]), /not a permutation/);
  expectThrow(() => s.concat([a, b]), /differ/);
  expectThrow(() => tensor([1, 2, 3], [2, 2]), /does not fit/);
  expectThrow(() => tensor([[1, 2], [3]]), /ragged/);
  const d = zeros([2]);
  d.dispose();
  expectThrow(() => o.add(d, d), /after dispose/);
});

gpuTest("read-back can check for non-finite values", async () => {
  const t = o.log(tensor([1, 0, 2]));
  let msg = "";
  await t.data({ checkFinite: true }).catch((e) => (msg = (e as Error).message));
  if (!/non-finite value -Infinity at flat index 1/.test(msg)) throw new Error(`got: ${msg}`);
});

gpuTest("grad leaves the caller's gradOutputs alive", async () => {
  const x = tensor([1, 2, 3]);
  x.requiresGrad = true;
  const y = o.mul(o.square(x), 2);
  const gy = tensor([1, 0, -1]);
  const [gx] = grad(y, [x], { gradOutputs: [gy] });
  assertClose(await gx.data(), [4, 0, -12]);
  assertClose(await gy.data(), [1, 0, -1]);
});

gpuTest("isFiniteMask flags NaN and infinities", async () => {
  const t = o.div(tensor([1, 0, -1, 0, 2]), tensor([1, 0, 0, 1, 0]));
  assertClose(await o.isFiniteMask(t).data(), [1, 0, 0, 1, 0]);
});
