// Lazy elementwise fusion (nn/lazy.ts) and fused prologues (kernels/prologue.ts): each fused kernel
// family against float64 references on sizes that are not multiples of any workgroup, the number of
// dispatches it costs, first- and second-order gradients through fused graphs, in-place writes under lazy
// readers, cuts (tree size, binding limit), and a bounded structure cache.

import { gpu } from "../kernels/runtime.ts";
import { grad } from "../nn/autograd.ts";
import { full, tensor } from "../nn/creation.ts";
import { copyInto } from "../nn/module.ts";
import { viewStrides } from "../nn/lazy.ts";
import * as o from "../nn/ops.ts";
import { Adam } from "../nn/optim.ts";
import { sum } from "../nn/reduce.ts";
import * as s from "../nn/shape.ts";
import { scope, scopeAsync, type Tensor } from "../nn/tensor.ts";
import { gradcheck } from "./gradcheck.ts";
import { assertClose, gpuTest, randArray } from "./harness.ts";

const A = [3, 5, 7], B = [5, 1]; // B broadcasts into A
const nA = 105, nB = 5;

/** Dispatches recorded while `fn` runs. */
function dispatchesOf(fn: () => void): number {
  const rt = gpu();
  const d = rt.totalDispatches;
  fn();
  return rt.totalDispatches - d;
}

// f(a, b) = where(a > 0, tanh(a * b + 0.5), exp(-|a|) / (1 + b^2)) * 1.5, b broadcast along axis 0 and 2.
function chain(a: Tensor, b: Tensor): Tensor {
  const pos = o.tanh(o.add(o.mul(a, b), 0.5));
  const neg = o.div(o.exp(o.neg(o.abs(a))), o.add(o.square(b), 1));
  return o.mul(o.where(o.greater(a, 0), pos, neg), 1.5);
}
function chainRef(a: number, b: number): number {
  return 1.5 * (a > 0 ? Math.tanh(a * b + 0.5) : Math.exp(-Math.abs(a)) / (1 + b * b));
}
const bAt = (i: number) => Math.floor(i / 7) % 5; // b's index for flat index i of A

gpuTest(
  "fused chain: broadcasting, scalars, where and comparisons in one kernel, against float64",
  async () => {
    const a = randArray(nA, 1), b = randArray(nB, 2);
    const got = await scopeAsync(async () => {
      const y = chain(tensor(a, A), tensor(b, B));
      if (!y.lazy) throw new Error("an elementwise chain should stay lazy until its buffer is needed");
      const n = dispatchesOf(() => void y.buffer);
      if (n !== 1) throw new Error(`the chain took ${n} dispatches, expected 1`);
      return await y.data();
    });
    assertClose(got, Array.from(a, (v, i) => chainRef(v, b[bAt(i)])), {
      rtol: 1e-5,
      atol: 1e-6,
      what: "chain",
    });
  },
);

gpuTest("fused chain: first- and second-order gradients (finite differences)", async () => {
  const a = randArray(15, 3).map((v) => (Math.abs(v) < 0.05 ? v + 0.1 : v)); // away from the where's kink
  await gradcheck(chain, [{ data: a, shape: [3, 5] }, { data: randArray(5, 4), shape: [5] }]);
  // Casts, constants and lazy views (permute, slice, broadcast) inside the graph.
  const viewed = (x: Tensor) => {
    const t = s.permute(o.mul(x, full([], 0.5)), [1, 0]);
    const sl = s.slice(t, [1, 0], [4, 3]);
    return o.sigmoid(o.mul(s.broadcastTo(sl, [2, 3, 3]), o.cast(o.cast(o.mul(x, 10), "i32"), "f32").size));
  };
  await gradcheck(viewed, [{ data: randArray(15, 5), shape: [3, 5] }]);
});

gpuTest("cast, comparisons and where on i32 fuse with f32 math", async () => {
  const a = randArray(nA, 6, -3, 3);
  const got = await scope(() => {
    const i = o.cast(o.mul(tensor(a, A), 2), "i32"); // truncates toward zero
    return o.add(o.cast(i, "f32"), o.where(o.equal(i, 0), 100, 0));
  }).data();
  assertClose(
    got,
    Array.from(a, (v) => Math.trunc(Math.fround(v * 2)) + (Math.trunc(v * 2) === 0 ? 100 : 0)),
    {
      what: "cast",
    },
  );
});

gpuTest(
  "lazy views: permute, slice, flip and broadcast read their source in the consumer's kernel",
  async () => {
    const a = randArray(nA, 7);
    const got = await scopeAsync(async () => {
      const x = tensor(a, A);
      const y = o.add(
        s.flip(s.permute(x, [2, 0, 1]), [1]),
        s.slice(s.broadcastTo(x.view([1, 3, 5, 7]), [2, 3, 5, 7]), [1, 0, 0, 0], [2, 3, 5, 7]).view([3, 5, 7])
          .view([7, 3, 5]),
      );
      const n = dispatchesOf(() => void y.buffer);
      if (n !== 1) throw new Error(`permute+flip+slice+broadcast+add took ${n} dispatches, expected 1`);
      return await y.data();
    });
    const ref = new Array(nA);
    for (let k = 0; k < 7; k++) {
      for (let i = 0; i < 3; i++) {
        for (let j = 0; j < 5; j++) {
          const out = k * 15 + i * 5 + j;
          ref[out] = a[(2 - i) * 35 + j * 7 + k] + a[out];
        }
      }
    }
    assertClose(got, ref, { what: "views" });
  },
);

gpuTest("reshape of a lazy value: dense trees stay lazy, broadcast ones are computed first", async () => {
  const a = randArray(nA, 8), b = randArray(nB, 9);
  const [dense, broadcast] = await scopeAsync(async () => {
    const x = tensor(a, A);
    const d = o.exp(o.mul(x, 0.5)).view([15, 7]);
    if (!d.lazy) throw new Error("a dense lazy tree should reshape lazily");
    const bc = o.add(x, tensor(b, B)).view([7, 15]);
    return [await d.data(), await bc.data()];
  });
  assertClose(dense, Array.from(a, (v) => Math.exp(v * 0.5)), { rtol: 1e-6, what: "dense reshape" });
  assertClose(broadcast, Array.from(a, (v, i) => v + b[bAt(i)]), { what: "broadcast reshape" });
});

Deno.test("viewStrides: which reshapes a strided layout allows", () => {
  const eq = (got: number[] | null, want: number[] | null, what: string) => {
    if (JSON.stringify(got) !== JSON.stringify(want)) {
      throw new Error(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
    }
  };
  eq(viewStrides([2, 3], [3, 1], [6]), [1], "contiguous merge");
  eq(viewStrides([6], [1], [2, 3]), [3, 1], "split");
  eq(viewStrides([2, 3], [1, 2], [6]), null, "transposed axes do not merge");
  eq(viewStrides([2, 3], [1, 2], [2, 3, 1]), [1, 2, 0], "a size-1 axis added to a transposed view");
  // narrow(x [4, 5, 6], axis 1, 2, 1): [4, 1, 6] with strides [30, 6, 1], offset 12, read as [4, 6].
  eq(viewStrides([4, 1, 6], [30, 6, 1], [4, 6]), [30, 1], "a size-1 axis dropped from a slice");
  eq(viewStrides([4, 1, 6], [30, 6, 1], [24]), null, "a slice's rows do not merge");
  // A [3] vector broadcast into [2, 3] (strides [0, 1]) and into [3, 2] ([1, 0]).
  eq(viewStrides([2, 3], [0, 1], [2, 1, 3]), [0, 0, 1], "broadcast plus a size-1 axis");
  eq(viewStrides([2, 3], [0, 1], [6]), null, "a broadcast axis does not merge with a real one");
  eq(viewStrides([3, 2, 2], [1, 0, 0], [3, 4]), [1, 0], "two broadcast axes merge");
  eq(viewStrides([2, 3, 4], [12, 4, 1], [4, 6]), [6, 1], "a contiguous run regrouped");
  eq(viewStrides([2, 3, 4], [1, 8, 2], [2, 12]), [1, 2], "the inner run of a permuted view");
  eq(viewStrides([], [], [1, 1]), [0, 0], "a scalar as [1, 1]");
});

gpuTest(
  "reshape: size-1 axes of broadcast trees and strided views cost no kernel, values exact",
  async () => {
    const a = randArray(nA, 31), b = randArray(nB, 32);
    const rt = gpu();
    const got = await scopeAsync(async () => {
      const x = tensor(a, A), bb = tensor(b, B);
      let d = rt.totalDispatches;
      // A broadcast tree [3, 5, 7] read as [3, 5, 1, 7] and back, with a second broadcast in between.
      const t = o.tanh(o.add(x, bb)).view([3, 5, 1, 7]);
      const u = o.mul(t, tensor(b, [5, 1, 1])).view([3, 5, 7]);
      if (!u.lazy || rt.totalDispatches !== d) throw new Error("the broadcast tree should reshape lazily");
      // A slice [3, 1, 7] read as [3, 7]: still a view of x's buffer.
      const sl = s.narrow(x, 1, 2, 1);
      d = rt.totalDispatches;
      const v = sl.view([3, 7]);
      if (rt.totalDispatches !== d) throw new Error("reshaping a slice by a size-1 axis should need no copy");
      return [await u.data(), await v.data()];
    });
    const at = (i: number, j: number, k: number) => (i * 5 + j) * 7 + k;
    const uRef: number[] = [], vRef: number[] = [];
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 5; j++) {
        for (let k = 0; k < 7; k++) {
          uRef.push(Math.tanh(a[at(i, j, k)] + b[j]) * b[j]);
        }
      }
      for (let k = 0; k < 7; k++) vRef.push(a[at(i, 2, k)]);
    }
    assertClose(got[0], uRef, { rtol: 1e-6, what: "broadcast tree through two reshapes" });
    assertClose(got[1], vRef, { rtol: 0, atol: 0, what: "slice reshaped" });
  },
);

gpuTest("zeros are cleared, not computed: no kernel, and a reused pooled buffer reads 0", async () => {
  const rt = gpu();
  const got = await scopeAsync(async () => {
    // A buffer of this size class full of non-zeros goes back to the pool first.
    const junk = o.add(tensor(randArray(nA, 35), A), 3);
    const used = junk.buffer;
    junk.dispose();
    rt.flush();
    await rt.device.queue.onSubmittedWorkDone();
    const d = rt.totalDispatches, c = rt.totalCopies;
    const z = full(A, 0);
    if (z.buffer !== used) throw new Error("the test expects the pooled buffer to be reused");
    if (rt.totalDispatches !== d || rt.totalCopies !== c + 1) {
      throw new Error(`zeros took ${rt.totalDispatches - d} dispatches, ${rt.totalCopies - c} copies`);
    }
    const ones = full(A, 1);
    void ones.buffer;
    if (rt.totalDispatches !== d + 1) throw new Error("a non-zero constant still needs its kernel");
    return [await z.data(), await ones.data()];
  });
  assertClose(got[0], new Float32Array(nA), { rtol: 0, atol: 0, what: "zeros" });
  assertClose(got[1], new Float32Array(nA).fill(1), { rtol: 0, atol: 0, what: "ones" });
});

gpuTest("reshape: a node computed after a lazy reshape was built still renders right", async () => {
  // X = 2 * broadcastTo(c, [2, 1]) reads a stride-0 view, so [2, 3] -> [6] of X + Y is a valid lazy read;
  // once X is computed into a buffer of its own it is not, and the reshape's arg is computed first.
  const got = await scopeAsync(async () => {
    const x = o.mul(s.broadcastTo(tensor([0.5], [1, 1]), [2, 1]), 2);
    const r = o.add(x, tensor([1, 2, 3, 4, 5, 6], [2, 3])).view([6]);
    if (!r.lazy) throw new Error("the reshape should have stayed lazy");
    void x.buffer;
    return await o.mul(r, 1).data();
  });
  assertClose(got, [2, 3, 4, 5, 6, 7], { rtol: 0, atol: 0, what: "reshape after its input was computed" });
});

gpuTest("reshape of broadcast trees: first- and second-order gradients (finite differences)", async () => {
  const f = (x: Tensor, b: Tensor) =>
    s.reshape(o.mul(s.reshape(o.tanh(o.add(x, b)), [3, 5, 1, 7]), s.reshape(o.exp(b), [1, 5, 1, 1])), [
      15,
      7,
    ]);
  await gradcheck(f, [{ data: randArray(nA, 33), shape: A }, { data: randArray(nB, 34), shape: B }]);
});

gpuTest(
  "reduction prologue: sum over axes of an elementwise tree is one kernel, against float64",
  async () => {
    const a = randArray(nA, 10), b = randArray(nB, 11);
    for (const axes of [[0], [1], [2], [0, 1], [1, 2], [0, 2], [0, 1, 2]]) {
      const got = await scopeAsync(async () => {
        const y = o.square(o.sub(tensor(a, A), tensor(b, B)));
        let out: Tensor | null = null;
        const n = dispatchesOf(() => out = sum(y, axes));
        // Adjacent axes: one kernel. Non-adjacent ones permute first, and a permute of a lazy tree
        // computes the tree (only leaves are read through strides): two.
        const expected = axes.join() === "0,2" ? 2 : 1;
        if (n !== expected) throw new Error(`sum over [${axes}] took ${n} dispatches, expected ${expected}`);
        return await out!.data();
      });
      const keep = [0, 1, 2].filter((d) => !axes.includes(d));
      const ref = new Float64Array(keep.reduce((p, d) => p * A[d], 1));
      for (let i = 0; i < nA; i++) {
        const c = [Math.floor(i / 35), Math.floor(i / 7) % 5, i % 7];
        let idx = 0;
        for (const d of keep) idx = idx * A[d] + c[d];
        ref[idx] += (a[i] - b[bAt(i)]) ** 2;
      }
      assertClose(got, ref, { rtol: 1e-5, atol: 1e-6, what: `sum over [${axes}]` });
    }
    // A long row (two passes, the first with the prologue) and max with a prologue.
    const long = randArray(40000, 12);
    const sl = await scope(() => {
      const t = tensor(long, [40000]);
      return sum(o.mul(t, t));
    }).data();
    const refLong = long.reduce((p, v) => p + v * v, 0);
    assertClose(sl, [refLong], { rtol: 1e-4, what: "long-row sum of squares" });
    const m = await scope(() => o.mul(s.reduceAxes(o.mul(tensor(a, A), -2), [2], "max"), 1)).data();
    const refMax = Array.from(
      { length: 15 },
      (_, r) => Math.max(...Array.from(a.slice(r * 7, r * 7 + 7), (v) => -2 * v)),
    );
    assertClose(m, refMax, { rtol: 1e-6, what: "max prologue" });
  },
);

gpuTest("Adam prologue: a lazy gradient gives the same update as its computed buffer", async () => {
  const p0 = randArray(nA, 13), g0 = randArray(nA, 14);
  const run = async (lazy: boolean) => {
    const p = tensor(p0, A);
    const opt = new Adam([p], { lr: 0.1, betas: [0.5, 0.9] });
    for (let step = 0; step < 3; step++) {
      scope(() => {
        const g = o.mul(o.tanh(tensor(g0, A)), step + 1);
        if (!lazy) void g.buffer;
        if (lazy && !g.lazy) throw new Error("the gradient should still be lazy");
        opt.update([g]);
      });
    }
    const out = await p.data();
    p.dispose();
    for (const t of [...opt.m, ...opt.v]) t.dispose();
    return out;
  };
  const [a, b] = [await run(true), await run(false)];
  assertClose(a, b, { rtol: 0, atol: 0, what: "Adam with a fused gradient" });
  // And against float64: Adam's first step moves every parameter by lr (sign of g) up to eps.
  const first = await (async () => {
    const p = tensor(p0, A);
    const opt = new Adam([p], { lr: 0.1, betas: [0.5, 0.9] });
    scope(() => opt.update([o.mul(tensor(g0, A), 2)]));
    const d = await p.data();
    p.dispose();
    for (const t of [...opt.m, ...opt.v]) t.dispose();
    return d;
  })();
  assertClose(first, Array.from(p0, (v, i) => v - 0.1 * Math.sign(g0[i])), {
    rtol: 1e-5,
    atol: 1e-6,
    what: "Adam",
  });
});

gpuTest("in-place writes: lazy readers keep the values they had", async () => {
  const w0 = randArray(nA, 15), w1 = randArray(nA, 16);
  const [y, view, after] = await scopeAsync(async () => {
    const w = tensor(w0, A);
    const y = o.mul(w, 2); // lazy: reads w's buffer
    const view = s.permute(w, [2, 1, 0]); // lazy strided read of w's buffer
    copyInto(tensor(w1, A), w);
    const after = o.mul(w, 1);
    return [await y.data(), await view.data(), await after.data()];
  });
  assertClose(y, Array.from(w0, (v) => 2 * v), { what: "op read before the write" });
  const ref = new Array(nA);
  for (let k = 0; k < 7; k++) {
    for (let j = 0; j < 5; j++) {
      for (let i = 0; i < 3; i++) ref[k * 15 + j * 3 + i] = w0[i * 35 + j * 7 + k];
    }
  }
  assertClose(view, ref, { what: "view read before the write" });
  assertClose(after, w1, { what: "read after the write" });
});

gpuTest("cuts: long chains and many inputs split into kernels that fit, values exact", async () => {
  const a = randArray(nA, 17);
  const got = await scope(() => {
    let y = tensor(a, A);
    for (let i = 0; i < 150; i++) y = o.add(o.mul(y, 0.99), 0.01);
    return y;
  }).data();
  const ref = Array.from(a, (v) => {
    let y = v;
    for (let i = 0; i < 150; i++) y = Math.fround(Math.fround(y * Math.fround(0.99)) + Math.fround(0.01));
    return y;
  });
  assertClose(got, ref, { rtol: 1e-5, atol: 1e-6, what: "150-op chain" });
  const xs = Array.from({ length: 40 }, (_, i) => randArray(nB, 100 + i));
  const total = await scope(() => xs.map((x) => tensor(x, B)).reduce((p, t) => o.add(p, t))).data();
  assertClose(total, Array.from({ length: nB }, (_, j) => xs.reduce((p, x) => p + x[j], 0)), {
    rtol: 1e-5,
    what: "sum of 40 tensors",
  });
});

gpuTest("structure cache: the same chain with new values and new buffers compiles nothing new", async () => {
  const rt = gpu() as unknown as { pipelines: Map<string, unknown> };
  const step = (k: number) =>
    scopeAsync(async () => {
      const y = chain(tensor(randArray(nA, k), A), tensor(randArray(nB, k + 1), B));
      const l = sum(o.mul(y, k)); // scalar value changes with k
      const x = tensor(randArray(nA, k + 2), A);
      x.requiresGrad = true;
      const [g] = grad(sum(o.mul(chain(x, full(B, 0.3)), k)), [x]);
      await g.data();
      return await l.item();
    });
  await step(1);
  const before = rt.pipelines.size;
  for (let k = 2; k < 12; k++) await step(k);
  if (rt.pipelines.size !== before) {
    throw new Error(`the pipeline cache grew from ${before} to ${rt.pipelines.size} over repeated steps`);
  }
});

gpuTest(
  "kernel timing: every dispatch counted by family, times non-negative, results unchanged",
  async () => {
    const rt = gpu();
    if (!rt.device.features.has("timestamp-query")) {
      console.log("skipped: this adapter has no timestamp-query");
      return;
    }
    const x = tensor(randArray(nA, 31), A);
    const run = () => sum(o.mul(o.add(x, 1), x), 1);
    const plain = await run().data();
    rt.dispatchCounts = new Map();
    rt.startTiming();
    const timed = await run().data();
    const byFamily = await rt.stopTiming();
    const counts = rt.dispatchCounts;
    rt.dispatchCounts = null;
    assertClose(timed, plain, { rtol: 0, atol: 0 });
    // The same dispatches as the counter saw, family by family.
    if (byFamily.size !== counts.size) {
      throw new Error(
        `families ${[...byFamily.keys()]} vs ${[...counts.keys()]}`,
      );
    }
    for (const [f, v] of byFamily) {
      if (v.dispatches !== counts.get(f)) {
        throw new Error(
          `${f}: ${v.dispatches} timed, ${counts.get(f)} counted`,
        );
      }
      if (!(v.ms >= 0) || !Number.isFinite(v.ms)) throw new Error(`${f}: ${v.ms} ms`);
    }
    let threw = false;
    try {
      await rt.stopTiming();
    } catch {
      threw = true;
    }
    if (!threw) throw new Error("stopTiming() without startTiming() must throw");
    x.dispose();
  },
);

gpuTest(
  "fast coordinate division (fdiv) is exact near multiples, up to 2^31 and divisors below 2^24",
  async () => {
    const rt = gpu();
    // Pairs (a, b): a at q*b - 1, q*b, q*b + 1 for quotients spread up to 2^31 / b.
    const divisors = [1, 2, 3, 5, 7, 16, 17, 255, 1000, 4099, 65535, 65537, 999983, 2 ** 23 + 1, 2 ** 24 - 1];
    const as: number[] = [], bs: number[] = [];
    for (const b of divisors) {
      const qMax = Math.floor((2 ** 31 - 2) / b);
      for (let t = 0; t <= 64; t++) {
        const q = Math.floor(qMax * (t / 64) ** 3);
        for (const a of [q * b - 1, q * b, q * b + 1]) {
          if (a >= 0 && a < 2 ** 31) as.push(a), bs.push(b);
        }
      }
    }
    const n = as.length;
    const ab = rt.alloc(4 * n), bb = rt.alloc(4 * n), rb = rt.alloc(4 * n), out = rt.alloc(4 * n);
    rt.upload(ab, new Uint32Array(as));
    rt.upload(bb, new Uint32Array(bs));
    rt.upload(rb, new Float32Array(bs.map((b) => 1 / b)));
    const { FAST_DIV_WGSL } = await import("../kernels/elementwise.ts");
    rt.dispatch(
      "test_fdiv",
      () =>
        `@group(0) @binding(0) var<storage, read> a: array<u32>;
@group(0) @binding(1) var<storage, read> b: array<u32>;
@group(0) @binding(2) var<storage, read> r: array<f32>;
@group(0) @binding(3) var<storage, read_write> o: array<u32>;
${FAST_DIV_WGSL}
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  if (g.x < ${n}u) { o[g.x] = fdiv(a[g.x], b[g.x], r[g.x]); }
}`,
      [{ buffer: ab }, { buffer: bb }, { buffer: rb }, { buffer: out, write: true }],
      null,
      [Math.ceil(n / 64), 1, 1],
    );
    const got = new Uint32Array(await rt.read(out, 4 * n));
    for (let i = 0; i < n; i++) {
      const want = Math.floor(as[i] / bs[i]);
      if (got[i] !== want) throw new Error(`fdiv(${as[i]}, ${bs[i]}) = ${got[i]}, expected ${want}`);
    }
    for (const x of [ab, bb, rb, out]) rt.release(x);
  },
);

gpuTest("broadcast over more than 2^24 elements: every coordinate right (fast division)", async () => {
  const rows = 5, cols = 3355447; // 16,777,235 elements: past f32's exact integers
  const x = tensor(Float32Array.from({ length: cols }, (_, j) => j % 1024), [1, cols]);
  const b = tensor(Float32Array.from({ length: rows }, (_, r) => 4096 * r), [rows, 1]);
  const y = o.add(x, b);
  const got = await y.data();
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < cols; j++) {
      if (got[r * cols + j] !== (j % 1024) + 4096 * r) {
        throw new Error(`y[${r}, ${j}] = ${got[r * cols + j]}, expected ${(j % 1024) + 4096 * r}`);
      }
    }
  }
  for (const t of [x, b, y]) t.dispose();
});
