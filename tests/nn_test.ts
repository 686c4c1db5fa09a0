// Matmul, layers, optimisers and modules against float64 references; the leak test.

import { grad } from "../nn/autograd.ts";
import { manualSeed, randn, tensor } from "../nn/creation.ts";
import { Act, BatchNorm, Linear, oneHot, Sequential } from "../nn/layers.ts";
import { matmul, matmulT } from "../nn/linalg.ts";
import { Adam, SGD } from "../nn/optim.ts";
import { mean } from "../nn/reduce.ts";
import { square, sub } from "../nn/ops.ts";
import { scope } from "../nn/tensor.ts";
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
  const net = new Sequential([new Linear(2, 32), new BatchNorm(32), new Act("relu"), new Linear(32, 1)]);
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
