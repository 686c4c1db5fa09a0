// One training stage of a merge (a rooting run, the merge fine-tuning, a baseline): the shared training
// loop in its own resumable run directory, with progress reported to an observer. With `resume`, a
// stage whose newest snapshot already reached its budget is not trained again, and the networks it
// starts from are only built when there is no snapshot to resume from.

import { dirname } from "node:path";
import type { Tensor } from "../../nn/tensor.ts";
import type { StyleGAN2Config } from "../stylegan2/config.ts";
import type { Discriminator } from "../stylegan2/discriminator.ts";
import type { Generator } from "../stylegan2/generator.ts";
import type { RealBatch, StepContext, TickInfo, TrainResult } from "../train/loop.ts";
import { train } from "../train/loop.ts";
import { trainingPresetNames, type TrainingRecipe } from "../train/presets.ts";
import { RunDir } from "../train/run_dir.ts";

/** Receives progress of the stages (the command line draws bars from it). */
export interface StageObserver {
  /** `unit` of the total: images (default) or, for an evaluation, parts (feature chunks and score sets). */
  start(stage: string, totalImages: number, unit?: string): void;
  step(stage: string, doneImages: number, stats: Record<string, number>): void;
  end(stage: string): void;
  /** At every tick of the training loop (after its statistics and snapshot), awaited. */
  tick?(stage: string, tick: TickInfo): void | Promise<void>;
  log?(message: string): void;
}

/** How every stage of a merge trains. */
export interface StageSettings {
  preset: string;
  recipe: Partial<TrainingRecipe>;
  seed: number;
  resume: boolean;
  gridSize?: number;
  keepSnapshots?: number;
  observer?: StageObserver;
}

export interface Networks {
  G: Generator;
  D: Discriminator;
  Gema: Generator;
}

export interface StageSpec {
  /** Short name, also the progress label. */
  name: string;
  outDir: string;
  kimg: number;
  /** The networks to start from (built lazily: not needed when resuming); null = fresh `arch`. */
  init: (() => Networks | Promise<Networks>) | null;
  arch?: StyleGAN2Config;
  realBatch: (n: number, ctx: StepContext) => RealBatch;
  fakeClasses?: (n: number, random: () => number) => number[];
  freezeD?: number;
  extraGLoss?: (G: Generator, ctx: StepContext) => Tensor | null;
  extraDLoss?: (D: Discriminator, ctx: StepContext) => Tensor | null;
  description: Record<string, unknown>;
}

export interface StageResult extends Networks {
  name: string;
  outDir: string;
  snapshot: string;
  kimg: number;
  seconds: number;
  /** Statistics of the last tick. */
  stats: Record<string, number>;
  resumed: boolean;
}

/** Runs (or resumes, or skips when finished) one stage; the caller owns the returned networks. */
export async function runStage(spec: StageSpec, s: StageSettings): Promise<StageResult> {
  if (!(spec.kimg > 0)) throw new Error(`stage ${spec.name}: kimg must be positive, got ${spec.kimg}`);
  const run = new RunDir(spec.outDir);
  const existing = run.latestSnapshot();
  if (existing && !s.resume) {
    throw new Error(
      `stage ${spec.name}: ${spec.outDir} already holds snapshots; pass --resume to continue, ` +
        "or use another --out",
    );
  }
  const resuming = !!existing;
  const init = resuming ? undefined : spec.init ? await spec.init() : undefined;
  const t0 = performance.now();
  let startNimg = 0;
  const obs = s.observer;
  const result: TrainResult = await train({
    outDir: spec.outDir,
    preset: s.preset,
    recipe: s.recipe,
    arch: init ? undefined : spec.arch,
    init,
    realBatch: spec.realBatch,
    fakeClasses: spec.fakeClasses,
    totalKimg: spec.kimg,
    seed: s.seed,
    resume: resuming,
    freezeD: spec.freezeD ?? 0,
    keepSnapshots: s.keepSnapshots ?? 2,
    gridSize: s.gridSize ?? 16,
    extraGLoss: spec.extraGLoss,
    extraDLoss: spec.extraDLoss,
    description: { stage: spec.name, ...spec.description },
    onStart: (p) => {
      startNimg = p.startNimg;
      obs?.start(spec.name, Math.max(p.totalNimg - p.startNimg, 0));
    },
    onStep: (p) => obs?.step(spec.name, p.curNimg - startNimg, p.last?.stats ?? {}),
    onTick: obs?.tick ? (t) => obs.tick!(spec.name, t) : undefined,
  });
  obs?.end(spec.name);
  if (!result.lastSnapshot) {
    for (const m of [result.G, result.D, result.Gema]) m.dispose();
    throw new Error(`stage ${spec.name}: training wrote no snapshot`);
  }
  return {
    name: spec.name,
    outDir: spec.outDir,
    G: result.G,
    D: result.D,
    Gema: result.Gema,
    snapshot: result.lastSnapshot,
    kimg: result.curNimg / 1000,
    seconds: (performance.now() - t0) / 1000,
    stats: result.lastTick?.stats ?? await run.lastTickStats(),
    resumed: resuming,
  };
}

/**
 * The settings of a stage that starts from a trained model (rooting, merging, the fine-tuning baselines):
 * its G_ema is already an average of a long run, so the EMA runs without ramp-up (REFERENCE.md 6).
 */
export function fromTrained(s: StageSettings): StageSettings {
  return { ...s, recipe: { ...s.recipe, emaRampup: null } };
}

/** Frees a stage's networks. */
export function disposeNetworks(n: Networks): void {
  for (const m of new Set([n.G, n.D, n.Gema])) m.dispose();
}

/**
 * The training preset and recipe of a source snapshot's own run (its config.json), so merging continues
 * with the settings the source was trained with; null when the snapshot is not in a run directory.
 */
export async function sourceTrainingSettings(
  snapshotPath: string,
): Promise<{ preset: string; recipe: Partial<TrainingRecipe> } | null> {
  const cfg = await new RunDir(dirname(snapshotPath)).readConfig().catch(() => null);
  if (!cfg || typeof cfg.preset !== "string" || !trainingPresetNames().includes(cfg.preset)) return null;
  const recipe = (cfg.recipe && typeof cfg.recipe === "object" ? cfg.recipe : {}) as Partial<TrainingRecipe>;
  return { preset: cfg.preset, recipe };
}

/** A preset for a resolution when the root's own settings are unknown. */
export function presetForResolution(res: number): string {
  return res <= 16 ? "tiny16" : res <= 32 ? "tiny32" : "cocktail";
}
