// TensorFlow-1 bilinear resizing (tf.image.resize_bilinear, align_corners=False, half_pixel_centers=False),
// the resize the FID Inception graph was fed with: output pixel o samples the input at o * in/out (no
// half-pixel shift), between floor() and the next pixel clamped to the edge. Each axis is a sparse
// interpolation matrix (two taps per row), applied as two small matrix products: out = Ry x Rx^T.

import { matmulT } from "../../nn/linalg.ts";
import { fromHost, type Tensor } from "../../nn/tensor.ts";
import { reshape } from "../../nn/shape.ts";

/**
 * The [outLen, inLen] interpolation matrix of one axis. The source coordinate is computed in float32,
 * as TensorFlow's kernel does (scale = in/out, src = o * scale).
 */
export function tf1BilinearMatrix(inLen: number, outLen: number): Float32Array {
  return bilinearMatrix(inLen, outLen, (o, scale) => Math.fround(o * scale));
}

/**
 * The [outLen, inLen] matrix of pytorch-fid's resize (torch.nn.functional.interpolate, bilinear,
 * align_corners=False, no antialiasing): output pixel o samples the input at (o + 0.5) * in/out - 0.5,
 * clamped below at 0, between floor() and the next pixel clamped to the edge.
 */
export function halfPixelBilinearMatrix(inLen: number, outLen: number): Float32Array {
  return bilinearMatrix(
    inLen,
    outLen,
    (o, scale) => Math.max(Math.fround(Math.fround((o + 0.5) * scale) - 0.5), 0),
  );
}

/** Two taps per output pixel, at floor(src) and the next pixel clamped to the edge (float32 weights). */
function bilinearMatrix(
  inLen: number,
  outLen: number,
  source: (o: number, scale: number) => number,
): Float32Array {
  if (!Number.isInteger(inLen) || !Number.isInteger(outLen) || inLen < 1 || outLen < 1) {
    throw new Error(`resize: lengths must be positive integers, got in=${inLen} out=${outLen}`);
  }
  const m = new Float32Array(outLen * inLen);
  const scale = Math.fround(inLen / outLen);
  for (let o = 0; o < outLen; o++) {
    const src = source(o, scale);
    const i0 = Math.min(Math.floor(src), inLen - 1);
    const i1 = Math.min(i0 + 1, inLen - 1);
    const f = Math.fround(src - i0);
    m[o * inLen + i0] += 1 - f;
    m[o * inLen + i1] += f;
  }
  return m;
}

/**
 * FID preprocessing conventions: "tf" (the TF graph and SGA: TF1 resize, (x - 128) / 128) or
 * "pytorch-fid" (half-pixel bilinear resize, x / 127.5 - 1). The two give different FIDs on the same images.
 */
export type FidMode = "tf" | "pytorch-fid";
export const FID_MODES: readonly FidMode[] = ["tf", "pytorch-fid"];

export function parseFidMode(v: unknown): FidMode {
  if (v === "tf" || v === "pytorch-fid") return v;
  throw new Error(`--fid-mode must be one of ${FID_MODES.join(", ")}, got '${v}'`);
}

/** The resize matrix of one axis in a mode. */
export function fidResizeMatrix(mode: FidMode, inLen: number, outLen: number): Float32Array {
  return mode === "tf" ? tf1BilinearMatrix(inLen, outLen) : halfPixelBilinearMatrix(inLen, outLen);
}

/** Resizes NCHW images to [outH, outW] with a mode's bilinear interpolation (identity when the size matches). */
export function resizeBilinear(x: Tensor, outH: number, outW: number, mode: FidMode): Tensor {
  if (x.rank !== 4) throw new Error(`resize: images must be NCHW, got shape [${x.shape}]`);
  if (x.dtype !== "f32") throw new Error(`resize: images must be f32, got ${x.dtype}`);
  const [n, c, h, w] = x.shape;
  if (h === outH && w === outW) return x;
  const planes = reshape(x, [n * c, h, w]);
  const rx = fromHost(fidResizeMatrix(mode, w, outW), [outW, w], "f32");
  const ry = fromHost(fidResizeMatrix(mode, h, outH), [outH, h], "f32");
  const rows = matmulT(planes, rx, false, true); // [nc, h, outW]
  return reshape(matmulT(ry, rows), [n, c, outH, outW]);
}

/** Resizes NCHW images to [outH, outW] with TF1 bilinear interpolation (identity when the size matches). */
export function resizeBilinearTF1(x: Tensor, outH: number, outW: number): Tensor {
  if (x.rank !== 4) throw new Error(`resize: images must be NCHW, got shape [${x.shape}]`);
  if (x.dtype !== "f32") throw new Error(`resize: images must be f32, got ${x.dtype}`);
  const [n, c, h, w] = x.shape;
  if (h === outH && w === outW) return x;
  const planes = reshape(x, [n * c, h, w]);
  const rx = fromHost(tf1BilinearMatrix(w, outW), [outW, w], "f32");
  const ry = fromHost(tf1BilinearMatrix(h, outH), [outH, h], "f32");
  const rows = matmulT(planes, rx, false, true); // [nc, h, outW]
  return reshape(matmulT(ry, rows), [n, c, outH, outW]);
}

/** Float64 host reference of resizeBilinearTF1 for one plane (tests). */
export function resizeBilinearTF1Ref(
  plane: ArrayLike<number>,
  h: number,
  w: number,
  outH: number,
  outW: number,
): Float64Array {
  const ry = tf1BilinearMatrix(h, outH), rx = tf1BilinearMatrix(w, outW);
  const out = new Float64Array(outH * outW);
  for (let oy = 0; oy < outH; oy++) {
    for (let ox = 0; ox < outW; ox++) {
      let s = 0;
      for (let y = 0; y < h; y++) {
        const wy = ry[oy * h + y];
        if (wy === 0) continue;
        for (let x = 0; x < w; x++) s += wy * rx[ox * w + x] * plane[y * w + x];
      }
      out[oy * outW + ox] = s;
    }
  }
  return out;
}
