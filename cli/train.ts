// `train`: trains a StyleGAN2 on a dataset with SGA's recipe into a run directory (config.json,
// stats.jsonl, sample grids, snapshots); --resume continues from the newest snapshot there.

import { initGPU } from "../kernels/runtime.ts";
import { DATASET_SPEC_HELP, openDataset } from "../data/mod.ts";
import { presetConfig } from "../gan/stylegan2/config.ts";
import { train } from "../gan/train/loop.ts";
import { trainingPresetNames, type TrainingRecipe } from "../gan/train/presets.ts";
import { num, parse, report } from "./args.ts";
import { Progress } from "./progress.ts";

const USAGE = `usage: cli.ts train --data SPEC --out DIR --kimg K [--preset NAME] [options]

Trains a StyleGAN2 (SGA recipe: non-saturating loss, lazy R1, path length, style mixing, EMA).
Presets: ${trainingPresetNames().join(", ")}.
Dataset specs:
  ${DATASET_SPEC_HELP}`;

const OPTIONS = {
  data: { type: "string", help: "dataset spec (see above)" },
  out: { type: "string", help: "run directory" },
  preset: { type: "string", help: "architecture and recipe preset", default: "tiny32" },
  kimg: { type: "string", help: "training length in thousands of real images shown to D" },
  resume: { type: "boolean", help: "continue from the newest snapshot in --out (fresh start if none)" },
  seed: { type: "string", help: "seed of every random number", default: "0" },
  cond: { type: "boolean", help: "class-conditional (labels from the dataset)" },
  init: { type: "string", help: "start from this snapshot or SGA .pkl (fine-tuning; fresh optimisers)" },
  freezed: { type: "string", help: "Freeze-D: keep the first K discriminator layers fixed", default: "0" },
  batch: { type: "string", help: "batch size (preset's by default)" },
  gamma: { type: "string", help: "R1 weight gamma" },
  lr: { type: "string", help: "learning rate of G and D" },
  glr: { type: "string", help: "learning rate of G" },
  dlr: { type: "string", help: "learning rate of D" },
  ema: { type: "string", help: "EMA half-life in kimg" },
  "ema-rampup": { type: "string", help: "EMA ramp-up fraction, or 'none'" },
  "pl-weight": { type: "string", help: "path-length weight (0 = off)" },
  mixing: { type: "string", help: "style-mixing probability" },
  tick: { type: "string", help: "kimg per tick (stats line, sample grid)" },
  snap: { type: "string", help: "a snapshot every this many ticks" },
  keep: { type: "string", help: "keep only the newest K snapshots (0 = all)", default: "0" },
  res: { type: "string", help: "resolution (default: the preset's; the data is resized)" },
  cbase: { type: "string", help: "channel_base override" },
  cmax: { type: "string", help: "channel_max override" },
  "map-layers": { type: "string", help: "mapping layers override" },
  "max-images": { type: "string", help: "use at most this many images of the dataset" },
  grid: { type: "string", help: "images in each tick's sample grid (0 = none)", default: "16" },
  json: { type: "boolean", help: "print the result as JSON" },
} as const;

function optNum(v: string | boolean | undefined, name: string): number | undefined {
  return v === undefined ? undefined : num(v, name);
}

export async function trainCommand(args: string[]): Promise<void> {
  const { values: v } = parse(args, USAGE, OPTIONS);
  if (!v.data) throw new Error("--data is required (a dataset spec, see --help)");
  if (!v.out) throw new Error("--out is required (the run directory)");
  const preset = String(v.preset);
  const kimg = num(v.kimg, "kimg");
  const base = presetConfig(preset);
  const res = optNum(v.res, "res") ?? base.resolution;
  await initGPU();
  const data = await openDataset(String(v.data), {
    resolution: res,
    maxImages: optNum(v["max-images"], "max-images"),
  });
  const arch = presetConfig(preset, {
    resolution: data.resolution,
    imgChannels: data.channels,
    cDim: v.cond ? data.numClasses : 0,
    ...(v.cbase !== undefined ? { channelBase: num(v.cbase, "cbase") } : {}),
    ...(v.cmax !== undefined ? { channelMax: num(v.cmax, "cmax") } : {}),
    ...(v["map-layers"] !== undefined ? { mappingLayers: num(v["map-layers"], "map-layers") } : {}),
  });
  const rampup = v["ema-rampup"];
  const recipe: Partial<TrainingRecipe> = {
    batch: optNum(v.batch, "batch"),
    r1Gamma: optNum(v.gamma, "gamma"),
    lr: optNum(v.lr, "lr"),
    gLr: optNum(v.glr, "glr"),
    dLr: optNum(v.dlr, "dlr"),
    emaKimg: optNum(v.ema, "ema"),
    emaRampup: rampup === undefined ? undefined : rampup === "none" ? null : num(rampup, "ema-rampup"),
    plWeight: optNum(v["pl-weight"], "pl-weight"),
    styleMixingProb: optNum(v.mixing, "mixing"),
    tickKimg: optNum(v.tick, "tick"),
    snapshotTicks: optNum(v.snap, "snap"),
  };
  let progress: Progress | null = null;
  const result = await train({
    outDir: String(v.out),
    preset,
    recipe,
    arch: v.init ? undefined : arch,
    data,
    conditional: !!v.cond,
    totalKimg: kimg,
    seed: num(v.seed, "seed"),
    init: v.init ? String(v.init) : undefined,
    resume: !!v.resume,
    freezeD: num(v.freezed, "freezed"),
    keepSnapshots: num(v.keep, "keep"),
    gridSize: num(v.grid, "grid"),
    description: { command: ["train", ...args].join(" ") },
    onStart: (p) => {
      if (p.resumedFrom) {
        console.error(
          `resuming from ${p.resumedFrom} at kimg ${
            (p.startNimg / 1000).toFixed(3)
          } (iteration ${p.step}); ` +
            `training to ${(p.totalNimg / 1000).toFixed(3)} kimg`,
        );
      } else if (v.resume) console.error(`--resume: no snapshot in ${v.out} yet, starting fresh`);
      progress = new Progress("train", Math.max(p.totalNimg - p.startNimg, 0), "img");
    },
    onStep: (p) => {
      if (!progress) return;
      const s = p.losses ?? {};
      progress.update(p.curNimg - p.startNimg, {
        kimg: (p.curNimg / 1000).toFixed(2),
        ...(s["Loss/G/loss"] !== undefined ? { G: s["Loss/G/loss"] } : {}),
        ...(s["Loss/D/loss"] !== undefined ? { D: s["Loss/D/loss"] } : {}),
      });
    },
  });
  (progress as Progress | null)?.done();
  const t = result.lastTick;
  const summary = {
    outDir: result.outDir,
    kimg: result.curNimg / 1000,
    iterations: result.step,
    ticks: result.tick,
    snapshot: result.lastSnapshot,
    imagesPerSecond: t?.imagesPerSecond ?? null,
    stats: t?.stats ?? {},
    resumedFrom: result.resumedFrom,
  };
  for (const m of [result.G, result.D, result.Gema]) m.dispose();
  report(
    summary,
    !!v.json,
    `trained to ${summary.kimg.toFixed(3)} kimg (${summary.iterations} iterations) in ${summary.outDir}\n` +
      `last snapshot: ${summary.snapshot ?? "none"}` +
      (t ? `\nlast tick: ${t.imagesPerSecond.toFixed(1)} img/s, ${fmtStats(t.stats)}` : ""),
  );
}

function fmtStats(s: Record<string, number>): string {
  return Object.entries(s).map(([k, x]) => `${k} ${x.toPrecision(4)}`).join(", ");
}
