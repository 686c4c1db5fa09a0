// Training presets (REFERENCE.md 3): the recipe of each architecture preset of gan/stylegan2/config.ts
// (batch, lr, gamma, EMA, path length, style mixing) completed with SGA's fixed settings (Adam betas and
// eps, lazy-regularisation intervals, path-length batch shrink and decay) and the loop's bookkeeping.

import { presetRecipe, PRESETS, type StyleGAN2Recipe } from "../stylegan2/config.ts";

/** Everything the loop needs to know about how to train (no architecture, no data). */
export interface TrainingRecipe extends StyleGAN2Recipe {
  /** Learning rates of G and D (SGA uses one lr for both). */
  gLr: number;
  dLr: number;
  betas: [number, number];
  eps: number;
  /** Lazy R1 every this many D steps (null: R1 in every D step, no Adam correction). */
  r1Interval: number | null;
  /** Lazy path length every this many G steps (null: none is lazy). */
  plInterval: number | null;
  /** Path length runs on batch // plBatchShrink images. */
  plBatchShrink: number;
  /** pl_mean <- lerp(pl_mean, mean L, plDecay). */
  plDecay: number;
  /** Images per tick (losses read back, stats line, sample grid), in thousands. */
  tickKimg: number;
  /** A snapshot every this many ticks (and at the end). */
  snapshotTicks: number;
}

/** SGA's settings that no configuration changes. */
export const SGA_FIXED = {
  betas: [0, 0.99] as [number, number],
  eps: 1e-8,
  r1Interval: 16,
  plInterval: 4,
  plBatchShrink: 2,
  plDecay: 0.01,
};

// Ticks: SGA's 4 kimg for the full-size presets; small ones on the CPU adapter tick more often.
const BOOKKEEPING: Record<string, { tickKimg: number; snapshotTicks: number }> = {
  cifar: { tickKimg: 4, snapshotTicks: 50 },
  paper256: { tickKimg: 4, snapshotTicks: 50 },
  cocktail: { tickKimg: 4, snapshotTicks: 50 },
  tiny32: { tickKimg: 0.5, snapshotTicks: 4 },
  tiny16: { tickKimg: 0.5, snapshotTicks: 4 },
};

export function trainingPresetNames(): string[] {
  return Object.keys(PRESETS);
}

/** The full training recipe of a preset, with overrides (checked). */
export function trainingRecipe(name: string, overrides: Partial<TrainingRecipe> = {}): TrainingRecipe {
  const base = presetRecipe(name); // throws with the known names
  const book = BOOKKEEPING[name] ?? { tickKimg: 4, snapshotTicks: 50 };
  const o = stripUndefined(overrides);
  const lr = o.lr ?? base.lr; // one --lr sets both networks' rates unless they are given apart
  const recipe: TrainingRecipe = {
    ...base,
    ...SGA_FIXED,
    betas: [...SGA_FIXED.betas],
    ...book,
    ...o,
    lr,
    gLr: o.gLr ?? lr,
    dLr: o.dLr ?? lr,
  };
  return validateRecipe(recipe);
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Checks every field of a recipe; errors name the field. */
export function validateRecipe(r: TrainingRecipe): TrainingRecipe {
  const bad = (msg: string) => {
    throw new Error(`training recipe: ${msg}`);
  };
  if (!Number.isInteger(r.batch) || r.batch < 1) bad(`batch must be a positive integer, got ${r.batch}`);
  for (const k of ["lr", "gLr", "dLr", "eps", "tickKimg"] as const) {
    if (!(r[k] > 0)) bad(`${k} must be positive, got ${r[k]}`);
  }
  for (const k of ["r1Gamma", "emaKimg", "plWeight", "plDecay"] as const) {
    if (!(r[k] >= 0)) bad(`${k} must be >= 0, got ${r[k]}`);
  }
  if (!(r.styleMixingProb >= 0 && r.styleMixingProb <= 1)) {
    bad(`styleMixingProb must be in [0, 1], got ${r.styleMixingProb}`);
  }
  if (r.emaRampup !== null && !(r.emaRampup > 0)) {
    bad(`emaRampup must be positive or null, got ${r.emaRampup}`);
  }
  if (!Array.isArray(r.betas) || r.betas.length !== 2 || r.betas.some((b) => !(b >= 0 && b < 1))) {
    bad(`betas must be two numbers in [0, 1), got ${JSON.stringify(r.betas)}`);
  }
  for (const k of ["r1Interval", "plInterval"] as const) {
    const v = r[k];
    if (v !== null && (!Number.isInteger(v) || v < 1)) {
      bad(`${k} must be a positive integer or null, got ${v}`);
    }
  }
  if (!Number.isInteger(r.plBatchShrink) || r.plBatchShrink < 1) {
    bad(`plBatchShrink must be a positive integer, got ${r.plBatchShrink}`);
  }
  if (!(r.plDecay <= 1)) bad(`plDecay must be <= 1, got ${r.plDecay}`);
  if (!Number.isInteger(r.snapshotTicks) || r.snapshotTicks < 1) {
    bad(`snapshotTicks must be a positive integer, got ${r.snapshotTicks}`);
  }
  return r;
}
