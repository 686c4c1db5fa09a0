// Comparing two host results: one definition, shared by the bench's peer check and the GEMM tile autotune's
// check that a candidate tile computes the same product.

/** max|a - b| / max|b|: an error relative to the result's scale (elementwise ratios blow up near 0). */
export function maxRelError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`result lengths differ: ${a.length} vs ${b.length}`);
  let diff = 0, scale = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (Number.isNaN(d)) return Infinity; // a NaN on either side is a mismatch
    if (d > diff) diff = d;
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / Math.max(scale, 1e-30);
}
