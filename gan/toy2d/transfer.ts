// The study's transfer experiment (REFERENCE.md 7), for several seeds: train source I and source II,
// then fine-tune on the target ring from each (raw G and D, fresh optimisers and EMA) and from random
// initialisation. Writes DIR/transfer.json and DIR/transfer.png after every seed. Completed stages are
// recorded in DIR/seedS/transfer_state.json (source checkpoints beside it), so a killed run resumes at
// the first unfinished stage.

import {
  type Mixture,
  sampleMixture,
  sourceI,
  sourceII,
  sourceIMixture,
  targetRing,
} from "./distributions.ts";
import { GRAD_SIMILARITY_CONVENTION } from "./measures.ts";
import { COLORS, linePanel, panelGrid, scatterPanel } from "./plot.ts";
import {
  describeConfig,
  ensureDir,
  exists,
  pointsJson,
  r6,
  readJson,
  roundNumbers,
  roundScores,
  type StartMeasures,
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
  type RunResult,
  saveTrainerCheckpoint,
  SCORE_NAMES,
  type Scores,
  trainRun,
} from "./train.ts";

export interface TransferOptions extends StudySettings {
  out: string;
  gSteps?: number;
  /** First seed; seeds run are seed, seed + 1, ..., seed + seeds - 1. */
  seed?: number;
  /** Seeds to run (sources and fine-tunes each), default 3. */
  seeds?: number;
  /** Source I: "ring" (REFERENCE.md 7, the default) or "mixture" (the earlier wrong reading). */
  source1?: Source1Kind;
  onProgress?: (p: Progress) => void;
}

export type Source1Kind = "ring" | "mixture";
type Init = "source1" | "source2" | "random";
type Triple = Record<Init, number>;
const INITS: Init[] = ["source1", "source2", "random"];

interface StageRecord {
  run: RunResult;
  start?: Omit<StartMeasures, "samples">;
  startSamples?: number[];
  finalSamples: number[];
}

interface TransferState {
  key: string;
  stages: Record<string, StageRecord>;
}

/** One seed's numbers: the fine-tunes' scores and start measures, the sources' scores on their own data. */
export interface SeedResult {
  seed: number;
  finetune: Record<Init, Scores & { recall: number; precision: number; gradSimilarity: number }>;
  /** Each source's W1 to its own distribution (its training run's scores). */
  sourceOwn: Record<"source1" | "source2", Scores>;
}

export interface TransferResult {
  /** Headline score (REFERENCE.md 7) per run, averaged over the finished seeds. */
  w1: Triple;
  /** Sample standard deviation of the headline score over seeds (NaN with one seed). */
  w1Sd: Triple;
  seeds: number[];
  perSeed: SeedResult[];
  wallMs: number;
  files: { json: string; png: string };
}

const SOURCE_SEEDS = { source1: 1, source2: 2 } as const;

function sourceData(name: "source1" | "source2", kind: Source1Kind): Mixture {
  if (name === "source2") return sourceII();
  return kind === "mixture" ? sourceIMixture() : sourceI();
}

/** Runs (or resumes) one seed: both sources, then the three fine-tunes. State in DIR/seedS/. */
async function runSeed(
  o: TransferOptions,
  cfg: ReturnType<typeof studyConfig>,
  gSteps: number,
  seed: number,
  source1: Source1Kind,
): Promise<TransferState> {
  const dir = `${o.out}/seed${seed}`;
  await ensureDir(dir);
  const sets = studySets(seed, cfg.evalSamples);
  const statePath = `${dir}/transfer_state.json`;
  const key = JSON.stringify({ cfg, gSteps, seed, source1 });
  let state = await readJson<TransferState>(statePath);
  if (!state || state.key !== key) state = { key, stages: {} };
  const save = () => writeJson(statePath, state);
  const tag = (s: string) => `seed ${seed} ${s}`;

  // Sources: trained from random initialisation on their own distributions.
  for (const name of ["source1", "source2"] as const) {
    const ckpt = `${dir}/${name}.safetensors`;
    if (state.stages[name] && await exists(ckpt)) continue;
    const data = sourceData(name, source1);
    const t = await freshTrainer(data, seed * 1000 + SOURCE_SEEDS[name], cfg);
    try {
      const own = sampleMixture(data, cfg.evalSamples, (seed * 7919 + 10 + SOURCE_SEEDS[name]) >>> 0);
      const run = await trainRun(t, {
        gSteps,
        evalTarget: own,
        evalEvery: cfg.evalEvery,
        stage: tag(`train ${name}`),
        onProgress: o.onProgress,
      });
      await saveTrainerCheckpoint(ckpt, t, { stage: name, seed, gSteps, source1 });
      state.stages[name] = { run, finalSamples: pointsJson(await t.sample(1000, "live", 3)) };
      await save();
    } finally {
      t.dispose();
    }
  }

  // Fine-tunes on the target: from each source's raw G and D (fresh optimisers and EMA), or random.
  for (const init of INITS) {
    const name = `finetune_${init}`;
    if (state.stages[name]) continue;
    const runSeed = seed * 1000 + 10 + INITS.indexOf(init);
    let t;
    if (init === "random") t = await freshTrainer(targetRing(), runSeed, cfg);
    else {
      t = makeTrainer(targetRing(), runSeed, cfg);
      const c = await loadTrainerCheckpoint(`${dir}/${init}.safetensors`);
      try {
        await restoreTrainer(t, c, false);
      } finally {
        c.dispose();
      }
    }
    try {
      const dState = await t.discriminatorState();
      const start = await startMeasures(t, dState, sets);
      for (const v of dState.values()) v.dispose();
      const run = await trainRun(t, {
        gSteps,
        evalTarget: sets.evalTarget,
        evalEvery: cfg.evalEvery,
        stage: tag(`finetune ${init}`),
        onProgress: o.onProgress,
      });
      const { samples, ...startRest } = start;
      state.stages[name] = {
        run,
        start: startRest,
        startSamples: pointsJson(samples),
        finalSamples: pointsJson(await t.sample(1000, "live", 3)),
      };
      await save();
    } finally {
      t.dispose();
    }
  }
  return state;
}

function seedResult(seed: number, st: TransferState): SeedResult {
  const s = st.stages;
  const ft = (i: Init) => {
    const r = s[`finetune_${i}`];
    return roundNumbers({
      ...r.run.scores,
      recall: r.start!.recall,
      precision: r.start!.precision,
      gradSimilarity: r.start!.gradSimilarity,
    });
  };
  return {
    seed,
    finetune: { source1: ft("source1"), source2: ft("source2"), random: ft("random") },
    sourceOwn: { source1: roundScores(s.source1.run.scores), source2: roundScores(s.source2.run.scores) },
  };
}

function meanSd(xs: number[]): { mean: number; sd: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1)) : NaN;
  return { mean, sd };
}

export async function runTransferStudy(o: TransferOptions): Promise<TransferResult> {
  const cfg = studyConfig(o);
  const gSteps = o.gSteps ?? 5000, seed0 = o.seed ?? 0, nSeeds = o.seeds ?? 3;
  const source1 = o.source1 ?? "ring";
  if (!Number.isInteger(gSteps) || gSteps < 1) {
    throw new Error(`transfer: gSteps must be a positive integer, got ${gSteps}`);
  }
  if (!Number.isInteger(nSeeds) || nSeeds < 1) {
    throw new Error(`transfer: seeds must be a positive integer, got ${nSeeds}`);
  }
  if (source1 !== "ring" && source1 !== "mixture") {
    throw new Error(`transfer: source1 must be "ring" or "mixture", got "${source1}"`);
  }
  await ensureDir(o.out);
  const wall0 = performance.now();
  const states: TransferState[] = [];
  const perSeed: SeedResult[] = [];
  const files = { json: `${o.out}/transfer.json`, png: `${o.out}/transfer.png` };
  let result: TransferResult | null = null;
  // Seeds one after another; the JSON and figure are rewritten after each, so a stopped run keeps them.
  for (let k = 0; k < nSeeds; k++) {
    const seed = seed0 + k;
    states.push(await runSeed(o, cfg, gSteps, seed, source1));
    perSeed.push(seedResult(seed, states[k]));
    const heads = INITS.map((i) => meanSd(perSeed.map((r) => r.finetune[i].headline)));
    result = {
      w1: Object.fromEntries(INITS.map((i, j) => [i, r6(heads[j].mean)])) as Triple,
      w1Sd: Object.fromEntries(INITS.map((i, j) => [i, r6(heads[j].sd)])) as Triple,
      seeds: perSeed.map((r) => r.seed),
      perSeed,
      wallMs: Math.round(performance.now() - wall0),
      files,
    };
    await writeJson(files.json, transferJson(result, states, cfg, gSteps, nSeeds, source1));
    await drawTransfer(files.png, states, source1);
  }
  return result!;
}

function transferJson(
  r: TransferResult,
  states: TransferState[],
  cfg: ReturnType<typeof studyConfig>,
  gSteps: number,
  nSeeds: number,
  source1: Source1Kind,
): Record<string, unknown> {
  const scores: Record<string, unknown> = {};
  for (const i of INITS) scores[i] = r.perSeed.map((s) => ({ seed: s.seed, ...s.finetune[i] }));
  for (const n of ["source1", "source2"] as const) {
    scores[`${n}OwnDistribution`] = r.perSeed.map((s) => ({ seed: s.seed, ...s.sourceOwn[n] }));
  }
  return {
    w1: r.w1,
    w1Sd: r.w1Sd,
    seeds: r.seeds,
    seedsRequested: nSeeds,
    scores,
    scoreNames: SCORE_NAMES + "; recall, precision, gradSimilarity: of the starting G and D (eval mode)",
    w1Meaning:
      "headline score (min of the raw generator's W1 over evaluations incl. step 0), mean over seeds",
    gradSimilarityConvention: GRAD_SIMILARITY_CONVENTION,
    source1,
    config: describeConfig(cfg, { gSteps, seeds: r.seeds, study: "transfer", source1 }),
    figure: "transfer.png: data; starting raw generators and fine-tuned raw generators after the last step " +
      `(seed ${r.seeds[0]}, eval mode); raw-G and EMA W1 curves over fine-tuning steps, every seed`,
    runs: Object.fromEntries(
      states.map((st, k) => [
        `seed${r.seeds[k]}`,
        Object.fromEntries(Object.entries(st.stages).map(([n, v]) => [n, { ...v.run, start: v.start }])),
      ]),
    ),
    wallMs: r.wallMs,
    note: "wallMs covers this invocation only; stage timings are in runs.*.*.timing",
  };
}

async function drawTransfer(path: string, states: TransferState[], source1: Source1Kind): Promise<void> {
  const { canvas, box } = panelGrid(4, 3, 250);
  const s = states[0].stages;
  const seed = JSON.parse(states[0].key).seed as number;
  const target = studySets(seed).evalTarget;
  const tgt = { xy: target.subarray(0, 2000), color: COLORS.target };
  scatterPanel(canvas, box(0), source1 === "ring" ? "SOURCE I DATA" : "SOURCE I (MIXTURE) DATA", [{
    xy: sampleMixture(sourceData("source1", source1), 1000, seed + 5),
    color: COLORS.blue,
  }]);
  scatterPanel(canvas, box(1), "SOURCE II DATA", [{
    xy: sampleMixture(sourceII(), 1000, seed + 6),
    color: COLORS.orange,
  }]);
  scatterPanel(canvas, box(2), "TARGET DATA", [{ xy: target.subarray(0, 2000), color: COLORS.green }]);
  const runs: [Init, string, typeof COLORS.blue][] = [
    ["source1", "FROM SOURCE I", COLORS.blue],
    ["source2", "FROM SOURCE II", COLORS.orange],
    ["random", "FROM RANDOM INIT", COLORS.purple],
  ];
  runs.forEach(([init, label, color], i) => {
    const r = s[`finetune_${init}`];
    scatterPanel(canvas, box(4 + i), `START ${label.slice(5)} R=${r.start!.recall.toFixed(2)}`, [tgt, {
      xy: r.startSamples!,
      color,
    }]);
    const sc = r.run.scores;
    scatterPanel(canvas, box(8 + i), `${label} ${sc.headline.toFixed(2)} (${sc.finalRaw.toFixed(2)})`, [tgt, {
      xy: r.finalSamples,
      color,
    }]);
  });
  const curves = (f: (c: RunResult["curve"][number]) => number) =>
    states.flatMap((st) =>
      runs.map(([init, label, color]) => ({
        xy: st.stages[`finetune_${init}`].run.curve.flatMap((c) => [c.step, f(c)]),
        color,
        label: label.replace("FROM ", ""),
      }))
    );
  linePanel(canvas, box(3), `RAW G W1, ${states.length} SEEDS`, curves((c) => c.w1), {
    xLabel: "G STEP",
    yMin: 0,
  });
  linePanel(canvas, box(7), `EMA W1, ${states.length} SEEDS`, curves((c) => c.w1Ema), {
    xLabel: "G STEP",
    yMin: 0,
  });
  const b = box(11);
  const lines = [
    `SAMPLES: SEED ${seed}, RAW G, BN EVAL`,
    "TITLES: HEADLINE (FINAL RAW W1)",
    "HEADLINE = MIN RAW W1 INCL STEP 0",
    "GRAD SIMILARITY (ASCENT) AT START:",
    ...runs.map(([init, label]) =>
      `${label.replace("FROM ", "")}: ${s[`finetune_${init}`].start!.gradSimilarity.toFixed(2)}`
    ),
  ];
  lines.forEach((l, i) => canvas.text(l, b.x + 4, b.y + 20 + 12 * i));
  await canvas.save(path);
}
