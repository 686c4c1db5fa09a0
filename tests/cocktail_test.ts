// GAN Cocktail on tiny models (8x8): averaging is the exact mean; conditional conversion gives every class
// a distinct code in G and D and keeps the root's own class exactly; the EWC
// Fisher and penalty match hand computations; an end-to-end compare (cocktail + Freeze-D, three sources:
// two StyleGAN2 of different widths and a DCGAN at another resolution) writes report.json, the rooted
// models keep the root's names and shapes, and Freeze-D leaves the frozen layers bit-identical.

import { noGrad } from "../nn/autograd.ts";
import { Generator as Rng, manualSeed, randn, tensor } from "../nn/creation.ts";
import { copyInto } from "../nn/module.ts";
import { neg, sigmoid } from "../nn/ops.ts";
import { mean } from "../nn/reduce.ts";
import type { Tensor } from "../nn/tensor.ts";
import type { StyleGAN2Config } from "../gan/stylegan2/config.ts";
import { Discriminator } from "../gan/stylegan2/discriminator.ts";
import { Generator } from "../gan/stylegan2/generator.ts";
import { loadNetworks } from "../gan/train/networks.ts";
import { RunDir } from "../gan/train/run_dir.ts";
import { saveSnapshot, untrainedState } from "../gan/train/snapshot.ts";
import { averageInto } from "../gan/cocktail/averaging.ts";
import { conditionalDiscriminator, conditionalGenerator } from "../gan/cocktail/conditional.ts";
import { DcganGenerator } from "../gan/cocktail/dcgan.ts";
import { trainDcgan } from "../gan/cocktail/dcgan_train.ts";
import { ArrayDataset } from "../data/dataset.ts";
import { empiricalFisher, EwcPenalty, fisherForModel } from "../gan/cocktail/ewc.ts";
import { compareMethods, type CompareOptions } from "../gan/cocktail/compare.ts";
import { mergeSources } from "../gan/cocktail/merge.ts";
import { disposeNetworks } from "../gan/cocktail/stage.ts";
import { pixelFeatureNetwork } from "../gan/cocktail/evaluate.ts";
import { chooseRoot } from "../gan/cocktail/root.ts";
import {
  classCounts,
  DatasetSource,
  openSource,
  openSources,
  resampleImages,
  resampleMatrix,
} from "../gan/cocktail/sources.ts";
import { assertClose, gpuTest, rng } from "./harness.ts";
import { tinyStyleGAN2 } from "./tiny_stylegan2.ts";

const tiny = tinyStyleGAN2;

async function host(t: Tensor): Promise<Float32Array> {
  return await t.data();
}

function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
}

gpuTest("cocktail: averaging is the exact float64 mean of every parameter and buffer", async () => {
  const models = [1, 2, 3].map((s) => {
    manualSeed(s);
    return Generator.fromConfig(tiny());
  });
  // Distinct w_avg buffers, so buffers are checked too.
  models.forEach((m, i) => copyInto(tensor(new Float32Array(16).fill(i + 0.1)), m.mapping.wAvg));
  manualSeed(9);
  const into = Generator.fromConfig(tiny());
  await averageInto(models, into);
  for (
    const name of ["mapping.fc0.weight", "synthesis.b8.conv1.weight", "synthesis.b4.const", "mapping.w_avg"]
  ) {
    const src = await Promise.all(models.map((m) => host(m.stateDict().get(name)!)));
    const got = await host(into.stateDict().get(name)!);
    const want = src[0].map((_, i) => Math.fround((src[0][i] + src[1][i] + src[2][i]) / 3));
    assertClose(got, want, { rtol: 0, atol: 0, what: name });
  }
  for (const m of [...models, into]) m.dispose();
});

gpuTest(
  "cocktail: conversion gives every class its own code in G and D and keeps the root's own class exactly",
  async () => {
    manualSeed(4);
    const G = Generator.fromConfig(tiny());
    const D = Discriminator.fromConfig(tiny());
    const keepClass = 1;
    const Gc = conditionalGenerator(G, 3, { keepClass });
    const names = new Set(Gc.stateDict().keys());
    assert(names.has("mapping.embed.weight") && names.has("mapping.embed.bias"), "G lacks mapping.embed.*");
    for (const [k, t] of G.stateDict()) {
      const c = Gc.stateDict().get(k);
      assert(c, `converted G lacks ${k}`);
      if (k !== "mapping.fc0.weight") assert(c.shape.join() === t.shape.join(), `${k} changed shape`);
    }
    assert(
      Gc.stateDict().get("mapping.fc0.weight")!.shape.join() === "16,32",
      "fc0 should take z and the embedding",
    );
    // The embedding keeps SGA's fresh init: weight N(0, 1) (unit scale, distinct columns), bias 0.
    const ew = await host(Gc.mapping.embed!.weight); // [16, 3]
    const col = (c: number) => Array.from({ length: 16 }, (_, i) => ew[i * 3 + c]);
    const rms = Math.sqrt(ew.reduce((s, v) => s + v * v, 0) / ew.length);
    assert(rms > 0.6 && rms < 1.5, `embedding weights should be unit-scale N(0, 1), rms ${rms}`);
    for (const [i, j] of [[0, 1], [0, 2], [1, 2]]) {
      const d = col(i).reduce((s, v, k) => s + (v - col(j)[k]) ** 2, 0);
      assert(d > 1, `classes ${i} and ${j} must have distinct codes (squared distance ${d})`);
    }
    const z = randn([4, 16], { generator: new Rng(5) });
    const want = await host(noGrad(() => G.forward(z, null, { noiseMode: "const" })));
    const out = async (cls: number) =>
      await host(noGrad(() => Gc.forward(z, Gc.labels(4, cls), { noiseMode: "const" })));
    assertClose(await out(keepClass), want, { rtol: 1e-4, atol: 1e-5, what: "G output of the root's class" });
    const [c0, c2] = [await out(0), await out(2)];
    const diff = (a: Float32Array, b: Float32Array) =>
      a.reduce((s, v, i) => Math.max(s, Math.abs(v - b[i])), 0);
    assert(diff(c0, want) > 1e-2 && diff(c2, want) > 1e-2, "other classes must differ from the root's");
    assert(diff(c0, c2) > 1e-2, "classes 0 and 2 must differ from each other");

    const x = randn([4, 1, 8, 8], { generator: new Rng(6) });
    const dWant = await host(noGrad(() => D.forward(x)));
    const Dc = conditionalDiscriminator(D, 3, { keepClass });
    assert(Dc.stateDict().get("b4.out.weight")!.shape.join() === `${Dc.cmapDim},16`, "projection head shape");
    assert([...Dc.stateDict().keys()].some((k) => k.startsWith("mapping.")), "D lacks its mapping on c");
    const logits = async (cls: number) => await host(noGrad(() => Dc.forward(x, Gc.labels(4, cls))));
    assertClose(await logits(keepClass), dWant, {
      rtol: 1e-4,
      atol: 1e-5,
      what: "D logits of the root's class",
    });
    // A rank-1 head would give every class a multiple of the same logit; this one sees other features:
    // the ratio l_c(x) / l_keep(x) varies with x.
    for (const cls of [0, 2]) {
      const l = await logits(cls);
      const ratios = l.map((v, i) => v / dWant[i]);
      const spread = Math.max(...ratios) - Math.min(...ratios);
      assert(spread > 1e-2, `D's class ${cls} logits are a fixed multiple of the root's (ratios ${ratios})`);
    }
    for (const m of [G, D, Gc, Dc]) m.dispose();
  },
);

gpuTest("cocktail: EWC Fisher and penalty match hand computations", async () => {
  manualSeed(11);
  const G = Generator.fromConfig(tiny());
  const D = Discriminator.fromConfig(tiny());
  const F = empiricalFisher(G, D, { batches: 2, batchSize: 4, generator: new Rng(12) });
  // Hand: d/db mean_i softplus(-(y_i + b)) = -mean_i sigmoid(-logit_i) for D's output bias.
  const gen = new Rng(12);
  let want = 0;
  for (let b = 0; b < 2; b++) {
    const zb = randn([4, 16], { generator: gen });
    const logits = noGrad(() =>
      D.forward(G.forward(zb, null, { noiseMode: "random", generator: gen }), null)
    );
    const g = (await host(mean(sigmoid(neg(logits))))).at(0)!;
    want += g * g / 2;
  }
  assertClose(await host(F.D.get("b4.out.bias")!), [want], {
    rtol: 1e-3,
    atol: 1e-9,
    what: "Fisher of b4.out.bias",
  });
  // Penalty: lambda * sum F (theta - theta0)^2 after shifting one weight by +0.5 everywhere.
  const Gc = conditionalGenerator(G, 2);
  const fisherG = fisherForModel(F.G, Gc);
  assert(!fisherG.has("mapping.embed.weight"), "the embedding must not be anchored");
  const fc0 = await host(fisherG.get("mapping.fc0.weight")!);
  const old = await host(F.G.get("mapping.fc0.weight")!);
  assertClose(fc0.subarray(0, 16), old.subarray(0, 16).map((v) => v / 2), {
    rtol: 1e-6,
    what: "rescaled fc0 Fisher",
  });
  assertClose(fc0.subarray(16, 32), new Float32Array(16), { what: "embedding columns of fc0" });
  const pen = new EwcPenalty(fisherG, Gc, (k) => (k.startsWith("mapping.") ? 3 : 5));
  const w = Gc.synthesis.blocks[1].conv1.weight;
  const delta = 0.5;
  const shifted = tensor((await host(w)).map((v) => v + delta), w.shape);
  copyInto(shifted, w);
  shifted.dispose();
  const fw = await host(fisherG.get("synthesis.b8.conv1.weight")!);
  const handPenalty = 5 * fw.reduce((s, f) => s + f * delta * delta, 0);
  assertClose([await pen.loss(Gc)!.item()], [handPenalty], { rtol: 1e-4, atol: 1e-12, what: "EWC penalty" });
  pen.dispose();
  for (const t of [...F.G.values(), ...F.D.values()]) t.dispose();
  for (const m of [G, D, Gc]) m.dispose();
});

gpuTest("cocktail: resampling matrices, multinomial class counts", () => {
  const down = resampleMatrix(16, 8);
  for (let o = 0; o < 8; o++) {
    let s = 0;
    for (let i = 0; i < 16; i++) s += down[o * 16 + i];
    assertClose([s], [1], { what: `row ${o} of the area matrix` });
  }
  assertClose(down.subarray(0, 2), [0.5, 0.5], { what: "area weights" });
  const up = resampleMatrix(4, 8);
  assertClose(up.subarray(0, 4), [1, 0, 0, 0], { what: "bilinear edge row" });
  const counts = classCounts(1000, [0.25, 0.75], rng(3));
  assert(counts[0] + counts[1] === 1000 && Math.abs(counts[0] - 250) < 60, `counts ${counts}`);
  const img = tensor(new Float32Array(2 * 16 * 16).fill(0.5), [2, 1, 16, 16]);
  const r = resampleImages(img, 8, 3);
  assert(r.shape.join() === "2,3,8,8", `resampled shape ${r.shape}`);
});

/** A randomly initialised tiny StyleGAN2 source snapshot (G, D, G_ema = G) in `dir`. */
async function saveSource(dir: string, name: string, arch: StyleGAN2Config, seed: number): Promise<string> {
  manualSeed(seed);
  const G = Generator.fromConfig(arch), D = Discriminator.fromConfig(arch);
  const path = `${dir}/${name}.safetensors`;
  await saveSnapshot(path, { G, D, Gema: G }, untrainedState(seed));
  G.dispose();
  D.dispose();
  return path;
}

gpuTest(
  "cocktail: end-to-end compare of cocktail and Freeze-D on three tiny sources writes report.json",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "cocktail_test_" });
    const save = (name: string, arch: StyleGAN2Config, seed: number) => saveSource(dir, name, arch, seed);
    const a = await save("a", tiny(), 21);
    const b = await save("b", tiny({ channelMax: 8 }), 22);
    manualSeed(23);
    const dc = new DcganGenerator({ resolution: 16, channels: 3, zDim: 8, baseChannels: 16, minChannels: 4 });
    const c = `${dir}/c_dcgan.safetensors`;
    await dc.save(c);
    dc.dispose();
    const src = await openSource(c);
    assert(src.kind === "dcgan" && src.resolution === 16 && src.channels === 3, "DCGAN source opens");
    src.dispose();

    // --root auto: only StyleGAN2 sources with a D are candidates, scored by recall.
    const opened = await openSources([a, b, c]);
    const choice = await chooseRoot(opened, pixelFeatureNetwork(4), { samplesPerSource: 16 });
    assert(choice.scores[2].recall === null, "a DCGAN cannot be the root");
    assert(choice.root === 0 || choice.root === 1, `root ${choice.root}`);
    assert(choice.scores.slice(0, 2).every((x) => x.recall! >= 0 && x.recall! <= 1), "recalls in [0, 1]");
    for (const o of opened) o.dispose();

    const out = `${dir}/cmp`;
    const settings: CompareOptions = {
      sources: [a, b, c],
      outDir: out,
      kimg: 0.008,
      rootKimg: 0.012,
      methods: ["cocktail", "freezed"],
      root: 0,
      features: "pixels:4",
      samplesPerClass: 12,
      preset: "tiny16",
      recipe: { batch: 4, tickKimg: 0.004, snapshotTicks: 1 },
      freezeD: 3,
      fidelitySteps: 3,
    };
    // Every long phase draws a bar: the stages, and the evaluation's parts (reference features, the
    // classifier, each method's evaluation, the floor), each started, counted to its total and ended.
    const bars = new Map<string, { total: number; unit?: string; last: number; ended: boolean }>();
    settings.observer = {
      start: (stage, total, unit) => bars.set(stage, { total, unit, last: 0, ended: false }),
      step: (stage, done) => (bars.get(stage)!.last = done),
      end: (stage) => (bars.get(stage)!.ended = true),
    };
    const { reportPath } = await compareMethods(settings);
    for (
      const name of [
        "reference features",
        "source classifier",
        "evaluating cocktail",
        "evaluating freezed",
        "evaluating the floor (a second sample of each source)",
      ]
    ) {
      const b = bars.get(name);
      assert(
        b && b.ended && b.last === b.total && b.total > 0,
        `progress bar '${name}': ${JSON.stringify(b)}`,
      );
    }
    // 3 classes x 1 chunk of 12 samples, 3 per-class score sets + the union, class fidelity.
    assert(bars.get("evaluating cocktail")!.total === 3 + 4 + 1, "evaluation parts");
    delete settings.observer;
    const report = JSON.parse(await Deno.readTextFile(reportPath));
    // Rerun into the same directory (a killed demo rerun): finished stages and evaluations are reused.
    const written = (f: string) => Deno.statSync(f).mtime!.getTime();
    const finished = [
      report.methods.cocktail.snapshot,
      report.methods.freezed.snapshot,
      `${out}/eval-cocktail.json`,
    ];
    const stamps = finished.map(written);
    const again = await compareMethods({ ...settings, resume: true });
    assert(
      finished.every((f, i) => written(f) === stamps[i]),
      "a resumed compare must not rewrite finished parts",
    );
    assert(
      again.report.methods.cocktail.unionFid === report.methods.cocktail.unionFid,
      "same scores on resume",
    );
    for (const m of ["cocktail", "freezed"]) {
      assert(Number.isFinite(report.methods[m].unionFid), `${m}: union FID`);
      assert(report.methods[m].perClass.length === 3, `${m}: three classes`);
      for (const p of report.methods[m].perClass) {
        assert(p.fidelity >= 0 && p.fidelity <= 1, `${m}: class ${p.class} fidelity ${p.fidelity} in [0, 1]`);
      }
    }
    assert(report.classFidelity.heldOutAccuracy.length === 3, "the classifier's ceiling per source");
    const html = await Deno.readTextFile(`${out}/index.html`);
    assert(
      html.includes("fidelity 2") && html.includes("KID (unscaled)"),
      "the HTML table has fidelity and KID scale",
    );
    assert(
      typeof report.featureNetwork === "string" && report.featureNetwork.includes("pixels"),
      "feature network named",
    );
    assert(
      report.notes.some((n: string) => n.includes("resampled")),
      "the report says which sources were resampled",
    );
    assert(report.weightDistances.pairs.length === 2, "weight distances of the two rooted models");
    // Budgets: each rooting run 12 images (3 steps of 4), merging 8; Freeze-D trains the total, 2 * 12 + 8.
    const kimgs = (m: string) => report.methods[m].stages.map((s: { kimg: number }) => s.kimg);
    assertClose(kimgs("cocktail"), [0.012, 0.012, 0.008], { atol: 1e-9, what: "cocktail stage budgets" });
    assertClose(kimgs("freezed"), [0.032], { atol: 1e-9, what: "Freeze-D's budget (cocktail's total)" });
    assert(report.budget.baselines.startsWith("0.032 kimg"), `budget line: ${report.budget.baselines}`);

    // Rooted models have the root's parameter names and shapes (the conditional root's).
    const root = await loadNetworks(a);
    const rootC = conditionalGenerator(root.Gema, 3);
    const rooted = await loadNetworks(new RunDir(`${out}/cocktail/stage1-root0-to-1`).latestSnapshot()!);
    const shapes = (m: Generator) => [...m.stateDict()].map(([k, t]) => `${k}:${t.shape}`).sort().join(";");
    assert(shapes(rooted.G) === shapes(rootC), "rooted G has the root's names and shapes");

    // Freeze-D: the first three D layers (b8.fromrgb, b8.conv0, b8.conv1) did not move; later ones did.
    const fz = await loadNetworks(report.methods.freezed.snapshot);
    const rootD = root.D!;
    for (const k of ["b8.fromrgb.weight", "b8.conv0.weight", "b8.conv1.weight", "b8.conv1.bias"]) {
      const x = await host(rootD.stateDict().get(k)!), y = await host(fz.D!.stateDict().get(k)!);
      assertClose(y, x, { rtol: 0, atol: 0, what: `frozen ${k}` });
    }
    const moved = await host(fz.D!.stateDict().get("b8.skip.weight")!);
    const before = await host(rootD.stateDict().get("b8.skip.weight")!);
    assert(moved.some((v, i) => v !== before[i]), "an unfrozen layer should change");
    for (const n of [root, rooted, fz]) for (const m of [n.G, n.D, n.Gema]) m?.dispose();
    rootC.dispose();
    await Deno.remove(dir, { recursive: true });
  },
);

gpuTest("cocktail: a DCGAN source trains a few steps, saves, and opens as a source", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cocktail_dcgan_" });
  const px = new Uint8Array(10 * 8 * 8);
  for (let i = 0; i < px.length; i++) px[i] = (i * 37) % 251;
  const data = new ArrayDataset("tiny", 8, 1, px, null, []);
  const path = `${dir}/dcgan.safetensors`;
  const G = await trainDcgan({
    data,
    out: path,
    kimg: 0.008,
    batch: 4,
    config: { zDim: 8, baseChannels: 8, minChannels: 4 },
  });
  const before = await host(G.sample(4, { generator: new Rng(1) }));
  G.dispose();
  const src = await openSource(path);
  const after = await host(src.sample(4, new Rng(1)));
  assertClose(after, before, { rtol: 0, atol: 0, what: "reloaded DCGAN samples" });
  assert(src.resolution === 8 && src.channels === 1, "DCGAN source shape");
  src.dispose();
  await Deno.remove(dir, { recursive: true });
});

gpuTest("cocktail: a killed merge resumes to the same model (mid-stage and between stages)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cocktail_resume_" });
  const sources = await openSources([
    await saveSource(dir, "a", tiny(), 31),
    await saveSource(dir, "b", tiny({ channelMax: 8 }), 32),
  ]);
  const run = (name: string, resume: boolean) =>
    mergeSources({
      sources,
      method: "cocktail",
      outDir: `${dir}/${name}`,
      kimg: 0.008,
      root: 0,
      preset: "tiny16",
      recipe: { batch: 4, tickKimg: 0.004, snapshotTicks: 1 },
      seed: 5,
      resume,
    });
  const weights = async (path: string) => {
    const n = await loadNetworks(path);
    const out = new Map<string, Float32Array>();
    for (const [who, m] of [["G", n.G], ["D", n.D!], ["Gema", n.Gema]] as const) {
      for (const [k, t] of m.stateDict()) out.set(`${who}.${k}`, await host(t));
    }
    for (const m of new Set([n.G, n.D, n.Gema])) m?.dispose();
    return out;
  };
  const same = async (path: string, want: Map<string, Float32Array>, what: string) => {
    const got = await weights(path);
    assert(got.size === want.size, `${what}: ${got.size} tensors, expected ${want.size}`);
    for (const [k, w] of want) assertClose(got.get(k)!, w, { rtol: 0, atol: 0, what: `${what}: ${k}` });
  };
  const snapshots = (d: string) =>
    [...Deno.readDirSync(d)].map((e) => e.name).filter((f) => /^snapshot-.*\.safetensors$/.test(f)).sort();
  try {
    const full = await run("full", false);
    disposeNetworks(full);
    const want = await weights(full.snapshot);

    const cut = await run("cut", false);
    disposeNetworks(cut);
    const stage2 = `${dir}/cut/cocktail/stage2-merge`;
    const before = snapshots(stage2);
    assert(before.length >= 2, `stage 2 keeps two snapshots, got ${before}`);
    await Deno.remove(`${stage2}/${before.at(-1)}`); // killed before its last snapshot
    let refused = "";
    await run("cut", false).catch((e) => refused = (e as Error).message);
    assert(refused.includes("--resume"), `an existing run needs --resume, got '${refused}'`);
    const mid = await run("cut", true);
    disposeNetworks(mid);
    assert(mid.stages.every((s) => s.resumed), "every stage resumed from its snapshots");
    await same(mid.snapshot, want, "resumed mid stage 2");

    // Killed between the stages: stage 2 and the average never written.
    await Deno.remove(stage2, { recursive: true });
    await Deno.remove(`${dir}/cut/cocktail/averaged.safetensors`);
    const between = await run("cut", true);
    disposeNetworks(between);
    assert(!between.stages.at(-1)!.resumed, "stage 2 starts afresh from the average");
    await same(between.snapshot, want, "resumed after stage 1");
  } finally {
    for (const s of sources) s.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});

gpuTest(
  "cocktail: the real-data upper bound samples real images by seed and trains the root's network",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "cocktail_realdata_" });
    // Two real "classes": image i of class c has every pixel equal to 40 * c + i (i < 5), 8x8 grey.
    const dataset = (c: number) =>
      new ArrayDataset(
        `real${c}`,
        8,
        1,
        Uint8Array.from({ length: 5 * 64 }, (_, j) => 40 * c + Math.floor(j / 64)),
        null,
        [],
      );
    const real = [new DatasetSource(dataset(0)), new DatasetSource(dataset(1))];
    assert(
      real[1].kind === "dataset" && real[1].resolution === 8 && real[1].channels === 1,
      "dataset source",
    );
    const draw = async (seed: number) => await host(real[1].sample(64, new Rng(seed)));
    const a = await draw(3), again = await draw(3), other = await draw(4);
    assertClose(again, a, { rtol: 0, atol: 0, what: "same seed, same images" });
    assert(other.some((v, i) => v !== a[i]), "another seed draws other images");
    // Every drawn image is one of class 1's five, whole (pixel / 127.5 - 1), and all five are drawn.
    const seen = new Set<number>();
    for (let k = 0; k < 64; k++) {
      const px = a.subarray(k * 64, (k + 1) * 64);
      const i = Math.round((px[0] + 1) * 127.5) - 40;
      assert(i >= 0 && i < 5 && px.every((v) => v === px[0]), `image ${k}: pixel ${px[0]}`);
      seen.add(i);
    }
    assert(seen.size === 5, `64 draws cover ${seen.size} of 5 images`);

    const sources = await openSources([
      await saveSource(dir, "a", tiny(), 41),
      await saveSource(dir, "b", tiny({ channelMax: 8 }), 42),
    ]);
    const base = {
      sources,
      method: "realdata" as const,
      outDir: `${dir}/m`,
      kimg: 0.008,
      root: 0,
      preset: "tiny16",
      recipe: { batch: 4, tickKimg: 0.004, snapshotTicks: 1 },
      seed: 5,
    };
    try {
      let msg = "";
      await mergeSources(base).catch((e) => msg = (e as Error).message);
      assert(/needs one real dataset per source \(2\), got 0/.test(msg), `no real data: ${msg}`);
      const r = await mergeSources({ ...base, realData: real });
      // Trained from scratch on the real images with the baselines' budget, in the root's architecture.
      assert(r.G.cDim === 2, `conditional on 2 classes, got ${r.G.cDim}`);
      const cfg = JSON.parse(await Deno.readTextFile(`${dir}/m/realdata/config.json`));
      const text = JSON.stringify(cfg);
      assert(
        text.includes('"trainedOn":["real0","real1"]'),
        `config records the real data: ${text.slice(0, 300)}`,
      );
      assert(text.includes("random (root architecture)"), "initialised at random");
      disposeNetworks(r);
    } finally {
      for (const s of sources) s.dispose();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
