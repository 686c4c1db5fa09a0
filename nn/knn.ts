// k-nearest-neighbour radii and manifold membership (improved precision/recall) as nn-level ops over a
// feature set held as tensors: row chunks with their squared norms, summed in float64 on the host when
// the set is made. The blocked distance kernels (kernels/knn.ts) never build an N x N matrix.

import {
  featureChunkRows,
  type FeatureChunks,
  kthNearestSqDist as kthKernel,
  manifoldMembership as membershipKernel,
  MAX_K,
  rowSqNorms,
} from "../kernels/knn.ts";
import { fromHost, type Tensor } from "./tensor.ts";

export { MAX_K };

/** n x d features as row chunks: x is [rows, d], norms [rows] (squared row norms). */
export interface FeatureSet {
  n: number;
  d: number;
  chunkRows: number;
  chunks: { rows: number; start: number; x: Tensor; norms: Tensor }[];
  /** Frees the chunks' tensors. */
  dispose(): void;
}

/** n x d features (row-major, host) as a feature set of chunks of at most `chunkRows` rows. */
export function featureSet(x: Float32Array, n: number, d: number, chunkRows?: number): FeatureSet {
  const rows = featureChunkRows(n, d, chunkRows);
  if (x.length !== n * d) throw new Error(`featureSet: got ${x.length} values, expected ${n}x${d}`);
  const chunks: FeatureSet["chunks"] = [];
  try {
    for (let start = 0; start < n; start += rows) {
      const r = Math.min(rows, n - start);
      const part = x.subarray(start * d, (start + r) * d);
      const norms = rowSqNorms(part, r, d, start);
      chunks.push({
        rows: r,
        start,
        x: fromHost(part, [r, d], "f32"),
        norms: fromHost(norms, [r], "f32"),
      });
    }
  } catch (e) {
    for (const c of chunks) [c.x, c.norms].forEach((t) => t.dispose());
    throw e;
  }
  return {
    n,
    d,
    chunkRows: rows,
    chunks,
    dispose() {
      for (const c of chunks) [c.x, c.norms].forEach((t) => t.dispose());
      chunks.length = 0;
    },
  };
}

function buffers(set: FeatureSet): FeatureChunks {
  return {
    n: set.n,
    d: set.d,
    chunkRows: set.chunkRows,
    chunks: set.chunks.map((c) => ({ rows: c.rows, start: c.start, x: c.x.buffer, norms: c.norms.buffer })),
  };
}

/**
 * Squared distance from every point of `set` to its k-th nearest OTHER point of `set` (self is excluded
 * by index, so an exact duplicate counts as a neighbour at distance 0), in f32.
 */
export function kthNearestSqDist(set: FeatureSet, k: number): Promise<Float32Array> {
  return kthKernel(buffers(set), k);
}

/**
 * For every probe: whether it lies within some reference point's ball (dist^2 <= refKthSq_j) and its
 * realism score max_j sqrt(refKthSq_j) / (dist_j + 1e-5).
 */
export function manifoldMembership(
  probes: FeatureSet,
  refs: FeatureSet,
  refKthSq: Float32Array,
): Promise<{ inside: Uint8Array; realism: Float32Array }> {
  return membershipKernel(buffers(probes), buffers(refs), refKthSq);
}
