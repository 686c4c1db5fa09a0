// One training run of the 2-D study on the fused trainer: G steps in chunks between evaluations, the W1
// of the raw generator and of its EMA (BatchNorm in eval mode) to a fixed target set at step 0 and every
// `evalEvery` G steps, the study's scores of that curve (REFERENCE.md 7), optional checkpoints, and a
// timing split of the wall time (host recording and submission, GPU waits, read-back, W1 on the host).

import process from "node:process";
import { manualSeed } from "../../nn/creation.ts";
import type { Tensor } from "../../nn/tensor.ts";
import { loadSafetensors, saveSafetensors } from "../../nn/checkpoint.ts";
import type { Mixture } from "./distributions.ts";
import { FastToyGan } from "./fast_gan.ts";
import { w1Distance } from "./measures.ts";
import { ToyDiscriminator, ToyGenerator } from "./models.ts";

export interface Progress {
  stage: string;
  step: number;
  total: number;
  w1?: number;
}

export interface ProtocolConfig {
  batch: number;
  dSteps: number;
  lr: number;
  betas: [number, number];
  emaBeta: number;
  evalEvery: number;
  /** Points per W1 evaluation (target and generated). */
  evalSamples: number;
}

export const PROTOCOL: ProtocolConfig = {
  batch: 64,
  dSteps: 4,
  lr: 2e-4,
  betas: [0.5, 0.999],
  emaBeta: 0.99,
  evalEvery: 250,
  evalSamples: 2048,
};

/** G steps between waits for the queue, so the host never queues thousands of command buffers ahead. */
export const DRAIN_EVERY = 25;

export interface EvalPoint {
  step: number;
  /** W1 of the raw (live) generator to the evaluation target set, BatchNorm in eval mode. */
  w1: number;
  /** W1 of the EMA generator, BatchNorm in eval mode (its EMA running statistics). */
  w1Ema: number;
  lossD?: number;
  lossG?: number;
}

export interface Timing {
  wallMs: number;
  /**
   * CPU time of the whole process (JS thread plus the CPU adapter's worker threads): on a shared machine
   * wall time depends on the load, CPU time much less; with 2 cores, uncontended wall >= cpuMs / 2.
   */
  cpuMs: number;
  /** Host time recording and submitting steps (JS + driver command recording). */
  recordMs: number;
  /** Host waiting for the GPU to finish queued steps (compute not hidden behind recording). */
  gpuWaitMs: number;
  /** Sampling the EMA generator and reading the points back. */
  readbackMs: number;
  /** Exact W1 assignment on the host. */
  w1Ms: number;
  dispatches: number;
  gSteps: number;
}

/** The study's scores of a run's W1 curve (REFERENCE.md 7). */
export interface Scores {
  /** The paper's score: minimum of the raw generator's W1 over all evaluations, step 0 included. */
  headline: number;
  headlineStep: number;
  /** W1 at the start (step 0), raw generator. */
  startRaw: number;
  finalRaw: number;
  finalEma: number;
  /** Minimum over the evaluations after step 0. */
  bestAfter0Raw: number;
  bestAfter0Ema: number;
}

export const SCORE_NAMES =
  "headline = min of the raw generator's W1 over evaluations at steps 0, evalEvery, ... (step 0 counts; " +
  "the paper's score); finalRaw/finalEma = W1 at the last step; bestAfter0Raw/Ema = min after step 0";

/** Scores of a W1 curve (needs the step-0 point for the headline and start scores; else they are NaN). */
export function runScores(curve: EvalPoint[]): Scores {
  if (curve.length === 0) throw new Error("runScores: empty W1 curve");
  const minOf = (pts: EvalPoint[], f: (c: EvalPoint) => number) => {
    let b = { v: Infinity, step: -1 };
    for (const c of pts) if (f(c) < b.v) b = { v: f(c), step: c.step };
    return b.step < 0 ? { v: NaN, step: -1 } : b;
  };
  const start = curve.find((c) => c.step === 0);
  const after = curve.filter((c) => c.step > 0);
  const head = start ? minOf(curve, (c) => c.w1) : { v: NaN, step: -1 };
  const last = curve[curve.length - 1];
  return {
    headline: head.v,
    headlineStep: head.step,
    startRaw: start?.w1 ?? NaN,
    finalRaw: last.w1,
    finalEma: last.w1Ema,
    bestAfter0Raw: minOf(after, (c) => c.w1).v,
    bestAfter0Ema: minOf(after, (c) => c.w1Ema).v,
  };
}

export interface RunResult {
  curve: EvalPoint[];
  scores: Scores;
  timing: Timing;
}

/** User + system CPU time of this process in ms. */
export function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** A fresh fused trainer with networks initialised from `seed` (PyTorch default init). */
export async function freshTrainer(
  data: Mixture,
  seed: number,
  cfg: ProtocolConfig = PROTOCOL,
): Promise<FastToyGan> {
  manualSeed(seed);
  const g = new ToyGenerator(), d = new ToyDiscriminator();
  const t = makeTrainer(data, seed, cfg);
  await t.load(g.stateDict(), d.stateDict());
  g.dispose();
  d.dispose();
  return t;
}

export function makeTrainer(data: Mixture, seed: number, cfg: ProtocolConfig = PROTOCOL): FastToyGan {
  return new FastToyGan({
    data,
    seed,
    batch: cfg.batch,
    dSteps: cfg.dSteps,
    lr: cfg.lr,
    betas: cfg.betas,
    emaBeta: cfg.emaBeta,
  });
}

/** Trains `gSteps` generator steps, evaluating W1 at 0 and every evalEvery steps (and at the end). */
export async function trainRun(
  t: FastToyGan,
  o: {
    gSteps: number;
    evalTarget: Float64Array;
    evalEvery?: number;
    /** Latent key of the evaluation samples (the same latents at every evaluation of a run). */
    evalKey?: number;
    stage?: string;
    onProgress?: (p: Progress) => void;
    /** Called after every `checkpointEvery` G steps (counted from the trainer's iteration 0). */
    checkpointEvery?: number;
    onCheckpoint?: (step: number) => Promise<void>;
    /** Skip the step-0 evaluation (resumed runs). */
    skipStartEval?: boolean;
  },
): Promise<RunResult> {
  const evalEvery = o.evalEvery ?? PROTOCOL.evalEvery;
  const n = o.evalTarget.length / 2;
  if (!Number.isInteger(o.gSteps) || o.gSteps < 0) throw new Error(`trainRun: bad gSteps ${o.gSteps}`);
  if (!Number.isInteger(evalEvery) || evalEvery < 1) throw new Error(`trainRun: bad evalEvery ${evalEvery}`);
  const stage = o.stage ?? "train";
  const timing: Timing = {
    wallMs: 0,
    cpuMs: 0,
    recordMs: 0,
    gpuWaitMs: 0,
    readbackMs: 0,
    w1Ms: 0,
    dispatches: 0,
    gSteps: 0,
  };
  const wall0 = performance.now(), disp0 = t.prog.dispatches, cpu0 = cpuMs();
  const curve: EvalPoint[] = [];
  const evaluate = async (step: number) => {
    let t0 = performance.now();
    await t.prog.check(); // wait for queued steps: what is left is GPU time not hidden by recording
    timing.gpuWaitMs += performance.now() - t0;
    t0 = performance.now();
    const raw = await t.sample(n, "live", o.evalKey ?? 0, "running");
    const ema = await t.sample(n, "ema", o.evalKey ?? 0, "running");
    const losses = step > 0 ? await t.losses() : undefined;
    timing.readbackMs += performance.now() - t0;
    t0 = performance.now();
    const w = w1Distance(raw, o.evalTarget), we = w1Distance(ema, o.evalTarget);
    timing.w1Ms += performance.now() - t0;
    if (!Number.isFinite(w) || !Number.isFinite(we)) {
      throw new Error(`${stage}: W1 is not finite at step ${step} (raw ${w}, EMA ${we}): training diverged`);
    }
    if (losses && !(Number.isFinite(losses.d) && Number.isFinite(losses.g))) {
      throw new Error(`${stage}: loss is not finite at step ${step} (D ${losses.d}, G ${losses.g})`);
    }
    curve.push({ step, w1: w, w1Ema: we, lossD: losses?.d, lossG: losses?.g });
    o.onProgress?.({ stage, step, total: o.gSteps, w1: w });
  };
  const start = t.iteration;
  if (!o.skipStartEval) await evaluate(0);
  let done = 0;
  while (done < o.gSteps) {
    const global = start + done;
    let next = Math.min(o.gSteps, (Math.floor(done / evalEvery) + 1) * evalEvery);
    if (o.checkpointEvery) {
      next = Math.min(next, (Math.floor(global / o.checkpointEvery) + 1) * o.checkpointEvery - start);
    }
    const t0 = performance.now();
    let waited = 0;
    for (let k = done; k < next; k++) {
      t.iterate(1);
      if ((k + 1) % DRAIN_EVERY === 0) {
        const tw = performance.now();
        await t.prog.check();
        waited += performance.now() - tw;
      }
    }
    done = next;
    timing.gpuWaitMs += waited;
    timing.recordMs += performance.now() - t0 - waited;
    if (o.checkpointEvery && (start + done) % o.checkpointEvery === 0) await o.onCheckpoint?.(start + done);
    if (done % evalEvery === 0 || done === o.gSteps) await evaluate(done);
    else o.onProgress?.({ stage, step: done, total: o.gSteps });
  }
  timing.wallMs = performance.now() - wall0;
  timing.cpuMs = cpuMs() - cpu0;
  timing.dispatches = t.prog.dispatches - disp0;
  timing.gSteps = o.gSteps;
  return { curve, scores: runScores(curve), timing };
}

// ---- checkpoints: one safetensors file with G, D, EMA and Adam state, metadata as JSON ----

function prefixed(prefix: string, m: Map<string, Tensor>): [string, Tensor][] {
  return [...m].map(([k, v]) => [`${prefix}.${k}`, v]);
}

function strip(prefix: string, m: Map<string, Tensor>): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [k, v] of m) if (k.startsWith(`${prefix}.`)) out.set(k.slice(prefix.length + 1), v);
  return out;
}

/** Saves the full training state (atomic write). */
export async function saveTrainerCheckpoint(
  path: string,
  t: FastToyGan,
  meta: Record<string, unknown>,
): Promise<void> {
  const all = new Map<string, Tensor>([
    ...prefixed("G", await t.generatorState()),
    ...prefixed("D", await t.discriminatorState()),
    ...prefixed("EMA", await t.emaState()),
    ...prefixed("opt", await t.optimizerState()),
  ]);
  const info = { ...meta, iteration: t.iteration, adamStepsG: t.adamStepsG, adamStepsD: t.adamStepsD };
  try {
    await saveSafetensors(path, all, { toy2d: JSON.stringify(info) });
  } finally {
    for (const v of all.values()) v.dispose();
  }
}

export interface LoadedCheckpoint {
  g: Map<string, Tensor>;
  d: Map<string, Tensor>;
  ema: Map<string, Tensor>;
  opt: Map<string, Tensor>;
  meta: Record<string, unknown> & { iteration: number; adamStepsG: number; adamStepsD: number };
  dispose(): void;
}

export async function loadTrainerCheckpoint(path: string): Promise<LoadedCheckpoint> {
  const { tensors, metadata } = await loadSafetensors(path);
  if (!metadata.toy2d) throw new Error(`${path}: not a toy2d checkpoint (no "toy2d" metadata)`);
  return {
    g: strip("G", tensors),
    d: strip("D", tensors),
    ema: strip("EMA", tensors),
    opt: strip("opt", tensors),
    meta: JSON.parse(metadata.toy2d),
    dispose: () => {
      for (const v of tensors.values()) v.dispose();
    },
  };
}

/** Restores a checkpoint into a trainer: weights, EMA, and (resume) the optimiser state and counters. */
export async function restoreTrainer(t: FastToyGan, c: LoadedCheckpoint, resume: boolean): Promise<void> {
  await t.load(c.g, c.d, { emaFrom: resume ? c.ema : undefined });
  if (resume) {
    await t.loadOptimizerState(c.opt, {
      g: c.meta.adamStepsG,
      d: c.meta.adamStepsD,
      iteration: c.meta.iteration,
    });
  } else {
    t.resetOptimizers();
    t.iteration = 0;
  }
}
