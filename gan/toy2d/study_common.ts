// Pieces shared by the study's commands: fixed evaluation sets, the measures of a starting point
// (recall and gradient similarity of the generator/discriminator a fine-tune starts from), JSON output.

import { writeFileAtomic } from "../../nn/checkpoint.ts";
import type { Tensor } from "../../nn/tensor.ts";
import { adapterDescription } from "../../nn/queue.ts";
import { ringCentres, sampleMixture, targetRing } from "./distributions.ts";
import type { FastToyGan } from "./fast_gan.ts";
import { GRAD_SIMILARITY_CONVENTION, gradientSimilarity, recall2d } from "./measures.ts";
import { ToyDiscriminator } from "./models.ts";
import { PROTOCOL, type ProtocolConfig, SCORE_NAMES, type Scores } from "./train.ts";

export const RECALL_SAMPLES = 1000;
export const RECALL_K = 5;

/** The settings a study run may change (smaller budgets for tests and quick looks); the rest is the protocol. */
export interface StudySettings {
  batch?: number;
  dSteps?: number;
  evalEvery?: number;
  /** Points per W1 evaluation (protocol: 2048). */
  evalSamples?: number;
}

/** The protocol (REFERENCE.md 7) with the settings `o` gives, checked. */
export function studyConfig(o: StudySettings): ProtocolConfig {
  const cfg: ProtocolConfig = {
    ...PROTOCOL,
    batch: o.batch ?? PROTOCOL.batch,
    dSteps: o.dSteps ?? PROTOCOL.dSteps,
    evalEvery: o.evalEvery ?? PROTOCOL.evalEvery,
    evalSamples: o.evalSamples ?? PROTOCOL.evalSamples,
  };
  for (const k of ["batch", "dSteps", "evalEvery", "evalSamples"] as const) {
    if (!Number.isInteger(cfg[k]) || cfg[k] < 1) {
      throw new Error(`study: ${k} must be a positive integer, got ${cfg[k]}`);
    }
  }
  return cfg;
}

export interface StudySets {
  /** 2048 target points for every W1 evaluation. */
  evalTarget: Float64Array;
  /** 1000 target points for recall. */
  recallTarget: Float64Array;
}

/** The fixed target sets of a study seed (host-sampled in float64). */
export function studySets(seed: number, evalSamples = PROTOCOL.evalSamples): StudySets {
  return {
    evalTarget: sampleMixture(targetRing(), evalSamples, (seed * 7919 + 1) >>> 0),
    recallTarget: sampleMixture(targetRing(), RECALL_SAMPLES, (seed * 7919 + 2) >>> 0),
  };
}

export interface StartMeasures {
  /** Recall (k=5) of 1000 samples of the starting generator w.r.t. 1000 target samples. */
  recall: number;
  precision: number;
  /** Mean cosine between grad_x L_G (ascent) and the direction to the nearest target centre. */
  gradSimilarity: number;
  /** Starting samples with an exactly-zero gradient (left out of the mean). */
  zeroGradient: number;
  /** The 1000 starting samples (for figures). */
  samples: Float32Array;
}

/**
 * Recall and gradient similarity of the networks now loaded in `t` (the raw generator with BatchNorm in
 * eval mode, and the discriminator through engine autograd).
 */
export async function startMeasures(
  t: FastToyGan,
  dState: Map<string, Tensor>,
  sets: StudySets,
): Promise<StartMeasures> {
  const samples = await t.sample(RECALL_SAMPLES, "live", 7, "running");
  const { recall, precision } = recall2d(sets.recallTarget, samples, RECALL_K);
  const d = new ToyDiscriminator();
  try {
    d.loadStateDict(dState);
    const gs = await gradientSimilarity(d, samples, ringCentres());
    return { recall, precision, gradSimilarity: gs.mean, zeroGradient: gs.zeroGradient, samples };
  } finally {
    d.dispose();
  }
}

export { GRAD_SIMILARITY_CONVENTION };

export const GRAD_SIMILARITY_DEFINITION =
  "ascent convention (the study authors'): mean over samples with a non-zero gradient of " +
  "cos(c(x) - x, d softplus(-D(x))/dx), c(x) the nearest target centre; -1 = the generator's descent " +
  "step moves every sample straight to its nearest mode, +1 = straight away";

/** The protocol and environment recorded in every JSON result. */
export function describeConfig(cfg: ProtocolConfig, extra: Record<string, unknown>): Record<string, unknown> {
  return {
    protocol: {
      ...cfg,
      loss: "non-saturating (softplus)",
      optimizer: "Adam (PyTorch update), fresh optimisers for every run",
      generator:
        "latent 64; Linear 64-64-128-128-128-64-2, BatchNorm1d(eps 1e-5, momentum 0.1)+ReLU after all but the last",
      discriminator: "Linear 2-64-128-128-64-1, ReLU between",
      init: "PyTorch defaults (U(+-1/sqrt(fan_in)) weights and biases, BatchNorm gamma 1 beta 0)",
      batchNormAtSampling: "eval mode: running statistics (the EMA generator: the EMA of them)",
      ema:
        "EMA of the generator's whole state (parameters and BatchNorm running statistics), beta per G step",
      w1: "exact assignment between evalSamples target and evalSamples generated samples, Euclidean cost; " +
        "raw generator and EMA at step 0 and every evalEvery G steps",
      recall:
        `k=${RECALL_K}, ${RECALL_SAMPLES} target vs ${RECALL_SAMPLES} samples of the starting (raw) generator, float64`,
      gradSimilarity: GRAD_SIMILARITY_DEFINITION,
      gradSimilarityConvention: GRAD_SIMILARITY_CONVENTION,
      scores: SCORE_NAMES,
      biasBeforeBatchNorm: "gradient set to exactly 0 (BatchNorm cancels it)",
    },
    adapter: adapterDescription(),
    ...extra,
  };
}

export async function writeJson(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(value, null, 1) + "\n");
}

export async function readJson<T>(path: string): Promise<T | null> {
  try {
    return JSON.parse(await Deno.readTextFile(path)) as T;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new Error(`cannot read ${path}: ${(e as Error).message}`);
  }
}

export async function ensureDir(path: string): Promise<void> {
  try {
    await Deno.mkdir(path, { recursive: true });
  } catch (e) {
    throw new Error(`cannot create output directory ${path}: ${(e as Error).message}`);
  }
}

export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Rounds for JSON (6 significant digits). */
export function r6(x: number): number {
  return Number.isFinite(x) ? Number(x.toPrecision(6)) : x;
}

/** The numbers of an object rounded for JSON (r6), other fields as they are. */
export function roundNumbers<T extends object>(x: T): T {
  return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, typeof v === "number" ? r6(v) : v])) as T;
}

/** A run's scores rounded for JSON. */
export function roundScores(s: Scores): Scores {
  return roundNumbers(s);
}

/** Points as a compact array for JSON (3 decimals). */
export function pointsJson(p: ArrayLike<number>): number[] {
  return Array.from(p, (v) => Math.round(v * 1000) / 1000);
}
