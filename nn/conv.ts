// 2-D convolution (NCHW, cross-correlation) as three differentiable ops. The forward, input-gradient and
// weight-gradient passes are each implicit-GEMM kernels, and each one's backward is written with the other
// two, so gradients of every order come for free (R1 needs the second).

import {
  conv2dForward,
  conv2dInputGrad,
  type Conv2dParams,
  conv2dTakesTrees,
  conv2dWeightGrad,
  type Epilogue,
} from "../kernels/conv2d.ts";
import { type PackSource, sharePacks } from "../kernels/pack_texture.ts";
import { record } from "./autograd.ts";
import { maxReadBuffers, sourceOf, storedSourceOf } from "./lazy.ts";
import { type DType, Tensor } from "./tensor.ts";

/**
 * Runs one conv2d pass on its operands: on the texture path a lazy tensor is packed as it is computed
 * (its elementwise tree is the pack's prologue; f16 tensors load into f32 texels there), elsewhere its
 * buffer (an f16 one as a one-load program, which the storage kernels bind as array<f16>).
 */
function withSources(
  p: Conv2dParams,
  pass: "forward" | "inputGrad" | "weightGrad",
  ts: Tensor[],
  run: (srcs: PackSource[]) => void,
): void {
  const trees = conv2dTakesTrees(p, pass);
  run(ts.map((t) => trees ? sourceOf(t.valueNode, maxReadBuffers() - 1) : storedSourceOf(t.valueNode)));
}

/** The output dtype of a GEMM-class op: f16 when every operand is f16, else f32 (f32 sums either way). */
export function gemmOutType(...ts: Tensor[]): DType {
  return ts.every((t) => t.dtype === "f16") ? "f16" : "f32";
}

export interface Conv2dOptions {
  stride?: number | [number, number];
  /** Symmetric padding, or [top, bottom, left, right]. */
  padding?: number | [number, number, number, number];
  groups?: number;
}

/** Resolves the kernel parameters of conv2d(x, w) with the given options. */
export function conv2dParams(
  xShape: readonly number[],
  wShape: readonly number[],
  opts: Conv2dOptions,
): Conv2dParams {
  if (xShape.length !== 4) throw new Error(`conv2d: input must be NCHW, got shape [${xShape}]`);
  if (wShape.length !== 4) {
    throw new Error(`conv2d: weight must be [out, in/groups, kh, kw], got [${wShape}]`);
  }
  const [batch, cin, h, w] = xShape;
  const [cout, cinG, kh, kw] = wShape;
  const groups = opts.groups ?? 1;
  if (cin % groups || cout % groups || cin / groups !== cinG) {
    throw new Error(`conv2d: input [${xShape}] and weight [${wShape}] do not match with ${groups} group(s)`);
  }
  const [sy, sx] = typeof opts.stride === "number" ? [opts.stride, opts.stride] : opts.stride ?? [1, 1];
  const p = opts.padding ?? 0;
  const [pt, pb, pl, pr] = typeof p === "number" ? [p, p, p, p] : p;
  const outH = Math.floor((h + pt + pb - kh) / sy) + 1;
  const outW = Math.floor((w + pl + pr - kw) / sx) + 1;
  if (outH <= 0 || outW <= 0) {
    throw new Error(
      `conv2d: kernel ${kh}x${kw} does not fit input ${h}x${w} with padding [${pt},${pb},${pl},${pr}]`,
    );
  }
  return {
    batch,
    cin,
    cout,
    h,
    w,
    kh,
    kw,
    strideY: sy,
    strideX: sx,
    padTop: pt,
    padLeft: pl,
    groups,
    outH,
    outW,
  };
}

/** y = conv2d(x, w) (+ bias and an activation fused into the epilogue when given; forward only then). */
export function conv2d(x: Tensor, w: Tensor, opts: Conv2dOptions = {}, epi?: Epilogue): Tensor {
  return convForward(x, w, conv2dParams(x.shape, w.shape, opts), epi);
}

function convForward(x: Tensor, w: Tensor, p: Conv2dParams, epi?: Epilogue): Tensor {
  const dtype = gemmOutType(x, w);
  const out = Tensor.empty([p.batch, p.cout, p.outH, p.outW], dtype);
  withSources(
    p,
    "forward",
    [x, w],
    ([xs, ws]) => conv2dForward(xs, ws, out.buffer, { ...p, outF16: dtype === "f16" }, epi),
  );
  if (epi) return out;
  // Each rule's two passes share their packs of a common operand (dy here; see sharePacks).
  return record(out, "conv2d", [x, w], (g, needs) =>
    sharePacks(() => [
      needs[0] ? convInputGrad(g, w, p) : null,
      needs[1] ? convWeightGrad(x, g, p) : null,
    ]));
}

/** The adjoint of conv2d with respect to its input (a transposed convolution). */
function convInputGrad(dy: Tensor, w: Tensor, p: Conv2dParams): Tensor {
  const dtype = gemmOutType(dy, w);
  const dx = Tensor.empty([p.batch, p.cin, p.h, p.w], dtype);
  withSources(
    p,
    "inputGrad",
    [dy, w],
    ([dys, ws]) => conv2dInputGrad(dys, ws, dx.buffer, { ...p, outF16: dtype === "f16" }),
  );
  return record(dx, "conv2d_input_grad", [dy, w], (g, needs) =>
    sharePacks(() => [
      needs[0] ? convForward(g, w, p) : null,
      needs[1] ? convWeightGrad(g, dy, p) : null,
    ]));
}

/** The gradient of conv2d with respect to its weight. */
function convWeightGrad(x: Tensor, dy: Tensor, p: Conv2dParams): Tensor {
  const dw = Tensor.empty([p.cout, p.cin / p.groups, p.kh, p.kw]);
  withSources(p, "weightGrad", [x, dy], ([xs, dys]) => conv2dWeightGrad(xs, dys, dw.buffer, p));
  return record(dw, "conv2d_weight_grad", [x, dy], (g, needs) =>
    sharePacks(() => [
      needs[0] ? convInputGrad(dy, g, p) : null,
      needs[1] ? convForward(x, g, p) : null,
    ]));
}

/** Transposed convolution (the input-gradient kernel run forward): out has the input shape of conv2d. */
export function conv2dTranspose(
  y: Tensor,
  w: Tensor,
  outShape: [number, number, number, number],
  opts: Conv2dOptions = {},
): Tensor {
  const p = conv2dParams(outShape, w.shape, opts);
  if (y.shape.join() !== [p.batch, p.cout, p.outH, p.outW].join()) {
    throw new Error(`conv2dTranspose: input [${y.shape}] does not match output shape [${outShape}]`);
  }
  return convInputGrad(y, w, p);
}
