// Features and statistics of image sources: datasets (uint8 images) and generators (anything with
// sample(n) -> NCHW in [-1, 1]), through a feature network. Real-data statistics are cached as .npz in
// pytorch-fid's form (mu, sigma), plus how they were made: n, ddof, the FID mode, the feature network and
// the image resolution (pytorch-fid reads mu and sigma only, so the extra entries do not hurt it).

import { encodeNpz, parseNpz } from "../nn/io/npz.ts";
import { type HostArray, toFloat64 } from "../nn/io/host.ts";
import type { FidMode } from "./features/resize.ts";
import { writeFileAtomic } from "../nn/checkpoint.ts";
import { submitQueued } from "../nn/queue.ts";
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
    submitQueued();
    onProgress?.(start + m);
  }
  return out;
}

/**
 * Statistics of n images of a source, through a cache file when `cachePath` is given. The caller names the
 * file by everything the statistics depend on (content, network, mode, resolution, ddof, n); the entry is
 * used only when its recorded n, ddof, mode, network and dimension match too, else recomputed.
 */
export async function sourceStats(
  source: ImageSource,
  n: number,
  net: FeatureNetwork,
  opts: {
    cachePath?: string;
    ddof?: 0 | 1;
    batch?: number;
    resolution?: number;
    onProgress?: (done: number) => void;
  } = {},
): Promise<FidStats & { n: number; cached: boolean }> {
  const ddof = opts.ddof ?? 1, fidMode = net.fidMode ?? "tf";
  if (opts.cachePath) {
    const c = await readStatsNpz(opts.cachePath).catch(() => null);
    if (
      c && c.n === n && c.ddof === ddof && c.mu.length === net.dim && c.fidMode === fidMode &&
      c.featureNetwork === net.name && c.resolution === opts.resolution
    ) return { mu: c.mu, sigma: c.sigma, n, ddof, fidMode, cached: true };
  }
  const feats = await extractFeatures(source, n, net, opts);
  const s = await statsFromFeatures(feats, n, net.dim, { ddof });
  const stats = { mu: s.mu, sigma: s.sigma, n, ddof, fidMode };
  if (opts.cachePath) {
    await writeStatsNpz(opts.cachePath, { ...stats, featureNetwork: net.name, resolution: opts.resolution });
  }
  return { ...stats, cached: false };
}

/** How a statistics file was made, where it says (files from pytorch-fid say nothing). */
export interface StatsMeta {
  n: number | undefined;
  fidMode: FidMode | undefined;
  featureNetwork: string | undefined;
  resolution: number | undefined;
}

const textOf = (a: HostArray | undefined) =>
  a && a.dtype === "u8" ? new TextDecoder().decode(a.data as Uint8Array) : undefined;
const bytesOf = (t: string): HostArray => {
  const data = new TextEncoder().encode(t);
  return { dtype: "u8", shape: [data.length], data };
};

/** Reads pytorch-fid statistics (.npz with mu, sigma; n, ddof, mode, network, resolution when we wrote them). */
export async function readStatsNpz(path: string): Promise<FidStats & StatsMeta> {
  const arrays = parseNpz(await Deno.readFile(path));
  const mu = arrays.get("mu"), sigma = arrays.get("sigma");
  if (!mu || !sigma) throw new Error(`${path}: statistics files need arrays 'mu' and 'sigma'`);
  const d = mu.shape[0];
  if (mu.shape.length !== 1 || sigma.shape.join() !== `${d},${d}`) {
    throw new Error(`${path}: mu [${mu.shape}] and sigma [${sigma.shape}] do not fit together`);
  }
  const n = arrays.get("n"), ddof = arrays.get("ddof"), res = arrays.get("resolution");
  const mode = textOf(arrays.get("fid_mode"));
  if (mode !== undefined && mode !== "tf" && mode !== "pytorch-fid") {
    throw new Error(`${path}: fid_mode '${mode}' is neither tf nor pytorch-fid`);
  }
  return {
    mu: toFloat64(mu),
    sigma: toFloat64(sigma),
    n: n ? Number(toFloat64(n)[0]) : undefined,
    ddof: ddof ? (Number(toFloat64(ddof)[0]) as 0 | 1) : undefined,
    fidMode: mode as FidMode | undefined,
    featureNetwork: textOf(arrays.get("feature_network")),
    resolution: res ? Number(toFloat64(res)[0]) : undefined,
  };
}

export async function writeStatsNpz(
  path: string,
  s: FidStats & { n: number; featureNetwork?: string; resolution?: number },
): Promise<void> {
  const d = s.mu.length;
  const arrays = new Map<string, HostArray>([
    ["mu", { dtype: "f64" as const, shape: [d], data: Float64Array.from(s.mu) }],
    ["sigma", { dtype: "f64" as const, shape: [d, d], data: Float64Array.from(s.sigma) }],
    ["n", { dtype: "f64" as const, shape: [1], data: Float64Array.of(s.n) }],
    ["ddof", { dtype: "f64" as const, shape: [1], data: Float64Array.of(s.ddof ?? 1) }],
    ["fid_mode", bytesOf(s.fidMode ?? "tf")],
  ]);
  if (s.featureNetwork) arrays.set("feature_network", bytesOf(s.featureNetwork));
  if (s.resolution) {
    arrays.set("resolution", { dtype: "f64", shape: [1], data: Float64Array.of(s.resolution) });
  }
  await writeFileAtomic(path, encodeNpz(arrays, { compress: true }));
}
