// The one StyleGAN2 training loop (SGA's recipe, REFERENCE.md 3) that every stage uses: pretraining,
// merging, the baselines and transfer differ only by initialisation (`init`), data (`data` or a
// `realBatch` function), frozen D layers (`freezeD`) and extra loss terms (`extraGLoss`/`extraDLoss`).
//
// Iterations (step.ts) record GPU work only. Once per tick the loop reads the losses back (the only
// read-back) and checks them for NaN/inf, appends a line to stats.jsonl, saves a sample grid of G_ema and,
// every few ticks, a snapshot from which a run resumes exactly as if it had never stopped.

import { Generator as Rng, manualSeed, tensor } from "../../nn/creation.ts";
import { copyInto } from "../../nn/module.ts";
import { Adam } from "../../nn/optim.ts";
import { scope, scopeAsync, type Tensor } from "../../nn/tensor.ts";
import { liveGpuBytes, submitQueued, waitForQueue } from "../../nn/queue.ts";
import type { Dataset } from "../../data/dataset.ts";
import { saveImageGrid } from "../../data/image_io.ts";
import { presetConfig, type StyleGAN2Config } from "../stylegan2/config.ts";
import { Discriminator } from "../stylegan2/discriminator.ts";
import { Generator } from "../stylegan2/generator.ts";
import { BatchSource, type RealBatch, type StepContext } from "./batches.ts";
import { lazyRegAdam } from "./loss.ts";
import { type TrainingRecipe, trainingRecipe } from "./presets.ts";
import { cloneGenerator, loadNetworks, networksFromSnapshot } from "./networks.ts";
import { RunDir } from "./run_dir.ts";
import {
  disposeSnapshot,
  type LoadedSnapshot,
  loadOptimizer,
  readSnapshot,
  saveSnapshot,
  TrainingDivergedError,
} from "./snapshot.ts";
import { type StatRow, StatsBuffer } from "./stats.ts";
import { sgaIteration, stepContext, STREAM, streamSeed } from "./step.ts";

export type { RealBatch, StepContext };
export { TrainingDivergedError };

export interface TrainOptions {
  /** The run directory (created if needed). */
  outDir: string;
  /** Training preset (gan/stylegan2/config.ts PRESETS): the recipe and, unless given, the architecture. */
  preset: string;
  /** Recipe overrides (batch, gLr, dLr, r1Gamma, ...). */
  recipe?: Partial<TrainingRecipe>;
  /**
   * Architecture of a fresh run (default: the preset's, at the data's resolution and channels). With
   * `data`, its cDim is set by `conditional`; with `realBatch`, the architecture's cDim stands.
   */
  arch?: StyleGAN2Config;
  /** Real images from a dataset ... */
  data?: Dataset;
  /** ... or from a function (merging: images of source GANs). Tensors it returns are freed after the step. */
  realBatch?: (n: number, ctx: StepContext) => RealBatch;
  /** Class indices for generated images of a conditional run without `data` (default: uniform). */
  fakeClasses?: (n: number, random: () => number) => number[];
  /** A conditional run on a labelled dataset (cDim = its number of classes). */
  conditional?: boolean;
  /** Total training length in thousands of images shown to D. */
  totalKimg: number;
  seed?: number;
  /**
   * Start from existing networks (fine-tuning, fresh optimisers): a snapshot or SGA pickle path, or
   * networks, which are then trained in place (G_ema defaults to a copy of G).
   */
  init?: string | { G: Generator; D: Discriminator; Gema?: Generator };
  /** true: continue from the newest snapshot in outDir if there is one; a path: from that snapshot. */
  resume?: boolean | string;
  /** Freeze-D: the first K layers of D from the input side get no updates. */
  freezeD?: number;
  /** Keep only the newest K snapshots (0 = all). */
  keepSnapshots?: number;
  /** Images in the per-tick sample grid of G_ema (0 = no grids). */
  gridSize?: number;
  /** Extra terms added to G's main loss (EWC and other regularisers); null = nothing this step. */
  extraGLoss?: (G: Generator, ctx: StepContext) => Tensor | null;
  /** Extra terms added to D's main loss. */
  extraDLoss?: (D: Discriminator, ctx: StepContext) => Tensor | null;
  /** Called once before the first iteration (after a resume: from the snapshot's position). */
  onStart?: (p: { startNimg: number; totalNimg: number; step: number; resumedFrom: string | null }) => void;
  /** Called after every iteration (host only: the statistics are those of the last tick). */
  onStep?: (p: StepProgress) => void;
  /** Called after every tick with its statistics. */
  onTick?: (tick: TickInfo) => void | Promise<void>;
  /** Free-form description recorded in config.json (the stage, source models, ...). */
  description?: Record<string, unknown>;
  /** Wait for the GPU every this many iterations (bounds the queued work; default 2). */
  syncEvery?: number;
}

export interface TickInfo {
  tick: number;
  step: number;
  curNimg: number;
  kimg: number;
  /** Wall seconds of the tick's iterations, and their speed. */
  seconds: number;
  imagesPerSecond: number;
  /** Mean of each statistic over the tick's iterations. */
  stats: Record<string, number>;
  plMean: number;
  snapshot: string | null;
}

export interface StepProgress {
  step: number;
  curNimg: number;
  startNimg: number;
  totalNimg: number;
  tick: number;
  last: TickInfo | null;
  /** The newest losses read back: the first iteration's, then every few seconds and every tick. */
  losses: Record<string, number> | null;
}

export interface TrainResult {
  outDir: string;
  step: number;
  tick: number;
  curNimg: number;
  lastSnapshot: string | null;
  lastTick: TickInfo | null;
  /** The trained networks; the caller owns them (dispose when done). */
  G: Generator;
  D: Discriminator;
  Gema: Generator;
  recipe: TrainingRecipe;
  /** The Adam settings actually used (after the lazy-regularisation correction). */
  adam: { G: { lr: number; betas: [number, number] }; D: { lr: number; betas: [number, number] } };
  resumedFrom: string | null;
}

const GRID_STEP = -1; // the stream key of the fixed grid latents and of the preview of reals
const PEEK_MS = 3000; // how often onStep's losses are refreshed between ticks

interface Networks {
  G: Generator;
  D: Discriminator;
  Gema: Generator;
  /** Whether train() built them (and so disposes them when it fails). */
  owned: boolean;
}

/** Networks of the run: a resumed snapshot's, else `init`'s, else fresh ones from the seed. */
async function setupNetworks(
  opts: TrainOptions,
  resumed: LoadedSnapshot | null,
  resumePath: string | null,
): Promise<Networks> {
  if (resumed) return { ...networksFromSnapshot(resumed, resumePath!), owned: true };
  if (typeof opts.init === "string") {
    const loaded = await loadNetworks(opts.init);
    if (!loaded.D) {
      for (const m of [loaded.G, loaded.Gema]) m.dispose();
      throw new Error(`${opts.init}: has no D to fine-tune`);
    }
    return { G: loaded.G, D: loaded.D, Gema: loaded.Gema, owned: true };
  }
  if (opts.init) {
    const { G, D, Gema } = opts.init;
    return { G, D, Gema: Gema ?? cloneGenerator(G), owned: false };
  }
  const base = opts.arch ??
    presetConfig(
      opts.preset,
      opts.data ? { resolution: opts.data.resolution, imgChannels: opts.data.channels } : {},
    );
  const arch = opts.data ? { ...base, cDim: opts.conditional ? opts.data.numClasses : 0 } : base;
  const G = Generator.fromConfig(arch);
  const D = Discriminator.fromConfig(arch);
  return { G, D, Gema: cloneGenerator(G), owned: true };
}

function checkOptions(opts: TrainOptions, seed: number): void {
  if (!Number.isInteger(seed) || seed < 0) {
    throw new Error(`train: seed must be a non-negative integer, got ${seed}`);
  }
  if (!(opts.totalKimg > 0)) throw new Error(`train: totalKimg must be positive, got ${opts.totalKimg}`);
  if (!opts.data === !opts.realBatch) {
    throw new Error("train: give real images as exactly one of `data` or `realBatch`");
  }
  if (opts.conditional && opts.data && opts.data.numClasses === 0) {
    throw new Error(`train: a conditional run needs labelled data; ${opts.data.name} has no labels`);
  }
  const sync = opts.syncEvery ?? 2;
  if (!Number.isInteger(sync) || sync < 1) {
    throw new Error(`train: syncEvery must be a positive integer, got ${sync}`);
  }
}

/** Trains a StyleGAN2 G/D pair; see TrainOptions. Throws TrainingDivergedError on NaN/inf. */
export async function train(opts: TrainOptions): Promise<TrainResult> {
  const seed = opts.seed ?? 0;
  checkOptions(opts, seed);
  const recipe = trainingRecipe(opts.preset, opts.recipe ?? {});
  const B = recipe.batch;
  const totalNimg = Math.round(opts.totalKimg * 1000);
  const tickNimg = Math.max(1, Math.round(recipe.tickKimg * 1000));
  const gridSize = opts.gridSize ?? 16;
  const syncEvery = opts.syncEvery ?? 2;
  const existed = await Deno.stat(opts.outDir).then(() => true, () => false);
  const run = await RunDir.open(opts.outDir);
  let started = false;
  try {
    return await trainIn(run);
  } catch (e) {
    // A start that failed (bad data, a refused resume, ...) leaves no empty run directory behind.
    if (!started && !existed) await Deno.remove(opts.outDir, { recursive: true }).catch(() => {});
    throw e;
  }

  async function trainIn(run: RunDir): Promise<TrainResult> {
    const resumePath = opts.resume === true ? run.latestSnapshot() : (opts.resume || null);
    if (!resumePath) await run.startFresh();
    let resumed = resumePath ? await readSnapshot(resumePath) : null;
    manualSeed(seed);
    let nets: Networks;
    try {
      nets = await setupNetworks(opts, resumed, resumePath);
    } catch (e) {
      if (resumed) disposeSnapshot(resumed);
      throw e;
    }
    const { G, D, Gema } = nets;
    const allParams = [...G.parameters(), ...D.parameters()];
    let optG: Adam | null = null, optD: Adam | null = null;
    const stats = new StatsBuffer();
    const plMean = tensor([0]);
    try {
      checkCompatible(G, D, opts);
      // ---- what is trained: all of G, D without its first `freezeD` layers ----
      const freeze = opts.freezeD ?? 0;
      const order = D.freezeOrder();
      if (!Number.isInteger(freeze) || freeze < 0 || freeze > order.length) {
        throw new Error(`train: freezeD must be an integer in [0, ${order.length}], got ${freeze}`);
      }
      const frozen = order.slice(0, freeze).map((p) => p + ".");
      const gNamed = G.namedParameters();
      const dNamed = D.namedParameters().filter(([n]) => !frozen.some((p) => n.startsWith(p)));
      const gNames = gNamed.map(([n]) => n), dNames = dNamed.map(([n]) => n);
      const adamG = lazyRegAdam(recipe.gLr, recipe.betas, recipe.plInterval);
      const adamD = lazyRegAdam(recipe.dLr, recipe.betas, recipe.r1Interval);
      optG = new Adam(gNamed.map(([, t]) => t), { ...adamG, eps: recipe.eps });
      optD = new Adam(dNamed.map(([, t]) => t), { ...adamD, eps: recipe.eps });

      // ---- counters (and optimiser state) from the snapshot ----
      let step = 0, curNimg = 0, tick = 0;
      let lastSnapshot: string | null = null;
      if (resumed) {
        const s = resumed.state;
        if (s.rng.seed !== seed) {
          throw new Error(
            `train: resuming a run trained with seed ${s.rng.seed}, but seed ${seed} was given`,
          );
        }
        ({ step, curNimg, tick } = s);
        const part = (k: string) => resumed!.parts.get(k);
        loadOptimizer(optG, gNames, part("optG.m"), part("optG.v"), s.optG?.step ?? 0, "G");
        loadOptimizer(optD, dNames, part("optD.m"), part("optD.v"), s.optD?.step ?? 0, "D");
        scope(() => copyInto(tensor([s.plMean]), plMean));
        lastSnapshot = resumePath;
        disposeSnapshot(resumed);
        resumed = null;
      }
      const startNimg = curNimg;

      await writeRunConfig(run, {
        preset: opts.preset,
        recipe,
        totalKimg: opts.totalKimg,
        seed,
        conditional: G.cDim > 0,
        freezeD: freeze,
        frozenLayers: order.slice(0, freeze),
        G_init_kwargs: G.initKwargs(),
        D_init_kwargs: D.initKwargs(),
        data: opts.data ? describeData(opts.data) : "custom realBatch function",
        init: typeof opts.init === "string" ? opts.init : opts.init ? "networks given in-process" : null,
        extraGLoss: !!opts.extraGLoss,
        extraDLoss: !!opts.extraDLoss,
        gridSize,
        description: opts.description ?? null,
      }, resumePath);

      const batches = new BatchSource({
        data: opts.data,
        realBatch: opts.realBatch,
        fakeClasses: opts.fakeClasses,
        batch: B,
        seed,
        resolution: G.imgResolution,
        channels: G.imgChannels,
        cDim: G.cDim,
      });
      batches.skip(step); // a resumed run continues the same batch order
      if (!resumePath && gridSize > 0) {
        await scopeAsync(async () => {
          const previewSeed = streamSeed(seed, GRID_STEP, STREAM.host);
          const reals = batches.preview(gridSize, previewSeed, stepContext(seed, GRID_STEP, 0));
          await saveImageGrid(run.file("reals.png"), reals);
        });
      }
      const parts = {
        G,
        D,
        Gema,
        optG,
        optD,
        gParams: optG.params,
        dParams: optD.params,
        recipe,
        plMean,
        seed,
        batches,
        extraGLoss: opts.extraGLoss,
        extraDLoss: opts.extraDLoss,
      };

      // ---- iterations and ticks ----
      let last: TickInfo | null = null;
      opts.onStart?.({ startNimg, totalNimg, step, resumedFrom: resumePath });
      started = true;
      let tickStartNimg = curNimg, tickStart = performance.now();
      // Losses for a progress display: the first iteration's at once, then a peek every few seconds.
      let losses: Record<string, number> | null = null, lastPeek = -Infinity;
      const firstStep = step;
      while (curNimg < totalNimg) {
        stats.push(step, scope(() => sgaIteration(parts, step, curNimg)));
        submitQueued();
        step++;
        curNimg += B;
        if (step % syncEvery === 0) await waitForQueue();
        if (opts.onStep && (step === firstStep + 1 || performance.now() - lastPeek > PEEK_MS)) {
          losses = (await stats.latest())?.values ?? losses;
          lastPeek = performance.now();
        }
        opts.onStep?.({ step, curNimg, startNimg, totalNimg, tick, last, losses });
        const done = curNimg >= totalNimg;
        if (!done && curNimg < tickStartNimg + tickNimg) continue;

        // End of a tick: read the losses back and check them, then grid, snapshot and stats line.
        tick++;
        const rows = await stats.read([["pl_mean", plMean]], step - 1);
        const seconds = (performance.now() - tickStart) / 1000;
        const kimg = curNimg / 1000;
        const bad = rows.find((r) => !Number.isFinite(r.value));
        if (bad) {
          const msg =
            `training diverged: ${bad.name} = ${bad.value} at iteration ${bad.step} (tick ${tick}, ` +
            `kimg ${kimg.toFixed(3)}); stopped. Last good snapshot: ${lastSnapshot ?? "none"}`;
          await run.appendStats({ tick, step, kimg, diverged: msg, time: new Date().toISOString() });
          throw new TrainingDivergedError(msg, bad.step, lastSnapshot);
        }
        const means = meansByName(rows);
        losses = means;
        const info: TickInfo = {
          tick,
          step,
          curNimg,
          kimg,
          seconds,
          imagesPerSecond: (curNimg - tickStartNimg) / Math.max(seconds, 1e-9),
          stats: means,
          plMean: means["pl_mean"] ?? 0,
          snapshot: null,
        };
        if (gridSize > 0) await saveGrid(run.gridPath(curNimg), Gema, gridSize, seed);
        if (tick % recipe.snapshotTicks === 0 || done) {
          const path = run.snapshotPath(curNimg);
          const optState = { optG: { opt: optG, names: gNames }, optD: { opt: optD, names: dNames } };
          const state = {
            curNimg,
            step,
            tick,
            optG: { step: optG.step },
            optD: { step: optD.step },
            plMean: info.plMean,
            rng: { seed, step },
            classNames: opts.data ? [...opts.data.classNames] : undefined,
          };
          try {
            await saveSnapshot(path, { G, D, Gema, ...optState }, state, lastSnapshot);
          } catch (e) {
            if (e instanceof TrainingDivergedError) {
              await run.appendStats({
                tick,
                step,
                kimg,
                diverged: e.message,
                time: new Date().toISOString(),
              });
            }
            throw e;
          }
          lastSnapshot = info.snapshot = path;
          await run.pruneSnapshots(opts.keepSnapshots ?? 0);
        }
        await run.appendStats({
          tick,
          step,
          kimg,
          secPerTick: seconds,
          secPerKimg: seconds / Math.max((curNimg - tickStartNimg) / 1000, 1e-9),
          imagesPerSecond: info.imagesPerSecond,
          ...means,
          snapshot: info.snapshot,
          liveMiB: liveGpuBytes() / 2 ** 20,
          time: new Date().toISOString(),
        });
        last = info;
        await opts.onTick?.(info);
        tickStartNimg = curNimg;
        tickStart = performance.now();
      }
      return {
        outDir: run.path,
        step,
        tick,
        curNimg,
        lastSnapshot,
        lastTick: last,
        G,
        D,
        Gema,
        recipe,
        adam: { G: adamG, D: adamD },
        resumedFrom: resumePath,
      };
    } catch (e) {
      if (resumed) disposeSnapshot(resumed);
      if (nets.owned) { for (const m of [G, D, Gema]) m.dispose(); }
      throw e;
    } finally {
      for (const t of allParams) if (!t.disposed) t.requiresGrad = true;
      optG?.dispose();
      optD?.dispose();
      stats.dispose();
      plMean.dispose();
    }
  }
}

/** A grid of G_ema's images from fixed latents (the same every tick) and constant noise. */
async function saveGrid(path: string, Gema: Generator, n: number, seed: number): Promise<void> {
  await scopeAsync(async () => {
    const classes = Gema.cDim > 0 ? Array.from({ length: n }, (_, i) => i % Gema.cDim) : null;
    const imgs = Gema.sample(n, classes, {
      noiseMode: "const",
      generator: new Rng(streamSeed(seed, GRID_STEP, STREAM.gpu)),
    });
    await saveImageGrid(path, imgs);
  });
}

function describeData(ds: Dataset) {
  return {
    name: ds.name,
    size: ds.size,
    resolution: ds.resolution,
    channels: ds.channels,
    numClasses: ds.numClasses,
    classNames: ds.classNames,
  };
}

function meansByName(rows: StatRow[]): Record<string, number> {
  const sums = new Map<string, [number, number]>();
  for (const r of rows) {
    const s = sums.get(r.name) ?? [0, 0];
    s[0] += r.value;
    s[1]++;
    sums.set(r.name, s);
  }
  return Object.fromEntries([...sums].map(([k, [s, n]]) => [k, s / n]));
}

/** The data and the networks must agree on resolution, channels and classes. */
function checkCompatible(G: Generator, D: Discriminator, opts: TrainOptions): void {
  if (G.imgResolution !== D.imgResolution || G.imgChannels !== D.imgChannels || G.cDim !== D.cDim) {
    throw new Error(
      `train: G (${G.imgResolution}px, ${G.imgChannels} ch, ${G.cDim} classes) and D (${D.imgResolution}px, ` +
        `${D.imgChannels} ch, ${D.cDim} classes) do not match`,
    );
  }
  const ds = opts.data;
  if (!ds) return;
  if (ds.resolution !== G.imgResolution || ds.channels !== G.imgChannels) {
    throw new Error(
      `train: data ${ds.name} is ${ds.channels}x${ds.resolution}x${ds.resolution}, the networks expect ` +
        `${G.imgChannels}x${G.imgResolution}x${G.imgResolution}`,
    );
  }
  if (G.cDim > 0 && ds.numClasses !== G.cDim) {
    throw new Error(`train: the networks have ${G.cDim} classes, data ${ds.name} has ${ds.numClasses}`);
  }
  if (G.cDim === 0 && opts.conditional) {
    throw new Error("train: conditional: true, but the networks given are unconditional");
  }
}

// Settings that must not change when a run is resumed (they would change what the run computes); the
// training length (totalKimg) may grow.
const FIXED_ON_RESUME = [
  "preset",
  "recipe",
  "seed",
  "conditional",
  "freezeD",
  "G_init_kwargs",
  "D_init_kwargs",
  "data",
  "extraGLoss",
  "extraDLoss",
];

/** Dotted paths where two JSON values differ, with both values ("recipe.batch: 4 in config.json, 8 now"). */
export function configDifferences(old: unknown, now: unknown, path: string): string[] {
  const isObj = (v: unknown): v is Record<string, unknown> =>
    !!v && typeof v === "object" && !Array.isArray(v);
  if (isObj(old) && isObj(now)) {
    const keys = [...new Set([...Object.keys(old), ...Object.keys(now)])].sort();
    return keys.flatMap((k) => configDifferences(old[k], now[k], `${path}.${k}`));
  }
  if (JSON.stringify(old) === JSON.stringify(now)) return [];
  const show = (v: unknown) => (v === undefined ? "absent" : JSON.stringify(v).slice(0, 80));
  return [`${path}: ${show(old)} in config.json, ${show(now)} now`];
}

async function writeRunConfig(run: RunDir, config: Record<string, unknown>, resumePath: string | null) {
  const old = await run.readConfig();
  if (resumePath && old) {
    const changed = FIXED_ON_RESUME.flatMap((k) => configDifferences(old[k], config[k], k));
    if (changed.length) {
      throw new Error(
        `train: cannot resume ${run.path} with a different data or recipe; it would not continue the same run:\n  ` +
          changed.join("\n  "),
      );
    }
    const resumes = Array.isArray(old.resumes) ? old.resumes : [];
    config = { ...config, resumes: [...resumes, { from: resumePath, time: new Date().toISOString() }] };
  }
  await run.writeConfig({ ...config, written: new Date().toISOString() });
}
