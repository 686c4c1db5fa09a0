// Training-mode batch normalisation as one differentiable op. Composed from mean, variance, sub and
// rsqrt, autograd gave every BatchNorm layer three reductions in the forward (the mean twice) and about a
// dozen dispatches in the backward. Here the forward statistics are one dispatch (batchMoments) and the
// backward is written out: two reductions (sum g, sum g * xhat) and one lazy elementwise tree. When a
// graph is being built (gradients of gradients), the same formula is written with xhat and 1/std
// recomputed from x by differentiable ops, so it can be differentiated.

import { isGradEnabled, noGrad, record } from "./autograd.ts";
import { add, mul, rsqrt, sub } from "./ops.ts";
import { batchMoments, sum } from "./reduce.ts";
import { reshape } from "./shape.ts";
import type { Tensor } from "./tensor.ts";

export interface BatchNormResult {
  /** (x - mean) / sqrt(var + eps) * weight + bias. */
  y: Tensor;
  /** The batch statistics, shaped [1, C, 1, ...] (no gradient): mean and biased variance. */
  mean: Tensor;
  variance: Tensor;
}

/** Normalises x ([N, C, ...]) over every axis but 1 with the batch's own statistics. */
export function batchNormTrain(x: Tensor, weight: Tensor, bias: Tensor, eps: number): BatchNormResult {
  const c = x.shape[1];
  if (x.rank < 2 || weight.shape.join() !== `${c}` || bias.shape.join() !== `${c}`) {
    throw new Error(
      `batchNorm: x must be [N, C, ...] with weight and bias [C]; got [${x.shape}], [${weight.shape}], [${bias.shape}]`,
    );
  }
  const axes = x.shape.map((_, i) => i).filter((i) => i !== 1);
  const bshape = x.shape.map((d, i) => (i === 1 ? d : 1));
  const count = axes.reduce((a, i) => a * x.shape[i], 1);
  const stats = (v: Tensor) => {
    const { mean: mu, variance } = batchMoments(v);
    return { mu, variance, invStd: rsqrt(add(variance, eps)) };
  };
  const { mu, variance, invStd } = noGrad(() => stats(x));
  const w = reshape(weight, bshape), b = reshape(bias, bshape);
  const y = noGrad(() => add(mul(mul(sub(x, mu), invStd), w), b));
  const out = record(y, "batchNorm", [x, weight, bias], (g) => {
    // With a graph, xhat and 1/std must depend on x; without one, the saved statistics serve.
    const s = isGradEnabled() ? stats(x) : { mu, invStd };
    const xhat = mul(sub(x, s.mu), s.invStd);
    const gb = sum(g, axes, true), gw = sum(mul(g, xhat), axes, true);
    // dx = w / std * (g - mean(g) - xhat * mean(g * xhat))
    const dx = mul(mul(w, s.invStd), sub(sub(g, mul(gb, 1 / count)), mul(xhat, mul(gw, 1 / count))));
    return [dx, reshape(gw, [c]), reshape(gb, [c])];
  });
  return { y: out, mean: mu, variance };
}
