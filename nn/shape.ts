// Shape ops. Rule: tensors are contiguous; reshape shares storage, every other view (permute, slice,
// broadcast, flip) is copied by the strided elementwise kernel. Each is differentiable.

import { elementwise } from "../kernels/elementwise.ts";
import { reduce } from "../kernels/reduce.ts";
import { record } from "./autograd.ts";
import { zeros } from "./creation.ts";
import { maxReadBuffers, op, sourceOf } from "./lazy.ts";
import { contiguousStrides, type Shape, sizeOf, stridedCopy, Tensor } from "./tensor.ts";

function normAxis(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new Error(`axis ${axis} is out of range for rank ${rank}`);
  return a;
}

/** Same data, new shape; one dimension may be -1. */
export function reshape(x: Tensor, shape: Shape): Tensor {
  const s = [...shape];
  const neg = s.indexOf(-1);
  if (neg >= 0) {
    const known = s.reduce((a, d, i) => (i === neg ? a : a * d), 1);
    if (known === 0 || x.size % known !== 0) {
      throw new Error(`cannot reshape [${x.shape}] to [${shape}]`);
    }
    s[neg] = x.size / known;
  }
  if (sizeOf(s) !== x.size) throw new Error(`cannot reshape [${x.shape}] (${x.size}) to [${shape}]`);
  const out = x.view(s);
  return record(out, "reshape", [x], (g) => [reshape(g, x.shape)]);
}

export function flatten(x: Tensor, startDim = 1): Tensor {
  return reshape(x, [...x.shape.slice(0, startDim), -1]);
}

export function unsqueeze(x: Tensor, axis: number): Tensor {
  const a = axis < 0 ? axis + x.rank + 1 : axis;
  const s = [...x.shape];
  s.splice(a, 0, 1);
  return reshape(x, s);
}

export function squeeze(x: Tensor, axis: number): Tensor {
  const a = normAxis(axis, x.rank);
  if (x.shape[a] !== 1) throw new Error(`squeeze: axis ${axis} of [${x.shape}] is not 1`);
  return reshape(x, x.shape.filter((_, i) => i !== a));
}

/** Reorders axes: out.shape[i] = x.shape[perm[i]]. */
export function permute(x: Tensor, perm: number[]): Tensor {
  if (perm.length !== x.rank || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) {
    throw new Error(`permute: [${perm}] is not a permutation of ${x.rank} axes`);
  }
  if (perm.every((p, i) => p === i)) return reshape(x, x.shape);
  const st = contiguousStrides(x.shape);
  const out = stridedCopy(x, perm.map((p) => x.shape[p]), perm.map((p) => st[p]), 0, "permute");
  const inv = new Array(perm.length);
  perm.forEach((p, i) => (inv[p] = i));
  return record(out, "permute", [x], (g) => [permute(g, inv)]);
}

/** Swaps two axes (default: the last two). */
export function transpose(x: Tensor, a = -2, b = -1): Tensor {
  const perm = x.shape.map((_, i) => i);
  const i = normAxis(a, x.rank), j = normAxis(b, x.rank);
  [perm[i], perm[j]] = [perm[j], perm[i]];
  return permute(x, perm);
}

/** x[starts[0]:ends[0], ...] along the leading axes given (negative indices count from the end). */
export function slice(x: Tensor, starts: number[], ends: number[]): Tensor {
  const st = contiguousStrides(x.shape);
  const begin = x.shape.map((d, i) => {
    const v = starts[i] ?? 0;
    return Math.min(Math.max(v < 0 ? v + d : v, 0), d);
  });
  const end = x.shape.map((d, i) => {
    const v = ends[i] ?? d;
    return Math.min(Math.max(v < 0 ? v + d : v, begin[i]), d);
  });
  const shape = begin.map((b, i) => end[i] - b);
  const offset = begin.reduce((a, b, i) => a + b * st[i], 0);
  const out = stridedCopy(x, shape, st, offset, "slice");
  return record(out, "slice", [x], (g) => [padInto(g, x.shape, begin)]);
}

/** Elements [start, start+length) along one axis. */
export function narrow(x: Tensor, axis: number, start: number, length: number): Tensor {
  const a = normAxis(axis, x.rank);
  const starts = x.shape.map(() => 0), ends = [...x.shape];
  starts[a] = start;
  ends[a] = start + length;
  return slice(x, starts, ends);
}

/** A zero tensor of `shape` with `x` written at `begin` (the adjoint of slice). */
export function padInto(x: Tensor, shape: Shape, begin: number[]): Tensor {
  const out = zeros(shape);
  writeRegion(x, out, begin);
  return record(out, "padInto", [x], (g) => [slice(g, begin, begin.map((b, i) => b + x.shape[i]))]);
}

function writeRegion(src: Tensor, dst: Tensor, begin: number[]): void {
  const ds = contiguousStrides(dst.shape);
  elementwise({
    name: "write_region",
    expr: "in0",
    inputs: [{ buffer: src.buffer, dtype: src.dtype, strides: contiguousStrides(src.shape), offset: 0 }],
    out: {
      buffer: dst.writableBuffer,
      dtype: dst.dtype,
      strides: ds,
      offset: begin.reduce((a, b, i) => a + b * ds[i], 0),
    },
    shape: [...src.shape],
  });
}

/** Zero padding: `pads` lists [before, after] per axis from the first axis (negative crops). */
export function pad(x: Tensor, pads: [number, number][]): Tensor {
  if (pads.some(([a, b]) => a < 0 || b < 0)) {
    const starts = x.shape.map((_, i) => Math.max(0, -(pads[i]?.[0] ?? 0)));
    const ends = x.shape.map((d, i) => d - Math.max(0, -(pads[i]?.[1] ?? 0)));
    const cropped = slice(x, starts, ends);
    return pad(cropped, pads.map(([a, b]) => [Math.max(a, 0), Math.max(b, 0)]));
  }
  const shape = x.shape.map((d, i) => d + (pads[i]?.[0] ?? 0) + (pads[i]?.[1] ?? 0));
  return padInto(x, shape, x.shape.map((_, i) => pads[i]?.[0] ?? 0));
}

/** Joins tensors along an axis. */
export function concat(xs: Tensor[], axis = 0): Tensor {
  if (xs.length === 0) throw new Error("concat needs at least one tensor");
  const a = normAxis(axis, xs[0].rank);
  for (const t of xs) {
    if (t.rank !== xs[0].rank || t.shape.some((d, i) => i !== a && d !== xs[0].shape[i])) {
      throw new Error(`concat along ${axis}: shapes [${xs.map((t) => `[${t.shape}]`).join(", ")}] differ`);
    }
  }
  const shape = [...xs[0].shape];
  shape[a] = xs.reduce((s, t) => s + t.shape[a], 0);
  const out = Tensor.empty(shape, xs[0].dtype);
  const offsets: number[] = [];
  let off = 0;
  for (const t of xs) {
    const begin = shape.map(() => 0);
    begin[a] = off;
    offsets.push(off);
    writeRegion(t, out, begin);
    off += t.shape[a];
  }
  return record(out, "concat", xs, (g) => xs.map((t, i) => narrow(g, a, offsets[i], t.shape[a])));
}

export function stack(xs: Tensor[], axis = 0): Tensor {
  return concat(xs.map((t) => unsqueeze(t, axis)), axis);
}

/** Reverses the given axes. */
export function flip(x: Tensor, axes: number[]): Tensor {
  const st = contiguousStrides(x.shape);
  const ax = axes.map((a) => normAxis(a, x.rank));
  let offset = 0;
  const strides = st.map((s, i) => {
    if (!ax.includes(i)) return s;
    offset += (x.shape[i] - 1) * s;
    return -s;
  });
  // Negative strides travel as u32 two's complement: the index arithmetic wraps to the right value.
  const out = stridedCopy(x, x.shape, strides.map((s) => s >>> 0), offset, "flip");
  return record(out, "flip", [x], (g) => [flip(g, ax)]);
}

/** Repeats size-1 (or missing leading) dimensions to `shape`. */
export function broadcastTo(x: Tensor, shape: Shape): Tensor {
  if (x.shape.length === shape.length && x.shape.every((d, i) => d === shape[i])) return x;
  const off = shape.length - x.rank;
  if (off < 0 || x.shape.some((d, i) => d !== 1 && d !== shape[i + off])) {
    throw new Error(`cannot broadcast [${x.shape}] to [${shape}]`);
  }
  let out: Tensor;
  if (x.lazy && x.size > 0) {
    // A lazy value broadcasts inside its own tree (elementwise ops broadcast their args): no buffer.
    out = Tensor.fromNode(op("in0", [x.valueNode], [...shape], x.dtype));
  } else {
    const st = contiguousStrides(x.shape);
    const strides = shape.map((_, i) => (i < off || x.shape[i - off] === 1 ? 0 : st[i - off]));
    out = stridedCopy(x, shape, strides, 0, "broadcast");
  }
  return record(out, "broadcastTo", [x], (g) => [sumTo(g, x.shape)]);
}

/** Sums a broadcast result back to `shape` (the adjoint of broadcastTo). */
export function sumTo(g: Tensor, shape: Shape): Tensor {
  if (g.shape.length === shape.length && g.shape.every((d, i) => d === shape[i])) return g;
  const off = g.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) if (i < off || (shape[i - off] === 1 && g.shape[i] !== 1)) axes.push(i);
  return reshape(reduceAxes(g, axes, "sum"), shape);
}

// ---- reductions ----

/** Reduces over `axes` (all when omitted); keepDims keeps them as size 1. Differentiable for sum. */
export function reduceAxes(x: Tensor, axes: number[], op: "sum" | "max" | "min", keepDims = false): Tensor {
  const ax = [...new Set(axes.map((a) => normAxis(a, x.rank)))].sort((a, b) => a - b);
  const keptShape = x.shape.map((d, i) => (ax.includes(i) ? 1 : d));
  const outShape = keepDims ? keptShape : x.shape.filter((_, i) => !ax.includes(i));
  let src = x;
  let outer: number, r: number, inner: number;
  const contiguousBlock = ax.length > 0 && ax[ax.length - 1] - ax[0] === ax.length - 1;
  if (ax.length === 0) {
    outer = x.size, r = 1, inner = 1;
  } else if (contiguousBlock) {
    outer = sizeOf(x.shape.slice(0, ax[0]));
    r = sizeOf(ax.map((a) => x.shape[a]));
    inner = sizeOf(x.shape.slice(ax[ax.length - 1] + 1));
  } else {
    const keepAx = x.shape.map((_, i) => i).filter((i) => !ax.includes(i));
    src = permute(x, [...keepAx, ...ax]);
    outer = sizeOf(keepAx.map((a) => x.shape[a]));
    r = sizeOf(ax.map((a) => x.shape[a]));
    inner = 1;
  }
  // f16 in, f16 out; the sums run in f32 inside the kernel.
  const dtype = x.dtype === "f16" ? "f16" : "f32";
  const out = Tensor.empty(outShape, dtype);
  // A lazy input is computed inside the reduction as it is read (sum(square(x)) is one kernel).
  reduce(sourceOf(src.valueNode, maxReadBuffers() - 1), out.buffer, outer, r, inner, op, dtype);
  if (src !== x) src.dispose();
  if (op === "sum") {
    return record(out, "sum", [x], (g) => [broadcastTo(reshape(g, keptShape), x.shape)]);
  }
  return out;
}
