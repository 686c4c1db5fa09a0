// tr sqrtm(S1 S2) of two PSD matrices as an nn-level op: pivoted-Cholesky factors S = L L^T of both
// (their pivots give the numerical ranks), C = L2^T L1, and tr sqrtm(S1 S2) = ||C||_* from the
// Newton-Schulz polar iteration, all in f32 on the GPU (kernels/sqrtm.ts explains why this order is
// robust to rank deficiency); the compensated row sums are finished in float64 on the host.

import { matmul } from "../kernels/matmul.ts";
import { gpu } from "../kernels/runtime.ts";
import { nuclearNorm, pivotedCholesky } from "../kernels/sqrtm.ts";
import type { Tensor } from "./tensor.ts";

export interface TraceSqrtResult {
  /** tr sqrtm(S1 S2) */
  traceSqrt: number;
  rank1: number;
  rank2: number;
  iterations: number;
  converged: boolean;
}

export interface TraceSqrtOptions {
  /** Polar iteration limit (default 100). */
  maxIterations?: number;
  /** Relative change of the trace between checks that stops the iteration (default 1e-7). */
  tol?: number;
  /** Assumed smallest relevant singular value of C / ||C||_F (default 1e-3). */
  lowerBound?: number;
  /** Rank caps, when known (a covariance of n samples has rank <= n - 1). */
  maxRank1?: number;
  maxRank2?: number;
}

function checkSquare(name: string, s: Tensor): number {
  if (s.rank !== 2 || s.shape[0] !== s.shape[1] || s.dtype !== "f32") {
    throw new Error(`traceSqrtProduct: ${name} must be a square f32 matrix, got ${s.dtype} [${s.shape}]`);
  }
  return s.shape[0];
}

/** tr sqrtm(S1 S2) for d x d PSD f32 tensors (read, not changed). */
export async function traceSqrtProduct(
  s1: Tensor,
  s2: Tensor,
  opts: TraceSqrtOptions = {},
): Promise<TraceSqrtResult> {
  const d = checkSquare("S1", s1);
  if (checkSquare("S2", s2) !== d) {
    throw new Error(`traceSqrtProduct: S1 is ${d}x${d} but S2 is ${s2.shape[0]}x${s2.shape[0]}`);
  }
  if (d < 1) throw new Error("traceSqrtProduct: empty matrices");
  const rt = gpu();
  const f1 = await pivotedCholesky(s1.buffer, d, opts.maxRank1 ?? d);
  try {
    const f2 = await pivotedCholesky(s2.buffer, d, opts.maxRank2 ?? d);
    try {
      const r1 = f1.rank, r2 = f2.rank;
      if (r1 === 0 || r2 === 0) return { traceSqrt: 0, rank1: r1, rank2: r2, iterations: 0, converged: true };
      const c = rt.alloc(r2 * r1 * 4);
      try {
        matmul(f2.lt, f1.lt, c, { batch: 1, m: r2, n: r1, k: d, transB: true }); // C = L2^T L1
        const nn = await nuclearNorm(c, r2, r1, opts);
        return {
          traceSqrt: nn.value,
          rank1: r1,
          rank2: r2,
          iterations: nn.iterations,
          converged: nn.converged,
        };
      } finally {
        rt.release(c);
      }
    } finally {
      rt.release(f2.lt);
    }
  } finally {
    rt.release(f1.lt);
  }
}
