// The GEMM tiles of a GPU adapter, chosen by a short autotune whose result is cached on disk per adapter:
// every candidate of GPU_TILE_CANDIDATES runs two matmuls (one that fills the GPU with output tiles, one
// with few tiles, where split-K fills it) and the fastest that computes the same product wins for that
// class. CPU adapters keep kernels/gemm.ts's modelled tiles (their compile times would dwarf a tune).
//   GC_GEMM_AUTOTUNE  unset: the cache, else tune and cache; "force": tune again; "0": default tiles
//   GC_GEMM_TILE_CACHE  the cache file (default $XDG_CACHE_HOME or ~/.cache, gan-cocktail/gemm-tiles.json)

import {
  currentGpuTiles,
  DEFAULT_GPU_TILES,
  type GemmTile,
  gemmTuning,
  GPU_TILE_CANDIDATES,
  type GpuTiles,
  setGpuTiles,
} from "../kernels/gemm.ts";
import { matmul, type MatmulParams } from "../kernels/matmul.ts";
import { onCpuAdapter, type Runtime } from "../kernels/runtime.ts";
import { writeFileAtomic } from "../nn/checkpoint.ts";
import { mulberry32 } from "../nn/host_random.ts";

const CACHE_VERSION = 1;

/** The two GEMMs the tune times: m x n x k, batch 1. */
export interface TuneShapes {
  big: { m: number; n: number; k: number };
  small: { m: number; n: number; k: number };
}

/** big: 2048^3 (1024 tiles of 64x64); small: conv-like 256 x 512 x 4608 (32 tiles, split-K). */
export const TUNE_SHAPES: TuneShapes = {
  big: { m: 2048, n: 2048, k: 2048 },
  small: { m: 256, n: 512, k: 4608 },
};

export interface TuneResult extends GpuTiles {
  /** GFLOP/s per candidate ("tm x tn @ wx x wy") and class; null: its product differed. */
  gflops: Record<string, { big: number | null; small: number | null }>;
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

/**
 * Times every candidate on both shapes (a warm-up run that compiles, then the median of three batches
 * of runs of ~20 ms each) and returns the fastest per class. A candidate whose product differs from the
 * first candidate's by more than 1e-4 (relative, max) is reported and not chosen.
 */
export async function tuneGpuTiles(
  rt: Runtime,
  candidates: GemmTile[] = GPU_TILE_CANDIDATES,
  shapes: TuneShapes = TUNE_SHAPES,
): Promise<TuneResult> {
  const t0 = performance.now();
  const gflops: TuneResult["gflops"] = {};
  const best: Partial<Record<keyof TuneShapes, { tile: GemmTile; rate: number }>> = {};
  const saved = gemmTuning.tile;
  try {
    for (const cls of ["big", "small"] as const) {
      const { m, n, k } = shapes[cls];
      const p: MatmulParams = { batch: 1, m, n, k };
      const a = rt.alloc(4 * m * k), b = rt.alloc(4 * k * n), c = rt.alloc(4 * m * n);
      rt.upload(a, randomValues(m * k, 1));
      rt.upload(b, randomValues(k * n, 2));
      let reference: Float32Array | null = null;
      try {
        for (const tile of candidates) {
          gemmTuning.tile = tile;
          const run = () => matmul(a, b, c, p);
          run();
          const got = new Float32Array(await rt.read(c, 4 * m * n));
          reference ??= got;
          const entry = gflops[tileName(tile)] ??= { big: null, small: null };
          if (relMaxError(got, reference) > 1e-4) {
            console.error(`gemm tune: ${tileName(tile)} computed a different product at ${m}x${n}x${k}`);
            continue;
          }
          let t = performance.now();
          for (let i = 0; i < 3; i++) run();
          await rt.sync();
          const perRun = (performance.now() - t) / 3;
          const reps = Math.max(1, Math.min(50, Math.ceil(20 / Math.max(perRun, 1e-3))));
          const times: number[] = [];
          for (let j = 0; j < 3; j++) {
            t = performance.now();
            for (let i = 0; i < reps; i++) run();
            await rt.sync();
            times.push((performance.now() - t) / reps);
          }
          times.sort((x, y) => x - y);
          const rate = (2 * m * n * k) / times[1] / 1e6;
          entry[cls] = rate;
          if (!best[cls] || rate > best[cls]!.rate) best[cls] = { tile, rate };
        }
      } finally {
        for (const buf of [a, b, c]) rt.release(buf);
      }
    }
  } finally {
    gemmTuning.tile = saved;
  }
  if (!best.big || !best.small) throw new Error("gemm tune: no candidate computed the right product");
  return { big: best.big.tile, small: best.small.tile, gflops, seconds: (performance.now() - t0) / 1000 };
}

function relMaxError(x: Float32Array, ref: Float32Array): number {
  let err = 0, scale = 0;
  for (let i = 0; i < x.length; i++) {
    const d = Math.abs(x[i] - ref[i]);
    if (!(d <= err)) err = Number.isNaN(d) ? Infinity : d;
    scale = Math.max(scale, Math.abs(ref[i]));
  }
  return err / Math.max(scale, 1e-30);
}

function envGet(name: string): string | undefined {
  try {
    return Deno.permissions.querySync({ name: "env", variable: name }).state === "granted"
      ? Deno.env.get(name)
      : undefined;
  } catch {
    return undefined;
  }
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
    if (e instanceof Deno.errors.NotFound) return { version: CACHE_VERSION, entries: {} };
    throw e;
  }
  try {
    const f = JSON.parse(text) as CacheFile;
    if (f.version !== CACHE_VERSION || typeof f.entries !== "object" || f.entries === null) {
      throw new Error(`version ${f.version}, expected ${CACHE_VERSION}`);
    }
    for (const [key, e] of Object.entries(f.entries)) {
      if (!isTile(e.big) || !isTile(e.small)) throw new Error(`entry ${key} has no valid tiles`);
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
    setGpuTiles({ big: hit.big, small: hit.small });
    return { tiles: { big: hit.big, small: hit.small }, source: "cache" };
  }
  const tuned = await tune(rt);
  setGpuTiles({ big: tuned.big, small: tuned.small });
  const rates = Object.entries(tuned.gflops).map(([t, r]) =>
    `${t} ${r.big?.toFixed(0) ?? "-"}/${r.small?.toFixed(0) ?? "-"}`
  );
  console.error(
    `gemm tiles tuned for ${key} in ${tuned.seconds.toFixed(1)} s: big ${tileName(tuned.big)}, small ` +
      `${tileName(tuned.small)} (GFLOP/s big/small: ${rates.join(", ")})${path ? `; cached in ${path}` : ""}`,
  );
  if (path) {
    cache.entries[key] = { ...tuned, candidates, tunedAt: new Date().toISOString() };
    await Deno.mkdir(path.replace(/\/[^/]*$/, "") || ".", { recursive: true });
    await writeFileAtomic(path, JSON.stringify(cache, null, 1) + "\n");
  }
  return { tiles: { big: tuned.big, small: tuned.small }, source: "tuned" };
}
