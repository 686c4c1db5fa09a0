// KID's polynomial-kernel block sums as an nn-level op. For one subset pair stacked as Z = [X; Y]
// (2m x d), the Gram matrix K = (Z Z^T / d + 1)^3 comes from one matmul with a fused epilogue, then a row
// kernel (kernels/metric_kid.ts) Kahan-sums each row's X half and Y half with the diagonal left out; the
// 2m row sums are added in float64 on the host.

import { halfRowSums } from "../kernels/metric_kid.ts";
import { matmulT } from "./linalg.ts";
import { scopeAsync, Tensor } from "./tensor.ts";

/** Sums of K over the off-diagonal X-X block, the off-diagonal Y-Y block and the X-Y block. */
export interface PolyBlockSums {
  xx: number;
  yy: number;
  xy: number;
}

/** z is [2m, d]: X in rows 0..m-1, then Y in rows m..2m-1. Tensors made here are freed before it returns. */
export async function polyKernelBlockSums(z: Tensor): Promise<PolyBlockSums> {
  if (z.rank !== 2 || z.dtype !== "f32") {
    throw new Error(`polyKernelBlockSums: need an f32 matrix [2m, d], got ${z.dtype} [${z.shape}]`);
  }
  const [rows, d] = z.shape;
  if (rows % 2 !== 0 || rows < 4) {
    throw new Error(`polyKernelBlockSums: need 2m rows with m >= 2, got ${rows}`);
  }
  if (d < 1) throw new Error(`polyKernelBlockSums: bad feature dimension ${d}`);
  const m = rows / 2;
  return await scopeAsync(async () => {
    const k = matmulT(z, z, false, true, { alpha: 1 / d, expr: "(v + 1.0) * (v + 1.0) * (v + 1.0)" });
    const sums = Tensor.empty([rows, 2]);
    halfRowSums(k.buffer, sums.buffer, rows);
    const s = await sums.data();
    let xx = 0, yy = 0, xy = 0;
    for (let i = 0; i < m; i++) {
      xx += s[2 * i];
      xy += s[2 * i + 1];
      yy += s[2 * (m + i) + 1];
    }
    return { xx, yy, xy };
  });
}
