// GAN Cocktail (REFERENCE.md 6) and the entry point of every merge method. Stage 1 roots every source in
// the root model (rooting.ts); stage 2 averages the root and the rooted models (every parameter and
// buffer, equal weights) and fine-tunes the average adversarially on class-proportioned batches of all
// sources' images. Baselines (baselines.ts) train on the same batches. Budget: cocktail spends `kimg` per
// rooted model and `kimg` on merging, N * kimg in all; a baseline trains N * kimg, so every method sees
// the same number of generated images.

import { type TrainingRecipe, trainingRecipe } from "../train/presets.ts";
import { cloneGenerator } from "../train/networks.ts";
import { saveSnapshot, untrainedState } from "../train/snapshot.ts";
import { Discriminator } from "../stylegan2/discriminator.ts";
import { averageInto } from "./averaging.ts";
import { type BaselineMethod, BASELINES, type EwcLambdas, trainBaseline } from "./baselines.ts";
import { conditionalRoot, rootModels } from "./rooting.ts";
import { type ImageSource, mixedSourceBatch, normaliseProportions, proportionalClasses } from "./sources.ts";
import {
  disposeNetworks,
  fromTrained,
  type Networks,
  presetForResolution,
  runStage,
  sourceTrainingSettings,
  type StageObserver,
  type StageResult,
  type StageSettings,
} from "./stage.ts";

export type MergeMethod = "cocktail" | BaselineMethod;
/** The paper's methods (what `compare` runs by default). */
export const METHODS: MergeMethod[] = ["cocktail", ...BASELINES];
/** Every method a merge can run: the paper's and the real-data upper bound (which needs `realData`). */
export const ALL_METHODS: MergeMethod[] = [...METHODS, "realdata"];

export interface MergeOptions {
  sources: ImageSource[];
  method: MergeMethod;
  outDir: string;
  /** Budget per stage in kimg (see the header). */
  kimg: number;
  /** Cocktail: budget of each rooting run in kimg (default `kimg`); baselines then train (N-1) R + K. */
  rootKimg?: number;
  root: number;
  /** Class proportions of the batches (uniform by default). */
  proportions?: number[];
  seed?: number;
  resume?: boolean;
  /** Training preset; default: the root's own run's, else one chosen by resolution. */
  preset?: string;
  recipe?: Partial<TrainingRecipe>;
  freezeD?: number;
  ewcLambda?: EwcLambdas;
  /** realdata (the real-data upper bound): real images of each class, in source order. */
  realData?: ImageSource[];
  gridSize?: number;
  observer?: StageObserver;
}

export interface StageSummary {
  name: string;
  outDir: string;
  snapshot: string;
  kimg: number;
  seconds: number;
  resumed: boolean;
  stats: Record<string, number>;
}

export interface MergeResult extends Networks {
  method: MergeMethod;
  outDir: string;
  /** The final snapshot (G, D, G_ema). */
  snapshot: string;
  stages: StageSummary[];
  /** Cocktail only: the rooted models' snapshots by source index, and the plain average's snapshot. */
  rooted?: Record<number, string>;
  averaged?: string;
  settings: { preset: string; recipe: TrainingRecipe; seed: number; proportions: number[]; root: number };
  notes: string[];
}

/**
 * The images every method trains on, in kimg: cocktail's N-1 rooting runs of `rootKimg` (default `kimg`)
 * plus `kimg` of merging; a baseline trains this many in one run.
 */
export function totalKimg(kimg: number, numSources: number, rootKimg?: number): number {
  return (numSources - 1) * (rootKimg ?? kimg) + kimg;
}

function summary(r: StageResult): StageSummary {
  return {
    name: r.name,
    outDir: r.outDir,
    snapshot: r.snapshot,
    kimg: r.kimg,
    seconds: r.seconds,
    resumed: r.resumed,
    stats: r.stats,
  };
}

/** The settings every stage of a merge shares. */
export async function stageSettings(o: MergeOptions): Promise<{ settings: StageSettings; notes: string[] }> {
  const root = o.sources[o.root];
  const notes: string[] = [];
  let preset = o.preset, recipe: Partial<TrainingRecipe> = {};
  if (!preset) {
    const own = "path" in root ? await sourceTrainingSettings(root.path) : null;
    if (own) {
      preset = own.preset;
      recipe = own.recipe;
      notes.push(`training recipe: the root's own run (preset ${own.preset}, from its config.json)`);
    } else {
      preset = presetForResolution(root.resolution);
      notes.push(`training recipe: preset ${preset} (the root's run configuration was not found)`);
    }
  }
  const full = trainingRecipe(preset, { ...recipe, ...(o.recipe ?? {}) });
  return {
    settings: {
      preset,
      recipe: full,
      seed: o.seed ?? 0,
      resume: !!o.resume,
      gridSize: o.gridSize,
      observer: o.observer,
    },
    notes,
  };
}

/** Checks the sources and the root; returns notes on resampling for the report. */
export function checkSources(sources: ImageSource[], root: number): string[] {
  if (sources.length < 2) throw new Error(`merging needs at least 2 sources, got ${sources.length}`);
  if (!Number.isInteger(root) || root < 0 || root >= sources.length) {
    throw new Error(`root must be a source index in [0, ${sources.length}), got ${root}`);
  }
  const r = sources[root];
  if (r.kind !== "stylegan2") {
    throw new Error(`the root (source ${root}, ${r.name}) must be a StyleGAN2 snapshot; it is a ${r.kind}`);
  }
  const notes: string[] = [];
  sources.forEach((s, i) => {
    if (i === root) return;
    if (s.resolution !== r.resolution) {
      notes.push(
        `source ${i} (${s.name}) generates ${s.resolution}x${s.resolution} images; they are ` +
          `resampled to the root's ${r.resolution}x${r.resolution} (area averaging down, bilinear up)`,
      );
    }
    if (s.channels !== r.channels) {
      notes.push(
        `source ${i} (${s.name}) has ${s.channels} channel(s); converted to the root's ${r.channels} ` +
          (r.channels === 1 ? "(channel mean)" : "(grey repeated)"),
      );
    }
  });
  return notes;
}

/** Runs one merge method on the sources; the caller owns the returned networks. */
export async function mergeSources(o: MergeOptions): Promise<MergeResult> {
  const notes = checkSources(o.sources, o.root);
  if (!ALL_METHODS.includes(o.method)) {
    throw new Error(`unknown method ${o.method} (${ALL_METHODS.join(", ")})`);
  }
  if (!(o.kimg > 0)) throw new Error(`kimg must be positive, got ${o.kimg}`);
  if (o.rootKimg !== undefined && !(o.rootKimg > 0)) {
    throw new Error(`rootKimg must be positive, got ${o.rootKimg}`);
  }
  const n = o.sources.length;
  const proportions = normaliseProportions(o.proportions, n);
  const { settings, notes: more } = await stageSettings(o);
  notes.push(...more);
  const base = {
    preset: settings.preset,
    recipe: settings.recipe as TrainingRecipe,
    seed: settings.seed,
    proportions,
    root: o.root,
  };
  if (o.method !== "cocktail") {
    const r = await trainBaseline({
      method: o.method,
      sources: o.sources,
      root: o.root,
      proportions,
      outDir: o.outDir,
      kimg: totalKimg(o.kimg, n, o.rootKimg),
      settings,
      freezeD: o.freezeD,
      ewcLambda: o.ewcLambda,
      realData: o.realData,
    });
    return {
      method: o.method,
      outDir: r.outDir,
      snapshot: r.snapshot,
      G: r.G,
      D: r.D,
      Gema: r.Gema,
      stages: [summary(r)],
      settings: base,
      notes,
    };
  }
  return await cocktail(o, settings, proportions, base, notes);
}

async function cocktail(
  o: MergeOptions,
  settings: StageSettings,
  proportions: number[],
  base: MergeResult["settings"],
  notes: string[],
): Promise<MergeResult> {
  const { sources, root } = o;
  const n = sources.length;
  const dir = `${o.outDir}/cocktail`;
  const res = sources[root].resolution, ch = sources[root].channels;
  // Stage 1: rooting.
  const rooted = await rootModels({ sources, root, outDir: dir, kimg: o.rootKimg ?? o.kimg, settings });
  const stages = [...rooted.values()].map(summary);
  let averagedPath = "";
  try {
    // Stage 2: average of GAN_r and every GAN_{r->i}, then merge fine-tuning.
    const mergeDir = `${dir}/stage2-merge`;
    averagedPath = `${dir}/averaged.safetensors`;
    // G is the mean of the G_emas (G_ema starts as a copy of it), D the mean of the Ds (REFERENCE.md 6).
    const averaged = async (): Promise<Networks> => {
      const r = await conditionalRoot(sources[root], n, settings.seed, root);
      const all = [r, ...rooted.values()];
      try {
        const G = cloneGenerator(r.Gema);
        const D = Discriminator.fromInitKwargs(r.D.initKwargs() as never);
        await averageInto(all.map((m) => m.Gema), G, "EMA generators");
        await averageInto(all.map((m) => m.D), D, "discriminators");
        const Gema = cloneGenerator(G);
        await saveSnapshot(averagedPath, { G, D, Gema }, untrainedState(settings.seed));
        return { G, D, Gema };
      } finally {
        disposeNetworks(r);
      }
    };
    const merged = await runStage({
      name: "merge",
      outDir: mergeDir,
      kimg: o.kimg,
      init: averaged,
      realBatch: mixedSourceBatch(sources, proportions, res, ch),
      fakeClasses: proportionalClasses(proportions),
      description: {
        method: "cocktail",
        stage: "merging",
        root: sources[root].name,
        sources: sources.map((s) => s.name),
        rooted: Object.fromEntries([...rooted].map(([i, r]) => [i, r.snapshot])),
        averaged: averagedPath,
        proportions,
      },
    }, fromTrained(settings));
    stages.push(summary(merged));
    return {
      method: "cocktail",
      outDir: dir,
      snapshot: merged.snapshot,
      G: merged.G,
      D: merged.D,
      Gema: merged.Gema,
      stages,
      rooted: Object.fromEntries([...rooted].map(([i, r]) => [i, r.snapshot])),
      averaged: averagedPath,
      settings: base,
      notes,
    };
  } finally {
    for (const r of rooted.values()) disposeNetworks(r);
  }
}
