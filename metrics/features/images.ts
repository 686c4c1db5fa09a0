// Image batches going into a feature network: shape checks, grayscale to RGB, and extraction in chunks
// (each chunk in its own scope, so a large batch never holds every activation at once).

import { noGrad } from "../../nn/autograd.ts";
import { broadcastTo, concat, narrow } from "../../nn/shape.ts";
import { keep, scope, type Tensor } from "../../nn/tensor.ts";

/** Checks an NCHW f32 batch of 0..255 images with 1 or 3 channels; returns [n, c, h, w]. */
export function checkImages(x: Tensor, who: string): [number, number, number, number] {
  if (x.rank !== 4) throw new Error(`${who}: images must be NCHW [N, C, H, W], got shape [${x.shape}]`);
  if (x.dtype !== "f32") throw new Error(`${who}: images must be f32 holding 0..255, got ${x.dtype}`);
  const [n, c, h, w] = x.shape;
  if (c !== 1 && c !== 3) throw new Error(`${who}: images need 1 (gray) or 3 (RGB) channels, got ${c}`);
  if (n < 1 || h < 1 || w < 1) throw new Error(`${who}: empty image batch [${x.shape}]`);
  return [n, c, h, w];
}

/** Grayscale images repeated to 3 channels (RGB passes through). */
export function grayToRgb(x: Tensor): Tensor {
  if (x.shape[1] === 3) return x;
  return broadcastTo(x, [x.shape[0], 3, x.shape[2], x.shape[3]]);
}

/** Runs `fn` on chunks of at most `batchSize` images without recording gradients; rows stay in order. */
export function extractInChunks(images: Tensor, batchSize: number, fn: (chunk: Tensor) => Tensor): Tensor {
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new Error(`feature extraction: batchSize must be a positive integer, got ${batchSize}`);
  }
  const n = images.shape[0];
  if (n <= batchSize) return scope(() => noGrad(() => fn(images)));
  const parts: Tensor[] = [];
  try {
    for (let i = 0; i < n; i += batchSize) {
      const len = Math.min(batchSize, n - i);
      parts.push(keep(scope(() => noGrad(() => fn(narrow(images, 0, i, len))))));
    }
    return concat(parts, 0);
  } finally {
    for (const p of parts) p.dispose();
  }
}
