// The GEMM tiles of a GPU adapter, chosen by a short autotune whose result is cached on disk per adapter:
// for each GEMM kind (matmul and the three conv2d passes) every candidate of GPU_TILE_CANDIDATES runs one
// problem that fills the GPU with output tiles and one with few tiles (where split-K fills it), and the
// fastest that computes the same result as the first candidate wins for that kind and class. Kernel time
// comes from timestamp-query where the adapter has it (no host waits in the number), else from the wall
// clock over ~100 ms batches. CPU adapters keep kernels/gemm.ts's modelled tiles (their compile times
// would dwarf a tune).
//   GC_GEMM_AUTOTUNE  unset: the cache, else tune and cache; "force": tune again; "0": default tiles
//   GC_GEMM_TILE_CACHE  the cache file (default $XDG_CACHE_HOME or ~/.cache, gan-cocktail/gemm-tiles.json)

import {
  conv2dFlops,
  conv2dForward,
  conv2dInputGrad,
  type Conv2dParams,
  conv2dWeightGrad,
} from "../kernels/conv2d.ts";
import {
  currentGpuTiles,
  DEFAULT_GPU_TILES,
  GEMM_KINDS,
  type GemmKind,
  type GemmTile,
  gemmTuning,
  GPU_TILE_CANDIDATES,
  type GpuTiles,
  setGpuTiles,
} from "../kernels/gemm.ts";
import { matmul, matmulFlops, type MatmulParams } from "../kernels/matmul.ts";
import { onCpuAdapter, type Runtime } from "../kernels/runtime.ts";
import { writeFileAtomic } from "../nn/checkpoint.ts";
import { conv2dParams } from "../nn/conv.ts";
import { maxRelError } from "../nn/host_compare.ts";
import { mulberry32 } from "../nn/host_random.ts";
import { envGet } from "./env.ts";

const CACHE_VERSION = 2;

/** One timed problem: a matmul or a convolution (run as the pass its kind names). */
export type TuneProblem = { matmul: MatmulParams } | { conv: Conv2dParams };

/** The problems a tune times, per kind and class. */
export type TuneProblems = Record<GemmKind, { big: TuneProblem; small: TuneProblem }>;

/** A 3x3 same-padded convolution with c channels in and out, as a tune problem. */
export function convProblem(batch: number, c: number, hw: number): TuneProblem {
  return { conv: conv2dParams([batch, c, hw, hw], [c, c, 3, 3], { padding: 1 }) };
}

/**
 * Big problems give >= 128 output tiles even with the largest candidate block (128 x 128): matmul 2048^3,
 * 3x3 convolutions at b8 c256 64x64 (c512 32x32 for the weight gradient, whose output is cout x cin*9).
 * Small ones give few: matmul 256 x 512 x 4608, c512 4x4 b8 (b16 c32 64x64 for the weight gradient).
 */
export const TUNE_PROBLEMS: TuneProblems = {
  matmul: {
    big: { matmul: { batch: 1, m: 2048, n: 2048, k: 2048 } },
    small: { matmul: { batch: 1, m: 256, n: 512, k: 4608 } },
  },
  conv_fwd: { big: convProblem(8, 256, 64), small: convProblem(8, 512, 4) },
  conv_dx: { big: convProblem(8, 256, 64), small: convProblem(8, 512, 4) },
  conv_dw: { big: convProblem(8, 512, 32), small: convProblem(16, 32, 64) },
};

export interface TuneResult {
  tiles: GpuTiles;
  /** GFLOP/s per kind, candidate ("tm x tn @ wx x wy") and class; null: its result differed. */
  gflops: Record<GemmKind, Record<string, { big: number | null; small: number | null }>>;
  /** How the kernels were timed. */
  clock: "timestamp-query" | "wall";
  seconds: number;
}

export interface CacheEntry extends TuneResult {
  candidates: string;
  tunedAt: string;
}

export function tileName(t: GemmTile): string {
  return `${t.tm}x${t.tn}@${t.wx}x${t.wy}`;
}

/** The adapter as the cache keys it. */
export function adapterKey(rt: Runtime): string {
  const i = rt.info;
  return `${i.vendor}|${i.architecture}|${i.description}`;
}

/** Seeded values in [-1, 1) (never zeros: they hide unwritten outputs). */
function randomValues(n: number, seed: number): Float32Array {
  const next = mulberry32(seed);
  return Float32Array.from({ length: n }, () => 2 * next() - 1);
}

/** Buffers for one problem, a closure that runs it as `kind`, and its FLOPs. */
function prepare(rt: Runtime, kind: GemmKind, problem: TuneProblem) {
  const bufs: GPUBuffer[] = [];
  const input = (n: number, seed: number) => {
    const b = rt.alloc(4 * n);
    rt.upload(b, randomValues(n, seed));
    bufs.push(b);
    return b;
  };
  const output = (n: number) => {
    const b = rt.alloc(4 * n);
    bufs.push(b);
    return { b, n };
  };
  let run: () => void, out: { b: GPUBuffer; n: number }, flops: number;
  if ("matmul" in problem) {
    const p = problem.matmul;
    const a = input(p.m * p.k, 1), b = input(p.k * p.n, 2);
    out = output(p.m * p.n);
    run = () => matmul(a, b, out.b, p);
    flops = matmulFlops(p);
  } else {
    const p = problem.conv;
    const xN = p.batch * p.cin * p.h * p.w, wN = p.cout * p.cin * p.kh * p.kw;
    const yN = p.batch * p.cout * p.outH * p.outW;
    flops = conv2dFlops(p);
    if (kind === "conv_fwd") {
      const x = input(xN, 1), w = input(wN, 2);
      out = output(yN);
      run = () => conv2dForward(x, w, out.b, p);
    } else if (kind === "conv_dx") {
      const dy = input(yN, 1), w = input(wN, 2);
      out = output(xN);
      run = () => conv2dInputGrad(dy, w, out.b, p);
    } else {
      const x = input(xN, 1), dy = input(yN, 2);
      out = output(wN);
      run = () => conv2dWeightGrad(x, dy, out.b, p);
    }
  }
  return { run, out, flops, dispose: () => bufs.forEach((b) => rt.release(b)) };
}

/** Milliseconds per run: the median of 5 timestamp windows of one run, or of 3 wall-clock ~100 ms batches. */
async function msPerRun(rt: Runtime, run: () => void, gpuClock: boolean): Promise<number> {
  const times: number[] = [];
  if (gpuClock) {
    for (let j = 0; j < 5; j++) {
      rt.startTiming();
      run();
      let ms = 0;
      for (const f of (await rt.stopTiming()).values()) ms += f.ms;
      times.push(ms);
    }
  } else {
    let t = performance.now();
    run();
    await rt.sync();
    const reps = Math.max(1, Math.min(1000, Math.ceil(100 / Math.max(performance.now() - t, 1e-3))));
    for (let j = 0; j < 3; j++) {
      t = performance.now();
      for (let i = 0; i < reps; i++) run();
      await rt.sync();
      times.push((performance.now() - t) / reps);
    }
  }
  times.sort((x, y) => x - y);
  return times[times.length >> 1];
}

/**
 * Times every candidate on every kind's two problems, after ~0.3 s of untimed matmuls that bring the
 * GPU's clocks up, and returns the fastest per kind and class. A candidate whose result differs from the
 * first candidate's by more than 1e-4 (relative, max) is reported and not chosen.
 */
export async function tuneGpuTiles(
  rt: Runtime,
  candidates: GemmTile[] = GPU_TILE_CANDIDATES,
  problems: TuneProblems = TUNE_PROBLEMS,
): Promise<TuneResult> {
  const t0 = performance.now();
  const gpuClock = rt.device.features.has("timestamp-query");
  const gflops = Object.fromEntries(GEMM_KINDS.map((k) => [k, {}])) as TuneResult["gflops"];
  const tiles = structuredClone(DEFAULT_GPU_TILES);
  const saved = gemmTuning.tile;
  try {
    gemmTuning.tile = candidates[0];
    const warm = prepare(rt, "matmul", problems.matmul.big);
    try {
      const t = performance.now();
      do {
        warm.run();
        await rt.sync();
      } while (performance.now() - t < 300);
    } finally {
      warm.dispose();
    }
    for (const kind of GEMM_KINDS) {
      for (const cls of ["big", "small"] as const) {
        const job = prepare(rt, kind, problems[kind][cls]);
        let reference: Float32Array | null = null, best = 0;
        try {
          for (const tile of candidates) {
            gemmTuning.tile = tile;
            job.run();
            const got = new Float32Array(await rt.read(job.out.b, 4 * job.out.n));
            reference ??= got;
            const entry = gflops[kind][tileName(tile)] ??= { big: null, small: null };
            if (maxRelError(got, reference) > 1e-4) {
              console.error(`gemm tune: ${tileName(tile)} computed a different ${kind} (${cls} problem)`);
              continue;
            }
            const rate = job.flops / (await msPerRun(rt, job.run, gpuClock)) / 1e6;
            entry[cls] = rate;
            if (rate > best) [best, tiles[kind][cls]] = [rate, tile];
          }
        } finally {
          job.dispose();
        }
        if (best === 0) {
          throw new Error(`gemm tune: no candidate computed the right ${kind} (${cls} problem)`);
        }
      }
    }
  } finally {
    gemmTuning.tile = saved;
  }
  return {
    tiles,
    gflops,
    clock: gpuClock ? "timestamp-query" : "wall",
    seconds: (performance.now() - t0) / 1000,
  };
}

/** The cache file: GC_GEMM_TILE_CACHE, else under $XDG_CACHE_HOME or ~/.cache; null without either. */
export function tileCachePath(): string | null {
  const explicit = envGet("GC_GEMM_TILE_CACHE");
  if (explicit) return explicit;
  const base = envGet("XDG_CACHE_HOME") || (envGet("HOME") ? `${envGet("HOME")}/.cache` : undefined);
  return base ? `${base}/gan-cocktail/gemm-tiles.json` : null;
}

type CacheFile = { version: number; entries: Record<string, CacheEntry> };

function isTile(t: unknown): t is GemmTile {
  const o = t as Record<string, unknown>;
  return !!o && ["tm", "tn", "wx", "wy"].every((k) => Number.isInteger(o[k]) && (o[k] as number) > 0);
}

/** Reads the cache; a missing file is empty, a malformed one is reported and treated as empty. */
export async function readTileCache(path: string): Promise<CacheFile> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) {
      console.error(`gemm tiles: cannot read the cache ${path} (${(e as Error).message}); tuning`);
    }
    return { version: CACHE_VERSION, entries: {} };
  }
  try {
    const f = JSON.parse(text) as CacheFile;
    if (f.version !== CACHE_VERSION || typeof f.entries !== "object" || f.entries === null) {
      throw new Error(`version ${f.version}, expected ${CACHE_VERSION}`);
    }
    for (const [key, e] of Object.entries(f.entries)) {
      for (const k of GEMM_KINDS) {
        if (!isTile(e.tiles?.[k]?.big) || !isTile(e.tiles[k].small)) {
          throw new Error(`entry ${key} has no valid ${k} tiles`);
        }
      }
    }
    return f;
  } catch (e) {
    console.error(`gemm tiles: ignoring the malformed cache ${path} (${(e as Error).message}); tuning again`);
    return { version: CACHE_VERSION, entries: {} };
  }
}

export interface ApplyOptions {
  /** GC_GEMM_AUTOTUNE: unset (cache, else tune), "force" (tune again), "0" (default tiles). */
  mode?: string;
  /** The cache file (tileCachePath()); null: tune without caching. */
  path?: string | null;
  /** Whether the adapter is a CPU one (tiles stay modelled there); tests pass false. */
  cpu?: boolean;
  /** The tuner (tests pass a fake). */
  tune?: (rt: Runtime) => Promise<TuneResult>;
}

/**
 * Sets the GPU tiles from the cache, tuning (and caching) when this adapter has no entry for the current
 * candidates. Returns what was applied and where it came from; CPU adapters: "cpu" and no change.
 */
export async function applyGemmTiles(
  rt: Runtime,
  opts: ApplyOptions = {},
): Promise<{ tiles: GpuTiles; source: "cpu" | "default" | "cache" | "tuned" }> {
  const { mode = envGet("GC_GEMM_AUTOTUNE"), path = tileCachePath(), tune = tuneGpuTiles } = opts;
  if (opts.cpu ?? onCpuAdapter()) return { tiles: currentGpuTiles(), source: "cpu" };
  if (mode === "0") {
    setGpuTiles(null);
    return { tiles: DEFAULT_GPU_TILES, source: "default" };
  }
  if (mode !== undefined && mode !== "" && mode !== "force") {
    throw new Error(`GC_GEMM_AUTOTUNE must be unset, "force" or "0", got "${mode}"`);
  }
  const key = adapterKey(rt), candidates = JSON.stringify(GPU_TILE_CANDIDATES.map(tileName));
  const cache = path ? await readTileCache(path) : { version: CACHE_VERSION, entries: {} };
  const hit = cache.entries[key];
  if (hit && hit.candidates === candidates && mode !== "force") {
    setGpuTiles(hit.tiles);
    return { tiles: hit.tiles, source: "cache" };
  }
  const tuned = await tune(rt);
  setGpuTiles(tuned.tiles);
  console.error(`gemm tiles tuned for ${key} in ${tuned.seconds.toFixed(1)} s (${tuned.clock}):`);
  for (const k of GEMM_KINDS) {
    const rates = Object.entries(tuned.gflops[k]).map(([t, r]) =>
      `${t} ${r.big?.toFixed(0) ?? "-"}/${r.small?.toFixed(0) ?? "-"}`
    );
    console.error(
      `  ${k}: big ${tileName(tuned.tiles[k].big)}, small ${tileName(tuned.tiles[k].small)} ` +
        `(GFLOP/s big/small: ${rates.join(", ")})`,
    );
  }
  if (path) {
    cache.entries[key] = { ...tuned, candidates, tunedAt: new Date().toISOString() };
    try {
      await Deno.mkdir(path.replace(/\/[^/]*$/, "") || ".", { recursive: true });
      await writeFileAtomic(path, JSON.stringify(cache, null, 1) + "\n");
      console.error(`  cached in ${path}`);
    } catch (e) {
      // A read-only home must not stop the run: the tiles apply to this process, the next one tunes again.
      console.error(`  not cached: ${path}: ${(e as Error).message}`);
    }
  }
  return { tiles: tuned.tiles, source: "tuned" };
}
