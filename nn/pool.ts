// Max and average pooling (NCHW), forward only: feature extractors need them, training paths in this
// project downsample with strided convolutions instead, so no backward rule is offered (asking for one
// is an error rather than a silently missing gradient).

import { pool2d, type PoolMode } from "../kernels/pool2d.ts";
import { isGradEnabled } from "./autograd.ts";
import { Tensor } from "./tensor.ts";

export interface Pool2dOptions {
  /** Window size: number or [kh, kw]. */
  kernel: number | [number, number];
  /** Default: the kernel size, as in PyTorch. */
  stride?: number | [number, number];
  /** Symmetric zero padding per axis: number or [padY, padX]; at most half the kernel, as in PyTorch. */
  padding?: number | [number, number];
}

export interface AvgPool2dOptions extends Pool2dOptions {
  /** Divide by the whole window (PyTorch's default) or only by the taps inside the image (TF "SAME"). */
  countIncludePad?: boolean;
}

const pair = (v: number | [number, number]): [number, number] => (typeof v === "number" ? [v, v] : v);

function pool(x: Tensor, opts: AvgPool2dOptions, mode: PoolMode, name: string): Tensor {
  if (x.rank !== 4) throw new Error(`${name}: input must be NCHW, got shape [${x.shape}]`);
  if (x.dtype !== "f32") throw new Error(`${name}: input must be f32, got ${x.dtype}`);
  if (x.requiresGrad && isGradEnabled()) {
    throw new Error(`${name} is forward-only: run it under noGrad() or on a tensor that needs no gradient`);
  }
  const [kh, kw] = pair(opts.kernel);
  const [sy, sx] = pair(opts.stride ?? opts.kernel);
  const [py, px] = pair(opts.padding ?? 0);
  if (py > kh / 2 || px > kw / 2) {
    throw new Error(`${name}: padding [${py}, ${px}] must be at most half the kernel [${kh}, ${kw}]`);
  }
  const [n, c, h, w] = x.shape;
  const outH = Math.floor((h + 2 * py - kh) / sy) + 1;
  const outW = Math.floor((w + 2 * px - kw) / sx) + 1;
  if (outH < 1 || outW < 1) {
    throw new Error(
      `${name}: a ${kh}x${kw} window does not fit input [${x.shape}] with padding [${py}, ${px}]`,
    );
  }
  const out = Tensor.empty([n, c, outH, outW]);
  pool2d(x.buffer, out.buffer, {
    planes: n * c,
    h,
    w,
    kh,
    kw,
    strideY: sy,
    strideX: sx,
    padTop: py,
    padLeft: px,
    outH,
    outW,
    mode,
    countIncludePad: opts.countIncludePad ?? true,
  });
  return out;
}

/** Max pooling; padded taps never win (PyTorch's -inf padding). */
export function maxPool2d(x: Tensor, opts: Pool2dOptions): Tensor {
  return pool(x, opts, "max", "maxPool2d");
}

/** Average pooling; countIncludePad defaults to true as in PyTorch. */
export function avgPool2d(x: Tensor, opts: AvgPool2dOptions): Tensor {
  return pool(x, opts, "avg", "avgPool2d");
}
