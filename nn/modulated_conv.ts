// Convolution with FIR resampling (SGA's conv2d_resample) and StyleGAN2's modulated convolution.
// Everything is composed of differentiable ops (conv2d, upfirdn2d, elementwise), so gradients of every
// order come for free.

import { conv2d, conv2dTranspose } from "./conv.ts";
import { tensor } from "./creation.ts";
import { matmulT } from "./linalg.ts";
import { add, cast, mul, rsqrt, square } from "./ops.ts";
import { sum } from "./reduce.ts";
import { flip, permute, reshape } from "./shape.ts";
import type { Tensor } from "./tensor.ts";
import { filterSize, type Padding, parsePadding, upfirdn2d } from "./upfirdn2d.ts";

export interface Conv2dResampleOptions {
  /** FIR filter for up/down-sampling (default: none, i.e. a 1x1 identity). */
  f?: Tensor;
  up?: number;
  down?: number;
  /** Padding of the convolution, on the resampled grid; [x0, x1, y0, y1] allowed. */
  padding?: Padding;
  groups?: number;
  /** true (default): cross-correlation with w as stored; false: a true convolution (w flipped). */
  flipWeight?: boolean;
  flipFilter?: boolean;
}

function positiveInt(v: number, name: string): number {
  if (!Number.isInteger(v) || v < 1) {
    throw new Error(`conv2dResample: ${name} must be a positive integer, got ${v}`);
  }
  return v;
}

/**
 * conv2d with up/down-sampling (SGA conv2d_resample semantics). For up > 1 the result is that of
 * upfirdn2d(x, f, up, paddings of the upsample helper plus the conv padding, gain up^2) followed by a
 * valid convolution; it is computed as SGA does, by a transposed convolution with stride `up` and then
 * the filter, which skips the inserted zeros (a quarter of the work for up = 2). For down > 1, x is
 * filtered (paddings of the downsample helper) and convolved with stride `down`.
 */
export function conv2dResample(x: Tensor, w: Tensor, o: Conv2dResampleOptions = {}): Tensor {
  if (x.rank !== 4) throw new Error(`conv2dResample: x must be [N, C, H, W], got [${x.shape}]`);
  if (w.rank !== 4) throw new Error(`conv2dResample: w must be [out, in/groups, kh, kw], got [${w.shape}]`);
  const up = positiveInt(o.up ?? 1, "up");
  const down = positiveInt(o.down ?? 1, "down");
  const groups = positiveInt(o.groups ?? 1, "groups");
  const flipFilter = o.flipFilter ?? false;
  const [kh, kw] = [w.shape[2], w.shape[3]];
  const [fw, fh] = filterSize(o.f);
  let [px0, px1, py0, py1] = parsePadding(o.padding);
  if (up > 1) {
    px0 += Math.floor((fw + up - 1) / 2);
    px1 += Math.floor((fw - up) / 2);
    py0 += Math.floor((fh + up - 1) / 2);
    py1 += Math.floor((fh - up) / 2);
  }
  if (down > 1) {
    px0 += Math.floor((fw - down + 1) / 2);
    px1 += Math.floor((fw - down) / 2);
    py0 += Math.floor((fh - down + 1) / 2);
    py1 += Math.floor((fh - down) / 2);
  }
  const pads: [number, number, number, number] = [px0, px1, py0, py1];
  const pointwise = kh === 1 && kw === 1;
  const correlate = (o.flipWeight ?? true) || pointwise;
  if (up === 1 && down === 1 && pads.every((p) => p >= 0)) {
    // No resampling: the convolution pads by itself.
    return conv2d(x, correlate ? w : flip(w, [2, 3]), { padding: [py0, py1, px0, px1], groups });
  }
  const f = o.f ?? tensor([[1]]); // no filter: plain zero insertion / subsampling / cropping
  const conv = (t: Tensor, stride = 1) => conv2d(t, correlate ? w : flip(w, [2, 3]), { stride, groups });

  // A 1x1 kernel commutes with the resampling: run it on the smaller image.
  if (pointwise && down > 1 && up === 1) return conv(upfirdn2d(x, f, { down, padding: pads, flipFilter }));
  if (pointwise && up > 1 && down === 1) {
    return upfirdn2d(conv(x), f, { up, padding: pads, gain: up * up, flipFilter });
  }
  if (down > 1 && up === 1) return conv(upfirdn2d(x, f, { padding: pads, flipFilter }), down);
  if (up > 1) {
    const y = upTransposed(x, correlate ? flip(w, [2, 3]) : w, f, up, pads, groups, flipFilter) ??
      conv(upfirdn2d(x, f, { up, padding: pads, gain: up * up, flipFilter }));
    return down > 1 ? upfirdn2d(y, f, { down, flipFilter }) : y;
  }
  // No resampling but a side crops.
  return conv(upfirdn2d(x, f, { padding: pads }));
}

/**
 * upfirdn2d(x, f, up, pads, gain up^2) then a true convolution with `wt` (valid), computed as a transposed
 * convolution with stride `up` (zero insertion + full true convolution, cropped by `a` per side) and then
 * the filter. Matching the two: a = max(min(k-1-P0, k-up-P1), 0), filter pads P0-(k-1)+a and P1-(k-up)+a.
 * Null when the geometry leaves no output (the caller then runs the direct form).
 */
function upTransposed(
  x: Tensor,
  wt: Tensor,
  f: Tensor,
  up: number,
  [px0, px1, py0, py1]: [number, number, number, number],
  groups: number,
  flipFilter: boolean,
): Tensor | null {
  const [n, , h, w] = x.shape;
  const [cout, cinG, kh, kw] = wt.shape;
  const ax = Math.max(Math.min(kw - 1 - px0, kw - up - px1), 0);
  const ay = Math.max(Math.min(kh - 1 - py0, kh - up - py1), 0);
  const th = (h - 1) * up + kh - 2 * ay, tw = (w - 1) * up + kw - 2 * ax;
  if (th < 1 || tw < 1 || cout % groups) return null;
  // conv2dTranspose takes the weight of the forward conv it is the adjoint of: per group [cin, cout/g].
  const wg = permute(reshape(wt, [groups, cout / groups, cinG, kh, kw]), [0, 2, 1, 3, 4]);
  const t = conv2dTranspose(x, reshape(wg, [groups * cinG, cout / groups, kh, kw]), [n, cout, th, tw], {
    stride: up,
    padding: [ay, ay, ax, ax],
    groups,
  });
  const pads: [number, number, number, number] = [
    px0 - (kw - 1) + ax,
    px1 - (kw - up) + ax,
    py0 - (kh - 1) + ay,
    py1 - (kh - up) + ay,
  ];
  return upfirdn2d(t, f, { padding: pads, gain: up * up, flipFilter });
}

export interface ModulatedConv2dOptions {
  /** Added after demodulation; broadcast against [N, out, H, W] (usually [N, 1, H, W]). */
  noise?: Tensor | null;
  up?: number;
  down?: number;
  padding?: Padding;
  resampleFilter?: Tensor;
  demodulate?: boolean;
  /** SGA layers pass flipWeight = (up == 1). */
  flipWeight?: boolean;
  /** One grouped convolution with per-sample weights (true) or scale-convolve-scale (false). */
  fused?: boolean;
  flipFilter?: boolean;
}

/**
 * StyleGAN2's modulated convolution: w[n,o,i] = weight[o,i] * styles[n,i], demodulated by
 * d[n,o] = 1/sqrt(sum_{i,kh,kw} w^2 + 1e-8); x [N, I, H, W], weight [O, I, kh, kw], styles [N, I].
 */
export function modulatedConv2d(
  x: Tensor,
  weight: Tensor,
  styles: Tensor,
  o: ModulatedConv2dOptions = {},
): Tensor {
  if (x.rank !== 4 || weight.rank !== 4 || styles.rank !== 2) {
    throw new Error(
      `modulatedConv2d: expected x [N, I, H, W], weight [O, I, kh, kw], styles [N, I]; got [${x.shape}], ` +
        `[${weight.shape}], [${styles.shape}]`,
    );
  }
  const [n, cin, h, wd] = x.shape;
  const [cout, wIn, kh, kw] = weight.shape;
  if (wIn !== cin || styles.shape[0] !== n || styles.shape[1] !== cin) {
    throw new Error(
      `modulatedConv2d: x [${x.shape}], weight [${weight.shape}] and styles [${styles.shape}] do not match`,
    );
  }
  const demodulate = o.demodulate ?? true;
  const resample = {
    f: o.resampleFilter,
    up: o.up,
    down: o.down,
    padding: o.padding,
    flipWeight: o.flipWeight,
    flipFilter: o.flipFilter,
  };
  // d[n,o] = rsqrt(sum_i styles[n,i]^2 * sum_k weight[o,i,k]^2 + 1e-8): the same sum as over w[n,o,i,k]^2,
  // without materialising per-sample weights on the non-fused path.
  // With f16 weights the sum over i stays f32 in memory too (for 512 channels it reaches ~1e4-1e5, past
  // f16's 65504); d itself is small and is stored at x's precision.
  const dcoefs = demodulate
    ? cast(
      rsqrt(add(matmulT(cast(square(styles), "f32"), sum(square(weight), [2, 3]), false, true), 1e-8)),
      x.dtype === "f16" ? "f16" : "f32",
    )
    : null;
  let y: Tensor;
  if (o.fused ?? true) {
    let w = mul(reshape(weight, [1, cout, cin, kh, kw]), reshape(styles, [n, 1, cin, 1, 1]));
    if (dcoefs) w = mul(w, reshape(dcoefs, [n, cout, 1, 1, 1]));
    const xg = reshape(x, [1, n * cin, h, wd]);
    const yg = conv2dResample(xg, reshape(w, [n * cout, cin, kh, kw]), { ...resample, groups: n });
    y = reshape(yg, [n, cout, yg.shape[2], yg.shape[3]]);
  } else {
    y = conv2dResample(mul(x, reshape(styles, [n, cin, 1, 1])), weight, resample);
    if (dcoefs) y = mul(y, reshape(dcoefs, [n, cout, 1, 1]));
  }
  return o.noise ? add(y, o.noise) : y;
}
