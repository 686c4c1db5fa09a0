// The training loop on a tiny configuration (8x8 images, 16/8 channels): a tick runs and writes a loadable
// snapshot; R1, the lazy-regularisation Adam settings and the EMA follow their formulas; Freeze-D leaves
// frozen weights bit-identical; a resumed run equals an uninterrupted one; NaN stops training and keeps
// the last good snapshot.

import { grad } from "../nn/autograd.ts";
import { manualSeed, randn, tensor } from "../nn/creation.ts";
import { parseSafetensors } from "../nn/io/mod.ts";
import { copyInto } from "../nn/module.ts";
import { add, mul, square } from "../nn/ops.ts";
import { sum } from "../nn/reduce.ts";
import { reshape } from "../nn/shape.ts";
import type { Tensor } from "../nn/tensor.ts";
import { gpu } from "../kernels/runtime.ts";
import { ArrayDataset } from "../data/dataset.ts";
import { presetConfig } from "../gan/stylegan2/config.ts";
import { Discriminator } from "../gan/stylegan2/discriminator.ts";
import { Generator } from "../gan/stylegan2/generator.ts";
import { emaBeta, updateEma } from "../gan/train/ema.ts";
import { lazyRegAdam, r1Penalty } from "../gan/train/loss.ts";
import { train, type TrainOptions } from "../gan/train/loop.ts";
import { trainingRecipe } from "../gan/train/presets.ts";
import { loadNetworks } from "../gan/train/networks.ts";
import { RunDir } from "../gan/train/run_dir.ts";
import { readSnapshot, TrainingDivergedError } from "../gan/train/snapshot.ts";
import { generateCommand } from "../cli/generate.ts";
import { assertClose, gpuTest, randArray } from "./harness.ts";

const RES = 8;
const ARCH = presetConfig("tiny16", {
  resolution: RES,
  channelBase: 64,
  channelMax: 16,
  zDim: 16,
  wDim: 16,
  mappingLayers: 2,
  mbstdGroupSize: 2,
});

// 13 images (not a multiple of the batch), two classes.
function tinyData(): ArrayDataset {
  const n = 13, per = 3 * RES * RES;
  const px = new Uint8Array(n * per);
  for (let i = 0; i < px.length; i++) px[i] = ((i * 2654435761) >>> 24) & 255;
  return new ArrayDataset("tiny", RES, 3, px, Int32Array.from({ length: n }, (_, i) => i % 2), ["a", "b"]);
}

async function tmpRun(name: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: `train_test_${name}_` });
  return dir;
}

// Four images per iteration, two iterations per tick; every regulariser on and lazy every 2 iterations.
function tinyOptions(outDir: string, extra: Partial<TrainOptions> = {}): TrainOptions {
  return {
    outDir,
    preset: "tiny16",
    arch: ARCH,
    data: tinyData(),
    totalKimg: 0.008,
    seed: 3,
    gridSize: 4,
    recipe: {
      batch: 4,
      tickKimg: 0.008,
      snapshotTicks: 1,
      r1Gamma: 1,
      r1Interval: 2,
      plWeight: 2,
      plInterval: 2,
      styleMixingProb: 0.5,
      emaKimg: 0.01,
      emaRampup: 0.5,
    },
    ...extra,
  };
}

function disposeAll(r: { G: Generator; D: Discriminator; Gema: Generator }): void {
  for (const m of [r.G, r.D, r.Gema]) m.dispose();
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

gpuTest("train: one tick runs, losses are finite, the snapshot loads back; generate reads it", async () => {
  const dir = await tmpRun("tick");
  await gpu().sync();
  const liveBefore = gpu().liveBuffers;
  const r = await train(tinyOptions(dir, { conditional: true }));
  try {
    if (r.tick !== 1 || r.step !== 2 || r.curNimg !== 8) {
      throw new Error(`counters ${r.tick}/${r.step}/${r.curNimg}`);
    }
    const st = r.lastTick!.stats;
    for (const k of ["Loss/G/loss", "Loss/D/loss", "Loss/D/reg", "Loss/pl_penalty", "Loss/scores/real"]) {
      if (!Number.isFinite(st[k])) throw new Error(`stat ${k} = ${st[k]} (${JSON.stringify(st)})`);
    }
    const run = new RunDir(dir);
    const stats = await run.readStats();
    if (stats.length !== 1 || stats[0].tick !== 1) throw new Error(`stats.jsonl: ${JSON.stringify(stats)}`);
    const config = await run.readConfig();
    if (!config || config.seed !== 3 || config.conditional !== true) {
      throw new Error("config.json incomplete");
    }
    for (const f of ["reals.png", "fakes-000000008.png"]) {
      if (!await exists(run.file(f))) throw new Error(`${f} missing`);
    }
    if (r.lastSnapshot !== run.snapshotPath(8)) throw new Error(`snapshot ${r.lastSnapshot}`);
    const snap = await loadNetworks(r.lastSnapshot);
    try {
      if (snap.state?.step !== 2 || snap.state.curNimg !== 8) throw new Error("snapshot counters");
      const a = await r.Gema.parameters()[0].data(), b = await snap.Gema.parameters()[0].data();
      assertClose(b, a, { rtol: 0, atol: 0, what: "G_ema weights in the snapshot" });
    } finally {
      disposeAll({ G: snap.G, D: snap.D!, Gema: snap.Gema });
    }
    const png = `${dir}/gen.png`;
    await generateCommand([
      "--snapshot",
      r.lastSnapshot,
      "--out",
      png,
      "--seeds",
      "0-2",
      "--class",
      "b",
      "--json",
    ]);
    if (!await exists(png)) throw new Error("generate wrote no PNG");
  } finally {
    disposeAll(r);
    await Deno.remove(dir, { recursive: true });
  }
  await gpu().sync();
  if (gpu().liveBuffers !== liveBefore) {
    throw new Error(`train leaked ${gpu().liveBuffers - liveBefore} GPU buffers`);
  }
});

gpuTest("train: R1 equals a direct computation", async () => {
  // A toy D with a known input gradient: D(x) = sum_CHW a x^2, so dD/dx = 2 a x.
  const x = tensor(randArray(2 * 3 * 4 * 4, 1), [2, 3, 4, 4]);
  const a = 0.7, gamma = 3;
  const toy = { forward: (img: Tensor) => reshape(sum(mul(square(img), a), [1, 2, 3]), [img.shape[0], 1]) };
  const got = await r1Penalty(toy, x, null, gamma).penalty.data();
  const xs = await x.data();
  const want = [0, 1].map((n) => {
    let s = 0;
    for (let i = 0; i < 48; i++) s += (2 * a * xs[n * 48 + i]) ** 2;
    return (gamma / 2) * s;
  });
  assertClose(got, want, { rtol: 1e-5, what: "toy R1" });

  // The tiny StyleGAN2 D: the penalty is gamma/2 |dD/dx|^2 with dD/dx checked by central differences.
  manualSeed(5);
  const D = Discriminator.fromConfig(ARCH);
  const real = tensor(randArray(2 * 3 * RES * RES, 2), [2, 3, RES, RES]);
  const pen = await r1Penalty(D, real, null, gamma).penalty.data();
  real.requiresGrad = true;
  const [gx] = grad(sum(D.forward(real, null)), [real]);
  real.requiresGrad = false;
  const g = await gx.data();
  const direct = [0, 1].map((n) =>
    (gamma / 2) * g.slice(n * 192, (n + 1) * 192).reduce((s, v) => s + v * v, 0)
  );
  assertClose(pen, direct, { rtol: 1e-4, what: "R1 of the tiny D" });
  const v = tensor(randArray(real.size, 9), real.shape);
  const eps = 1e-2;
  const fd = ((await sum(D.forward(add(real, mul(v, eps)), null)).item()) -
    (await sum(D.forward(add(real, mul(v, -eps)), null)).item())) / (2 * eps);
  const vs = await v.data();
  const dir = g.reduce((s, gi, i) => s + gi * vs[i], 0);
  assertClose([dir], [fd], { rtol: 2e-2, atol: 1e-3, what: "directional derivative of D" });
  D.dispose();
});

gpuTest("train: lazy-regularisation Adam settings and the EMA follow their formulas", async () => {
  const l = lazyRegAdam(0.002, [0, 0.99], 16);
  assertClose([l.lr, ...l.betas], [0.002 * 16 / 17, 0, 0.99 ** (16 / 17)], {
    rtol: 1e-12,
    what: "lazy R1 Adam",
  });
  const p = lazyRegAdam(0.0025, [0.5, 0.99], 4);
  assertClose([p.lr, ...p.betas], [0.002, 0.5 ** 0.8, 0.99 ** 0.8], { rtol: 1e-12, what: "lazy PL Adam" });
  const n = lazyRegAdam(0.0025, [0, 0.99], null);
  assertClose([n.lr, ...n.betas], [0.0025, 0, 0.99], { rtol: 0, what: "no lazy correction" });
  const rec = trainingRecipe("cocktail");
  if (rec.r1Interval !== 16 || rec.plInterval !== 4 || rec.betas.join() !== "0,0.99" || rec.eps !== 1e-8) {
    throw new Error(`SGA fixed settings: ${JSON.stringify(rec)}`);
  }

  assertClose([emaBeta(32, 10, null, 12345)], [0.5 ** (32 / 10000)], { rtol: 1e-12, what: "EMA beta" });
  assertClose([emaBeta(64, 500, 0.05, 1000)], [0.5 ** (64 / 50)], { rtol: 1e-12, what: "EMA beta, ramp-up" });
  assertClose([emaBeta(64, 500, 0.05, 1e9)], [0.5 ** (64 / 500000)], { rtol: 1e-12, what: "ramp-up done" });
  if (emaBeta(64, 500, 0.05, 0) !== 0) throw new Error("at nimg 0 the EMA must copy G");

  manualSeed(1);
  const G = Generator.fromConfig(ARCH), Gema = Generator.fromConfig(ARCH);
  const w = G.mapping.wAvg;
  copyInto(randn(w.shape), w);
  const [p0, e0] = [await G.parameters()[0].data(), await Gema.parameters()[0].data()];
  updateEma(Gema, G, 0.9);
  const e1 = await Gema.parameters()[0].data();
  assertClose(e1, Array.from(e0, (e, i) => 0.9 * e + 0.1 * p0[i]), { rtol: 1e-5, atol: 1e-6, what: "EMA" });
  assertClose(await Gema.mapping.wAvg.data(), await w.data(), { rtol: 0, atol: 0, what: "buffers copied" });
  G.dispose();
  Gema.dispose();
});

gpuTest("train: Freeze-D leaves the frozen layers bit-identical", async () => {
  const dir = await tmpRun("freeze");
  manualSeed(7);
  const G = Generator.fromConfig(ARCH), D = Discriminator.fromConfig(ARCH);
  const before = new Map<string, Float32Array>();
  for (const [k, t] of D.namedParameters()) before.set(k, await t.data());
  const r = await train(tinyOptions(dir, { init: { G, D }, freezeD: 2, gridSize: 0 }));
  try {
    const frozen = ["b8.fromrgb.weight", "b8.fromrgb.bias", "b8.conv0.weight", "b8.conv0.bias"];
    for (const [k, t] of D.namedParameters()) {
      const same = (await t.data()).every((v, i) => Object.is(v, before.get(k)![i]));
      if (frozen.includes(k) && !same) throw new Error(`frozen ${k} changed`);
      if (!frozen.includes(k) && k.endsWith("weight") && same) {
        throw new Error(`trainable ${k} did not change`);
      }
    }
    const config = await new RunDir(dir).readConfig();
    if (JSON.stringify(config?.frozenLayers) !== JSON.stringify(["b8.fromrgb", "b8.conv0"])) {
      throw new Error(`config frozenLayers ${JSON.stringify(config?.frozenLayers)}`);
    }
  } finally {
    disposeAll(r);
    await Deno.remove(dir, { recursive: true });
  }
});

async function tensorsOf(path: string): Promise<Map<string, Uint8Array>> {
  const parsed = parseSafetensors(await Deno.readFile(path));
  return new Map([...parsed.tensors].map(([k, a]) => [k, new Uint8Array(a.data.buffer.slice(0))]));
}

gpuTest(
  "train: a finished run's last tick losses are read back from stats.jsonl (a resumed stage reports them)",
  async () => {
    const a = await tmpRun("ticks");
    try {
      const r = await train(tinyOptions(a, { totalKimg: 0.008, gridSize: 0 }));
      disposeAll(r);
      const want = r.lastTick!.stats;
      if (Object.keys(want).length === 0) throw new Error("the tick measured no losses");
      const got = await new RunDir(a).lastTickStats();
      if (JSON.stringify(got) !== JSON.stringify(want)) {
        throw new Error(`stats.jsonl gives ${JSON.stringify(got)}, the tick had ${JSON.stringify(want)}`);
      }
    } finally {
      await Deno.remove(a, { recursive: true });
    }
  },
);

gpuTest("train: a resumed run equals an uninterrupted one", async () => {
  const a = await tmpRun("full"), b = await tmpRun("resumed");
  try {
    const ra = await train(tinyOptions(a, { totalKimg: 0.016, conditional: true, gridSize: 0 }));
    disposeAll(ra);
    const rb1 = await train(tinyOptions(b, { totalKimg: 0.008, conditional: true, gridSize: 0 }));
    disposeAll(rb1);
    const again = await train(tinyOptions(b, { totalKimg: 0.016, conditional: true, gridSize: 0 })).then(
      (r) => (disposeAll(r), null),
      (e: Error) => e.message,
    );
    if (!again || !/already holds/.test(again)) {
      throw new Error(`a fresh start over a run was allowed: ${again}`);
    }
    // Before: a resume on other data continued and rewrote config.json; the recipe message named no field.
    const refused = async (extra: Partial<TrainOptions>) =>
      await train(
        tinyOptions(b, { totalKimg: 0.016, conditional: true, gridSize: 0, resume: true, ...extra }),
      )
        .then((r) => (disposeAll(r), "resumed"), (e: Error) => e.message);
    const d = tinyData();
    const other = new ArrayDataset(
      "tiny",
      RES,
      3,
      d.pixels.slice(0, 12 * 3 * RES * RES),
      d.labels!.slice(0, 12),
      [
        "a",
        "b",
      ],
    );
    const byData = await refused({ data: other });
    if (!/data\.size: 13 in config\.json, 12 now/.test(byData)) throw new Error(`other data: ${byData}`);
    const base = tinyOptions(b).recipe!;
    const byRecipe = await refused({ recipe: { ...base, r1Gamma: 2 } });
    if (!/recipe\.r1Gamma: 1 in config\.json, 2 now/.test(byRecipe)) {
      throw new Error(`other recipe: ${byRecipe}`);
    }
    let resumedAt = "";
    const rb2 = await train(
      tinyOptions(b, {
        totalKimg: 0.016,
        conditional: true,
        gridSize: 0,
        resume: true,
        onStart: (p) => (resumedAt = `${p.resumedFrom} @ ${p.startNimg}`),
      }),
    );
    if (resumedAt !== `${new RunDir(b).snapshotPath(8)} @ 8`) throw new Error(`onStart: ${resumedAt}`);
    disposeAll(rb2);
    if (rb2.resumedFrom !== new RunDir(b).snapshotPath(8)) throw new Error(`resumed from ${rb2.resumedFrom}`);
    const sa = await readSnapshot(ra.lastSnapshot!), sb = await readSnapshot(rb2.lastSnapshot!);
    for (const k of ["step", "curNimg", "tick", "plMean"] as const) {
      if (sa.state[k] !== sb.state[k]) throw new Error(`${k}: ${sa.state[k]} vs ${sb.state[k]}`);
    }
    if (sa.state.optG?.step !== sb.state.optG?.step) throw new Error("optimiser step counts differ");
    for (const s of [sa, sb]) for (const m of s.parts.values()) for (const t of m.values()) t.dispose();
    const ta = await tensorsOf(ra.lastSnapshot!), tb = await tensorsOf(rb2.lastSnapshot!);
    if (ta.size !== tb.size) throw new Error("snapshots hold different tensors");
    for (const [k, x] of ta) {
      const y = tb.get(k);
      if (!y || y.length !== x.length || x.some((v, i) => v !== y[i])) {
        throw new Error(`${k} differs after resume`);
      }
    }
  } finally {
    await Deno.remove(a, { recursive: true });
    await Deno.remove(b, { recursive: true });
  }
});

gpuTest("train: losses from the first iteration; a failed start leaves no run directory", async () => {
  const root = await tmpRun("start");
  try {
    const seen: (Record<string, number> | null)[] = [];
    const r = await train(tinyOptions(`${root}/run`, { gridSize: 0, onStep: (p) => seen.push(p.losses) }));
    disposeAll(r);
    // Before: the progress line had no losses until the first tick ended.
    const first = seen[0];
    if (!first || !Number.isFinite(first["Loss/G/loss"]) || !Number.isFinite(first["Loss/D/loss"])) {
      throw new Error(`first step's losses: ${JSON.stringify(first)}`);
    }
    const failed = await train(tinyOptions(`${root}/bad`, { freezeD: 999 })).then(
      (x) => (disposeAll(x), ""),
      (e: Error) => e.message,
    );
    if (!/freezeD/.test(failed)) throw new Error(`expected a freezeD error, got '${failed}'`);
    if (await exists(`${root}/bad`)) throw new Error("a failed start left its run directory behind");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

gpuTest("train: NaN stops training with a clear message and keeps the last good snapshot", async () => {
  const dir = await tmpRun("nan");
  const nan = tensor([NaN]);
  let error: unknown = null;
  try {
    // From iteration 3 on, D's loss gets a NaN term whose gradient poisons the weights.
    const r = await train(tinyOptions(dir, {
      totalKimg: 0.024,
      gridSize: 0,
      extraDLoss: (D, ctx) => (ctx.step >= 3 ? mul(sum(D.parameters()[0]), nan) : null),
    }));
    disposeAll(r);
  } catch (e) {
    error = e;
  }
  try {
    if (!(error instanceof TrainingDivergedError)) {
      throw new Error(`expected TrainingDivergedError, got ${error}`);
    }
    if (error.step !== 3 || !/iteration 3/.test(error.message) || !/Loss\/D/.test(error.message)) {
      throw new Error(`message does not name the step and loss: ${error.message}`);
    }
    const run = new RunDir(dir);
    const good = run.snapshotPath(8);
    if (error.lastSnapshot !== good) throw new Error(`last good snapshot ${error.lastSnapshot}`);
    if (run.listSnapshots().map((s) => s.nimg).join() !== "8") {
      throw new Error("a snapshot after the NaN was written");
    }
    const snap = await loadNetworks(good);
    for (const t of snap.D!.parameters()) {
      if ((await t.data()).some((v) => !Number.isFinite(v))) {
        throw new Error("last good snapshot is not finite");
      }
    }
    disposeAll({ G: snap.G, D: snap.D!, Gema: snap.Gema });
    const lines = await run.readStats();
    if (!lines.at(-1)?.diverged) throw new Error("stats.jsonl does not record the divergence");
  } finally {
    nan.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});
