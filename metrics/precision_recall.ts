// Improved precision and recall (Kynkaanniemi et al. 2019). A reference set's manifold is the union of
// balls around its points, each with radius = distance to the point's k-th nearest other reference
// point. Precision: share of generated samples inside the real manifold; recall: share of real samples
// inside the generated manifold. Realism score of a generated sample: max_j radius_j / (dist_j + 1e-5)
// over real points j. Distances are Euclidean on the given features (VGG16 fc features in practice).

import { featureSet, kthNearestSqDist, manifoldMembership, MAX_K } from "../nn/knn.ts";

export type Vec = Float32Array | Float64Array;

export interface PrecisionRecallOptions {
  /** Neighbour rank defining the radii (default 3 as in StyleGAN2-ADA; the pretrained-GAN study uses 5). */
  k?: number;
  /** GPU path only: rows per resident feature chunk (default: as large as the binding limits allow). */
  chunkRows?: number;
}

export interface PrecisionRecallResult {
  precision: number;
  recall: number;
  k: number;
  /** Realism score of each generated sample against the real manifold. */
  realism: Float32Array | Float64Array;
}

function check(real: Vec, nReal: number, fake: Vec, nFake: number, d: number, k: number): void {
  if (!Number.isInteger(d) || d < 1) throw new Error(`precisionRecall: bad feature dimension ${d}`);
  if (!Number.isInteger(k) || k < 1 || k > MAX_K) {
    throw new Error(`precisionRecall: k must be in 1..${MAX_K}, got ${k}`);
  }
  for (const [name, x, n] of [["real", real, nReal], ["generated", fake, nFake]] as const) {
    if (!Number.isInteger(n) || n <= k) {
      throw new Error(`precisionRecall: the ${name} set needs more than k=${k} samples, got ${n}`);
    }
    if (x.length !== n * d) {
      throw new Error(`precisionRecall: ${name} features have ${x.length} values, expected ${n}x${d}`);
    }
    for (let i = 0; i < x.length; i++) {
      if (!Number.isFinite(x[i])) {
        throw new Error(`precisionRecall: ${name} feature value ${i} is not finite`);
      }
    }
  }
}

/** Precision, recall and realism scores on the GPU (distances in float32, blocked; no N x N matrix). */
export async function precisionRecall(
  real: Vec,
  nReal: number,
  fake: Vec,
  nFake: number,
  d: number,
  opts: PrecisionRecallOptions = {},
): Promise<PrecisionRecallResult> {
  const k = opts.k ?? 3;
  check(real, nReal, fake, nFake, d, k);
  const f32 = (x: Vec) => (x instanceof Float32Array ? x : Float32Array.from(x));
  const r = featureSet(f32(real), nReal, d, opts.chunkRows);
  try {
    const f = featureSet(f32(fake), nFake, d, opts.chunkRows);
    try {
      const realKth = await kthNearestSqDist(r, k), fakeKth = await kthNearestSqDist(f, k);
      const p = await manifoldMembership(f, r, realKth);
      const q = await manifoldMembership(r, f, fakeKth);
      return { precision: mean(p.inside), recall: mean(q.inside), k, realism: p.realism };
    } finally {
      f.dispose();
    }
  } finally {
    r.dispose();
  }
}

function mean(flags: Uint8Array): number {
  let s = 0;
  for (const v of flags) s += v;
  return s / flags.length;
}

function sqDist(a: Vec, i: number, b: Vec, j: number, d: number): number {
  let s = 0;
  for (let l = 0; l < d; l++) {
    const t = a[i * d + l] - b[j * d + l];
    s += t * t;
  }
  return s;
}

/** Float64 brute-force squared distance of each point to its k-th nearest other point of the same set. */
export function kthNearestSqDistRef(x: Vec, n: number, d: number, k: number): Float64Array {
  const out = new Float64Array(n), row = new Float64Array(n - 1);
  for (let i = 0; i < n; i++) {
    let c = 0;
    for (let j = 0; j < n; j++) if (j !== i) row[c++] = sqDist(x, i, x, j, d);
    out[i] = row.sort()[k - 1];
  }
  return out;
}

/** Float64 brute-force membership and realism of probes against reference balls. */
export function manifoldMembershipRef(
  probes: Vec,
  np: number,
  refs: Vec,
  nr: number,
  d: number,
  refKthSq: Float64Array,
) {
  const inside = new Uint8Array(np), realism = new Float64Array(np);
  for (let i = 0; i < np; i++) {
    for (let j = 0; j < nr; j++) {
      const d2 = sqDist(probes, i, refs, j, d);
      if (d2 <= refKthSq[j]) inside[i] = 1;
      realism[i] = Math.max(realism[i], Math.sqrt(refKthSq[j]) / (Math.sqrt(d2) + 1e-5));
    }
  }
  return { inside, realism };
}

/** Float64 host reference of precisionRecall (O(N^2 d); for tests and small sets). */
export function precisionRecallRef(
  real: Vec,
  nReal: number,
  fake: Vec,
  nFake: number,
  d: number,
  opts: PrecisionRecallOptions = {},
): PrecisionRecallResult {
  const k = opts.k ?? 3;
  check(real, nReal, fake, nFake, d, k);
  const realKth = kthNearestSqDistRef(real, nReal, d, k), fakeKth = kthNearestSqDistRef(fake, nFake, d, k);
  const p = manifoldMembershipRef(fake, nFake, real, nReal, d, realKth);
  const q = manifoldMembershipRef(real, nReal, fake, nFake, d, fakeKth);
  return { precision: mean(p.inside), recall: mean(q.inside), k, realism: p.realism };
}
