// `edit`: the applications of a merged model's shared latent space (REFERENCE.md 6): interpolation
// between classes, style mixing across classes, and a semantic direction learned on one class applied to
// others. Each subcommand writes a PNG grid and, beside it, a JSON of its full config and what it measured.
// The computation lives in gan/edit/ (no Deno API); this file reads files and writes results.

import { dirname } from "node:path";
import { initGPU } from "../kernels/runtime.ts";
import { writeFileAtomic } from "../nn/checkpoint.ts";
import { scopeAsync, type Tensor } from "../nn/tensor.ts";
import { saveImageGrid } from "../data/mod.ts";
import { loadNetworks } from "../gan/train/networks.ts";
import type { Generator } from "../gan/stylegan2/generator.ts";
import type { NoiseMode } from "../gan/stylegan2/layers.ts";
import {
  type Attribute,
  classifierLogit,
  inkMass,
  meanBrightness,
  parseAttribute,
} from "../gan/edit/attributes.ts";
import { learnDirection, walkDirection } from "../gan/edit/direction.ts";
import { interpolateClasses } from "../gan/edit/interpolate.ts";
import { classIndex, type LatentOptions, latentsFromSeeds } from "../gan/edit/latents.ts";
import { styleMix } from "../gan/edit/mix.ts";
import { loadMnistFeatureNet, MNIST_ASSET } from "../metrics/features/mnist_net.ts";
import { num, parse, report } from "./args.ts";
import { parseSeeds } from "./generate.ts";
import { Progress } from "./progress.ts";

const USAGE = `usage: cli.ts edit <interpolate|mix|direction> --snapshot SNAP [options]

Applications of a conditional (merged) generator's shared latent space, each writing a PNG grid (--out)
and a JSON of what it measured beside it (same name, .json):
  interpolate --from-class A --to-class B [--seeds 0-3] [--steps 7]
      per seed two rows with z and noise fixed: the class input c moving linearly from A to B, and w
      moving linearly from A's w to B's w
  mix --coarse-class A --fine-class B --cutoff K [--coarse-seeds 0-3] [--fine-seeds 10-13]
      the style-mixing grid: ws [0, K) (coarse layers) from class-A samples (left column), ws [K, num_ws)
      from class-B samples (top row)
  direction --train-class A --attribute ATTR [--apply-classes B,C] [--samples 400] [--range 3]
      labels class-A latents by ATTR (top and bottom --fraction of their scores), fits a linear SVM on
      their w, and moves the ws of A and of every listed class along its unit normal; rows: class x seed,
      columns: steps in units of the std of class A's w along the normal
      ATTR: brightness | ink | mnist-logit:K (the bundled MNIST network's logit of digit K) |
            mnist-logit:K:PATH (logit K of that network with your weights, e.g. from 'features train-mnist')
Classes are indices or the snapshot's class names.`;

const COMMON = {
  snapshot: { type: "string", help: "snapshot (.safetensors) or SGA network pickle (.pkl)" },
  out: { type: "string", help: "output PNG (default runs/edit/<subcommand>.png); the JSON goes beside it" },
  trunc: { type: "string", help: "truncation psi", default: "1" },
  "noise-mode": { type: "string", help: "noise: const (fixed, default) or none", default: "const" },
  network: { type: "string", help: "G_ema or G", default: "G_ema" },
  json: { type: "boolean", help: "print the result as JSON" },
} as const;

const OPTIONS = {
  interpolate: {
    ...COMMON,
    "from-class": { type: "string", help: "class A" },
    "to-class": { type: "string", help: "class B" },
    seeds: { type: "string", help: "seeds of z (one pair of rows each)", default: "0-3" },
    steps: { type: "string", help: "images per path, both ends included", default: "7" },
  },
  mix: {
    ...COMMON,
    "coarse-class": { type: "string", help: "class of the coarse ws (left column)" },
    "fine-class": { type: "string", help: "class of the fine ws (top row)" },
    cutoff: { type: "string", help: "first w index taken from the fine class, 0..num_ws" },
    "coarse-seeds": { type: "string", help: "seeds of the coarse samples", default: "0-3" },
    "fine-seeds": { type: "string", help: "seeds of the fine samples", default: "10-13" },
  },
  direction: {
    ...COMMON,
    "train-class": { type: "string", help: "class whose latents are labelled and fit" },
    attribute: { type: "string", help: "brightness, ink, mnist-logit:K or mnist-logit:K:PATH" },
    "apply-classes": { type: "string", help: "other classes to move, comma-separated (default: all others)" },
    samples: { type: "string", help: "class-A latents scored for the SVM", default: "400" },
    fraction: { type: "string", help: "share labelled at each end (top: +1, bottom: -1)", default: "0.3" },
    "held-out": {
      type: "string",
      help: "share of the labelled latents held out for accuracy",
      default: "0.2",
    },
    C: { type: "string", help: "SVM cost of a margin violation", default: "1" },
    range: { type: "string", help: "walk from -R to +R projection stds", default: "3" },
    "step-count": { type: "string", help: "images per walk", default: "7" },
    seeds: { type: "string", help: "seeds of the walked latents (rows per class)", default: "0-3" },
    seed: { type: "string", help: "seed of the SVM's training latents and split", default: "0" },
  },
} as const;

type Sub = keyof typeof OPTIONS;
type Values = Record<string, string | boolean | undefined>;

export async function editCommand(args: string[]): Promise<void> {
  const first = args[0];
  if (!(first in OPTIONS)) {
    if (first === undefined || first === "--help" || first === "-h") {
      console.log(USAGE);
      return;
    }
    throw new Error(`edit: unknown subcommand '${first}'\n\n${USAGE}`);
  }
  const sub = first as Sub;
  const { values: v } = parse(args.slice(1), USAGE, OPTIONS[sub]);
  if (!v.snapshot) throw new Error("--snapshot is required");
  const psi = num(v.trunc, "trunc");
  const noiseMode = String(v["noise-mode"]) as NoiseMode;
  if (noiseMode !== "const" && noiseMode !== "none") {
    throw new Error(`--noise-mode must be const or none (fixed noise), got '${noiseMode}'`);
  }
  const which = String(v.network);
  if (which !== "G_ema" && which !== "G") throw new Error(`--network must be G_ema or G, got '${which}'`);
  const out = v.out ? String(v.out) : `runs/edit/${sub}.png`;
  if (!out.toLowerCase().endsWith(".png")) throw new Error(`--out must be a .png path, got '${out}'`);
  const rt = await initGPU();
  const snapshot = String(v.snapshot);
  const nets = await loadNetworks(snapshot);
  const G = which === "G" ? nets.G : nets.Gema;
  try {
    if (G.cDim < 1) {
      throw new Error(`${snapshot}: the generator is unconditional; edit needs a conditional one`);
    }
    const names = nets.state?.classNames ?? [];
    const cls = (opt: string) => {
      if (v[opt] === undefined) throw new Error(`--${opt} is required`);
      try {
        return classIndex(G, String(v[opt]), names);
      } catch (e) {
        throw new Error(`--${opt}: ${(e as Error).message}`);
      }
    };
    const lo: LatentOptions = { truncationPsi: psi, noiseMode };
    const config = {
      command: `edit ${sub}`,
      snapshot,
      network: which,
      options: v,
      generator: {
        resolution: G.imgResolution,
        channels: G.imgChannels,
        classes: G.cDim,
        classNames: names,
        numWs: G.numWs,
        wDim: G.wDim,
      },
      adapter: rt.info.description || rt.info.vendor,
    };
    await Deno.mkdir(dirname(out), { recursive: true });
    const run = sub === "interpolate" ? interpolate : sub === "mix" ? mix : direction;
    const { result, images, cols, text } = await run(G, v, cls, lo, names);
    const jsonPath = out.replace(/\.png$/i, ".json");
    try {
      await saveImageGrid(out, images, { cols, pad: 1 });
    } finally {
      images.dispose();
    }
    await writeFileAtomic(jsonPath, JSON.stringify({ ...config, png: out, ...result }, null, 2) + "\n");
    report({ png: out, json: jsonPath, ...result }, !!v.json, `${text}\nwrote ${out} and ${jsonPath}`);
  } finally {
    nets.G.dispose();
    nets.Gema.dispose();
    nets.D?.dispose();
  }
}

interface SubResult {
  result: Record<string, unknown>;
  images: Tensor;
  cols: number;
  text: string;
}

const label = (k: number, names: readonly string[]) => (names[k] ? `${k} (${names[k]})` : String(k));
const f3 = (x: number) => x.toFixed(3);

async function interpolate(
  G: Generator,
  v: Values,
  cls: (opt: string) => number,
  lo: LatentOptions,
  names: readonly string[],
): Promise<SubResult> {
  const a = cls("from-class"), b = cls("to-class");
  const seeds = parseSeeds(String(v.seeds)), steps = num(v.steps, "steps");
  const r = await scopeAsync(async () => {
    const z = latentsFromSeeds(G, seeds);
    return await interpolateClasses(G, z, a, b, steps, lo);
  });
  return {
    images: r.images,
    cols: steps,
    result: {
      fromClass: a,
      toClass: b,
      seeds,
      ts: r.ts,
      rows: seeds.flatMap((s) => [`seed ${s}: c from ${a} to ${b}`, `seed ${s}: w from ${a} to ${b}`]),
      cSpace: r.cSpace,
      wSpace: r.wSpace,
      pathsApartAtMiddle: r.pathsApartAtMiddle,
      units: "mean absolute pixel change in 0..255 levels",
    },
    text: `interpolation ${label(a, names)} -> ${label(b, names)}, ${seeds.length} seeds x ${steps} steps: ` +
      `pixel change per step c-path ${r.cSpace.stepChange.map(f3).join(" ")} (jump ratio ${
        f3(r.cSpace.jumpRatio)
      }), w-path ${r.wSpace.stepChange.map(f3).join(" ")} (jump ratio ${f3(r.wSpace.jumpRatio)}); ` +
      `paths ${f3(r.pathsApartAtMiddle)} levels apart at the middle`,
  };
}

async function mix(
  G: Generator,
  v: Values,
  cls: (opt: string) => number,
  lo: LatentOptions,
  names: readonly string[],
): Promise<SubResult> {
  const a = cls("coarse-class"), b = cls("fine-class");
  if (v.cutoff === undefined) throw new Error(`--cutoff is required (0..${G.numWs}, the generator's num_ws)`);
  const cutoff = num(v.cutoff, "cutoff");
  if (!Number.isInteger(cutoff) || cutoff < 0 || cutoff > G.numWs) {
    throw new Error(
      `--cutoff must be an integer in [0, ${G.numWs}] (the generator's num_ws), got ${v.cutoff}`,
    );
  }
  const coarseSeeds = parseSeeds(String(v["coarse-seeds"])), fineSeeds = parseSeeds(String(v["fine-seeds"]));
  const r = await scopeAsync(async () => {
    const zc = latentsFromSeeds(G, coarseSeeds), zf = latentsFromSeeds(G, fineSeeds);
    return await styleMix(G, zc, a, zf, b, cutoff, lo);
  });
  return {
    images: r.images,
    cols: r.cols,
    result: {
      coarseClass: a,
      fineClass: b,
      cutoff,
      numWs: G.numWs,
      coarseSeeds,
      fineSeeds,
      coarseResolutions: r.coarseResolutions,
      fineResolutions: r.fineResolutions,
      toCoarse: r.toCoarse,
      toFine: r.toFine,
      layout: "row 0: fine-class samples; column 0: coarse-class samples; cell (i, j): their mix",
      units: "mean absolute pixel difference of the mixes to their sources, 0..255 levels",
    },
    text:
      `style mix: ws [0, ${cutoff}) (resolutions ${r.coarseResolutions.join(",") || "none"}) from class ${
        label(a, names)
      }, ws [${cutoff}, ${G.numWs}) (${r.fineResolutions.join(",") || "none"}) from class ${
        label(b, names)
      }; ` +
      `mixes are ${f3(r.toCoarse)} levels from their coarse and ${f3(r.toFine)} from their fine sample`,
  };
}

async function loadAttribute(spec: string): Promise<{ attribute: Attribute; dispose: () => void }> {
  const a = parseAttribute(spec);
  if (a.kind === "brightness") return { attribute: meanBrightness, dispose: () => {} };
  if (a.kind !== "logit") return { attribute: inkMass, dispose: () => {} };
  if (a.index > 9) throw new Error(`--attribute ${spec}: the MNIST network has logits 0..9`);
  const path = a.weights ?? MNIST_ASSET;
  const net = await loadMnistFeatureNet(path);
  const attribute = classifierLogit(
    spec,
    `logit of digit ${a.index} from ${net.name}, weights ${a.weights ?? "assets/mnist_features.safetensors"}`,
    (x) => net.classify(x),
    a.index,
  );
  return { attribute, dispose: () => net.dispose() };
}

async function direction(
  G: Generator,
  v: Values,
  cls: (opt: string) => number,
  lo: LatentOptions,
  names: readonly string[],
): Promise<SubResult> {
  const a = cls("train-class");
  if (!v.attribute) throw new Error("--attribute is required (brightness, ink, mnist-logit:K[:PATH])");
  const others = v["apply-classes"] === undefined
    ? Array.from({ length: G.cDim }, (_, k) => k).filter((k) => k !== a)
    : String(v["apply-classes"]).split(",").map((s) => s.trim()).filter((s) => s !== "").map((s) => {
      try {
        return classIndex(G, s, names);
      } catch (e) {
        throw new Error(`--apply-classes: ${(e as Error).message}`);
      }
    });
  const classes = [a, ...others.filter((k, i) => k !== a && others.indexOf(k) === i)];
  const range = num(v.range, "range"), count = num(v["step-count"], "step-count");
  if (!(range > 0)) throw new Error(`--range must be > 0, got ${v.range}`);
  if (!Number.isInteger(count) || count < 2) throw new Error(`--step-count must be an integer >= 2`);
  const steps = Array.from({ length: count }, (_, i) => -range + (2 * range * i) / (count - 1));
  const seeds = parseSeeds(String(v.seeds));
  const samples = num(v.samples, "samples");
  const { attribute, dispose } = await loadAttribute(String(v.attribute));
  try {
    const bar = new Progress(`direction: scoring class ${a}`, samples, "latents");
    const dir = await learnDirection(G, attribute, a, {
      ...lo,
      samples,
      fraction: num(v.fraction, "fraction"),
      heldOut: num(v["held-out"], "held-out"),
      C: num(v.C, "C"),
      seed: num(v.seed, "seed"),
      onProgress: (done) => bar.update(done),
    });
    bar.done();
    const walk = await scopeAsync(async () => {
      const z = latentsFromSeeds(G, seeds);
      return await walkDirection(G, dir, attribute, z, classes, steps, lo);
    });
    const lines = walk.walks.map((w) =>
      `  class ${label(w.classIndex, names)}${w.classIndex === a ? " (trained)" : ""}: mean ${
        w.meanByStep.map(f3).join(" ")
      }; change ${f3(w.change)} (${f3(w.change / dir.scoreStd)} train stds), rising steps ${
        f3(w.risingSteps)
      }, Spearman of mean ${f3(w.spearmanOfMean)}, per sample ${f3(w.spearmanPerSample)}, monotone samples ${
        f3(w.monotoneSamples)
      }`
    );
    return {
      images: walk.images,
      cols: steps.length,
      result: {
        attribute: { spec: String(v.attribute), description: attribute.description },
        direction: dir,
        steps,
        stepUnits: `projection stds of class ${a}'s w along the normal (1 = ${f3(dir.projectionStd)} in W)`,
        seeds,
        classes,
        walks: walk.walks.map((w) => ({ ...w, changeInTrainStds: w.change / dir.scoreStd })),
        layout: "rows: for each class (in 'classes' order), one row per seed; columns: steps",
      },
      text:
        `direction for ${attribute.name} on class ${label(a, names)}: SVM held-out accuracy ${
          f3(dir.svm.heldOutAccuracy)
        } (train ${f3(dir.svm.trainAccuracy)}, ${dir.svm.trainCount} + ${dir.svm.heldOutCount} latents), ` +
        `corr(w . n, ${attribute.name}) ${f3(dir.correlation)}; ${attribute.name} along the walk ` +
        `(steps ${steps.map((s) => s.toFixed(1)).join(" ")}):\n${lines.join("\n")}`,
    };
  } finally {
    dispose();
  }
}
