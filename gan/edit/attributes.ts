// Attributes that label latents for `edit direction`: measured image properties (mean brightness, ink
// mass) and a classifier's logit. Each maps generated images ([-1, 1], NCHW) to one number per image.
// No Deno API: a classifier comes in as a function, loaded from its file by the caller.

import { noGrad } from "../../nn/autograd.ts";
import { add, mul } from "../../nn/ops.ts";
import { scope, type Tensor } from "../../nn/tensor.ts";

export interface Attribute {
  /** Short name as given on the command line (recorded in the JSON). */
  name: string;
  description: string;
  /** One score per image of images [n, C, R, R] in [-1, 1]. */
  score(images: Tensor): Promise<Float64Array>;
}

/** Per image, the mean over pixels (and channels) of f(value in [0, 1]). */
async function perImage(images: Tensor, f: (v: number) => number): Promise<Float64Array> {
  const px = await images.data();
  const n = images.shape[0], per = px.length / n;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let k = i * per; k < (i + 1) * per; k++) s += f(Math.min(Math.max((px[k] + 1) / 2, 0), 1));
    out[i] = s / per;
  }
  return out;
}

/** Mean intensity in [0, 1]. */
export const meanBrightness: Attribute = {
  name: "brightness",
  description: "mean pixel intensity in [0, 1]",
  score: (images) => perImage(images, (v) => v),
};

/** Share of pixels brighter than mid-grey: the stroke area of white-on-black digits (MNIST). */
export const inkMass: Attribute = {
  name: "ink",
  description: "share of pixels brighter than mid-grey (stroke area of white-on-black digits)",
  score: (images) => perImage(images, (v) => (v > 0.5 ? 1 : 0)),
};

/**
 * Logit k of a classifier that takes 0..255 images (NCHW) and returns logits [n, K] (for example the
 * bundled MNIST network's `classify`).
 */
export function classifierLogit(
  name: string,
  description: string,
  classify: (images255: Tensor) => Tensor,
  k: number,
): Attribute {
  return {
    name,
    description,
    async score(images) {
      const logits = scope(() => noGrad(() => classify(mul(add(images, 1), 127.5))));
      try {
        const [n, K] = logits.shape;
        if (logits.rank !== 2 || !(k >= 0 && k < K)) {
          throw new Error(`attribute ${name}: the classifier gives logits [${logits.shape}], no logit ${k}`);
        }
        const px = await logits.data();
        return Float64Array.from({ length: n }, (_, i) => px[i * K + k]);
      } finally {
        logits.dispose();
      }
    },
  };
}

export type AttributeSpec =
  | { kind: "brightness" | "ink" }
  | { kind: "logit"; index: number; weights: string | null };

/** `brightness`, `ink`, `mnist-logit:K` (bundled MNIST network) or `mnist-logit:K:PATH` (your weights). */
export function parseAttribute(spec: string): AttributeSpec {
  if (spec === "brightness" || spec === "ink") return { kind: spec };
  const m = /^mnist-logit:(\d+)(?::(.+))?$/.exec(spec);
  if (m) return { kind: "logit", index: Number(m[1]), weights: m[2] ?? null };
  throw new Error(
    `--attribute '${spec}': expected brightness, ink, mnist-logit:K (the bundled MNIST network's logit ` +
      `of digit K) or mnist-logit:K:PATH (weights of that network from PATH)`,
  );
}
