// upfirdn2d (SGA conventions) as a differentiable op, the filter setup and the resampling helpers.
// The gradient with respect to x is again an upfirdn2d (flipped filter, up and down swapped, adjusted
// padding), so gradients of every order reuse the one forward op.

import {
  resampledLength,
  type SeparableLayout,
  upfirdn2dDirect,
  upfirdn2dMacs,
  type Upfirdn2dParams,
  upfirdn2dSeparable,
} from "../kernels/upfirdn2d.ts";
import { record } from "./autograd.ts";
import { tensor } from "./creation.ts";
import { creationData, Tensor } from "./tensor.ts";

export type Pair = number | [number, number];
/** Symmetric, [x, y], or [x0, x1, y0, y1] (measured on the upsampled image; negative crops). */
export type Padding = number | [number, number] | [number, number, number, number];

export interface Upfirdn2dOptions {
  up?: Pair;
  down?: Pair;
  padding?: Padding;
  /** false (default): true convolution (the filter is flipped); true: correlation with f as stored. */
  flipFilter?: boolean;
  gain?: number;
}

// Filters known to be outer products, with where their 1-D factors sit in the buffer. The mark belongs to
// the values, not the tensor: an in-place write (copyInto, e.g. a state-dict load or the EMA's buffer copy)
// hands the source's mark over, or clears it when the source has none, so a filter overwritten with
// non-separable values runs the direct path. Filters are never parameters (no gradient, no Adam), so
// copyInto is the only in-place writer they see.
const separable = new WeakMap<Tensor, SeparableLayout>();

/** Marks a 2-D filter tensor as an outer product so upfirdn2d may run it as two 1-D passes. */
export function markSeparable(f: Tensor, values: number[][]): void {
  const layout = separableLayout(values);
  if (!layout) throw new Error("markSeparable: the filter is not an outer product of two 1-D filters");
  separable.set(f, layout);
}

/** Marks a 2-D tensor holding `values` (row-major) as separable when they are an outer product. */
export function markIfSeparable(f: Tensor, values: ArrayLike<number>): void {
  separable.delete(f);
  if (f.rank !== 2 || values.length !== f.size) return;
  const [fh, fw] = f.shape;
  const rows = Array.from({ length: fh }, (_, i) => Array.from({ length: fw }, (_, j) => values[i * fw + j]));
  const layout = separableLayout(rows);
  if (layout) separable.set(f, layout);
}

/** Whether upfirdn2d may run this 2-D filter as two 1-D passes (for tests and reports). */
export function isMarkedSeparable(f: Tensor): boolean {
  return separable.has(f);
}

/**
 * copyInto(src, dst) wrote src's values into dst: dst's mark is now src's, or decided from the host data
 * src was created from (a state-dict load, an average), or none.
 */
export function carrySeparableMark(src: Tensor, dst: Tensor): void {
  const layout = separable.get(src);
  const host = creationData(src);
  if (layout && src.shape.join() === dst.shape.join()) separable.set(dst, layout);
  else if (!layout && host && dst.rank === 2) markIfSeparable(dst, host);
  else separable.delete(dst);
}

// If f[i][j] * f[r][c] == f[i][c] * f[r][j] for the largest entry (r, c), f is an outer product.
function separableLayout(f: number[][]): SeparableLayout | null {
  const fh = f.length, fw = f[0].length;
  let r = 0, c = 0;
  for (let i = 0; i < fh; i++) {
    for (let j = 0; j < fw; j++) if (Math.abs(f[i][j]) > Math.abs(f[r][c])) [r, c] = [i, j];
  }
  const scale = Math.abs(f[r][c]);
  if (scale === 0) return null;
  for (let i = 0; i < fh; i++) {
    for (let j = 0; j < fw; j++) {
      if (Math.abs(f[i][j] * f[r][c] - f[i][c] * f[r][j]) > 1e-6 * scale * scale) return null;
    }
  }
  return { xBase: r * fw, xStride: 1, yBase: c, yStride: fw, normIdx: r * fw + c };
}

/**
 * A FIR filter as a [fh, fw] tensor: 1-D taps become their outer product; normalised to sum 1 (default),
 * optionally flipped, then scaled by `gain`.
 */
export function setupFilter(
  f: number[] | number[][],
  opts: { normalize?: boolean; flip?: boolean; gain?: number } = {},
): Tensor {
  if (!Array.isArray(f) || f.length === 0) throw new Error("setupFilter: needs a non-empty list of taps");
  let f2: number[][];
  if (f.every((v) => typeof v === "number")) {
    const t = f as number[];
    f2 = t.map((a) => t.map((b) => a * b));
  } else if (
    f.every((row) => Array.isArray(row) && row.length === (f[0] as number[]).length && row.length > 0)
  ) {
    f2 = (f as number[][]).map((row) => [...row]);
  } else throw new Error("setupFilter: taps must be a 1-D list or a rectangular 2-D list of numbers");
  if (f2.flat().some((v) => !Number.isFinite(v))) throw new Error("setupFilter: taps must be finite numbers");
  if (opts.normalize ?? true) {
    const s = f2.flat().reduce((a, b) => a + b, 0);
    if (s === 0) throw new Error("setupFilter: cannot normalise a filter whose taps sum to 0");
    f2 = f2.map((row) => row.map((v) => v / s));
  }
  if (opts.flip) f2 = f2.map((row) => [...row].reverse()).reverse();
  const gain = opts.gain ?? 1;
  f2 = f2.map((row) => row.map((v) => v * gain));
  const t = tensor(Float32Array.from(f2.flat()), [f2.length, f2[0].length]);
  const layout = separableLayout(f2);
  if (layout) separable.set(t, layout);
  return t;
}

/** Filter width and height (a 1-D filter applies along both axes). */
export function filterSize(f: Tensor | null | undefined): [number, number] {
  if (!f) return [1, 1];
  if (f.rank === 1) return [f.shape[0], f.shape[0]];
  if (f.rank === 2) return [f.shape[1], f.shape[0]];
  throw new Error(`upfirdn2d: the filter must be 1-D or 2-D, got shape [${f.shape}]`);
}

function pair(v: Pair | undefined, name: string): [number, number] {
  const p: [number, number] = v === undefined ? [1, 1] : typeof v === "number" ? [v, v] : v;
  if (p.length !== 2 || p.some((a) => !Number.isInteger(a) || a < 1)) {
    throw new Error(
      `upfirdn2d: ${name} must be a positive integer or [x, y] of them, got ${JSON.stringify(v)}`,
    );
  }
  return p;
}

/** Padding as [x0, x1, y0, y1]. */
export function parsePadding(p: Padding | undefined): [number, number, number, number] {
  const out: number[] = p === undefined
    ? [0, 0, 0, 0]
    : typeof p === "number"
    ? [p, p, p, p]
    : p.length === 2
    ? [p[0], p[0], p[1], p[1]]
    : [...p];
  if (out.length !== 4 || out.some((a) => !Number.isInteger(a))) {
    throw new Error(
      `padding must be an integer, [x, y] or [x0, x1, y0, y1] of integers, got ${JSON.stringify(p)}`,
    );
  }
  return out as [number, number, number, number];
}

/** Upsample (zero insertion), pad, FIR-filter and downsample every plane of x [N, C, H, W]. */
export function upfirdn2d(x: Tensor, f: Tensor, o: Upfirdn2dOptions = {}): Tensor {
  if (x.rank !== 4 || x.dtype === "i32") {
    throw new Error(`upfirdn2d: x must be f32 or f16 [N, C, H, W], got ${x.dtype} [${x.shape}]`);
  }
  if (f.dtype !== "f32") throw new Error("upfirdn2d: the filter must be f32");
  if (f.requiresGrad) throw new Error("upfirdn2d: gradients with respect to the filter are not supported");
  const [fw, fh] = filterSize(f);
  const [upX, upY] = pair(o.up, "up");
  const [downX, downY] = pair(o.down, "down");
  const [px0, px1, py0, py1] = parsePadding(o.padding);
  const flip = o.flipFilter ?? false;
  const gain = o.gain ?? 1;
  const [n, c, h, w] = x.shape;
  const outW = resampledLength(w, upX, downX, px0, px1, fw);
  const outH = resampledLength(h, upY, downY, py0, py1, fh);
  if (outW < 1 || outH < 1) {
    throw new Error(
      `upfirdn2d: input ${h}x${w} with up [${upX},${upY}], down [${downX},${downY}], padding ` +
        `[${px0},${px1},${py0},${py1}] and a ${fh}x${fw} filter leaves no output`,
    );
  }
  // x's dtype in and out (the filter is f32; the sums run in f32).
  const out = Tensor.empty([n, c, outH, outW], x.dtype);
  const p: Upfirdn2dParams = {
    planes: n * c,
    x: { inLen: w, outLen: outW, up: upX, down: downX, pad0: px0, taps: fw },
    y: { inLen: h, outLen: outH, up: upY, down: downY, pad0: py0, taps: fh },
    flip,
    gain,
    xF16: x.dtype === "f16",
    outF16: x.dtype === "f16",
  };
  const layout = f.rank === 1
    ? { xBase: 0, xStride: 1, yBase: 0, yStride: 1, normIdx: -1 }
    : separable.get(f);
  const macs = upfirdn2dMacs(p);
  // Two passes pay an intermediate write and read: worth it when they save real work.
  if (layout && (f.rank === 1 || macs.separable * 1.5 < macs.direct)) {
    upfirdn2dSeparable(x.buffer, f.buffer, out.buffer, p, layout);
  } else upfirdn2dDirect(x.buffer, f.buffer, out.buffer, p);
  return record(out, "upfirdn2d", [x], (g) => [
    upfirdn2d(g, f, {
      up: [downX, downY],
      down: [upX, upY],
      padding: [
        fw - px0 - 1,
        w * upX - outW * downX + px0 - upX + 1,
        fh - py0 - 1,
        h * upY - outH * downY + py0 - upY + 1,
      ],
      flipFilter: !flip,
      gain,
    }),
  ]);
}

/** Upsampling by `up` with the filter; paddings as SGA's helper (output = input * up + padding). */
export function upsample2d(
  x: Tensor,
  f: Tensor,
  up: Pair = 2,
  o: { padding?: Padding; flipFilter?: boolean; gain?: number } = {},
): Tensor {
  const [upX, upY] = pair(up, "up");
  const [fw, fh] = filterSize(f);
  const [px0, px1, py0, py1] = parsePadding(o.padding);
  return upfirdn2d(x, f, {
    up: [upX, upY],
    padding: [
      px0 + Math.floor((fw + upX - 1) / 2),
      px1 + Math.floor((fw - upX) / 2),
      py0 + Math.floor((fh + upY - 1) / 2),
      py1 + Math.floor((fh - upY) / 2),
    ],
    flipFilter: o.flipFilter,
    gain: (o.gain ?? 1) * upX * upY,
  });
}

/** Downsampling by `down` after the filter; paddings as SGA's helper. */
export function downsample2d(
  x: Tensor,
  f: Tensor,
  down: Pair = 2,
  o: { padding?: Padding; flipFilter?: boolean; gain?: number } = {},
): Tensor {
  const [downX, downY] = pair(down, "down");
  const [fw, fh] = filterSize(f);
  const [px0, px1, py0, py1] = parsePadding(o.padding);
  return upfirdn2d(x, f, {
    down: [downX, downY],
    padding: [
      px0 + Math.floor((fw - downX + 1) / 2),
      px1 + Math.floor((fw - downX) / 2),
      py0 + Math.floor((fh - downY + 1) / 2),
      py1 + Math.floor((fh - downY) / 2),
    ],
    flipFilter: o.flipFilter,
    gain: o.gain,
  });
}

/** Filtering that keeps the size (plus padding); paddings as SGA's helper. */
export function filter2d(
  x: Tensor,
  f: Tensor,
  o: { padding?: Padding; flipFilter?: boolean; gain?: number } = {},
): Tensor {
  const [fw, fh] = filterSize(f);
  const [px0, px1, py0, py1] = parsePadding(o.padding);
  return upfirdn2d(x, f, {
    padding: [
      px0 + Math.floor(fw / 2),
      px1 + Math.floor((fw - 1) / 2),
      py0 + Math.floor(fh / 2),
      py1 + Math.floor((fh - 1) / 2),
    ],
    flipFilter: o.flipFilter,
    gain: o.gain,
  });
}
