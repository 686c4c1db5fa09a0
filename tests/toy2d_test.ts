// The 2-D study: distributions (host and GPU samplers against closed-form moments), recall and gradient
// similarity on cases with known answers, the fused trainer's gradients against engine autograd, and a
// short fine-tune from a source that lowers W1.

import { gpuTest } from "./harness.ts";
import { grad, noGrad } from "../nn/autograd.ts";
import { manualSeed, tensor, zeros } from "../nn/creation.ts";
import { add, neg, softplus } from "../nn/ops.ts";
import { mean } from "../nn/reduce.ts";
import type { Tensor } from "../nn/tensor.ts";
import {
  grid,
  type Mixture,
  mixtureMoments,
  normalGenerator,
  ringCentres,
  sampleMixture,
  sampleMoments,
  SOURCE1_RADIAL_SIGMA,
  sourceI,
  sourceII,
  sourceIMixture,
  spiral,
  targetRing,
} from "../gan/toy2d/distributions.ts";
import { gradientSimilarity, gradSimilarityOfField, pearson, recall2d } from "../gan/toy2d/measures.ts";
import { ToyDiscriminator, ToyGenerator } from "../gan/toy2d/models.ts";
import { FastToyGan } from "../gan/toy2d/fast_gan.ts";
import {
  type EvalPoint,
  freshTrainer,
  makeTrainer,
  PROTOCOL,
  runScores,
  trainRun,
} from "../gan/toy2d/train.ts";
import { Canvas } from "../gan/toy2d/plot.ts";
import { profileToy2d } from "../gan/toy2d/profile.ts";
import { EngineToyGan } from "../gan/toy2d/engine_trainer.ts";

function assert(cond: boolean, msg: string): void {
  if (!cond) throw new Error(msg);
}

function assertAlmostEquals(got: number, want: number, tol: number, what = "value"): void {
  if (!(Math.abs(got - want) <= tol)) throw new Error(`${what}: got ${got}, expected ${want} +- ${tol}`);
}

const MIXTURES: Mixture[] = [targetRing(), sourceI(), sourceIMixture(), sourceII(), grid(), spiral()];

/**
 * Source I is the wide ring of REFERENCE.md 7: radius ~ N(20, 4^2), angle uniform and independent of it.
 * Checks the radial mean and variance, the first two angular harmonics (0 for a uniform angle), the
 * radius-angle independence (radius mean per angular quarter), and that nothing sits near the origin.
 */
function checkWideRing(xy: ArrayLike<number>, what: string): void {
  const n = xy.length / 2, sr = SOURCE1_RADIAL_SIGMA;
  let mr = 0, mr2 = 0, c1 = 0, s1 = 0, c2 = 0, s2 = 0, near = 0;
  const quarter = [0, 0, 0, 0], count = [0, 0, 0, 0];
  for (let i = 0; i < n; i++) {
    const x = xy[2 * i], y = xy[2 * i + 1], r = Math.hypot(x, y), t = Math.atan2(y, x);
    mr += r / n;
    mr2 += r * r / n;
    c1 += Math.cos(t) / n;
    s1 += Math.sin(t) / n;
    c2 += Math.cos(2 * t) / n;
    s2 += Math.sin(2 * t) / n;
    const q = Math.min(3, Math.floor(((t + Math.PI) / (2 * Math.PI)) * 4));
    quarter[q] += r;
    count[q]++;
    if (r < 4) near++; // 4 sigma below the mean radius: expected count ~0.6 per 20000
  }
  const se = sr / Math.sqrt(n);
  assertAlmostEquals(mr, 20, 5 * se, `${what} mean radius`);
  assertAlmostEquals(mr2 - mr * mr, sr * sr, 0.05 * sr * sr, `${what} radial variance`);
  for (const [h, v] of [["cos t", c1], ["sin t", s1], ["cos 2t", c2], ["sin 2t", s2]] as const) {
    assertAlmostEquals(v, 0, 5 / Math.sqrt(2 * n), `${what} E[${h}]`);
  }
  quarter.forEach((v, q) =>
    assertAlmostEquals(v / count[q], 20, 5 * sr / Math.sqrt(count[q]), `${what} q${q}`)
  );
  assert(near <= 5, `${what}: ${near} samples within radius 4 of the origin`);
}

/** Sample moments within a few standard errors of the exact ones (loose on the covariance). */
function checkMoments(m: Mixture, xy: ArrayLike<number>, what: string): void {
  const n = xy.length / 2;
  const exact = mixtureMoments(m), got = sampleMoments(xy);
  const sd = Math.sqrt(Math.max(exact.cov[0], exact.cov[2]));
  for (let i = 0; i < 2; i++) {
    assertAlmostEquals(
      got.mean[i],
      exact.mean[i],
      5 * sd / Math.sqrt(n) + 1e-9,
      `${what} ${m.name} mean[${i}]`,
    );
  }
  for (let i = 0; i < 3; i++) {
    assertAlmostEquals(got.cov[i], exact.cov[i], 0.05 * sd * sd + 1e-9, `${what} ${m.name} cov[${i}]`);
  }
}

Deno.test("toy2d: host samplers match the exact moments", () => {
  for (const m of MIXTURES) checkMoments(m, sampleMixture(m, 20000, 11), "host");
  checkWideRing(sampleMixture(sourceI(), 20000, 12), "host source I");
  // The old mixture reading puts half of its mass in N(0, 4^2 I) at the origin: not the study's source I.
  const mix = sampleMixture(sourceIMixture(), 4000, 13);
  let near = 0;
  for (let i = 0; i < 4000; i++) if (Math.hypot(mix[2 * i], mix[2 * i + 1]) < 8) near++;
  assert(near > 1500, `mixture source I: ${near} of 4000 near the origin`);
  // Target specifics: radius 20, ten modes, sigma 0.25 around the nearest centre.
  const c = ringCentres();
  assertAlmostEquals(Math.hypot(...c[3]), 20, 1e-12);
  const xy = sampleMixture(targetRing(), 4000, 3);
  let s2 = 0;
  for (let i = 0; i < 4000; i++) {
    const d2 = c.map(([x, y]) => (xy[2 * i] - x) ** 2 + (xy[2 * i + 1] - y) ** 2);
    s2 += Math.min(...d2) / 2 / 4000;
  }
  assertAlmostEquals(Math.sqrt(s2), 0.25, 0.01, "target sigma");
});

gpuTest("toy2d: the GPU sampler matches the exact moments", async () => {
  for (const m of MIXTURES) {
    const t = new FastToyGan({ data: m, seed: 5, batch: 8 });
    try {
      const xy = await t.sampleData(20000);
      checkMoments(m, xy, "gpu");
      if (m.name === "sourceI") checkWideRing(xy, "gpu source I");
    } finally {
      t.dispose();
    }
  }
});

Deno.test("toy2d: recall on known cases", () => {
  const target = sampleMixture(targetRing(), 1000, 1);
  const same = recall2d(target, sampleMixture(targetRing(), 1000, 2), 5);
  assert(
    same.recall > 0.9 && same.precision > 0.9,
    `same distribution: recall ${same.recall}, precision ${same.precision}`,
  );
  // Source II covers 3 of the 10 modes (sigma 0.5 > 0.25, so those modes are covered entirely).
  const three = recall2d(target, sampleMixture(sourceII(), 1000, 3), 5);
  assert(three.recall > 0.22 && three.recall < 0.38, `3 of 10 modes: recall ${three.recall}`);
  const far = sampleMixture(targetRing(), 1000, 4).map((v) => v + 100);
  assertAlmostEquals(recall2d(target, far, 5).recall, 0, 0, "disjoint sets");
});

/** A discriminator that computes D(x) = a . x exactly (ReLU pairs pass x and -x through every layer). */
function linearDiscriminator(a: [number, number]): ToyDiscriminator {
  const d = new ToyDiscriminator();
  const state = new Map<string, Tensor>();
  for (const [name, t] of d.stateDict()) state.set(name, zeros(t.shape));
  const w1 = new Float32Array(64 * 2);
  w1.set([1, 0, -1, 0, 0, 1, 0, -1]); // rows: x, -x, y, -y
  state.set("net.0.weight", tensor(w1, [64, 2]));
  for (
    const [name, o, i] of [["net.2.weight", 128, 64], ["net.4.weight", 128, 128], [
      "net.6.weight",
      64,
      128,
    ]] as const
  ) {
    const w = new Float32Array(o * i);
    for (let k = 0; k < 4; k++) w[k * i + k] = 1;
    state.set(name, tensor(w, [o, i]));
  }
  const w5 = new Float32Array(64);
  w5.set([a[0], -a[0], a[1], -a[1]]);
  state.set("net.8.weight", tensor(w5, [1, 64]));
  d.loadStateDict(state);
  for (const t of state.values()) t.dispose();
  return d;
}

Deno.test("toy2d: gradient similarity (ascent convention) is -1 for a field to the nearest centre, +1 away", () => {
  const centres = ringCentres();
  const xy = sampleMixture(sourceI(), 500, 17);
  // Descent field of the generator loss pointing every sample at its nearest centre: grad L_G = x - c(x).
  const descentToCentre = new Float64Array(xy.length);
  for (let i = 0; i < 500; i++) {
    let best = Infinity;
    for (const [cx, cy] of centres) {
      const d = (xy[2 * i] - cx) ** 2 + (xy[2 * i + 1] - cy) ** 2;
      if (d < best) {
        best = d;
        descentToCentre[2 * i] = 3 * (xy[2 * i] - cx); // any positive scale
        descentToCentre[2 * i + 1] = 3 * (xy[2 * i + 1] - cy);
      }
    }
  }
  const toward = gradSimilarityOfField(xy, descentToCentre, centres);
  assertAlmostEquals(toward.mean, -1, 1e-12, "descent field to the nearest centre");
  assert(toward.zeroGradient === 0, "no zero gradients");
  const away = gradSimilarityOfField(xy, descentToCentre.map((v) => -v), centres);
  assertAlmostEquals(away.mean, 1, 1e-12, "the opposite field");
  // Zero-gradient samples are left out of the mean (not counted as 0) and reported.
  const some = descentToCentre.slice();
  some.fill(0, 0, 200);
  const partial = gradSimilarityOfField(xy, some, centres);
  assertAlmostEquals(partial.mean, -1, 1e-12, "mean over non-zero gradients");
  assert(partial.zeroGradient === 100, `zeroGradient ${partial.zeroGradient}`);
});

Deno.test("toy2d: the headline score includes step 0 (a run that only gets worse scores its start)", () => {
  const worse: EvalPoint[] = [0, 250, 500, 750].map((step, i) => ({ step, w1: 2 + i, w1Ema: 2.5 + i }));
  const s = runScores(worse);
  assertAlmostEquals(s.headline, 2, 0, "headline");
  assert(s.headlineStep === 0, `headline step ${s.headlineStep}`);
  assertAlmostEquals(s.finalRaw, 5, 0, "final raw");
  assertAlmostEquals(s.finalEma, 5.5, 0, "final EMA");
  assertAlmostEquals(s.bestAfter0Raw, 3, 0, "best raw after step 0");
  assertAlmostEquals(s.bestAfter0Ema, 3.5, 0, "best EMA after step 0");
  // A run that improves then degrades: the headline is its best evaluation, raw G only.
  const dip = runScores([
    { step: 0, w1: 9, w1Ema: 9 },
    { step: 250, w1: 1, w1Ema: 0.5 },
    { step: 500, w1: 4, w1Ema: 3 },
  ]);
  assert(dip.headline === 1 && dip.headlineStep === 250 && dip.finalRaw === 4, JSON.stringify(dip));
  // Without the step-0 evaluation there is no headline score.
  assert(Number.isNaN(runScores(worse.slice(1)).headline), "headline needs step 0");
});

gpuTest("toy2d: gradient similarity of a discriminator on known answers (-1, +1, 0)", async () => {
  const centres = ringCentres();
  const a: [number, number] = [0.6, 0.8]; // dD/dx; grad_x softplus(-D) is -sigmoid(-D) a, descent +a
  const d = linearDiscriminator(a);
  try {
    // Samples 0.5 before each centre along a: the descent direction points exactly at the centre.
    const toward = new Float32Array(centres.flatMap(([x, y]) => [x - 0.5 * a[0], y - 0.5 * a[1]]));
    const away = new Float32Array(centres.flatMap(([x, y]) => [x + 0.5 * a[0], y + 0.5 * a[1]]));
    const side = new Float32Array(centres.flatMap(([x, y]) => [x + 0.5 * a[1], y - 0.5 * a[0]]));
    assertAlmostEquals((await gradientSimilarity(d, toward, centres)).mean, -1, 1e-5, "toward");
    assertAlmostEquals((await gradientSimilarity(d, away, centres)).mean, 1, 1e-5, "away");
    assertAlmostEquals((await gradientSimilarity(d, side, centres)).mean, 0, 1e-5, "perpendicular");
  } finally {
    d.dispose();
  }
  assertAlmostEquals(pearson([1, 2, 3], [2, 4, 6.5]), 0.9986, 1e-3, "pearson");
});

gpuTest("toy2d: fused trainer gradients equal engine autograd (D step and G step)", async () => {
  manualSeed(3);
  const g = new ToyGenerator(), d = new ToyDiscriminator();
  const B = 8; // small batch: the autograd reference is slow on the CPU adapter
  const t = makeTrainer(targetRing(), 1, { ...PROTOCOL, batch: B });
  try {
    await t.load(g.stateDict(), d.stateDict());
    const ng = normalGenerator(5);
    const z = new Float32Array(B * 64).map(() => ng.normal());
    const real = Float32Array.from(sampleMixture(targetRing(), B, 7));
    const fast = await t.debugGradients(z, real);
    const zt = tensor(z, [B, 64]), rt = tensor(real, [B, 2]);
    const fake = noGrad(() => g.forward(zt));
    const lossD = add(mean(softplus(neg(d.forward(rt)))), mean(softplus(d.forward(fake))));
    assertAlmostEquals(fast.lossD, await lossD.item(), 1e-5, "D loss");
    const check = async (
      params: [string, Tensor][],
      got: Map<string, Float32Array>,
      loss: Tensor,
      what: string,
    ) => {
      const gs = grad(loss, params.map(([, p]) => p));
      for (let i = 0; i < params.length; i++) {
        const ref = await gs[i].data(), mine = got.get(params[i][0])!;
        const scale = Math.max(1e-6, ...Array.from(ref, Math.abs));
        for (let j = 0; j < ref.length; j++) {
          assertAlmostEquals(mine[j], ref[j], 1e-4 * scale + 1e-9, `${what} ${params[i][0]}[${j}]`);
        }
      }
    };
    await check(d.namedParameters(), fast.gradD, lossD, "D step");
    const lossG = mean(softplus(neg(d.forward(g.forward(zt)))));
    assertAlmostEquals(fast.lossG, await lossG.item(), 1e-5, "G loss");
    await check(g.namedParameters(), fast.gradG, lossG, "G step");
  } finally {
    t.dispose();
    g.dispose();
    d.dispose();
  }
});

gpuTest("toy2d: the fused Adam and EMA updates take PyTorch's first Adam step", async () => {
  const cfg = { ...PROTOCOL, batch: 8, dSteps: 1 };
  const t = await freshTrainer(targetRing(), 4, cfg);
  try {
    const before = { g: await t.generatorState(), d: await t.discriminatorState() };
    t.iterate(1);
    const after = { g: await t.generatorState(), d: await t.discriminatorState(), ema: await t.emaState() };
    const grads = await t.lastGradients();
    const lr = cfg.lr, eps = 1e-8;
    for (
      const [net, names] of [["d", [...before.d.keys()]], [
        "g",
        t.gLayout.slots.map((s) => s.name),
      ]] as const
    ) {
      for (const name of names) {
        const p0 = await before[net].get(name)!.data(), p1 = await after[net].get(name)!.data();
        const g = (net === "d" ? grads.d : grads.g).get(name)!;
        for (let i = 0; i < p0.length; i++) {
          const want = -lr * g[i] / (Math.abs(g[i]) + eps); // first step: m_hat = g, v_hat = g^2
          assertAlmostEquals(p1[i] - p0[i], want, 1e-3 * lr + 3e-8, `${net} ${name}[${i}] Adam step`);
        }
        if (net === "g") {
          const e1 = await after.ema.get(name)!.data();
          for (let i = 0; i < p0.length; i++) {
            assertAlmostEquals(e1[i], 0.99 * p0[i] + 0.01 * p1[i], 1e-6, `EMA ${name}[${i}]`);
          }
        }
      }
    }
    // The EMA covers the BatchNorm running statistics too (one step from a fresh EMA = copy of G).
    for (const l of t.gLayers) {
      if (!l.bn) continue;
      for (const b of ["running_mean", "running_var"]) {
        const name = `${l.bn}.${b}`;
        const r0 = await before.g.get(name)!.data(), r1 = await after.g.get(name)!.data();
        const e1 = await after.ema.get(name)!.data();
        assert(r0.some((v, i) => v !== r1[i]), `${name} changed during the step`);
        for (let i = 0; i < r0.length; i++) {
          assertAlmostEquals(e1[i], 0.99 * r0[i] + 0.01 * r1[i], 1e-6, `EMA ${name}[${i}]`);
        }
      }
    }
    for (const m of [before.g, before.d, after.g, after.d, after.ema]) {
      for (const v of m.values()) v.dispose();
    }
  } finally {
    t.dispose();
  }
});

gpuTest(
  "toy2d: evaluation samples use BatchNorm in eval mode (running statistics, no batch coupling)",
  async () => {
    const t = await freshTrainer(targetRing(), 6, { ...PROTOCOL, batch: 8, dSteps: 1 });
    try {
      t.iterate(3); // running statistics move away from (0, 1)
      // The same key gives the same leading latents at any n: in eval mode each sample depends on its own
      // latent only; on batch statistics it depends on the whole batch.
      for (const which of ["live", "ema"] as const) {
        const small = await t.sample(4, which, 9, "running"), big = await t.sample(64, which, 9, "running");
        for (let i = 0; i < 8; i++) assertAlmostEquals(small[i], big[i], 1e-5, `${which} eval mode [${i}]`);
        const sb = await t.sample(4, which, 9, "batch"), bb = await t.sample(64, which, 9, "batch");
        assert(sb.some((v, i) => Math.abs(v - bb[i]) > 1e-3), `${which}: batch statistics should couple`);
      }
    } finally {
      t.dispose();
    }
  },
);

gpuTest("toy2d: a short fine-tune from a source lowers W1 to the target", async () => {
  // Protocol settings except batch 8 (test time; every trainer test shares the compiled kernels) and
  // lr 2e-3: the generator starts as a blob near the origin (W1 ~ 19 to the radius-20 ring) and its
  // scale grows about linearly in lr x steps, so 100 steps at 2e-3 move W1 well beyond evaluation noise.
  const cfg = { ...PROTOCOL, batch: 8, lr: 2e-3 };
  const evalTarget = sampleMixture(targetRing(), 512, 21);
  const src = await freshTrainer(sourceII(), 2, cfg);
  try {
    src.iterate(40);
    const [gs, ds] = [await src.generatorState(), await src.discriminatorState()];
    const t = makeTrainer(targetRing(), 3, cfg);
    try {
      await t.load(gs, ds);
      const run = await trainRun(t, { gSteps: 100, evalTarget, evalEvery: 50, stage: "test" });
      const sc = run.scores;
      assert(sc.finalRaw < sc.startRaw - 0.5, `W1 start ${sc.startRaw} -> final ${sc.finalRaw}`);
      assert(sc.headline <= Math.min(sc.startRaw, sc.bestAfter0Raw), `headline ${sc.headline}`);
      // Each evaluation samples raw G and EMA: latent sampling, 6 linear + 5 BatchNorm-stat dispatches.
      const evals = 3 * 2 * (1 + t.gLayers.length + 5);
      assert(
        run.timing.dispatches === 100 * t.dispatchesPerIteration + evals,
        `dispatch count ${run.timing.dispatches}`,
      );
    } finally {
      t.dispose();
      for (const v of [...gs.values(), ...ds.values()]) v.dispose();
    }
  } finally {
    src.dispose();
  }
});

Deno.test("toy2d: plot canvas draws text and encodes a PNG", () => {
  const c = new Canvas(40, 12);
  c.text("W1 0.5", 1, 1);
  let dark = 0;
  for (let i = 0; i < c.data.length; i += 3) if (c.data[i] < 128) dark++;
  assert(dark > 20, `text drew ${dark} pixels`);
  const png = c.png();
  assert(png[1] === 0x50 && png[2] === 0x4e && png[3] === 0x47, "PNG signature");
});

gpuTest("toy2d: the step profile accounts for its dispatches and kernel families", async () => {
  const r = await profileToy2d({ iterations: 2, replays: 3, blocks: 2, blockSteps: 1 });
  const t = makeTrainer(targetRing(), 1);
  try {
    if (r.dispatchesPerGStep !== t.dispatchesPerIteration) {
      throw new Error(`dispatches ${r.dispatchesPerGStep}, trainer says ${t.dispatchesPerIteration}`);
    }
  } finally {
    t.dispose();
  }
  for (const fam of ["linfwd", "lindx", "lindw", "bnstats", "bnbwd", "sample"]) {
    if (!(r.familiesMs[fam]?.cpu >= 0)) {
      throw new Error(`family ${fam} missing: ${JSON.stringify(r.familiesMs)}`);
    }
  }
  if (!(r.gStepMs.wall > 0 && r.overheadMsPerGStep.wall > 0 && r.evalMs.w1 >= 0)) {
    throw new Error(`implausible profile ${JSON.stringify(r)}`);
  }
  if (
    !(r.engine.dispatchesPerGStep > 0 && r.engine.gStepMs.wall > 0 && r.engine.fusedGStepMs.wall > 0 &&
      r.engine.ratio.wall > 0 && r.engine.blocks === 2)
  ) {
    throw new Error(`engine path not measured: ${JSON.stringify(r.engine)}`);
  }
  if (!(r.projection.dissectMin.wall > r.projection.transferMin.wall)) {
    throw new Error("dissect (105k G steps) must project longer than transfer (25k)");
  }
});

gpuTest("toy2d: the engine-path trainer takes Adam's first step and the fused trainer's EMA", async () => {
  const cfg = { ...PROTOCOL, batch: 8, dSteps: 1 };
  const e = new EngineToyGan(targetRing(), 4, cfg);
  try {
    const snap = async (ps: [string, Tensor][]) =>
      new Map(await Promise.all(ps.map(async ([n, t]) => [n, await t.data()] as const)));
    const g0 = await snap([...e.g.namedParameters(), ...e.g.namedBuffers()]);
    const d0 = await snap(e.d.namedParameters());
    // The batched D loss equals the two-term loss of the autograd reference test.
    const real = tensor(Float32Array.from(sampleMixture(targetRing(), 8, 3)), [8, 2]);
    const fake = tensor(Float32Array.from(sampleMixture(sourceI(), 8, 4)), [8, 2]);
    const twoTerm = add(mean(softplus(neg(e.d.forward(real)))), mean(softplus(e.d.forward(fake))));
    assertAlmostEquals(await e.discriminatorLoss(real, fake).item(), await twoTerm.item(), 1e-6, "D loss");
    e.iterate(1);
    const g1 = await snap([...e.g.namedParameters(), ...e.g.namedBuffers()]);
    const d1 = await snap(e.d.namedParameters());
    const ema = await snap([...e.gEma.namedParameters(), ...e.gEma.namedBuffers()]);
    // Adam's first step moves every parameter with a non-negligible gradient by lr (m_hat / sqrt(v_hat) = +-1).
    let moved = 0, total = 0;
    for (const [net0, net1] of [[d0, d1], [g0, g1]]) {
      for (const [name, p0] of net0) {
        if (name.includes("running") || name.includes("num_batches")) continue;
        const p1 = net1.get(name)!;
        for (let i = 0; i < p0.length; i++) {
          const step = Math.abs(p1[i] - p0[i]);
          assert(step <= cfg.lr * (1 + 1e-3) + 1e-7, `${name}[${i}] moved ${step} > lr`);
          if (Math.abs(step - cfg.lr) < 1e-3 * cfg.lr + 3e-8) moved++;
          total++;
        }
      }
    }
    // The rest have no gradient (dead ReLUs) or a round-off one (the bias of a Linear before BatchNorm).
    assert(moved > 0.8 * total, `only ${moved} of ${total} parameters took a full Adam step`);
    for (const [name, p0] of g0) {
      if (name.endsWith("num_batches_tracked")) continue;
      const p1 = g1.get(name)!, e1 = ema.get(name)!;
      assert(p0.some((v, i) => v !== p1[i]), `${name} changed during the step`);
      for (let i = 0; i < p0.length; i++) {
        assertAlmostEquals(e1[i], 0.99 * p0[i] + 0.01 * p1[i], 1e-6, `EMA ${name}[${i}]`);
      }
    }
  } finally {
    e.dispose();
  }
});
