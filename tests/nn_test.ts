// Matmul, layers, optimisers and modules against float64 references; the leak test.

import { grad } from "../nn/autograd.ts";
import { batchNormTrain } from "../nn/batch_norm.ts";
import { manualSeed, randn, tensor } from "../nn/creation.ts";
import { Act, BatchNorm, Linear, oneHot, Sequential } from "../nn/layers.ts";
import { linear, matmul, matmulT } from "../nn/linalg.ts";
import { Adam, SGD } from "../nn/optim.ts";
import { mean } from "../nn/reduce.ts";
import { add, relu, square, sub } from "../nn/ops.ts";
import { scope, scopeAsync, type Tensor } from "../nn/tensor.ts";
import { gpu } from "../kernels/runtime.ts";
import { presetConfig } from "../gan/stylegan2/config.ts";
import { Discriminator } from "../gan/stylegan2/discriminator.ts";
import { Generator } from "../gan/stylegan2/generator.ts";
import { BatchSource } from "../gan/train/batches.ts";
import { lazyRegAdam } from "../gan/train/loss.ts";
import { trainingRecipe } from "../gan/train/presets.ts";
import { sgaIteration } from "../gan/train/step.ts";
import { gradcheck } from "./gradcheck.ts";
import { assertClose, gpuTest, randArray } from "./harness.ts";

function refMatmul(a: Float32Array, b: Float32Array, m: number, k: number, n: number): number[] {
  const out = new Array(m * n).fill(0);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let q = 0; q < k; q++) s += a[i * k + q] * b[q * n + j];
      out[i * n + j] = s;
    }
  }
  return out;
}

gpuTest("matmul op: values, batch broadcast, all transposes, first and second order gradients", async () => {
  const [m, k, n] = [13, 19, 11];
  const a = randArray(2 * m * k, 1), b = randArray(k * n, 2);
  const got = await matmul(tensor(a, [2, m, k]), tensor(b, [k, n])).data();
  const want = [...refMatmul(a.slice(0, m * k), b, m, k, n), ...refMatmul(a.slice(m * k), b, m, k, n)];
  assertClose(got, want, { rtol: 1e-5, atol: 1e-5 });
  for (const [ta, tb] of [[false, false], [false, true], [true, false], [true, true]]) {
    const sa = ta ? [2, 4, 3] : [2, 3, 4], sb = tb ? [5, 4] : [4, 5];
    await gradcheck((x, y) => square(matmulT(x, y, ta, tb)), [
      { data: randArray(24, 3), shape: sa },
      { data: randArray(20, 4), shape: sb },
    ]);
  }
});

gpuTest("Linear matches x W^T + b", async () => {
  manualSeed(3);
  const lin = new Linear(7, 5);
  const x = randArray(3 * 7, 5);
  const w = await lin.weight.data(), b = await lin.bias!.data();
  const want: number[] = [];
  for (let i = 0; i < 3; i++) {
    for (let o = 0; o < 5; o++) {
      let s = b[o];
      for (let q = 0; q < 7; q++) s += x[i * 7 + q] * w[o * 7 + q];
      want.push(s);
    }
  }
  assertClose(await lin.forward(tensor(x, [3, 7])).data(), want, { rtol: 1e-5, atol: 1e-6 });
  if (Math.max(...w.map(Math.abs)) > 1 / Math.sqrt(7)) throw new Error("init bound exceeded");
  lin.dispose();
});

gpuTest("BatchNorm: training normalises and tracks running stats; eval uses them; gradients", async () => {
  const bn = new BatchNorm(3);
  const x = randArray(4 * 3 * 2 * 2, 6, -2, 3);
  const y = await bn.forward(tensor(x, [4, 3, 2, 2])).data();
  for (let c = 0; c < 3; c++) {
    const vals: number[] = [], outs: number[] = [];
    for (let n = 0; n < 4; n++) {
      for (let p = 0; p < 4; p++) {
        vals.push(x[(n * 3 + c) * 4 + p]);
        outs.push(y[(n * 3 + c) * 4 + p]);
      }
    }
    const mu = vals.reduce((a, b) => a + b) / vals.length;
    const v = vals.reduce((a, b) => a + (b - mu) ** 2, 0) / vals.length;
    assertClose(outs, vals.map((q) => (q - mu) / Math.sqrt(v + 1e-5)), { rtol: 1e-4, atol: 1e-5 });
    const rm = (await bn.stateDict().get("running_mean")!.data())[c];
    const rv = (await bn.stateDict().get("running_var")!.data())[c];
    assertClose([rm, rv], [0.1 * mu, 0.9 + 0.1 * v * 16 / 15], { rtol: 1e-4 });
  }
  bn.eval();
  const ye = await bn.forward(tensor(x, [4, 3, 2, 2])).data();
  const rm = await bn.stateDict().get("running_mean")!.data();
  const rv = await bn.stateDict().get("running_var")!.data();
  assertClose([ye[0]], [(x[0] - rm[0]) / Math.sqrt(rv[0] + 1e-5)], { rtol: 1e-5 });
  bn.train();
  await gradcheck((t) => square(bn.forward(t)), [{ data: randArray(5 * 3, 7), shape: [5, 3] }]);
  bn.dispose();
});

gpuTest(
  "linear: bias and ReLU in the GEMM epilogue match float64, take one dispatch, and gradcheck to second order",
  async () => {
    // 37 x 13 -> 11: no extent a multiple of the tile or of 4.
    const n = 37, k = 13, m = 11;
    const xs = randArray(n * k, 21),
      ws = randArray(m * k, 22),
      bs = randArray(m, 23),
      gs = randArray(n * m, 24);
    const z = new Float64Array(n * m);
    for (let i = 0; i < n; i++) {
      for (let o = 0; o < m; o++) {
        let s = bs[o];
        for (let q = 0; q < k; q++) s += xs[i * k + q] * ws[o * k + q];
        z[i * m + o] = s;
      }
    }
    const gz = gs.map((g, i) => (z[i] > 0 ? g : 0));
    const dx = new Float64Array(n * k), dw = new Float64Array(m * k), db = new Float64Array(m);
    for (let i = 0; i < n; i++) {
      for (let o = 0; o < m; o++) {
        db[o] += gz[i * m + o];
        for (let q = 0; q < k; q++) {
          dx[i * k + q] += gz[i * m + o] * ws[o * k + q];
          dw[o * k + q] += gz[i * m + o] * xs[i * k + q];
        }
      }
    }
    const rt = gpu();
    const got = await scopeAsync(async () => {
      const x = tensor(xs, [n, k]), w = tensor(ws, [m, k]), b = tensor(bs);
      for (const t of [x, w, b]) t.requiresGrad = true;
      await rt.sync();
      const d0 = rt.totalDispatches;
      const y = linear(x, w, b, "relu");
      const forward = rt.totalDispatches - d0;
      const g = grad(y, [x, w, b], { gradOutputs: [tensor(gs, [n, m])] });
      return { forward, values: await Promise.all([y, ...g].map((t) => t.data())) };
    });
    if (got.forward !== 1) throw new Error(`linear + relu took ${got.forward} dispatches, want 1`);
    const [y, gx, gw, gb] = got.values;
    assertClose(y, z.map((v) => Math.max(v, 0)), { rtol: 1e-5, atol: 1e-5 });
    assertClose(gx, dx, { rtol: 1e-5, atol: 1e-5 });
    assertClose(gw, dw, { rtol: 1e-5, atol: 1e-5 });
    assertClose(gb, db, { rtol: 1e-5, atol: 1e-5 });
    // Second order: through the weights (x enters bilinearly with W) and with no activation.
    for (const act of ["relu", "linear"] as const) {
      await gradcheck((x, w, b) => square(linear(x, w, b, act)), [
        { data: randArray(5 * 3, 25), shape: [5, 3] },
        { data: randArray(4 * 3, 26), shape: [4, 3] },
        { data: randArray(4, 27), shape: [4] },
      ]);
    }
    // Sequential runs a Linear and the ReLU after it as this op: same values as the layers one by one.
    manualSeed(4);
    const seq = new Sequential([new Linear(13, 9), new Act("relu"), new Linear(9, 2)]);
    const [fusedOut, separate] = await scopeAsync(async () => {
      const x = tensor(xs, [n, k]);
      const l0 = seq.layers[0] as Linear, l2 = seq.layers[2] as Linear;
      const plain = l2.forward(relu(add(matmulT(x, l0.weight, false, true), l0.bias!)));
      await rt.sync();
      const d0 = rt.totalDispatches;
      const fused = seq.forward(x);
      const d = rt.totalDispatches - d0;
      if (d !== 2) throw new Error(`Sequential(Linear, ReLU, Linear) took ${d} dispatches, want 2`);
      return await Promise.all([fused.data(), plain.data()]);
    });
    assertClose(fusedOut, separate, { rtol: 0, atol: 0 });
    seq.dispose();
  },
);

gpuTest(
  "Sequential updates the running statistics of all its BatchNorm layers in one dispatch, as the layers would",
  async () => {
    const rt = gpu();
    const xs = randArray(9 * 4, 30, -1, 2);
    const build = () => {
      manualSeed(5);
      return new Sequential([new BatchNorm(4), new Linear(4, 6), new BatchNorm(6), new Act("relu")]);
    };
    const seq = build(), alone = build();
    const outs = await scopeAsync(async () => {
      const x = tensor(xs, [9, 4]);
      await rt.sync();
      rt.dispatchCounts = new Map();
      const y = seq.forward(x);
      const updates = rt.dispatchCounts.get("axpby-into");
      rt.dispatchCounts = null;
      if (updates !== 1) throw new Error(`running statistics took ${updates} dispatches, want 1`);
      let z = x;
      for (const l of alone.layers) z = l.forward(z);
      return await Promise.all([y.data(), z.data()]);
    });
    assertClose(outs[0], outs[1], { rtol: 0, atol: 0 });
    for (const name of ["0.running_mean", "0.running_var", "2.running_mean", "2.running_var"]) {
      const a = await seq.stateDict().get(name)!.data(), b = await alone.stateDict().get(name)!.data();
      assertClose(a, b, { rtol: 0, atol: 0 });
      if (name.endsWith("var") && a.every((v) => v === 1)) throw new Error(`${name} was not updated`);
    }
    seq.dispose();
    alone.dispose();
  },
);

gpuTest("grad runs only the backward work that reaches the requested inputs", async () => {
  const rt = gpu();
  manualSeed(6);
  const l1 = new Linear(8, 16), l2 = new Linear(16, 4);
  const count = async (f: () => Tensor[]) => {
    return await scopeAsync(async () => {
      await rt.sync();
      const d0 = rt.totalDispatches;
      const gs = f();
      const d = rt.totalDispatches - d0;
      return { d, values: await Promise.all(gs.map((g) => g.data())) };
    });
  };
  const xs = randArray(5 * 8, 31);
  const input = () => {
    const x = tensor(xs, [5, 8]);
    x.requiresGrad = true;
    return x;
  };
  const lossOf = (x: Tensor) => mean(square(l2.forward(l1.forwardAct(x, "relu"))));
  // d/dx alone: no weight-gradient GEMMs, no bias reductions; the same dx as when everything is asked for.
  const onlyX = await count(() => {
    const x = input();
    return grad(lossOf(x), [x]);
  });
  const all = await count(() => {
    const x = input();
    return grad(lossOf(x), [x, l1.weight, l1.bias!, l2.weight, l2.bias!]);
  });
  assertClose(onlyX.values[0], all.values[0], { rtol: 0, atol: 0 });
  // Each layer's dW GEMM and db reduction (4 dispatches) are skipped.
  if (all.d - onlyX.d !== 4) {
    throw new Error(`asking for x alone saved ${all.d - onlyX.d} dispatches, want 4`);
  }
  // The gradient of an intermediate stops there: nothing upstream of h runs.
  const atH = await count(() => {
    const h = l1.forwardAct(input(), "relu");
    return grad(mean(square(l2.forward(h))), [h]);
  });
  const belowH = await count(() => {
    const h = l1.forwardAct(input(), "relu");
    return grad(mean(square(l2.forward(h))), [h, l1.weight]);
  });
  if (belowH.d <= atH.d) throw new Error(`a gradient below h took ${belowH.d} dispatches, at h ${atH.d}`);
  assertClose(atH.values[0], belowH.values[0], { rtol: 0, atol: 0 });
  l1.dispose();
  l2.dispose();
});

/** float64 training-mode BatchNorm over [n, c, p] (p pixels per channel): y and the three gradients for dy. */
function refBatchNorm(
  x: Float32Array,
  w: Float32Array,
  b: Float32Array,
  dy: Float32Array,
  n: number,
  p: number,
) {
  const c = w.length, cnt = n * p, eps = 1e-5;
  const y = new Float64Array(x.length), dx = new Float64Array(x.length);
  const dw = new Float64Array(c), db = new Float64Array(c);
  for (let ch = 0; ch < c; ch++) {
    const idx: number[] = [];
    for (let i = 0; i < n; i++) for (let q = 0; q < p; q++) idx.push((i * c + ch) * p + q);
    const mu = idx.reduce((a, i) => a + x[i], 0) / cnt;
    const v = idx.reduce((a, i) => a + (x[i] - mu) ** 2, 0) / cnt;
    const is = 1 / Math.sqrt(v + eps);
    for (const i of idx) {
      y[i] = (x[i] - mu) * is * w[ch] + b[ch];
      db[ch] += dy[i];
      dw[ch] += dy[i] * (x[i] - mu) * is;
    }
    for (const i of idx) {
      dx[i] = w[ch] * is * (dy[i] - db[ch] / cnt - (x[i] - mu) * is * dw[ch] / cnt);
    }
  }
  return { y, dx, dw, db };
}

gpuTest(
  "batchNormTrain: output and the x, weight, bias gradients match float64; gradchecks to second order",
  async () => {
    for (const [shape, p] of [[[5, 3], 1], [[4, 3, 2, 3], 6]] as const) {
      const n = shape[0], c = shape[1], size = shape.reduce((a, d) => a * d, 1);
      const xs = randArray(size, 11, -2, 3), ws = randArray(c, 12, 0.5, 1.5), bs = randArray(c, 13);
      const dys = randArray(size, 14);
      const want = refBatchNorm(xs, ws, bs, dys, n, p);
      const [y, dx, dw, db] = await scopeAsync(async () => {
        const x = tensor(xs, [...shape]), w = tensor(ws), b = tensor(bs);
        for (const t of [x, w, b]) t.requiresGrad = true;
        const r = batchNormTrain(x, w, b, 1e-5);
        const gs = grad(r.y, [x, w, b], { gradOutputs: [tensor(dys, [...shape])] });
        return await Promise.all([r.y, ...gs].map((t) => t.data()));
      });
      assertClose(y, want.y, { rtol: 1e-4, atol: 1e-5 });
      assertClose(dx, want.dx, { rtol: 1e-4, atol: 1e-5 });
      assertClose(dw, want.dw, { rtol: 1e-4, atol: 1e-5 });
      assertClose(db, want.db, { rtol: 1e-4, atol: 1e-5 });
    }
    await gradcheck((x, w, b) => square(batchNormTrain(x, w, b, 1e-5).y), [
      { data: randArray(5 * 3 * 2, 15, -2, 3), shape: [5, 3, 2] },
      { data: randArray(3, 16, 0.5, 1.5), shape: [3] },
      { data: randArray(3, 17), shape: [3] },
    ]);
    // Both statistics in one dispatch (columnMoments), and nothing else before y is used.
    const rt = gpu();
    await scopeAsync(async () => {
      const x = tensor(randArray(64 * 32, 18), [64, 32]),
        w = tensor(randArray(32, 19)),
        b = tensor(randArray(32, 20));
      await rt.sync();
      const d0 = rt.totalDispatches;
      batchNormTrain(x, w, b, 1e-5);
      if (rt.totalDispatches - d0 !== 1) {
        throw new Error(`forward took ${rt.totalDispatches - d0} dispatches, want 1`);
      }
    });
  },
);

gpuTest("Adam matches a float64 reference over several steps", async () => {
  const p0 = randArray(37, 8), lr = 0.01, [b1, b2] = [0.5, 0.99], eps = 1e-8;
  const p = tensor(p0);
  p.requiresGrad = true;
  const opt = new Adam([p], { lr, betas: [b1, b2], eps });
  const ref = Float64Array.from(p0), m = new Float64Array(37), v = new Float64Array(37);
  for (let t = 1; t <= 4; t++) {
    const g = randArray(37, 100 + t);
    opt.update([tensor(g)]);
    for (let i = 0; i < 37; i++) {
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      ref[i] -= lr * (m[i] / (1 - b1 ** t)) / (Math.sqrt(v[i] / (1 - b2 ** t)) + eps);
    }
  }
  assertClose(await p.data(), ref, { rtol: 1e-5, atol: 1e-6 });
  const sgdP = tensor([1, 2]);
  new SGD([sgdP], 0.5).update([tensor([2, -2])]);
  assertClose(await sgdP.data(), [0, 3]);
});

gpuTest("oneHot and module state dicts", async () => {
  assertClose(await oneHot(tensor([2, 0], [2], "i32"), 3).data(), [0, 0, 1, 1, 0, 0]);
  const net = new Sequential([new Linear(2, 3), new Act("relu"), new Linear(3, 1)]);
  const names = net.namedParameters().map(([n]) => n);
  if (names.join() !== "0.weight,0.bias,2.weight,2.bias") throw new Error(`names ${names}`);
  const other = new Sequential([new Linear(2, 3), new Act("relu"), new Linear(3, 1)]);
  other.loadStateDict(net.stateDict());
  assertClose(await other.stateDict().get("2.weight")!.data(), await net.stateDict().get("2.weight")!.data());
  let msg = "";
  try {
    new Sequential([new Linear(2, 4)]).loadStateDict(net.stateDict());
  } catch (e) {
    msg = (e as Error).message;
  }
  if (!/state dict mismatch/.test(msg)) throw new Error(`expected mismatch error, got ${msg}`);
});

gpuTest("leak test: 300 MLP training steps keep live buffers, bytes and the pool flat", async () => {
  manualSeed(0);
  // BatchNorm (one op, its statistics in one dispatch) and a Linear+ReLU pair (one GEMM with an epilogue).
  const net = new Sequential([
    new Linear(2, 32),
    new BatchNorm(32),
    new Act("relu"),
    new Linear(32, 32),
    new Act("relu"),
    new Linear(32, 1),
  ]);
  const opt = new Adam(net.parameters(), { lr: 1e-2 });
  const rt = gpu();
  let first: number[] = [];
  let firstLoss = 0, lastLoss = 0;
  for (let step = 0; step < 300; step++) {
    const loss = scope(() => {
      const x = randn([64, 2]);
      const target = mean(square(x), 1, true);
      const l = mean(square(sub(net.forward(x), target)));
      opt.update(grad(l, net.parameters()));
      return l;
    });
    if (step === 0) firstLoss = await loss.item();
    if (step === 299) lastLoss = await loss.item();
    loss.dispose();
    rt.flush(); // training loops submit at the end of each step, so the pool's demand repeats exactly
    if (step === 10) {
      await rt.sync();
      first = [rt.liveBuffers, rt.liveBytes, rt.createdBuffers];
    }
  }
  await rt.sync();
  const last = [rt.liveBuffers, rt.liveBytes, rt.createdBuffers];
  if (last.join() !== first.join()) {
    throw new Error(`memory grew: [buffers, bytes, created] ${first} -> ${last}`);
  }
  if (!(lastLoss < 0.5 * firstLoss)) {
    throw new Error(`training did not progress: ${firstLoss} -> ${lastLoss}`);
  }
});

gpuTest(
  "leak test: 300 StyleGAN2 SGA iterations (fused kernels, R1, path length) keep memory and the kernel cache flat",
  async () => {
    // A small tiny16 (channels 16) at batch 4: the loop's own iteration with its lazy regularisers
    // (path length every 4 steps, R1 every 16), so the fused graphs of both run, repeated 300 times.
    const cfg = presetConfig("tiny16", { channelBase: 128, channelMax: 16 });
    const batch = 4;
    manualSeed(0);
    const recipe = trainingRecipe("tiny16", { batch });
    const G = Generator.fromConfig(cfg), D = Discriminator.fromConfig(cfg), Gema = Generator.fromConfig(cfg);
    const gParams = G.parameters(), dParams = D.parameters();
    const optG = new Adam(gParams, {
      ...lazyRegAdam(recipe.gLr, recipe.betas, recipe.plInterval),
      eps: recipe.eps,
    });
    const optD = new Adam(dParams, {
      ...lazyRegAdam(recipe.dLr, recipe.betas, recipe.r1Interval),
      eps: recipe.eps,
    });
    const real = randn([batch, cfg.imgChannels, 16, 16]);
    const plMean = tensor([0]);
    const batches = new BatchSource({
      realBatch: () => ({ images: real, labels: null }),
      batch,
      seed: 0,
      resolution: 16,
      channels: cfg.imgChannels,
      cDim: cfg.cDim,
    });
    const parts = { G, D, Gema, optG, optD, gParams, dParams, recipe, plMean, seed: 0, batches };
    const rt = gpu();
    const pipelines = () => (rt as unknown as { pipelines: Map<string, unknown> }).pipelines.size;
    let first: number[] = [];
    let loss = 0;
    for (let step = 0; step < 300; step++) {
      const out = scope(() => sgaIteration(parts, step, step * batch));
      if (step === 15 || step === 299) loss = await out[0][1].item(); // reads compile their kernels early
      for (const [, t] of out) t.dispose();
      rt.flush();
      // Both lazy regularisers repeat every 16 steps: compare the same point of that cycle.
      if (step === 47) {
        await rt.sync();
        first = [rt.liveBuffers, rt.liveBytes, rt.createdBuffers, pipelines()];
      }
    }
    await rt.sync();
    const last = [rt.liveBuffers, rt.liveBytes, rt.createdBuffers, pipelines()];
    real.dispose();
    plMean.dispose();
    for (const t of [...optG.m, ...optG.v, ...optD.m, ...optD.v]) t.dispose();
    G.dispose();
    D.dispose();
    Gema.dispose();
    if (!Number.isFinite(loss)) throw new Error(`training diverged: ${loss}`);
    if (last.join() !== first.join()) {
      throw new Error(
        `memory or kernel cache grew: [buffers, bytes, created, pipelines] ${first} -> ${last}`,
      );
    }
  },
);
