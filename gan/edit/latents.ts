// Latents of a conditional generator for the latent-space applications: z from seeds (the same z as
// `generate --seeds`), per-class ws from the mapping network, images from ws with fixed noise.
// No Deno API: the web page reuses these.

import { noGrad } from "../../nn/autograd.ts";
import { Generator as Rng, randn } from "../../nn/creation.ts";
import { clamp } from "../../nn/ops.ts";
import { concat } from "../../nn/shape.ts";
import type { Tensor } from "../../nn/tensor.ts";
import type { Generator } from "../stylegan2/generator.ts";
import type { NoiseMode } from "../stylegan2/layers.ts";

export interface LatentOptions {
  /** Truncation psi of the ws (default 1). */
  truncationPsi?: number;
  /** Noise of the synthesis layers (default "const": the same noise for every image). */
  noiseMode?: NoiseMode;
}

/** z [n, zDim]: row i is the first draw of the stream keyed by seeds[i] (what `generate` uses). */
export function latentsFromSeeds(G: Generator, seeds: readonly number[]): Tensor {
  if (!seeds.length) throw new Error("latentsFromSeeds: no seeds");
  return noGrad(() => concat(seeds.map((s) => randn([1, G.zDim], { generator: new Rng(s) })), 0));
}

/** Resolves a class given by index or by name; the error lists what exists. */
export function classIndex(G: Generator, spec: string | number, names: readonly string[] = []): number {
  if (G.cDim < 1) throw new Error("this generator is unconditional: it has no classes");
  const byName = names.indexOf(String(spec));
  const k = byName >= 0 ? byName : Number(spec);
  if (!Number.isInteger(k) || k < 0 || k >= G.cDim) {
    throw new Error(
      `class '${spec}' is not a class index in [0, ${G.cDim})` +
        (names.length ? ` or one of ${names.join(", ")}` : ""),
    );
  }
  return k;
}

/** ws [n, numWs, wDim] of z under class labels c ([n, cDim], e.g. one-hot or a blend). */
export function wsOf(G: Generator, z: Tensor, c: Tensor, o: LatentOptions = {}): Tensor {
  return noGrad(() => G.mapping.forward(z, c, { truncationPsi: o.truncationPsi ?? 1 }));
}

/** ws of z as class k. */
export function classWs(G: Generator, z: Tensor, k: number, o: LatentOptions = {}): Tensor {
  return wsOf(G, z, G.labels(z.shape[0], k)!, o);
}

/** Images [n, C, R, R] in [-1, 1] from ws (the images `sample` gives for the same z, class and noise). */
export function synthesize(G: Generator, ws: Tensor, o: LatentOptions = {}): Tensor {
  return noGrad(() => clamp(G.synthesis.forward(ws, { noiseMode: o.noiseMode ?? "const" }), -1, 1));
}

/** Evenly spaced steps from 0 to 1, both ends included (count >= 2). */
export function unitSteps(count: number): number[] {
  if (!Number.isInteger(count) || count < 2) throw new Error(`steps must be an integer >= 2, got ${count}`);
  return Array.from({ length: count }, (_, i) => i / (count - 1));
}

/** Mean absolute difference of two equal-length arrays (images on the host). */
export function meanAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`meanAbsDiff: lengths ${a.length} and ${b.length}`);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
  return s / a.length;
}
