// Features and statistics of image sources: datasets (uint8 images) and generators (anything with
// sample(n) -> NCHW in [-1, 1]), through a feature network. Real-data statistics are cached as .npz in
// pytorch-fid's form (mu, sigma), plus n and ddof so a later FID knows how they were made.

import { encodeNpz, parseNpz } from "../nn/io/npz.ts";
import { toFloat64 } from "../nn/io/host.ts";
import { writeFileAtomic } from "../nn/checkpoint.ts";
import { gpu } from "../kernels/runtime.ts";
import { mapElementwise } from "../nn/ops.ts";
import { scope, type Tensor } from "../nn/tensor.ts";
import { type FidStats, statsFromFeatures } from "./fid.ts";
import type { FeatureNetwork } from "./features/index.ts";

/** Anything that yields images: `next(n)` returns NCHW f32 in [-1, 1] (the caller disposes it). */
export type ImageSource = (n: number) => Tensor;

/** Generated images leave as clamp(x*127.5+128, 0, 255) (REFERENCE.md 3), quantised to integers. */
export function toUint8Range(x: Tensor): Tensor {
  return mapElementwise("to_uint8", "floor(clamp(in0 * 127.5 + 128.0, 0.0, 255.0))", [x]);
}

/** Features [n, dim] of n images drawn from `source` in batches. */
export async function extractFeatures(
  source: ImageSource,
  n: number,
  net: FeatureNetwork,
  { batch = 50, onProgress }: { batch?: number; onProgress?: (done: number) => void } = {},
): Promise<Float32Array> {
  const out = new Float32Array(n * net.dim);
  for (let start = 0; start < n; start += batch) {
    const m = Math.min(batch, n - start);
    const f = scope(() => net.extract(toUint8Range(source(m))));
    out.set(await f.data({ checkFinite: true }), start * net.dim);
    f.dispose();
    gpu().flush();
    onProgress?.(start + m);
  }
  return out;
}

/** Statistics of n images of a source, through a cache file when `cachePath` is given. */
export async function sourceStats(
  source: ImageSource,
  n: number,
  net: FeatureNetwork,
  opts: { cachePath?: string; ddof?: 0 | 1; batch?: number; onProgress?: (done: number) => void } = {},
): Promise<FidStats & { n: number }> {
  const ddof = opts.ddof ?? 1;
  if (opts.cachePath) {
    const cached = await readStatsNpz(opts.cachePath).catch(() => null);
    if (cached && cached.n === n && cached.ddof === ddof && cached.mu.length === net.dim) {
      return { ...cached, n };
    }
  }
  const feats = await extractFeatures(source, n, net, opts);
  const s = await statsFromFeatures(feats, n, net.dim, { ddof });
  const stats = { mu: s.mu, sigma: s.sigma, n, ddof };
  if (opts.cachePath) await writeStatsNpz(opts.cachePath, stats);
  return stats;
}

/** Reads pytorch-fid statistics (.npz with mu, sigma; n and ddof when this project wrote them). */
export async function readStatsNpz(path: string): Promise<FidStats & { n: number | undefined }> {
  const arrays = parseNpz(await Deno.readFile(path));
  const mu = arrays.get("mu"), sigma = arrays.get("sigma");
  if (!mu || !sigma) throw new Error(`${path}: statistics files need arrays 'mu' and 'sigma'`);
  const d = mu.shape[0];
  if (mu.shape.length !== 1 || sigma.shape.join() !== `${d},${d}`) {
    throw new Error(`${path}: mu [${mu.shape}] and sigma [${sigma.shape}] do not fit together`);
  }
  const n = arrays.get("n"), ddof = arrays.get("ddof");
  return {
    mu: toFloat64(mu),
    sigma: toFloat64(sigma),
    n: n ? Number(toFloat64(n)[0]) : undefined,
    ddof: ddof ? (Number(toFloat64(ddof)[0]) as 0 | 1) : undefined,
  };
}

export async function writeStatsNpz(path: string, s: FidStats & { n: number }): Promise<void> {
  const d = s.mu.length;
  const arrays = new Map([
    ["mu", { dtype: "f64" as const, shape: [d], data: Float64Array.from(s.mu) }],
    ["sigma", { dtype: "f64" as const, shape: [d, d], data: Float64Array.from(s.sigma) }],
    ["n", { dtype: "f64" as const, shape: [1], data: Float64Array.of(s.n) }],
    ["ddof", { dtype: "f64" as const, shape: [1], data: Float64Array.of(s.ddof ?? 1) }],
  ]);
  await writeFileAtomic(path, encodeNpz(arrays, { compress: true }));
}
