// What the page draws, as plain functions of a generator and the controls: no DOM and no Deno here, so
// the browser test and the Deno bench run exactly the same code. One sample per seed, keyed by the seed
// alone, as `cli.ts generate` makes it (z, then the noise, from one stream seeded by the seed).

import { noGrad } from "../nn/autograd.ts";
import { Generator as Rng, randn, tensor } from "../nn/creation.ts";
import { clamp } from "../nn/ops.ts";
import { concat, narrow } from "../nn/shape.ts";
import { scope, type Tensor } from "../nn/tensor.ts";
import type { Generator } from "../gan/stylegan2/generator.ts";
import type { NoiseMode } from "../gan/stylegan2/layers.ts";
import { moveAlong, type SavedDirection } from "../gan/edit/direction.ts";

/** The page's controls. */
export interface RenderSettings {
  seed: number;
  /** Class of a conditional generator (ignored when unconditional). */
  classA: number;
  /** Second class: the interpolation target and the fine-style class of mixing. */
  classB: number;
  psi: number;
  noiseMode: NoiseMode;
  /** "sample": class A; "interpolate": class embedding lerp(A, B, t); "mix": ws < cutoff from A, rest from B. */
  mode: "sample" | "interpolate" | "mix";
  /** Interpolation position in [0, 1]. */
  t: number;
  /** Style-mixing cutoff: ws [0, cutoff) from class A, [cutoff, numWs) from class B. */
  cutoff: number;
  /** The direction slider: steps (projection stds) along a loaded `edit direction` normal (see directionEdit). */
  direction: number;
}

/** Edits of ws [1, numWs, wDim] before synthesis (the direction slider is one: directionEdit). */
export type WsEdit = (ws: Tensor) => Tensor;

/**
 * The direction slider of `edit direction`: ws moved by `steps` projection stds along the learned unit
 * normal, as `edit direction` walks (gan/edit/direction.ts moveAlong); null at 0 steps.
 */
export function directionEdit(dir: SavedDirection, steps: number): WsEdit | null {
  if (!Number.isFinite(steps)) throw new Error(`direction steps must be a finite number, got ${steps}`);
  return steps === 0 ? null : (ws) => moveAlong(ws, dir, steps);
}

export const DEFAULT_SETTINGS: RenderSettings = {
  seed: 0,
  classA: 0,
  classB: 1,
  psi: 1,
  noiseMode: "const",
  mode: "sample",
  t: 0.5,
  cutoff: 4,
  direction: 0,
};

/** One-hot rows mixed: (1 - t) * e_a + t * e_b, as c [1, cDim]. */
function classEmbedding(G: Generator, a: number, b: number, t: number): Tensor | null {
  if (G.cDim === 0) return null;
  for (const k of [a, b]) {
    if (!Number.isInteger(k) || k < 0 || k >= G.cDim) {
      throw new Error(`class ${k} is not an integer in [0, ${G.cDim})`);
    }
  }
  const c = new Float32Array(G.cDim);
  c[a] += 1 - t;
  c[b] += t;
  return tensor(c, [1, G.cDim]);
}

/** One image [1, C, R, R] in [-1, 1] for the settings (the caller owns it). */
export function renderImage(G: Generator, s: RenderSettings, edit: WsEdit | null = null): Tensor {
  return scope(() =>
    noGrad(() => {
      const rng = new Rng(s.seed);
      const z = randn([1, G.zDim], { generator: rng });
      const mapOpts = { truncationPsi: s.psi };
      let ws: Tensor;
      if (s.mode === "mix" && G.cDim > 0) {
        const cut = Math.max(0, Math.min(G.numWs, Math.round(s.cutoff)));
        const coarse = G.mapping.forward(z, classEmbedding(G, s.classA, s.classA, 0), mapOpts);
        const fine = G.mapping.forward(z, classEmbedding(G, s.classB, s.classB, 0), mapOpts);
        ws = cut === 0 ? fine : cut === G.numWs ? coarse : concat([
          narrow(coarse, 1, 0, cut),
          narrow(fine, 1, cut, G.numWs - cut),
        ], 1);
      } else {
        const t = s.mode === "interpolate" ? s.t : 0;
        ws = G.mapping.forward(z, classEmbedding(G, s.classA, s.classB, t), mapOpts);
      }
      if (edit) ws = edit(ws);
      return clamp(G.synthesis.forward(ws, { noiseMode: s.noiseMode, generator: rng }), -1, 1);
    })
  );
}

/**
 * Images [C, R, R] in [-1, 1] as RGBA for a canvas, by SGA's convention (clamp(x * 127.5 + 128, 0, 255)
 * truncated, as data/image_io.ts floatToUint8 writes PNGs); one channel becomes grey.
 */
export function toRgba(x: Float32Array, channels: number, width: number, height: number): Uint8ClampedArray {
  const n = width * height;
  if (x.length !== channels * n) {
    throw new Error(`toRgba: ${x.length} values for ${channels}x${height}x${width}`);
  }
  const out = new Uint8ClampedArray(n * 4);
  for (let i = 0; i < n; i++) {
    for (let ch = 0; ch < 3; ch++) {
      const v = x[(channels === 1 ? 0 : ch) * n + i] * 127.5 + 128;
      out[i * 4 + ch] = v > 255 ? 255 : v > 0 ? Math.trunc(v) : 0; // NaN -> 0
    }
    out[i * 4 + 3] = 255;
  }
  return out;
}

/** Renders the settings and reads the pixels back as RGBA. */
export async function renderRgba(
  G: Generator,
  s: RenderSettings,
  edit: WsEdit | null = null,
): Promise<{ width: number; height: number; rgba: Uint8ClampedArray }> {
  const img = renderImage(G, s, edit);
  try {
    const [, c, h, w] = img.shape;
    return { width: w, height: h, rgba: toRgba(await img.data(), c, w, h) };
  } finally {
    img.dispose();
  }
}

/**
 * Generation throughput: `reps` batches of `batch` images (classes cycling, psi 1, const noise), each
 * read back, after one warm-up batch (pipelines compile there). Images per second.
 */
export async function benchGenerate(G: Generator, batch: number, reps: number): Promise<number> {
  const run = async (seed: number) => {
    const classes = G.cDim > 0 ? Array.from({ length: batch }, (_, i) => i % G.cDim) : null;
    const img = G.sample(batch, classes, { generator: new Rng(seed), noiseMode: "const" });
    await img.data();
    img.dispose();
  };
  await run(-1 >>> 0);
  const t0 = performance.now();
  for (let r = 0; r < reps; r++) await run(r);
  return (batch * reps) / ((performance.now() - t0) / 1000);
}
