// The study's measures in the 2-D data space: W1 to the target (exact assignment, metrics/w1.ts),
// recall of a generator w.r.t. the target (k-NN manifolds, metrics/precision_recall.ts in float64), the
// discriminator's gradient similarity (engine autograd through ToyDiscriminator), and Pearson correlation.
//
// Gradient similarity sign convention: for each generated sample x, the descent direction of the
// generator loss, -d softplus(-D(x))/dx = sigmoid(-D(x)) dD/dx, is compared by cosine with c(x) - x,
// where c(x) is the target centre nearest to x. +1: the generator's gradient step moves every sample
// straight towards its nearest mode; -1: straight away from it. Samples where the gradient is exactly
// zero (all ReLUs dead) count as cosine 0 and are reported in `zeroGradient`.

import { grad } from "../../nn/autograd.ts";
import { tensor } from "../../nn/creation.ts";
import { neg, softplus } from "../../nn/ops.ts";
import { sum } from "../../nn/reduce.ts";
import { scopeAsync } from "../../nn/tensor.ts";
import { w1 } from "../../metrics/w1.ts";
import { precisionRecallRef } from "../../metrics/precision_recall.ts";
import { nearestCentre } from "./distributions.ts";
import type { ToyDiscriminator } from "./models.ts";

export type Points = Float32Array | Float64Array;

/** Exact W1 between two equal-size 2-D point sets. */
export function w1Distance(a: Points, b: Points): number {
  if (a.length !== b.length) {
    throw new Error(`w1Distance: sets differ in size (${a.length / 2} vs ${b.length / 2} points)`);
  }
  return w1(a, b, a.length / 2);
}

/**
 * Recall (and precision) of generated points w.r.t. target points, k-NN radii with k (5 in the study),
 * computed in float64 on the host (O(n^2) for n ~ 1000 points: well under a second).
 */
export function recall2d(target: Points, generated: Points, k = 5): { recall: number; precision: number } {
  const r = precisionRecallRef(target, target.length / 2, generated, generated.length / 2, 2, { k });
  return { recall: r.recall, precision: r.precision };
}

export interface GradSimilarity {
  /** Mean cosine over all samples (zero-gradient samples count 0). */
  mean: number;
  zeroGradient: number;
  /** Per-sample cosines. */
  cosines: Float64Array;
}

/** Cosine similarity between the generator-loss descent direction and the direction to the nearest centre. */
export async function gradientSimilarity(
  d: ToyDiscriminator,
  samples: Points,
  centres: [number, number][],
): Promise<GradSimilarity> {
  const n = samples.length / 2;
  if (!Number.isInteger(n) || n < 1) {
    throw new Error(`gradientSimilarity: need x,y pairs, got ${samples.length} values`);
  }
  if (centres.length === 0) throw new Error("gradientSimilarity: no target centres given");
  const g = await scopeAsync(async () => {
    const x = tensor(Float32Array.from(samples), [n, 2]);
    x.requiresGrad = true;
    // Sum of per-sample generator losses: D has no batch coupling, so d/dx_i is sample i's own gradient.
    const loss = sum(softplus(neg(d.forward(x))));
    const [gx] = grad(loss, [x]);
    return await gx.data();
  });
  const cosines = new Float64Array(n);
  let total = 0, zero = 0;
  for (let i = 0; i < n; i++) {
    const x = samples[2 * i], y = samples[2 * i + 1];
    const [cx, cy] = centres[nearestCentre(x, y, centres)];
    const dx = -g[2 * i], dy = -g[2 * i + 1]; // descent direction
    const tx = cx - x, ty = cy - y;
    const ng = Math.hypot(dx, dy), nt = Math.hypot(tx, ty);
    if (ng === 0 || nt === 0) {
      if (ng === 0) zero++;
      continue;
    }
    cosines[i] = (dx * tx + dy * ty) / (ng * nt);
    total += cosines[i];
  }
  return { mean: total / n, zeroGradient: zero, cosines };
}

/** Pearson correlation of two equal-length series (NaN when either is constant). */
export function pearson(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  if (n !== b.length) throw new Error(`pearson: lengths differ (${n} vs ${b.length})`);
  if (n < 2) return NaN;
  let ma = 0, mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i] / n;
    mb += b[i] / n;
  }
  let sab = 0, saa = 0, sbb = 0;
  for (let i = 0; i < n; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) ** 2;
    sbb += (b[i] - mb) ** 2;
  }
  return saa === 0 || sbb === 0 ? NaN : sab / Math.sqrt(saa * sbb);
}
