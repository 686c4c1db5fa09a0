// Model averaging (GAN Cocktail stage 2): every parameter and buffer (w_avg, embeddings, noise constants,
// frozen layers) of models of one architecture, with equal weights. The sums run in float64 on the host,
// so the result is the exact mean rounded once to float32, whatever the number of models.

import { copyInto, type Module } from "../../nn/module.ts";
import { fromHost, scope } from "../../nn/tensor.ts";
import { readTensors } from "../train/snapshot.ts";

/** Checks that all modules share names and shapes; returns the names in order. */
function commonNames(modules: Module[], what: string): string[] {
  const first = [...modules[0].stateDict()];
  for (let i = 1; i < modules.length; i++) {
    const other = modules[i].stateDict();
    if (other.size !== first.length) {
      throw new Error(`average ${what}: model ${i} has ${other.size} tensors, model 0 has ${first.length}`);
    }
    for (const [k, t] of first) {
      const o = other.get(k);
      if (!o) throw new Error(`average ${what}: model ${i} has no tensor ${k} (different architectures?)`);
      if (o.shape.join() !== t.shape.join() || o.dtype !== t.dtype) {
        throw new Error(`average ${what}: ${k} is [${t.shape}] in model 0 but [${o.shape}] in model ${i}`);
      }
    }
  }
  return first.map(([k]) => k);
}

/** Equal-weight mean of float arrays, accumulated in float64. */
export function meanArrays(arrays: ArrayLike<number>[]): Float32Array {
  if (!arrays.length) throw new Error("meanArrays: nothing to average");
  const n = arrays[0].length;
  const acc = new Float64Array(n);
  for (const a of arrays) {
    if (a.length !== n) throw new Error(`meanArrays: lengths ${a.length} and ${n} differ`);
    for (let i = 0; i < n; i++) acc[i] += a[i];
  }
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = acc[i] / arrays.length;
  return out;
}

/**
 * Writes the equal-weight average of `models` (every parameter and buffer) into `into`, which must have
 * the same architecture (it may be one of the models). Integer tensors must agree across models.
 */
export async function averageInto(models: Module[], into: Module, what = "models"): Promise<void> {
  if (models.length < 1) throw new Error(`average ${what}: no models given`);
  const names = commonNames([into, ...models], what);
  const dsts = into.stateDict();
  const perModel = await Promise.all(models.map((m) => {
    const sd = m.stateDict();
    return readTensors(names.map((k) => sd.get(k)!));
  }));
  names.forEach((k, j) => {
    const dst = dsts.get(k)!;
    const values = perModel.map((arrs) => arrs[j]);
    if (dst.dtype === "i32") {
      if (values.some((v) => v.some((x, i) => x !== values[0][i]))) {
        throw new Error(`average ${what}: integer tensor ${k} differs between models`);
      }
      scope(() => copyInto(fromHost(Int32Array.from(values[0]), dst.shape, "i32"), dst));
      return;
    }
    scope(() => copyInto(fromHost(meanArrays(values), dst.shape, "f32"), dst));
  });
}
