// Style mixing across classes (the grid of the StyleGAN papers): the ws before the cutoff (the coarse,
// low-resolution layers) from a class-A sample, the ws from the cutoff on from a class-B sample.
// No Deno API.

import { noGrad } from "../../nn/autograd.ts";
import { full } from "../../nn/creation.ts";
import { broadcastTo, concat, narrow, reshape, unsqueeze } from "../../nn/shape.ts";
import { scope, type Tensor } from "../../nn/tensor.ts";
import type { Generator } from "../stylegan2/generator.ts";
import { classWs, type LatentOptions, meanAbsDiff, synthesize } from "./latents.ts";

/** ws [n * m, numWs, wDim]: row i * m + j takes ws[:cutoff] from coarse[i] and ws[cutoff:] from fine[j]. */
export function mixWs(coarse: Tensor, fine: Tensor, cutoff: number): Tensor {
  const [n, numWs, wDim] = coarse.shape, m = fine.shape[0];
  if (fine.shape[1] !== numWs || fine.shape[2] !== wDim) {
    throw new Error(`mixWs: ws shapes [${coarse.shape}] and [${fine.shape}] differ`);
  }
  if (!Number.isInteger(cutoff) || cutoff < 0 || cutoff > numWs) {
    throw new Error(
      `mixWs: cutoff must be an integer in [0, ${numWs}] (the generator's num_ws), got ${cutoff}`,
    );
  }
  return scope(() => {
    const a = broadcastTo(unsqueeze(coarse, 1), [n, m, numWs, wDim]);
    const b = broadcastTo(unsqueeze(fine, 0), [n, m, numWs, wDim]);
    const parts = [];
    if (cutoff > 0) parts.push(narrow(a, 2, 0, cutoff));
    if (cutoff < numWs) parts.push(narrow(b, 2, cutoff, numWs - cutoff));
    return reshape(parts.length === 1 ? parts[0] : concat(parts, 2), [n * m, numWs, wDim]);
  });
}

/** For each w index, the resolution of the synthesis layer it drives (the last one is the final ToRGB). */
export function wsResolutions(G: Generator): number[] {
  const out: number[] = [];
  for (const block of G.synthesis.blocks) for (let i = 0; i < block.numConv; i++) out.push(block.resolution);
  out.push(G.imgResolution);
  return out;
}

export interface StyleMix {
  /** [(n + 1) * (m + 1), C, R, R] row-major: row 0 = the fine-class samples (after a blank corner),
   * column 0 = the coarse-class samples, cell (i, j) = the mix of coarse i and fine j. */
  images: Tensor;
  rows: number;
  cols: number;
  /** Mean absolute pixel difference (0..255 levels) of the mixes to their coarse and their fine sample. */
  toCoarse: number;
  toFine: number;
  /** The layer resolutions each part controls. */
  coarseResolutions: number[];
  fineResolutions: number[];
}

/** The mixing grid of zCoarse (as class a) against zFine (as class b) at a cutoff in [0, numWs]. */
export async function styleMix(
  G: Generator,
  zCoarse: Tensor,
  a: number,
  zFine: Tensor,
  b: number,
  cutoff: number,
  o: LatentOptions = {},
): Promise<StyleMix> {
  const n = zCoarse.shape[0], m = zFine.shape[0];
  const { images, coarse, fine, mixed } = scope(() =>
    noGrad(() => {
      const wa = classWs(G, zCoarse, a, o), wb = classWs(G, zFine, b, o);
      const coarse = synthesize(G, wa, o), fine = synthesize(G, wb, o);
      const mixed = synthesize(G, mixWs(wa, wb, cutoff), o);
      const blank = full([1, ...fine.shape.slice(1)], -1); // a black corner
      const cells: Tensor[] = [blank, fine];
      for (let i = 0; i < n; i++) cells.push(narrow(coarse, 0, i, 1), narrow(mixed, 0, i * m, m));
      return { images: concat(cells, 0), coarse, fine, mixed };
    })
  );
  try {
    const [pc, pf, pm] = await Promise.all([coarse.data(), fine.data(), mixed.data()]);
    const per = pc.length / n;
    let toCoarse = 0, toFine = 0;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < m; j++) {
        const cell = pm.subarray((i * m + j) * per, (i * m + j + 1) * per);
        toCoarse += meanAbsDiff(cell, pc.subarray(i * per, (i + 1) * per));
        toFine += meanAbsDiff(cell, pf.subarray(j * per, (j + 1) * per));
      }
    }
    const res = wsResolutions(G);
    return {
      images,
      rows: n + 1,
      cols: m + 1,
      toCoarse: (toCoarse / (n * m)) * 127.5,
      toFine: (toFine / (n * m)) * 127.5,
      coarseResolutions: [...new Set(res.slice(0, cutoff))],
      fineResolutions: [...new Set(res.slice(cutoff))],
    };
  } finally {
    coarse.dispose();
    fine.dispose();
    mixed.dispose();
  }
}
