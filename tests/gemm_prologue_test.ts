// GEMM operands with an elementwise prologue (kernels/pack_texture.ts PackSource, nn/conv.ts,
// nn/linalg.ts): on the texture path a lazy input, weight or output gradient of conv2d is packed as it is
// computed, and a small storage-path matmul computes a lazy operand in its loads, with no kernel of its
// own. Checked against the materialised path (bit-identical), against a float64
// convolution of the fused chain, by the dispatches saved, and by first- and second-order finite
// differences through the fused graph; sizes are not multiples of 4 (channels) or of any tile.

import { type GemmPath, gemmTuning } from "../kernels/gemm.ts";
import { matmul as gemmMatmul } from "../kernels/matmul.ts";
import { gpu } from "../kernels/runtime.ts";
import { grad } from "../nn/autograd.ts";
import { tensor } from "../nn/creation.ts";
import { conv2d } from "../nn/conv.ts";
import { matmul, matmulT } from "../nn/linalg.ts";
import * as o from "../nn/ops.ts";
import { sum } from "../nn/reduce.ts";
import { transpose } from "../nn/shape.ts";
import { scopeAsync, type Tensor } from "../nn/tensor.ts";
import { gradcheck } from "./gradcheck.ts";
import { assertClose, gpuTest, randArray } from "./harness.ts";

const X = [3, 5, 7, 9], W = [6, 5, 3, 3], PAD = 1; // batch 3, cin 5, cout 6, 7x9, 3x3 taps
const nX = 3 * 5 * 7 * 9, nW = 6 * 5 * 3 * 3;

async function onPath<T>(path: GemmPath, fn: () => Promise<T>): Promise<T> {
  gemmTuning.path = path;
  try {
    return await fn();
  } finally {
    gemmTuning.path = null;
  }
}

// The fused chains: x' = tanh(x) * s[c] + 0.25 (s broadcast along channels), w' = w * d[o] (a demod-like
// per-output scale).
const xChain = (x: Tensor, sc: Tensor) => o.add(o.mul(o.tanh(x), sc), 0.25);
const wChain = (w: Tensor, d: Tensor) => o.mul(w, d);

function conv64(x: Float64Array, w: Float64Array): Float64Array {
  const [N, C, H, Wd] = X, [O, , KH, KW] = W;
  const out = new Float64Array(N * O * H * Wd);
  for (let n = 0; n < N; n++) {
    for (let oc = 0; oc < O; oc++) {
      for (let y = 0; y < H; y++) {
        for (let xx = 0; xx < Wd; xx++) {
          let acc = 0;
          for (let c = 0; c < C; c++) {
            for (let ky = 0; ky < KH; ky++) {
              for (let kx = 0; kx < KW; kx++) {
                const iy = y + ky - PAD, ix = xx + kx - PAD;
                if (iy < 0 || iy >= H || ix < 0 || ix >= Wd) continue;
                acc += x[((n * C + c) * H + iy) * Wd + ix] * w[((oc * C + c) * KH + ky) * KW + kx];
              }
            }
          }
          out[((n * O + oc) * H + y) * Wd + xx] = acc;
        }
      }
    }
  }
  return out;
}

const xs = randArray(nX, 1),
  ws = randArray(nW, 2),
  sc = randArray(5, 3, 0.5, 1.5),
  dd = randArray(6, 4, 0.5, 2);
const r = randArray(3 * 6 * 7 * 9, 5);

/** Forward, dx and dw of sum(conv(x', w') * r), with the chains lazy or computed first; and the dispatches. */
async function pass(lazy: boolean) {
  return await scopeAsync(async () => {
    const x = tensor(xs, X), w = tensor(ws, W);
    x.requiresGrad = w.requiresGrad = true;
    const rt = gpu();
    const d0 = rt.totalDispatches;
    const xf = xChain(x, tensor(sc, [5, 1, 1])), wf = wChain(w, tensor(dd, [6, 1, 1, 1]));
    if (lazy && !(xf.lazy && wf.lazy)) throw new Error("the chains should still be lazy");
    if (!lazy) void [xf.buffer, wf.buffer];
    const y = conv2d(xf, wf, { padding: PAD });
    // The output gradient r * 2 is lazy too: it reaches the input- and weight-gradient packs as a tree.
    const [gx, gw] = grad(sum(o.mul(o.mul(y, tensor(r, y.shape)), 2)), [x, w]);
    void [gx.buffer, gw.buffer];
    const dispatches = rt.totalDispatches - d0;
    return { y: await y.data(), gx: await gx.data(), gw: await gw.data(), dispatches };
  });
}

gpuTest("conv2d packs take lazy operands: bit-identical, float64 forward, fewer dispatches", async () => {
  await onPath("texture", async () => {
    const a = await pass(true), b = await pass(false);
    assertClose(a.y, b.y, { rtol: 0, atol: 0, what: "forward" });
    assertClose(a.gx, b.gx, { rtol: 0, atol: 0, what: "dx" });
    assertClose(a.gw, b.gw, { rtol: 0, atol: 0, what: "dw" });
    if (a.dispatches >= b.dispatches) {
      throw new Error(`lazy operands cost ${a.dispatches} dispatches, computed ones ${b.dispatches}`);
    }
    const x64 = Float64Array.from(xs, (v, i) => Math.tanh(v) * sc[Math.floor(i / 63) % 5] + 0.25);
    const w64 = Float64Array.from(ws, (v, i) => v * dd[Math.floor(i / 45)]);
    assertClose(a.y, conv64(x64, w64), { rtol: 1e-5, atol: 1e-5, what: "forward vs float64" });
  });
});

gpuTest("conv2d with lazy operands: first- and second-order gradients (finite differences)", async () => {
  await onPath("texture", async () => {
    const small = [2, 3, 5, 6], sw = [5, 3, 3, 3];
    const f = (x: Tensor, w: Tensor) =>
      conv2d(o.add(o.mul(o.tanh(x), 1.5), 0.1), o.mul(w, o.square(w)), { padding: 1 });
    await gradcheck(f, [
      { data: randArray(2 * 3 * 5 * 6, 7), shape: small },
      { data: randArray(5 * 3 * 3 * 3, 8), shape: sw },
    ]);
  });
});

gpuTest(
  "image packs of a tree read four channel lanes per coordinate decomposition where the view allows",
  async () => {
    await onPath("texture", async () => {
      const rt = gpu();
      rt.startTiming(true);
      const a = await pass(true);
      const keys = [...(await rt.stopTiming()).keys()].filter((k) => k.startsWith("pack_image|pro|"));
      // x' = tanh(x) * s + 0.25 as [3, 5, 7, 9] in NCHW: lanes along dimension 1 (the key's last field).
      if (!keys.some((k) => /\|1\|23\|1 \[/.test(k))) {
        throw new Error(`no four-lane image pack among ${keys.length} keys:\n${keys.join("\n")}`);
      }
      // The weight's pack for the input gradient reads w' transposed: the one-lane loader, same values.
      if (!keys.some((k) => /\|1\|23\| \[/.test(k))) throw new Error("no one-lane image pack of a tree");
      const b = await pass(false);
      assertClose(a.gx, b.gx, { rtol: 0, atol: 0, what: "dx" });
      assertClose(a.gw, b.gw, { rtol: 0, atol: 0, what: "dw" });
    });
  },
);

gpuTest(
  "four-lane image packs: a grouped conv (per-sample weights) over a lazy input equals the computed input",
  async () => {
    await onPath("texture", async () => {
      // The fused modulated conv's view: [1, n*c, h, w] in n groups, c = 6 per group (a ragged last quad),
      // 5x7 images; the tree scales channels by a broadcast [n*c, 1, 1], so its coordinates are decomposed.
      const n = 3, c = 6, h = 5, w = 7, co = 4;
      const run = (lazy: boolean) =>
        scopeAsync(async () => {
          const x = tensor(randArray(n * c * h * w, 11), [1, n * c, h, w]);
          const k = tensor(randArray(n * co * c * 9, 12), [n * co, c, 3, 3]);
          const xf = o.add(o.mul(o.tanh(x), tensor(randArray(n * c, 13, 0.5, 1.5), [n * c, 1, 1])), 0.25);
          if (lazy && !xf.lazy) throw new Error("the chain should still be lazy");
          if (!lazy) void xf.buffer;
          return await conv2d(xf, k, { padding: 1, groups: n }).data();
        });
      const rt = gpu();
      rt.startTiming(true);
      const lazy = await run(true);
      const keys = [...(await rt.stopTiming()).keys()];
      if (!keys.some((k) => k.startsWith("pack_image|pro|") && /\|1\|23\|1 \[/.test(k))) {
        throw new Error(`the grouped view's pack did not take the four-lane loader:\n${keys.join("\n")}`);
      }
      assertClose(lazy, await run(false), { rtol: 0, atol: 0, what: "grouped conv" });
    });
  },
);

// matmul with lazy operands: on the storage path (small GEMMs, where the dispatch is the cost) a lazy
// operand is a prologue that the GEMM's loads call, on the texture path the pack computes it; either way
// it needs no kernel of its own. A = tanh(x) * s[m] + 0.25 over a batch, B = transpose(w) * d[n] (a
// strided view of one buffer) broadcast over the batch; 3 x 7 x 6 x 5 is no multiple of any tile or of 4.
const MB = 3, MM = 7, MN = 6, MK = 5;
const mx = randArray(MB * MM * MK, 21), ms = randArray(MM, 22, 0.5, 1.5);
const mw = randArray(MN * MK, 23), md = randArray(MN, 24, 0.5, 2);

async function matmulPass(lazy: boolean) {
  return await scopeAsync(async () => {
    const x = tensor(mx, [MB, MM, MK]), w = tensor(mw, [MN, MK]);
    x.requiresGrad = w.requiresGrad = true;
    const rt = gpu();
    const d0 = rt.totalDispatches;
    const a = o.add(o.mul(o.tanh(x), tensor(ms, [MM, 1])), 0.25);
    const b = o.mul(transpose(w), tensor(md, [MN]));
    if (lazy && !(a.lazy && b.lazy)) throw new Error("the operands should still be lazy");
    if (!lazy) void [a.buffer, b.buffer];
    const y = matmul(a, b);
    // The backward products read lazy views too: the output gradient times 2, transposed operands.
    const [gx, gw] = grad(sum(o.mul(o.mul(y, tensor(r.subarray(0, MB * MM * MN), y.shape)), 2)), [x, w]);
    void [gx.buffer, gw.buffer];
    const dispatches = rt.totalDispatches - d0;
    return { y: await y.data(), gx: await gx.data(), gw: await gw.data(), dispatches };
  });
}

for (const path of ["storage", "texture"] as const) {
  gpuTest(
    `${path}-path matmul takes lazy operands: bit-identical, float64 forward, fewer dispatches`,
    async () => {
      const [lazy, stored] = await onPath(
        path,
        async () => [await matmulPass(true), await matmulPass(false)],
      );
      assertClose(lazy.y, stored.y, { rtol: 0, atol: 0, what: "forward" });
      assertClose(lazy.gx, stored.gx, { rtol: 0, atol: 0, what: "dx" });
      assertClose(lazy.gw, stored.gw, { rtol: 0, atol: 0, what: "dw" });
      if (lazy.dispatches >= stored.dispatches) {
        throw new Error(
          `lazy operands cost ${lazy.dispatches} dispatches, computed ones ${stored.dispatches}`,
        );
      }
      const ref = new Float64Array(MB * MM * MN);
      for (let z = 0; z < MB; z++) {
        for (let i = 0; i < MM; i++) {
          for (let j = 0; j < MN; j++) {
            let acc = 0;
            for (let q = 0; q < MK; q++) {
              const av = Math.tanh(mx[(z * MM + i) * MK + q]) * ms[i] + 0.25;
              acc += av * mw[j * MK + q] * md[j];
            }
            ref[(z * MM + i) * MN + j] = acc;
          }
        }
      }
      assertClose(lazy.y, ref, { rtol: 1e-5, atol: 1e-5, what: "forward vs float64" });
    },
  );
}

gpuTest(
  "storage-path matmul with lazy operands: first- and second-order gradients (finite differences)",
  async () => {
    const f = (x: Tensor, w: Tensor) =>
      matmulT(o.add(o.mul(o.tanh(x), 1.5), 0.1), o.mul(w, o.square(w)), true, false);
    await onPath("storage", () =>
      gradcheck(f, [
        { data: randArray(2 * 5 * 7, 25), shape: [2, 5, 7] },
        { data: randArray(2 * 5 * 3, 26), shape: [2, 5, 3] },
      ]));
  },
);

gpuTest(
  "storage-path matmul: trees that read more buffers than the adapter binds are refused clearly",
  () => {
    const rt = gpu();
    const limit = rt.device.limits.maxStorageBuffersPerShaderStage;
    const bufs = Array.from({ length: limit }, () => rt.alloc(64));
    const tree = {
      shape: [4, 4],
      operands: bufs.map((buffer) => ({ buffer, dtype: "f32" as const, strides: [4, 1], offset: 0 })),
      body: "",
      result: "in0",
      scalars: [],
      helpers: "",
    };
    const out = rt.alloc(64);
    try {
      gemmMatmul(tree, bufs[0], out, { batch: 1, m: 4, n: 4, k: 4 });
      throw new Error("no error");
    } catch (e) {
      if (!/more than this adapter binds/.test((e as Error).message)) throw e;
    } finally {
      for (const b of [...bufs, out]) rt.release(b);
    }
  },
);
