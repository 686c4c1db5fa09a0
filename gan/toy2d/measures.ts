// The study's measures in the 2-D data space: W1 to the target (exact assignment, metrics/w1.ts),
// recall of a generator w.r.t. the target (k-NN manifolds, metrics/precision_recall.ts in float64), the
// discriminator's gradient similarity (engine autograd through ToyDiscriminator), and Pearson correlation.
//
// Gradient similarity, in the study authors' sign convention (REFERENCE.md 7): for each generated sample
// x, the cosine between grad_x L_G(x), L_G(x) = softplus(-D(x)) the generator's loss at x (the ASCENT
// direction of that loss), and c(x) - x, c(x) the target centre nearest to x; the mean over the samples
// whose gradient is not zero. A discriminator whose descent field moves samples to their modes scores -1.
// Samples with an exactly-zero gradient (all ReLUs dead) are left out and counted in `zeroGradient`.

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

/** Name of the sign convention, written beside every gradient similarity in the study's outputs. */
export const GRAD_SIMILARITY_CONVENTION = "ascent";

export interface GradSimilarity {
  /** Mean cosine over the samples with a non-zero gradient (NaN if none has one). */
  mean: number;
  /** Samples whose gradient is exactly zero (left out of the mean). */
  zeroGradient: number;
  /** Per-sample cosines (NaN where the gradient is zero). */
  cosines: Float64Array;
}

/**
 * Gradient similarity from per-sample gradients of the generator loss (ascent convention): the mean
 * over samples with a non-zero gradient of cos(c(x) - x, grad). A sample sitting exactly on its centre
 * has no direction and is left out too.
 */
export function gradSimilarityOfField(
  samples: Points,
  gradients: ArrayLike<number>,
  centres: [number, number][],
): GradSimilarity {
  const n = samples.length / 2;
  if (!Number.isInteger(n) || n < 1) {
    throw new Error(`gradientSimilarity: need x,y pairs, got ${samples.length} values`);
  }
  if (gradients.length !== samples.length) {
    throw new Error(`gradientSimilarity: ${gradients.length / 2} gradients for ${n} samples`);
  }
  if (centres.length === 0) throw new Error("gradientSimilarity: no target centres given");
  const cosines = new Float64Array(n).fill(NaN);
  let total = 0, counted = 0, zero = 0;
  for (let i = 0; i < n; i++) {
    const x = samples[2 * i], y = samples[2 * i + 1];
    const [cx, cy] = centres[nearestCentre(x, y, centres)];
    const gx = gradients[2 * i], gy = gradients[2 * i + 1];
    const tx = cx - x, ty = cy - y;
    const ng = Math.hypot(gx, gy), nt = Math.hypot(tx, ty);
    if (ng === 0) zero++;
    if (ng === 0 || nt === 0) continue;
    cosines[i] = (gx * tx + gy * ty) / (ng * nt);
    total += cosines[i];
    counted++;
  }
  return { mean: counted > 0 ? total / counted : NaN, zeroGradient: zero, cosines };
}

/** Gradient similarity of a discriminator at generated samples (ascent convention; see the header). */
export async function gradientSimilarity(
  d: ToyDiscriminator,
  samples: Points,
  centres: [number, number][],
): Promise<GradSimilarity> {
  const n = samples.length / 2;
  if (!Number.isInteger(n) || n < 1) {
    throw new Error(`gradientSimilarity: need x,y pairs, got ${samples.length} values`);
  }
  const g = await scopeAsync(async () => {
    const x = tensor(Float32Array.from(samples), [n, 2]);
    x.requiresGrad = true;
    // Sum of per-sample generator losses: D has no batch coupling, so d/dx_i is sample i's own gradient.
    const loss = sum(softplus(neg(d.forward(x))));
    const [gx] = grad(loss, [x]);
    return await gx.data();
  });
  return gradSimilarityOfField(samples, g, centres);
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
