// Dissecting contributions (REFERENCE.md 7): N checkpoints along source I's training (steps 0, every,
// ..., (N-1) every; the protocol's 101 cover 0..5000), each fine-tuned on the target; per checkpoint the
// starting generator's recall, the starting discriminator's gradient similarity (ascent convention), and
// the fine-tune's scores; Pearson correlations of the headline score (and of the final W1) with each. Resumable: source training resumes from its last checkpoint (full training state), and
// each finished fine-tune is recorded in DIR/dissect_state.json (rewritten atomically) and appended to
// DIR/dissect.jsonl; a restart skips what is recorded.

import { sampleMixture, sourceI, targetRing } from "./distributions.ts";
import type { FastToyGan } from "./fast_gan.ts";
import { GRAD_SIMILARITY_CONVENTION, pearson } from "./measures.ts";
import { COLORS, linePanel, panelGrid } from "./plot.ts";
import {
  describeConfig,
  ensureDir,
  exists,
  r6,
  readJson,
  roundScores,
  startMeasures,
  studyConfig,
  studySets,
  type StudySettings,
  writeJson,
} from "./study_common.ts";
import {
  freshTrainer,
  loadTrainerCheckpoint,
  makeTrainer,
  type Progress,
  restoreTrainer,
  saveTrainerCheckpoint,
  SCORE_NAMES,
  type Scores,
  trainRun,
} from "./train.ts";

export interface DissectOptions extends StudySettings {
  out: string;
  checkpoints?: number;
  every?: number;
  finetuneSteps?: number;
  seed?: number;
  onProgress?: (p: Progress) => void;
  /** Fine-tune only these checkpoints (one task of a scheduled run); no dissect.json or figure then. */
  only?: number[];
  /** Read source I's checkpoints from here (another run's) instead of OUT/dissect_checkpoints. */
  checkpointDir?: string;
}

export interface CheckpointResult {
  index: number;
  sourceStep: number;
  recall: number;
  precision: number;
  gradSimilarity: number;
  zeroGradient: number;
  /** The paper's score: min of the raw generator's W1 over the evaluations, step 0 included. */
  headline: number;
  /** Raw generator's W1 after the last fine-tuning step. */
  finalW1: number;
  scores: Scores;
  /** Loading, start measures and fine-tune of this checkpoint. */
  wallMs: number;
  /** Where the time went (absent in records written before it was kept). */
  timing?: CheckpointTiming;
}

/** A checkpoint's time split, in ms: loading and start measures, then the fine-tune's Timing. */
export interface CheckpointTiming {
  startMs: number;
  recordMs: number;
  gpuWaitMs: number;
  readbackMs: number;
  w1Ms: number;
  cpuMs: number;
  dispatches: number;
}

export interface DissectResult {
  /** Pearson correlation of the headline score with recall and with gradient similarity. */
  pearson: { recall: number; gradSimilarity: number };
  /** The same with the raw generator's final W1. */
  pearsonFinal: { recall: number; gradSimilarity: number };
  gradSimilarityConvention: string;
  checkpoints: CheckpointResult[];
  /** Wall time of this invocation (a resumed run skips what is recorded). */
  wallMs: number;
  /** Wall time of the whole study over all invocations: source I training and the fine-tunes. */
  phases: { sourceMs: number; finetuneMs: number; split: CheckpointTiming };
  files: { json: string; png: string; jsonl: string; state: string };
}

interface DissectState {
  key: string;
  results: CheckpointResult[];
  /** Wall time spent training source I, summed over invocations. */
  sourceMs?: number;
}

const pad = (i: number) => String(i).padStart(3, "0");

/** The highest checkpoint index below n whose file loads (-1 when none). */
async function lastCheckpoint(dir: string, n: number): Promise<number> {
  for (let i = n - 1; i >= 0; i--) {
    const p = `${dir}/source1_${pad(i)}.safetensors`;
    if (!await exists(p)) continue;
    try {
      (await loadTrainerCheckpoint(p)).dispose();
      return i;
    } catch {
      // A damaged file (should not happen: writes are atomic) is retrained.
    }
  }
  return -1;
}

export async function runDissectStudy(o: DissectOptions): Promise<DissectResult> {
  const cfg = studyConfig(o);
  const n = o.checkpoints ?? 101, every = o.every ?? 50, ft = o.finetuneSteps ?? 1000, seed = o.seed ?? 0;
  for (const [name, v] of Object.entries({ checkpoints: n, every, finetuneSteps: ft })) {
    if (!Number.isInteger(v) || v < 1) {
      throw new Error(`dissect: ${name} must be a positive integer, got ${v}`);
    }
  }
  const wall0 = performance.now();
  const ckDir = o.checkpointDir ?? `${o.out}/dissect_checkpoints`;
  await ensureDir(ckDir);
  const files = {
    json: `${o.out}/dissect.json`,
    png: `${o.out}/dissect.png`,
    jsonl: `${o.out}/dissect.jsonl`,
    state: `${o.out}/dissect_state.json`,
  };
  const key = JSON.stringify({ cfg, n, every, ft, seed });
  let state = await readJson<DissectState>(files.state);
  if (!state || state.key !== key) state = { key, results: [] };

  // Phase 1: source I training with a checkpoint every `every` G steps.
  const have = await lastCheckpoint(ckDir, n);
  if (have < n - 1) {
    const phase0 = performance.now();
    let t: FastToyGan;
    const save = (step: number) =>
      saveTrainerCheckpoint(`${ckDir}/source1_${pad(step / every)}.safetensors`, t, {
        stage: "source1",
        step,
        seed,
      });
    if (have < 0) {
      t = await freshTrainer(sourceI(), seed * 1000 + 1, cfg);
      await save(0); // checkpoint 0: the random initialisation
    } else {
      t = makeTrainer(sourceI(), seed * 1000 + 1, cfg);
      const c = await loadTrainerCheckpoint(`${ckDir}/source1_${pad(have)}.safetensors`);
      try {
        await restoreTrainer(t, c, true);
      } finally {
        c.dispose();
      }
    }
    try {
      const own = sampleMixture(sourceI(), cfg.evalSamples, (seed * 7919 + 11) >>> 0);
      const total = (n - 1) * every;
      await trainRun(t, {
        gSteps: total - Math.max(have, 0) * every,
        evalTarget: own,
        evalEvery: total, // one evaluation at the end: only the checkpoints matter here
        skipStartEval: true,
        stage: "train source I (checkpoints)",
        onProgress: o.onProgress,
        checkpointEvery: every,
        onCheckpoint: save,
      });
    } finally {
      t.dispose();
      state.sourceMs = Math.round((state.sourceMs ?? 0) + performance.now() - phase0);
      await writeJson(files.state, state);
    }
  }

  // Phase 2: fine-tune every checkpoint. One trainer for all: every fine-tune sees the same random
  // stream (common random numbers), so differences come from the starting point.
  const sets = studySets(seed, cfg.evalSamples);
  const done = new Set(state.results.map((r) => r.index));
  const t = makeTrainer(targetRing(), seed * 1000 + 99, cfg);
  try {
    for (let i = 0; i < n; i++) {
      if (done.has(i) || (o.only && !o.only.includes(i))) continue;
      const t0 = performance.now();
      const c = await loadTrainerCheckpoint(`${ckDir}/source1_${pad(i)}.safetensors`);
      let start;
      try {
        await restoreTrainer(t, c, false);
        start = await startMeasures(t, c.d, sets);
      } finally {
        c.dispose();
      }
      const startMs = performance.now() - t0;
      const run = await trainRun(t, {
        gSteps: ft,
        evalTarget: sets.evalTarget,
        evalEvery: cfg.evalEvery,
        stage: `finetune checkpoint ${i}/${n - 1}`,
        onProgress: o.onProgress,
      });
      const res: CheckpointResult = {
        index: i,
        sourceStep: i * every,
        recall: r6(start.recall),
        precision: r6(start.precision),
        gradSimilarity: r6(start.gradSimilarity),
        zeroGradient: start.zeroGradient,
        headline: r6(run.scores.headline),
        finalW1: r6(run.scores.finalRaw),
        scores: roundScores(run.scores),
        wallMs: Math.round(performance.now() - t0),
        timing: {
          startMs: Math.round(startMs),
          recordMs: Math.round(run.timing.recordMs),
          gpuWaitMs: Math.round(run.timing.gpuWaitMs),
          readbackMs: Math.round(run.timing.readbackMs),
          w1Ms: Math.round(run.timing.w1Ms),
          cpuMs: Math.round(run.timing.cpuMs),
          dispatches: run.timing.dispatches,
        },
      };
      state.results.push(res);
      await writeJson(files.state, state);
      await Deno.writeTextFile(files.jsonl, JSON.stringify(res) + "\n", { append: true });
    }
  } finally {
    t.dispose();
  }

  const rs = [...state.results].sort((a, b) => a.index - b.index);
  const col = (f: (r: CheckpointResult) => number) => rs.map(f);
  const result: DissectResult = {
    pearson: {
      recall: r6(pearson(col((r) => r.headline), col((r) => r.recall))),
      gradSimilarity: r6(pearson(col((r) => r.headline), col((r) => r.gradSimilarity))),
    },
    pearsonFinal: {
      recall: r6(pearson(col((r) => r.finalW1), col((r) => r.recall))),
      gradSimilarity: r6(pearson(col((r) => r.finalW1), col((r) => r.gradSimilarity))),
    },
    gradSimilarityConvention: GRAD_SIMILARITY_CONVENTION,
    checkpoints: rs,
    wallMs: Math.round(performance.now() - wall0),
    phases: {
      sourceMs: state.sourceMs ?? 0,
      finetuneMs: rs.reduce((a, r) => a + r.wallMs, 0),
      split: sumTimings(rs),
    },
    files,
  };
  if (o.only) return result;
  await writeJson(files.json, {
    ...result,
    config: describeConfig(cfg, { checkpoints: n, every, finetuneSteps: ft, seed, study: "dissect" }),
    scoreNames: SCORE_NAMES,
    figure: "dissect.png: headline score of each fine-tune against the starting recall and gradient " +
      "similarity (ascent convention), and both measures along source I's training",
    note: "wallMs covers this invocation only (resumed runs skip finished checkpoints); phases covers all " +
      "invocations; per-checkpoint wallMs includes loading, the start measures and the fine-tune; " +
      "phases.split sums the checkpoints' timing (recordMs: recording and submitting steps, blocking while " +
      "the queue is full; gpuWaitMs: waiting for queued steps; readbackMs: sampling and read-back for W1; " +
      "w1Ms: exact W1 on the host; startMs: loading plus recall and gradient similarity)",
  });
  await drawDissect(files.png, rs, result);
  return result;
}

/** Sums of the checkpoints' timing, over the checkpoints that recorded one. */
function sumTimings(rs: CheckpointResult[]): CheckpointTiming {
  const sum: CheckpointTiming = {
    startMs: 0,
    recordMs: 0,
    gpuWaitMs: 0,
    readbackMs: 0,
    w1Ms: 0,
    cpuMs: 0,
    dispatches: 0,
  };
  for (const r of rs) {
    if (!r.timing) continue;
    for (const k of Object.keys(sum) as (keyof CheckpointTiming)[]) sum[k] += r.timing[k];
  }
  return sum;
}

async function drawDissect(path: string, rs: CheckpointResult[], r: DissectResult): Promise<void> {
  const { canvas, box } = panelGrid(3, 1, 300);
  const pts = (f: (c: CheckpointResult) => number) => rs.flatMap((c) => [f(c), c.headline]);
  linePanel(canvas, box(0), `HEADLINE W1 VS RECALL R=${r.pearson.recall.toFixed(2)}`, [{
    xy: pts((c) => c.recall),
    color: COLORS.blue,
  }], {
    points: true,
    xLabel: "RECALL",
  });
  linePanel(
    canvas,
    box(1),
    `HEADLINE VS GRAD SIM R=${r.pearson.gradSimilarity.toFixed(2)}`,
    [{ xy: pts((c) => c.gradSimilarity), color: COLORS.orange }],
    { points: true, xLabel: "GRAD SIM (ASCENT)" },
  );
  linePanel(canvas, box(2), "ALONG SOURCE I TRAINING", [
    { xy: rs.flatMap((c) => [c.sourceStep, c.recall]), color: COLORS.blue, label: "RECALL" },
    { xy: rs.flatMap((c) => [c.sourceStep, c.gradSimilarity]), color: COLORS.orange, label: "GRAD SIM" },
  ], { xLabel: "G STEP", yMin: -1, yMax: 1 });
  await canvas.save(path);
}
