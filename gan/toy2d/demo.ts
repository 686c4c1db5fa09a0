// A small end-to-end job: the study's MLP GAN trained on the 10-Gaussian ring from random
// initialisation for a CPU-sized budget, W1 of the EMA generator to the target, a PNG of samples vs
// target and the W1 curve, and a JSON record.

import { targetRing } from "./distributions.ts";
import { COLORS, linePanel, panelGrid, scatterPanel } from "./plot.ts";
import { describeConfig, ensureDir, r6, studySets, writeJson } from "./study_common.ts";
import { freshTrainer, type Progress, PROTOCOL, trainRun } from "./train.ts";

export interface DemoOptions {
  out: string;
  /** Generator steps (default 750: about 1 minute on an idle 2-core CPU adapter, 2-3 under load). */
  gSteps?: number;
  seed?: number;
  evalEvery?: number;
  onProgress?: (p: Progress) => void;
}

export interface DemoResult {
  /** Final W1 of the EMA generator (2048 vs 2048 points). */
  w1: number;
  bestW1: number;
  startW1: number;
  gSteps: number;
  msPerGStep: number;
  wallMs: number;
  files: { png: string; json: string };
}

export async function demo2d(o: DemoOptions): Promise<DemoResult> {
  const gSteps = o.gSteps ?? 750, seed = o.seed ?? 0;
  const evalEvery = o.evalEvery ?? Math.min(PROTOCOL.evalEvery, Math.max(1, gSteps));
  if (!Number.isInteger(gSteps) || gSteps < 1) {
    throw new Error(`demo2d: gSteps must be a positive integer, got ${gSteps}`);
  }
  await ensureDir(o.out);
  const wall0 = performance.now();
  const sets = studySets(seed);
  const t = await freshTrainer(targetRing(), seed * 1000 + 10);
  try {
    const run = await trainRun(t, {
      gSteps,
      evalTarget: sets.evalTarget,
      evalEvery,
      stage: "demo",
      onProgress: o.onProgress,
    });
    const samples = await t.sample(2048, "ema", 0, "running");
    const files = { png: `${o.out}/demo.png`, json: `${o.out}/demo.json` };
    const { canvas, box } = panelGrid(2, 1, 320);
    scatterPanel(canvas, box(0), `TARGET VS EMA G, STEP ${gSteps}, W1 ${run.scores.finalEma.toFixed(2)}`, [
      { xy: sets.evalTarget, color: COLORS.target, label: "TARGET" },
      { xy: samples, color: COLORS.blue, label: "GENERATED" },
    ]);
    linePanel(canvas, box(1), "EMA W1 TO TARGET", [{
      xy: run.curve.flatMap((c) => [c.step, c.w1Ema]),
      color: COLORS.blue,
    }], {
      xLabel: "G STEP",
      yMin: 0,
    });
    await canvas.save(files.png);
    const result: DemoResult = {
      w1: r6(run.scores.finalEma),
      bestW1: r6(run.scores.bestAfter0Ema),
      startW1: r6(run.curve[0].w1Ema),
      gSteps,
      msPerGStep: r6(run.timing.wallMs / gSteps),
      wallMs: Math.round(performance.now() - wall0),
      files,
    };
    await writeJson(files.json, {
      ...result,
      curve: run.curve,
      timing: run.timing,
      config: describeConfig({ ...PROTOCOL, evalEvery }, {
        gSteps,
        seed,
        study: "demo (random init on the target)",
      }),
      figure:
        "demo.png: EMA generator samples after the last step vs target samples; W1 curve of the EMA generator",
    });
    return result;
  } finally {
    t.dispose();
  }
}
