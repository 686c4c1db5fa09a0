// Kernel Inception Distance: unbiased MMD^2 with the polynomial kernel k(x,y) = (x.y/d + 1)^3,
// averaged over random subset pairs (Binkowski et al. 2018; defaults as in StyleGAN2-ADA: 100 subsets
// of at most 1000 samples). Subsets are drawn without replacement by a partial Fisher-Yates shuffle
// driven by one mulberry32 stream seeded with `seed`: for each subset, the X indices, then the Y indices.
// When the subset size reaches both set sizes, every subset is the full sets and one evaluation serves.

import { mulberry32 } from "../nn/host_random.ts";
import { polyKernelBlockSums } from "../nn/poly_kernel.ts";
import { fromHost } from "../nn/tensor.ts";

export type Vec = Float32Array | Float64Array;

export interface KidOptions {
  /** Number of subset pairs (default 100). */
  subsets?: number;
  /** Subset size cap (default 1000); the size used is min(nx, ny, maxSubsetSize). */
  maxSubsetSize?: number;
  /** Seed of the subset sampler (default 0). */
  seed?: number;
}

export interface KidResult {
  kid: number;
  /** Population standard deviation (ddof 0) of the per-subset estimates, as torch-fidelity reports. */
  std: number;
  subsets: number;
  subsetSize: number;
  seed: number;
  perSubset: Float64Array;
  /** Every subset was both whole sets: one evaluation, and `std` (0) says nothing about the spread. */
  wholeSets: boolean;
}

/** KID for reports: the spread only when the subsets differ, always with their size and count. */
export function kidReport(r: KidResult): {
  kid: number;
  std: number | null;
  subsets: number;
  subsetSize: number;
  text: string;
} {
  if (r.wholeSets || r.subsets === 1) {
    return {
      kid: r.kid,
      std: null,
      subsets: 1,
      subsetSize: r.subsetSize,
      text: `KID ${r.kid.toExponential(4)} (one evaluation on ${
        r.wholeSets ? "the whole sets" : "one subset"
      } of ${r.subsetSize}: no spread)`,
    };
  }
  return {
    kid: r.kid,
    std: r.std,
    subsets: r.subsets,
    subsetSize: r.subsetSize,
    text: `KID ${r.kid.toExponential(4)} +- ${
      r.std.toExponential(2)
    } (std over ${r.subsets} subsets of ${r.subsetSize})`,
  };
}

/** m distinct indices from 0..n-1 (partial Fisher-Yates). */
function sampleIndices(n: number, m: number, rand: () => number): Int32Array {
  const perm = new Int32Array(n);
  for (let i = 0; i < n; i++) perm[i] = i;
  for (let i = 0; i < m; i++) {
    const j = i + Math.floor(rand() * (n - i));
    const t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  return perm.slice(0, m);
}

function checkInputs(x: Vec, nx: number, y: Vec, ny: number, d: number, opts: KidOptions) {
  const subsets = opts.subsets ?? 100, cap = opts.maxSubsetSize ?? 1000, seed = opts.seed ?? 0;
  if (!Number.isInteger(d) || d < 1) throw new Error(`kid: bad feature dimension ${d}`);
  for (const [name, v, n] of [["first", x, nx], ["second", y, ny]] as const) {
    if (!Number.isInteger(n) || n < 2) {
      throw new Error(`kid: the ${name} set needs at least 2 samples, got ${n}`);
    }
    if (v.length !== n * d) {
      throw new Error(`kid: the ${name} set has ${v.length} values, expected ${n}x${d} = ${n * d}`);
    }
    for (let i = 0; i < v.length; i++) {
      if (!Number.isFinite(v[i])) throw new Error(`kid: the ${name} set has a non-finite value at ${i}`);
    }
  }
  if (!Number.isInteger(subsets) || subsets < 1) throw new Error(`kid: subsets must be >= 1, got ${subsets}`);
  if (!Number.isInteger(cap) || cap < 2) throw new Error(`kid: maxSubsetSize must be >= 2, got ${cap}`);
  if (!Number.isInteger(seed)) throw new Error(`kid: seed must be an integer, got ${seed}`);
  const m = Math.min(nx, ny, cap);
  // Full sets in every subset: all evaluations coincide.
  const distinct = m === nx && m === ny ? 1 : subsets;
  return { subsets, m, seed, distinct, wholeSets: m === nx && m === ny };
}

/** The subset index pairs KID evaluates (exported so tests and the float64 reference share them). */
export function kidSubsets(
  nx: number,
  ny: number,
  m: number,
  count: number,
  seed: number,
): [Int32Array, Int32Array][] {
  const rand = mulberry32(seed);
  const out: [Int32Array, Int32Array][] = [];
  for (let s = 0; s < count; s++) out.push([sampleIndices(nx, m, rand), sampleIndices(ny, m, rand)]);
  return out;
}

function mmdFromSums(xx: number, yy: number, xy: number, m: number): number {
  return (xx + yy) / (m * (m - 1)) - (2 * xy) / (m * m);
}

function finish(per: Float64Array, subsets: number, m: number, seed: number, wholeSets: boolean): KidResult {
  const all = per.length === subsets ? per : new Float64Array(subsets).fill(per[0]);
  let mean = 0;
  for (const v of all) mean += v;
  mean /= subsets;
  let v2 = 0;
  for (const v of all) v2 += (v - mean) * (v - mean);
  return {
    kid: mean,
    std: Math.sqrt(v2 / subsets),
    subsets,
    subsetSize: m,
    seed,
    perSubset: all,
    wholeSets,
  };
}

/** KID on the GPU (Gram blocks by matmul in float32, sums finished in float64 on the host). */
export async function kid(
  x: Vec,
  nx: number,
  y: Vec,
  ny: number,
  d: number,
  opts: KidOptions = {},
): Promise<KidResult> {
  const { subsets, m, seed, distinct, wholeSets } = checkInputs(x, nx, y, ny, d, opts);
  const per = new Float64Array(distinct);
  const z = new Float32Array(2 * m * d);
  const pairs = kidSubsets(nx, ny, m, distinct, seed);
  for (let s = 0; s < distinct; s++) {
    const [ix, iy] = pairs[s];
    for (let i = 0; i < m; i++) {
      z.set(x.subarray(ix[i] * d, ix[i] * d + d), i * d);
      z.set(y.subarray(iy[i] * d, iy[i] * d + d), (m + i) * d);
    }
    const zt = fromHost(z, [2 * m, d], "f32");
    try {
      const { xx, yy, xy } = await polyKernelBlockSums(zt);
      per[s] = mmdFromSums(xx, yy, xy, m);
    } finally {
      zt.dispose();
    }
  }
  return finish(per, subsets, m, seed, wholeSets);
}

/** Float64 host reference with the same subsets (O(subsets m^2 d): for tests and small inputs). */
export function kidRef(x: Vec, nx: number, y: Vec, ny: number, d: number, opts: KidOptions = {}): KidResult {
  const { subsets, m, seed, distinct, wholeSets } = checkInputs(x, nx, y, ny, d, opts);
  const k = (a: Vec, i: number, b: Vec, j: number) => {
    let s = 0;
    for (let l = 0; l < d; l++) s += a[i * d + l] * b[j * d + l];
    const t = s / d + 1;
    return t * t * t;
  };
  const per = new Float64Array(distinct);
  kidSubsets(nx, ny, m, distinct, seed).forEach(([ix, iy], s) => {
    let xx = 0, yy = 0, xy = 0;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < m; j++) {
        if (i !== j) {
          xx += k(x, ix[i], x, ix[j]);
          yy += k(y, iy[i], y, iy[j]);
        }
        xy += k(x, ix[i], y, iy[j]);
      }
    }
    per[s] = mmdFromSums(xx, yy, xy, m);
  });
  return finish(per, subsets, m, seed, wholeSets);
}
