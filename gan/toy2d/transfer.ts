// The study's transfer experiment: train source I and source II, then fine-tune on the target ring from
// each (G and D, fresh optimisers) and from random initialisation. Writes DIR/transfer.json and
// DIR/transfer.png. Completed stages are recorded in DIR/transfer_state.json (source checkpoints in DIR),
// so a killed run resumes at the first unfinished stage.

import { sampleMixture, sourceI, sourceII, targetRing } from "./distributions.ts";
import { COLORS, linePanel, panelGrid, scatterPanel } from "./plot.ts";
import {
  describeConfig,
  ensureDir,
  exists,
  pointsJson,
  r6,
  readJson,
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
  trainRun,
} from "./train.ts";

export interface TransferOptions extends StudySettings {
  out: string;
  gSteps?: number;
  seed?: number;
  onProgress?: (p: Progress) => void;
}

type Init = "source1" | "source2" | "random";
type Triple = Record<Init, number>;

interface StageRecord {
  run: Omit<RunResult, "curve"> & { curve: RunResult["curve"] };
  start?: Omit<StartMeasures, "samples">;
  startSamples?: number[];
  finalSamples: number[];
}

interface TransferState {
  key: string;
  stages: Record<string, StageRecord>;
}

export interface TransferResult {
  w1: Triple;
  bestW1: Triple;
  startW1: Triple;
  recall: Triple;
  precision: Triple;
  gradSimilarity: Triple;
  sources: { source1: { finalW1ToSource: number }; source2: { finalW1ToSource: number } };
  wallMs: number;
  files: { json: string; png: string };
}

const SOURCES = [
  { name: "source1", data: sourceI, seedOffset: 1 },
  { name: "source2", data: sourceII, seedOffset: 2 },
] as const;

export async function runTransferStudy(o: TransferOptions): Promise<TransferResult> {
  const cfg = studyConfig(o);
  const gSteps = o.gSteps ?? 5000, seed = o.seed ?? 0;
  if (!Number.isInteger(gSteps) || gSteps < 1) {
    throw new Error(`transfer: gSteps must be a positive integer, got ${gSteps}`);
  }
  await ensureDir(o.out);
  const wall0 = performance.now();
  const sets = studySets(seed, cfg.evalSamples);
  const statePath = `${o.out}/transfer_state.json`;
  const key = JSON.stringify({ cfg, gSteps, seed });
  let state = await readJson<TransferState>(statePath);
  if (!state || state.key !== key) state = { key, stages: {} };
  const save = () => writeJson(statePath, state);

  // Sources: trained from random initialisation on their own distributions.
  for (const s of SOURCES) {
    const ckpt = `${o.out}/${s.name}.safetensors`;
    if (state.stages[s.name] && await exists(ckpt)) continue;
    const t = await freshTrainer(s.data(), seed * 1000 + s.seedOffset, cfg);
    try {
      const own = sampleMixture(s.data(), cfg.evalSamples, (seed * 7919 + 10 + s.seedOffset) >>> 0);
      const run = await trainRun(t, {
        gSteps,
        evalTarget: own,
        evalEvery: cfg.evalEvery,
        stage: `train ${s.name}`,
        onProgress: o.onProgress,
      });
      await saveTrainerCheckpoint(ckpt, t, { stage: s.name, seed, gSteps });
      state.stages[s.name] = { run, finalSamples: pointsJson(await t.sample(1000, "ema", 3)) };
      await save();
    } finally {
      t.dispose();
    }
  }

  // Fine-tunes on the target.
  const inits: Init[] = ["source1", "source2", "random"];
  for (const init of inits) {
    const name = `finetune_${init}`;
    if (state.stages[name]) continue;
    const runSeed = seed * 1000 + 10 + inits.indexOf(init);
    let t;
    if (init === "random") t = await freshTrainer(targetRing(), runSeed, cfg);
    else {
      t = makeTrainer(targetRing(), runSeed, cfg);
      const c = await loadTrainerCheckpoint(`${o.out}/${init}.safetensors`);
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
        stage: `finetune from ${init}`,
        onProgress: o.onProgress,
      });
      const { samples, ...startRest } = start;
      state.stages[name] = {
        run,
        start: startRest,
        startSamples: pointsJson(samples),
        finalSamples: pointsJson(await t.sample(1000, "ema", 3)),
      };
      await save();
    } finally {
      t.dispose();
    }
  }

  const st = (i: Init) => state!.stages[`finetune_${i}`];
  const triple = (f: (r: StageRecord) => number) =>
    Object.fromEntries(inits.map((i) => [i, r6(f(st(i)))])) as Triple;
  const result: TransferResult = {
    w1: triple((r) => r.run.finalW1),
    bestW1: triple((r) => r.run.best.w1),
    startW1: triple((r) => r.run.startW1),
    recall: triple((r) => r.start!.recall),
    precision: triple((r) => r.start!.precision),
    gradSimilarity: triple((r) => r.start!.gradSimilarity),
    sources: {
      source1: { finalW1ToSource: r6(state.stages.source1.run.finalW1) },
      source2: { finalW1ToSource: r6(state.stages.source2.run.finalW1) },
    },
    wallMs: Math.round(performance.now() - wall0),
    files: { json: `${o.out}/transfer.json`, png: `${o.out}/transfer.png` },
  };
  await writeJson(result.files.json, {
    ...result,
    config: describeConfig(cfg, { gSteps, seed, study: "transfer" }),
    figure:
      "transfer.png: rows = data, starting generators (live weights), fine-tuned EMA generators after the " +
      "last step (titles give final W1, best W1 in brackets); W1 curves of the EMA generators",
    runs: Object.fromEntries(Object.entries(state.stages).map(([k, v]) => [k, { ...v.run, start: v.start }])),
    note: "wallMs covers this invocation only; stage timings are in runs.*.timing",
  });
  await drawTransfer(result.files.png, state, sets.evalTarget, seed);
  return result;
}

async function drawTransfer(
  path: string,
  state: TransferState,
  target: Float64Array,
  seed: number,
): Promise<void> {
  const { canvas, box } = panelGrid(4, 3, 250);
  const s = state.stages;
  const tgt = { xy: target.subarray(0, 2000), color: COLORS.target };
  scatterPanel(canvas, box(0), "SOURCE I DATA", [{
    xy: sampleMixture(sourceI(), 1000, seed + 5),
    color: COLORS.blue,
  }]);
  scatterPanel(canvas, box(1), "SOURCE II DATA", [{
    xy: sampleMixture(sourceII(), 1000, seed + 6),
    color: COLORS.orange,
  }]);
  scatterPanel(canvas, box(2), "TARGET DATA", [{ xy: target.subarray(0, 2000), color: COLORS.green }]);
  const runs: [string, string, typeof COLORS.blue][] = [
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
    scatterPanel(
      canvas,
      box(8 + i),
      `${label} W1 ${r.run.finalW1.toFixed(2)} (${r.run.best.w1.toFixed(2)})`,
      [tgt, {
        xy: r.finalSamples,
        color,
      }],
    );
  });
  linePanel(
    canvas,
    box(3),
    "EMA W1 TO TARGET",
    runs.map(([init, label, color]) => ({
      xy: s[`finetune_${init}`].run.curve.flatMap((c) => [c.step, c.w1]),
      color,
      label: label.replace("FROM ", ""),
    })),
    { xLabel: "G STEP", yMin: 0 },
  );
  const lines = runs.map(([init, label]) => {
    const r = s[`finetune_${init}`];
    return `${label.replace("FROM ", "")}: GS ${r.start!.gradSimilarity.toFixed(2)}`;
  });
  const b = box(7);
  canvas.text("GRAD SIMILARITY AT START", b.x + 4, b.y + 20);
  lines.forEach((l, i) => canvas.text(l, b.x + 4, b.y + 36 + 12 * i));
  canvas.text("W1: FINAL (BEST)", b.x + 4, b.y + 90);
  canvas.text("START: LIVE G, R = RECALL K=5", b.x + 4, b.y + 102);
  await canvas.save(path);
}
