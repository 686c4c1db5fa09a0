// Frechet Inception Distance from feature statistics:
//   FID = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr sqrtm(S1 S2).
// The mean term and the traces are exact float64 sums of the inputs; only tr sqrtm(S1 S2) is computed on
// the GPU in float32 (nn/sqrtm.ts: pivoted-Cholesky factors and a Newton-Schulz polar iteration,
// correct for rank-deficient covariances). Covariances divide by N - ddof: ddof 1 (default, as
// pytorch-fid and most libraries) or 0 (as StyleGAN2-ADA); the result records which.

import { scatterMatrix } from "../nn/covariance.ts";
import { traceSqrtProduct } from "../nn/sqrtm.ts";
import { fromHost, scopeAsync } from "../nn/tensor.ts";
import { fidRef } from "./linalg64.ts";
import type { FidMode } from "./features/resize.ts";

export type Vec = Float32Array | Float64Array;

export interface FidStats {
  mu: Vec;
  sigma: Vec;
  /** Sample count, when known: caps the covariance rank at n - 1. */
  n?: number;
  /** Covariance normalisation N - ddof, when known (pytorch-fid .npz files use 1). */
  ddof?: 0 | 1;
  /** The preprocessing convention of the features (metrics/features/resize.ts), when known. */
  fidMode?: FidMode;
}

export interface FidResult {
  fid: number;
  /** |mu1 - mu2|^2 */
  meanTerm: number;
  trace1: number;
  trace2: number;
  /** tr sqrtm(S1 S2) */
  traceSqrt: number;
  /** Covariance normalisation of both inputs, or "unknown" when the statistics do not say. */
  ddof: 0 | 1 | "unknown";
  d: number;
  /** Numerical ranks of the two covariances as found by pivoted Cholesky (null on the host path). */
  rank1: number | null;
  rank2: number | null;
  /** Newton-Schulz polar iterations used (0 on the host path). */
  iterations: number;
  /** "gpu-f32": Cholesky factors + polar iteration on the GPU; "host-f64": float64 eigendecompositions. */
  method: "gpu-f32" | "host-f64";
  /** Set when the GPU iteration hit its limit unconverged and the value was recomputed on the host. */
  fallback: string | null;
}

export interface FidOptions {
  /** "gpu" (default) or "host64": the float64 host reference (O(d^3) in JavaScript, minutes at d=2048). */
  method?: "gpu" | "host64";
  /** GPU path: polar iteration controls (see nn/sqrtm.ts TraceSqrtOptions). */
  maxIterations?: number;
  tol?: number;
  lowerBound?: number;
  /**
   * GPU path stopped at maxIterations unconverged: "host64" (default) recomputes in float64 on the host
   * and says so in `fallback`; "fail" throws.
   */
  onUnconverged?: "host64" | "fail";
}

function checkStats(name: string, s: FidStats, d: number): void {
  if (!s || !s.mu || !s.sigma) throw new Error(`fid: ${name} statistics need mu and sigma`);
  if (s.mu.length !== d) throw new Error(`fid: ${name} mu has ${s.mu.length} entries, expected d = ${d}`);
  if (s.sigma.length !== d * d) {
    throw new Error(`fid: ${name} sigma has ${s.sigma.length} entries, expected ${d}x${d} = ${d * d}`);
  }
  for (let i = 0; i < d; i++) {
    if (!Number.isFinite(s.mu[i])) throw new Error(`fid: ${name} mu[${i}] is not finite (${s.mu[i]})`);
  }
  const sg = s.sigma;
  for (let i = 0; i < d; i++) {
    if (!(sg[i * d + i] >= 0)) {
      throw new Error(`fid: ${name} sigma[${i},${i}] = ${sg[i * d + i]} is not a variance`);
    }
    for (let j = 0; j < i; j++) {
      const a = sg[i * d + j], b = sg[j * d + i];
      if (!Number.isFinite(a) || !Number.isFinite(b)) {
        throw new Error(`fid: ${name} sigma[${i},${j}] is not finite`);
      }
      const tol = 1e-5 * Math.sqrt(sg[i * d + i] * sg[j * d + j]) + 1e-30;
      if (Math.abs(a - b) > tol) {
        throw new Error(`fid: ${name} sigma is not symmetric at (${i},${j}): ${a} vs ${b}`);
      }
    }
  }
  if (s.ddof !== undefined && s.ddof !== 0 && s.ddof !== 1) {
    throw new Error(`fid: ${name} ddof must be 0 or 1`);
  }
  if (s.n !== undefined && !(Number.isInteger(s.n) && s.n >= 1)) {
    throw new Error(`fid: ${name} n must be a count`);
  }
}

/** FID between two sets of statistics of dimension d (the GPU path needs `await initGPU()` first). */
export async function fidFromStats(
  a: FidStats,
  b: FidStats,
  d: number,
  opts: FidOptions = {},
): Promise<FidResult> {
  if (!Number.isInteger(d) || d < 1) throw new Error(`fid: bad feature dimension ${d}`);
  checkStats("first", a, d);
  checkStats("second", b, d);
  if (a.ddof !== undefined && b.ddof !== undefined && a.ddof !== b.ddof) {
    throw new Error(
      `fid: the statistics use different covariance normalisations (ddof ${a.ddof} vs ${b.ddof})`,
    );
  }
  if (a.fidMode !== undefined && b.fidMode !== undefined && a.fidMode !== b.fidMode) {
    throw new Error(
      `fid: the statistics were made in different FID modes (${a.fidMode} vs ${b.fidMode}): ` +
        "their resize and normalisation differ, so the distance would mix conventions",
    );
  }
  const ddof = a.ddof ?? b.ddof ?? "unknown";
  if (opts.method === "host64") {
    const r = fidRef(a.mu, a.sigma, b.mu, b.sigma, d);
    return { ...r, ddof, d, rank1: null, rank2: null, iterations: 0, method: "host-f64", fallback: null };
  }
  if (opts.method !== undefined && opts.method !== "gpu") {
    throw new Error(`fid: unknown method ${opts.method}`);
  }
  let meanTerm = 0, trace1 = 0, trace2 = 0;
  for (let i = 0; i < d; i++) {
    const dm = a.mu[i] - b.mu[i];
    meanTerm += dm * dm;
    trace1 += a.sigma[i * d + i];
    trace2 += b.sigma[i * d + i];
  }
  const rankCap = (s: FidStats) => (s.n === undefined ? d : Math.max(1, Math.min(d, s.n - 1)));
  const t = await scopeAsync(() =>
    traceSqrtProduct(
      fromHost(Float32Array.from(a.sigma), [d, d], "f32"),
      fromHost(Float32Array.from(b.sigma), [d, d], "f32"),
      {
        maxIterations: opts.maxIterations,
        tol: opts.tol,
        lowerBound: opts.lowerBound,
        maxRank1: rankCap(a),
        maxRank2: rankCap(b),
      },
    )
  );
  if (!t.converged) {
    const why = `the GPU polar iteration stopped unconverged at its limit of ${t.iterations} iterations`;
    if (opts.onUnconverged === "fail") throw new Error(`fid: ${why} (use the float64 host path)`);
    const r = fidRef(a.mu, a.sigma, b.mu, b.sigma, d);
    return {
      ...r,
      ddof,
      d,
      rank1: t.rank1,
      rank2: t.rank2,
      iterations: t.iterations,
      method: "host-f64",
      fallback: `${why}; recomputed in float64 on the host`,
    };
  }
  return {
    fid: meanTerm + trace1 + trace2 - 2 * t.traceSqrt,
    meanTerm,
    trace1,
    trace2,
    traceSqrt: t.traceSqrt,
    ddof,
    d,
    rank1: t.rank1,
    rank2: t.rank2,
    iterations: t.iterations,
    method: "gpu-f32",
    fallback: null,
  };
}

/**
 * Mean (float64, host) and covariance (GPU scatter matrix of centred rows, compensated accumulation) of n
 * feature rows of dimension d, dividing by n - ddof (default ddof 1).
 */
export async function statsFromFeatures(
  features: Vec,
  n: number,
  d: number,
  opts: { ddof?: 0 | 1 } = {},
): Promise<Required<Omit<FidStats, "fidMode">> & { mu: Float64Array; sigma: Float64Array }> {
  const ddof = opts.ddof ?? 1;
  if (ddof !== 0 && ddof !== 1) throw new Error(`statsFromFeatures: ddof must be 0 or 1, got ${ddof}`);
  if (!Number.isInteger(n) || !Number.isInteger(d) || n < 1 || d < 1) {
    throw new Error(`statsFromFeatures: bad sizes n=${n}, d=${d}`);
  }
  if (n - ddof < 1) throw new Error(`statsFromFeatures: need more than ${ddof} samples, got ${n}`);
  if (features.length !== n * d) {
    throw new Error(`statsFromFeatures: got ${features.length} values, expected ${n}x${d} = ${n * d}`);
  }
  const mu = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) {
      const v = features[i * d + j];
      if (!Number.isFinite(v)) throw new Error(`statsFromFeatures: sample ${i}, feature ${j} is not finite`);
      mu[j] += v;
    }
  }
  for (let j = 0; j < d; j++) mu[j] /= n;
  const scatter = await scatterMatrix(features, n, d, mu);
  const sigma = new Float64Array(d * d), inv = 1 / (n - ddof);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j <= i; j++) {
      sigma[i * d + j] = sigma[j * d + i] = 0.5 * (scatter[i * d + j] + scatter[j * d + i]) * inv;
    }
  }
  return { mu, sigma, n, ddof };
}
