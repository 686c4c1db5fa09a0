// Interpolation between two classes of a merged conditional generator, with z and noise fixed, along two
// paths: the class embedding's input c moving linearly from one-hot(A) to one-hot(B) (the report's strip),
// and w moving linearly from A's w to B's w. Both paths start at the class-A sample and end at the class-B
// sample of the same z. No Deno API.

import { noGrad } from "../../nn/autograd.ts";
import { lerp } from "../../nn/ops.ts";
import { concat, narrow } from "../../nn/shape.ts";
import { scope, type Tensor } from "../../nn/tensor.ts";
import type { Generator } from "../stylegan2/generator.ts";
import { type LatentOptions, meanAbsDiff, synthesize, unitSteps, wsOf } from "./latents.ts";

export interface PathMeasures {
  /** Mean absolute pixel change between neighbouring steps (0..255 levels), one per gap, mean over z. */
  stepChange: number[];
  /** Largest gap over the mean gap (1 for even change; large when the path jumps). */
  jumpRatio: number;
}

export interface Interpolation {
  /** [2 * n * steps, C, R, R] row-major: per z, the c-path row then the w-path row, `steps` columns. */
  images: Tensor;
  ts: number[];
  cSpace: PathMeasures;
  wSpace: PathMeasures;
  /** Mean absolute pixel difference between the two paths at their middle step (0..255 levels). */
  pathsApartAtMiddle: number;
}

/** c [n, cDim]: one-hot(a) blended into one-hot(b) by t. */
export function blendedLabels(G: Generator, n: number, a: number, b: number, t: number): Tensor {
  return scope(() => lerp(G.labels(n, a)!, G.labels(n, b)!, t));
}

/** Both paths for the latents z [n, zDim], `steps` images each (>= 2, ends included). */
export async function interpolateClasses(
  G: Generator,
  z: Tensor,
  a: number,
  b: number,
  steps: number,
  o: LatentOptions = {},
): Promise<Interpolation> {
  const ts = unitSteps(steps), n = z.shape[0];
  const images = scope(() =>
    noGrad(() => {
      const cPath = ts.map((t) => synthesize(G, wsOf(G, z, blendedLabels(G, n, a, b, t), o), o));
      const wa = wsOf(G, z, G.labels(n, a)!, o), wb = wsOf(G, z, G.labels(n, b)!, o);
      const wPath = ts.map((t) => synthesize(G, lerp(wa, wb, t), o));
      const rows: Tensor[] = [];
      for (let i = 0; i < n; i++) {
        for (const path of [cPath, wPath]) rows.push(...path.map((img) => narrow(img, 0, i, 1)));
      }
      return concat(rows, 0);
    })
  );
  const px = await images.data();
  const per = px.length / (2 * n * steps);
  const at = (i: number, path: number, s: number) =>
    px.subarray(((2 * i + path) * steps + s) * per).subarray(0, per);
  const measure = (path: number): PathMeasures => {
    const stepChange = ts.slice(1).map((_, s) => {
      let sum = 0;
      for (let i = 0; i < n; i++) sum += meanAbsDiff(at(i, path, s), at(i, path, s + 1));
      return (sum / n) * 127.5;
    });
    const meanStep = stepChange.reduce((x, y) => x + y, 0) / stepChange.length;
    return { stepChange, jumpRatio: meanStep > 0 ? Math.max(...stepChange) / meanStep : 1 };
  };
  const mid = Math.floor((steps - 1) / 2);
  let apart = 0;
  for (let i = 0; i < n; i++) apart += meanAbsDiff(at(i, 0, mid), at(i, 1, mid));
  return {
    images,
    ts,
    cSpace: measure(0),
    wSpace: measure(1),
    pathsApartAtMiddle: (apart / n) * 127.5,
  };
}
