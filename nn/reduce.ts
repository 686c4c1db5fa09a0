// Differentiable reductions over axes: sum, mean, max, min, var.

import { record } from "./autograd.ts";
import { div, equal, mul, square, sub } from "./ops.ts";
import { broadcastTo, reduceAxes, reshape } from "./shape.ts";
import type { Tensor } from "./tensor.ts";

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
