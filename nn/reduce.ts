// Differentiable reductions over axes: sum, mean, max, min, var.

import { columnMoments } from "../kernels/reduce.ts";
import { isGradEnabled, record } from "./autograd.ts";
import { maxReadBuffers, sourceOf } from "./lazy.ts";
import { div, equal, mul, square, sub } from "./ops.ts";
import { broadcastTo, reduceAxes, reshape } from "./shape.ts";
import { Tensor } from "./tensor.ts";

function axesOf(x: Tensor, axes?: number | number[]): number[] {
  if (axes === undefined) return x.shape.map((_, i) => i);
  return (Array.isArray(axes) ? axes : [axes]).map((a) => (a < 0 ? a + x.rank : a));
}

function keptShape(x: Tensor, ax: number[]): number[] {
  return x.shape.map((d, i) => (ax.includes(i) ? 1 : d));
}

export function sum(x: Tensor, axes?: number | number[], keepDims = false): Tensor {
  return reduceAxes(x, axesOf(x, axes), "sum", keepDims);
}

export function mean(x: Tensor, axes?: number | number[], keepDims = false): Tensor {
  const ax = axesOf(x, axes);
  const count = ax.reduce((a, i) => a * x.shape[i], 1);
  return mul(sum(x, ax, keepDims), 1 / Math.max(count, 1));
}

function extreme(x: Tensor, op: "max" | "min", axes?: number | number[], keepDims = false): Tensor {
  const ax = axesOf(x, axes);
  const out = reduceAxes(x, ax, op, keepDims);
  // The gradient is shared equally among the tied extreme elements.
  return record(out, op, [x], (g) => {
    const ks = keptShape(x, ax);
    const mask = equal(x, broadcastTo(reshape(out, ks), x.shape));
    const count = reduceAxes(mask, ax, "sum", true);
    return [mul(broadcastTo(reshape(g, ks), x.shape), div(mask, count))];
  });
}

export function max(x: Tensor, axes?: number | number[], keepDims = false): Tensor {
  return extreme(x, "max", axes, keepDims);
}

export function min(x: Tensor, axes?: number | number[], keepDims = false): Tensor {
  return extreme(x, "min", axes, keepDims);
}

/** Variance with `correction` (0: divide by N, 1: by N-1). */
export function variance(x: Tensor, axes?: number | number[], keepDims = false, correction = 0): Tensor {
  const ax = axesOf(x, axes);
  const count = ax.reduce((a, i) => a * x.shape[i], 1);
  const centred = sub(x, mean(x, ax, true));
  return mul(sum(square(centred), ax, keepDims), 1 / Math.max(count - correction, 1));
}

/**
 * Mean and biased variance of x over every axis but 1, kept as [1, C, 1, ...] (BatchNorm's batch
 * statistics). For an f32 [N, C] input with no graph to record, one dispatch (kernels/reduce.ts
 * columnMoments, the same arithmetic); otherwise mean(x) and mean(square(x - mean)), differentiable.
 */
export function batchMoments(x: Tensor): { mean: Tensor; variance: Tensor } {
  const axes = x.shape.map((_, i) => i).filter((i) => i !== 1);
  if (x.rank !== 2 || x.dtype !== "f32" || (isGradEnabled() && x.requiresGrad)) {
    const mu = mean(x, axes, true);
    return { mean: mu, variance: mean(square(sub(x, mu)), axes, true) };
  }
  const [n, c] = x.shape;
  const mu = Tensor.empty([1, c]), variance = Tensor.empty([1, c]);
  // Two of the adapter's storage bindings are the outputs.
  columnMoments(sourceOf(x.valueNode, maxReadBuffers() - 2), mu.buffer, variance.buffer, 1, n, c);
  return { mean: mu, variance };
}
