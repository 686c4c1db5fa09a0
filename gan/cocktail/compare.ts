// `compare`: every merge method on the same sources and budget, then one evaluation and one report
// (report.json + index.html). The reference samples are drawn once and shared by all methods.

import { existsSync } from "node:fs";
import { openDataset } from "../../data/open.ts";
import type { Dataset } from "../../data/dataset.ts";
import { type FeatureNetwork, loadFeatureNetwork } from "../../metrics/features/index.ts";
import { MNIST_ASSET } from "../../metrics/features/mnist_net.ts";
import type { Generator } from "../stylegan2/generator.ts";
import { loadNetworks } from "../train/networks.ts";
import type { TrainingRecipe } from "../train/presets.ts";
import type { EwcLambdas } from "./baselines.ts";
import {
  Evaluator,
  type ModelScores,
  pixelFeatureNetwork,
  sharedWeights,
  weightDistance,
} from "./evaluate.ts";
import { ALL_METHODS, checkSources, type MergeMethod, mergeSources, METHODS, totalKimg } from "./merge.ts";
import {
  classGrids,
  type CompareReport,
  interpolationStrip,
  type MethodReport,
  sourceGrid,
  writeReport,
} from "./report.ts";
import { chooseRoot, type RootChoice } from "./root.ts";
import { rootStudy } from "./root_study.ts";
import { DatasetSource, type ImageSource, openSources, StyleGAN2Source } from "./sources.ts";
import { averageInto } from "./averaging.ts";
import { conditionalGenerator } from "./conditional.ts";
import { FidelityJudge, sourceDigitSet } from "./fidelity.ts";
import { manualSeed } from "../../nn/creation.ts";
import { writeFileAtomic } from "../../nn/checkpoint.ts";
import { cloneGenerator } from "../train/networks.ts";
import { disposeNetworks, type StageObserver } from "./stage.ts";

export interface CompareOptions {
  /** Source specs (snapshot files, run directories, PATH#CLASS). */
  sources: string[];
  outDir: string;
  /** Budget per stage in kimg (merge.ts explains how methods share it). */
  kimg: number;
  /** Cocktail's budget per rooting run (default `kimg`). */
  rootKimg?: number;
  methods?: MergeMethod[];
  root?: number | "auto";
  /** Real data per source (dataset specs), for evaluation only. */
  real?: string[];
  /** Feature network spec (metrics/features) or "pixels"; default: the bundled MNIST network if present. */
  features?: string;
  samplesPerClass?: number;
  seed?: number;
  resume?: boolean;
  preset?: string;
  recipe?: Partial<TrainingRecipe>;
  freezeD?: number;
  ewcLambda?: EwcLambdas;
  proportions?: number[];
  ddof?: 0 | 1;
  /**
   * Also run cocktail with every eligible root and report, next to each root's recall score, the merged
   * model's union FID: does the recall-based choice pick the best root?
   */
  rootStudy?: boolean;
  /** Also score a second sample of each source against the reference (default true). */
  floor?: boolean;
  /** Class fidelity beside per-class FID (default true); the source classifier's Adam steps. */
  fidelity?: boolean;
  fidelitySteps?: number;
  /** The WebGPU adapter, named in the report (the command line knows it). */
  adapter?: string;
  observer?: StageObserver;
}

/**
 * Fig. 1 of the paper, small: the sources' G_emas averaged without rooting (each made conditional with
 * its own class kept, the same seeded class codes), when every source is a StyleGAN2 of one architecture;
 * null otherwise. The caller owns the generator.
 */
export function unrootedAverage(sources: ImageSource[], seed: number): Promise<Generator> | null {
  const gs = sources.map((s) => (s instanceof StyleGAN2Source ? s.G : null));
  if (gs.some((g) => !g || g.cDim > 0)) return null;
  const arch = (g: Generator) => JSON.stringify(g.initKwargs());
  if (gs.some((g) => arch(g!) !== arch(gs[0]!))) return null;
  return (async () => {
    const converted = gs.map((g, i) => {
      manualSeed(seed);
      return conditionalGenerator(g!, sources.length, { keepClass: i });
    });
    const avg = cloneGenerator(converted[0]);
    try {
      await averageInto(converted, avg, "unrooted sources");
    } finally {
      for (const g of converted) g.dispose();
    }
    return avg;
  })();
}

/**
 * `merge --eval`: per-class and union FID, KID, precision/recall against the sources' samples, with class
 * fidelity beside every per-class FID (the classifier's description comes back too).
 */
export async function evaluateMerged(
  sources: ImageSource[],
  G: Generator,
  o: {
    features?: string;
    samplesPerClass?: number;
    seed?: number;
    fidelitySteps?: number;
    ddof?: 0 | 1;
    observer?: StageObserver;
  },
): Promise<{ scores: ModelScores; featureNetwork: string; classFidelity: Record<string, unknown> }> {
  const features = await openFeatures(o.features);
  let judge: FidelityJudge | null = null;
  try {
    const common = { resolution: G.imgResolution, channels: G.imgChannels, seed: o.seed ?? 0 };
    const samplesPerClass = o.samplesPerClass ?? 500;
    const evaluator = await Evaluator.create(sources, {
      ...common,
      features,
      samplesPerClass,
      ddof: o.ddof,
      observer: o.observer,
    });
    judge = evaluator.judge = await FidelityJudge.create(sources, {
      ...common,
      steps: o.fidelitySteps,
      samplesPerClass,
      onProgress: stepsProgress(o.observer, "source classifier"),
    });
    const scores = await evaluator.evaluate(G, "merged model");
    return { scores, featureNetwork: features.name, classFidelity: judge.describe() };
  } finally {
    judge?.dispose();
    features.dispose();
  }
}

/** A training loop's (step, steps) callback drawn on the observer as its own bar. */
function stepsProgress(observer: StageObserver | undefined, label: string) {
  if (!observer) return undefined;
  return (step: number, steps: number) => {
    if (step === 1) observer.start(label, steps, "steps");
    observer.step(label, step, {});
    if (step === steps) observer.end(label);
  };
}

/** Scores of a method cached by a resumable run (same snapshot, same evaluation settings), or null. */
async function cachedEntry(path: string, key: string): Promise<MethodReport | null> {
  if (!existsSync(path)) return null;
  const c = JSON.parse(await Deno.readTextFile(path)) as { key?: string; entry?: MethodReport };
  return c.key === key && c.entry ? c.entry : null;
}

/** The feature network of a spec; "pixels" (or "pixels:N") needs no weights. */
export async function openFeatures(spec: string | undefined): Promise<FeatureNetwork> {
  const s = spec ?? (existsSync(MNIST_ASSET) ? "mnist" : "pixels");
  const m = /^pixels(?::(\d+))?$/.exec(s);
  if (m) return pixelFeatureNetwork(m[1] ? Number(m[1]) : 8);
  return await loadFeatureNetwork(s);
}

/** The root index: a number, or "auto" (recall-based, root.ts). */
export async function resolveRoot(
  sources: ImageSource[],
  root: number | "auto" | undefined,
  features: FeatureNetwork,
  seed: number,
  samplesPerSource = 500,
): Promise<{ root: number; choice: RootChoice | null }> {
  if (root === "auto") {
    const choice = await chooseRoot(sources, features, { seed, samplesPerSource });
    return { root: choice.root, choice };
  }
  const r = root ?? sources.findIndex((s) => s instanceof StyleGAN2Source && s.hasD);
  if (r < 0) throw new Error("no source can be the root (a root must be a StyleGAN2 snapshot with D)");
  return { root: r, choice: null };
}

/** d(A, B) and d(A, A->B) for every rooted source of the root's architecture (G_ema weights). */
async function rootingDistances(sources: ImageSource[], root: number, rooted: Record<number, string>) {
  const A = sources[root];
  const out: Record<string, unknown>[] = [];
  if (!(A instanceof StyleGAN2Source)) return out;
  for (const [k, path] of Object.entries(rooted)) {
    const i = Number(k), B = sources[i];
    if (!(B instanceof StyleGAN2Source)) {
      out.push({ source: i, note: `${B.kind} source: no weights to compare` });
      continue;
    }
    const AB = await loadNetworks(path);
    try {
      const common = sharedWeights(A.G, B.G).filter((n) => sharedWeights(A.G, AB.Gema).includes(n));
      if (!common.length) {
        out.push({ source: i, note: "different architecture from the root: no shared weights" });
        continue;
      }
      const dAB = await weightDistance(A.G, B.G, common);
      const dArooted = await weightDistance(A.G, AB.Gema, common);
      out.push({
        source: i,
        layers: common.length,
        dRootSource: dAB.distance,
        dRootRooted: dArooted.distance,
      });
    } finally {
      for (const m of [AB.G, AB.D, AB.Gema]) m?.dispose();
    }
  }
  return out;
}

async function distanceFromRoot(root: ImageSource, G: Generator): Promise<number | undefined> {
  if (!(root instanceof StyleGAN2Source)) return undefined;
  const names = sharedWeights(root.G, G);
  return names.length ? (await weightDistance(root.G, G, names)).distance : undefined;
}

/** Runs the methods, evaluates them, writes the report; returns the path of report.json. */
export async function compareMethods(
  o: CompareOptions,
): Promise<{ reportPath: string; report: CompareReport }> {
  const methods = o.methods ?? METHODS;
  for (const m of methods) {
    if (!ALL_METHODS.includes(m)) throw new Error(`unknown method ${m} (${ALL_METHODS.join(", ")})`);
  }
  if (methods.includes("realdata") && !o.real?.length) {
    throw new Error(
      "realdata (the real-data upper bound) trains on real images: give --real, one dataset per source",
    );
  }
  const seed = o.seed ?? 0;
  const log = (m: string) => o.observer?.log?.(m);
  await Deno.mkdir(o.outDir, { recursive: true });
  const sources = await openSources(o.sources);
  let features: FeatureNetwork | null = null;
  let judge: FidelityJudge | null = null;
  try {
    features = await openFeatures(o.features);
    const { root, choice } = await resolveRoot(
      sources,
      o.root,
      features,
      seed,
      Math.min(o.samplesPerClass ?? 500, 500),
    );
    const notes = checkSources(sources, root);
    if (choice) {
      log(
        `root chosen by recall: source ${root} (${
          choice.scores.map((s) => s.recall?.toFixed(3) ?? "-").join(", ")
        })`,
      );
    }
    const res = sources[root].resolution, ch = sources[root].channels;
    if (o.real?.length && o.real.length !== sources.length) {
      throw new Error(`--real needs one dataset spec per source (${sources.length}), got ${o.real.length}`);
    }
    // One evaluator (reference samples, real data) per output resolution and channel count.
    const evaluators = new Map<string, Evaluator>();
    const evaluatorFor = async (r: number, c: number): Promise<Evaluator> => {
      const key = `${r}x${c}`;
      if (!evaluators.has(key)) {
        let real: Dataset[] | null = null;
        if (o.real?.length) {
          real = [];
          for (const spec of o.real) real.push(await openDataset(spec, { resolution: r }));
        }
        log(`drawing reference samples of the sources (${r}x${r})`);
        evaluators.set(
          key,
          await Evaluator.create(sources, {
            features: features!,
            samplesPerClass: o.samplesPerClass ?? 1000,
            resolution: r,
            channels: c,
            seed,
            ddof: o.ddof,
            observer: o.observer,
          }, real),
        );
      }
      return evaluators.get(key)!;
    };
    const evaluator = await evaluatorFor(res, ch);
    if (o.fidelity ?? true) {
      log("training the source classifier (class fidelity)");
      judge = evaluator.judge = await FidelityJudge.create(sources, {
        resolution: res,
        channels: ch,
        seed,
        steps: o.fidelitySteps,
        samplesPerClass: o.samplesPerClass ?? 1000,
        onProgress: stepsProgress(o.observer, "source classifier"),
      });
    }
    const real = !!o.real?.length;
    const sourceGrids: string[] = [];
    for (const [i, s] of sources.entries()) {
      sourceGrids.push(await sourceGrid(s, o.outDir, `source${i}.png`, res, ch, 16, seed));
    }

    const report: CompareReport = {
      methods: {},
      featureNetwork: features.name,
      covariance: (o.ddof ?? 1) === 1 ? "divided by N-1 (ddof 1)" : "divided by N (ddof 0, as SGA)",
      adapter: o.adapter ?? null,
      seed,
      classes: await Promise.all(sources.map(async (s, i) => ({
        class: i,
        source: s.name,
        digits: await sourceDigitSet(s),
        real: o.real?.[i] ?? null,
      }))),
      classFidelity: evaluator.judge?.describe() ?? null,
      prK: 3,
      samplesPerClass: o.samplesPerClass ?? 1000,
      evaluatedAgainst: real
        ? "the sources' own samples, and real data per class"
        : "the sources' own samples",
      sources: sources.map((s, i) => ({
        index: i,
        name: s.name,
        resolution: s.resolution,
        channels: s.channels,
        ...s.describe(),
      })),
      root: {
        index: root,
        chosenBy: choice ? "recall (auto)" : o.root === undefined ? "default (first StyleGAN2)" : "user",
        auto: choice,
      },
      resolution: res,
      channels: ch,
      budget: {
        kimgPerStage: o.kimg,
        rootKimg: o.rootKimg ?? o.kimg,
        cocktail: `${o.rootKimg ?? o.kimg} kimg per rooted model (${
          sources.length - 1
        }) + ${o.kimg} kimg merging`,
        baselines: `${
          totalKimg(o.kimg, sources.length, o.rootKimg)
        } kimg each (the same number of images as cocktail in total)`,
      },
      notes,
      sourceGrids,
      references: {},
      real: o.real ?? null,
      referenceGrids: {},
    };
    const referenceGrids = report.referenceGrids as Record<string, string[]>;
    // The real-data upper bound trains on the user's real images, opened at the merged model's resolution.
    const realData = methods.includes("realdata")
      ? await Promise.all(
        o.real!.map(async (spec) => new DatasetSource(await openDataset(spec, { resolution: res }))),
      )
      : undefined;
    for (const method of methods) {
      log(`training ${method}`);
      const r = await mergeSources({
        sources,
        method,
        outDir: o.outDir,
        kimg: o.kimg,
        rootKimg: o.rootKimg,
        root,
        proportions: o.proportions,
        seed,
        resume: o.resume,
        preset: o.preset,
        recipe: o.recipe,
        freezeD: o.freezeD,
        ewcLambda: o.ewcLambda,
        realData,
        observer: o.observer,
      });
      try {
        for (const n of r.notes) if (!notes.includes(n)) notes.push(n);
        const cachePath = `${o.outDir}/eval-${method}.json`;
        const key = JSON.stringify({
          snapshot: r.snapshot,
          n: o.samplesPerClass ?? 1000,
          seed,
          f: features.name,
        });
        let entry = o.resume ? await cachedEntry(cachePath, key) : null;
        if (entry) log(`${method}: evaluation of ${r.snapshot} found in ${cachePath}`);
        else {
          log(`evaluating ${method}`);
          const t0 = performance.now();
          const scores = await evaluator.evaluate(r.Gema, method);
          const grids = await classGrids(r.Gema, o.outDir, method, 16, seed);
          const interpolation = `${method}_interpolation.png`;
          await interpolationStrip(r.Gema, `${o.outDir}/${interpolation}`, { seed });
          entry = {
            ...scores,
            snapshot: r.snapshot,
            stages: r.stages.map((s) => ({
              name: s.name,
              kimg: s.kimg,
              seconds: s.seconds,
              resumed: s.resumed,
              stats: s.stats,
            })),
            trainSeconds: r.stages.reduce((s, x) => s + x.seconds, 0),
            distanceFromRoot: await distanceFromRoot(sources[root], r.Gema),
            grids,
            interpolation,
            evalSeconds: (performance.now() - t0) / 1000,
          };
          await writeFileAtomic(cachePath, JSON.stringify({ key, entry }, null, 2) + "\n");
        }
        report.methods[method] = entry;
        report.settings = r.settings;
        if (method === "cocktail" && r.rooted) {
          report.weightDistances = {
            definition:
              "d(A,B) = mean over layers (G_ema weights shared with equal shapes) of ||W_A - W_B||_2; " +
              "A = root, B = another source, A->B = the root fine-tuned on B (rooting)",
            pairs: await rootingDistances(sources, root, r.rooted),
          };
          if (r.averaged && existsSync(r.averaged)) {
            const avg = await loadNetworks(r.averaged);
            try {
              const name = "cocktail average (before merge fine-tuning)";
              report.references![name] = await evaluator.evaluate(avg.Gema, name);
              referenceGrids[name] = await classGrids(avg.Gema, o.outDir, "cocktail_average", 16, seed);
            } finally {
              for (const m of [avg.G, avg.D, avg.Gema]) m?.dispose();
            }
          }
          const unrooted = await unrootedAverage(sources, seed);
          if (unrooted) {
            try {
              const name = "average of the sources without rooting";
              report.references![name] = await evaluator.evaluate(unrooted, name);
              referenceGrids[name] = await classGrids(unrooted, o.outDir, "unrooted_average", 16, seed);
            } finally {
              unrooted.dispose();
            }
          }
        }
      } finally {
        disposeNetworks(r);
      }
    }
    if (o.rootStudy) {
      report.rootStudy = await rootStudy(sources, {
        outDir: o.outDir,
        kimg: o.kimg,
        proportions: o.proportions,
        resume: o.resume,
        preset: o.preset,
        recipe: o.recipe,
        observer: o.observer,
        samplesPerSource: Math.min(o.samplesPerClass ?? 500, 500),
      }, {
        features,
        choice,
        seed,
        evaluatorFor,
        done: report.methods.cocktail
          ? {
            root,
            unionFid: report.methods.cocktail.unionFid,
            realUnionFid: report.methods.cocktail.real?.unionFid ?? null,
          }
          : null,
        log,
      });
    }
    if (o.floor ?? true) {
      log("scoring the sampling floor");
      report.references!["floor (second sample of each source)"] = await evaluator.floor() as ModelScores;
    }
    const reportPath = await writeReport(o.outDir, report);
    return { reportPath, report };
  } finally {
    judge?.dispose();
    features?.dispose();
    for (const s of sources) s.dispose();
  }
}
