// Conversion of an unconditional StyleGAN2 pair into a class-conditional one (REFERENCE.md 6): G's mapping
// network gets the embedding of c concatenated after normalisation (SGA layout), D gets the projection
// head with its own mapping network on c. The converted networks compute exactly what the originals did,
// yet learn the classes at full speed:
// - Every embedding starts with weight 0 and a random bias, so normalize(embed(c)) is the same vector u
//   for every class at first. The layers after it keep SGA's full-scale random weights; only the
//   embedding weight (lr multiplier 1, fast) has to move for classes to differ. (Zero-initialising the
//   new fc0 columns instead would leave them to the mapping's lr multiplier 0.01: far too slow to learn.)
// - G: fc0's z columns are rescaled by sqrt((z+e)/z) (its equalized-lr gain changed), and fc0's bias
//   absorbs the constant contribution of u, so G(z, c) = G(z) for every c.
// - D: with cmap = m0 for every class, the out layer's rows are set to m0_k sqrt(M)/|m0|^2 times the old
//   row, so logit = sum_k out_k(x) m0_k / sqrt(M) is the old logit.

import { noGrad } from "../../nn/autograd.ts";
import { randn, tensor } from "../../nn/creation.ts";
import { oneHot } from "../../nn/layers.ts";
import { copyInto } from "../../nn/module.ts";
import { div, mul, square, sub } from "../../nn/ops.ts";
import { matmulT } from "../../nn/linalg.ts";
import { sum } from "../../nn/reduce.ts";
import { concat, narrow, reshape } from "../../nn/shape.ts";
import { scope, type Tensor } from "../../nn/tensor.ts";
import { Discriminator } from "../stylegan2/discriminator.ts";
import { Generator } from "../stylegan2/generator.ts";
import { type FullyConnectedLayer, normalize2ndMoment } from "../stylegan2/layers.ts";

/** Names of parameters that conversion creates (no counterpart in the unconditional model). */
export function isConversionParam(network: "G" | "D", name: string): boolean {
  return network === "G"
    ? name.startsWith("mapping.embed.")
    : name.startsWith("mapping.") || name.startsWith("b4.out.");
}

export interface ConversionOptions {
  /** Scale of the embeddings' random bias (default 0.01): smaller = classes separate in fewer steps. */
  embedBiasScale?: number;
}

function checkClasses(what: string, have: number, want: number): void {
  if (!Number.isInteger(want) || want < 1) throw new Error(`${what}: numClasses must be >= 1, got ${want}`);
  if (have !== 0 && have !== want) {
    throw new Error(`${what}: the network is already conditional with ${have} classes, not ${want}`);
  }
}

/** Copies every same-named, same-shaped tensor of `src` into `dst`; returns the names not copied. */
function copyMatching(src: Map<string, Tensor>, dst: Map<string, Tensor>): string[] {
  const rest: string[] = [];
  for (const [k, t] of dst) {
    const s = src.get(k);
    if (s && s.shape.join() === t.shape.join()) copyInto(s, t);
    else rest.push(k);
  }
  return rest;
}

/** Embedding weight 0, bias random (scaled): returns u = normalize(bias) as [1, e]. */
function constantEmbedding(embed: FullyConnectedLayer, scale: number): Tensor {
  if (!(scale > 0)) throw new Error(`embedBiasScale must be positive, got ${scale}`);
  copyInto(mul(embed.weight, 0), embed.weight);
  copyInto(mul(randn(embed.bias!.shape), scale), embed.bias!);
  return normalize2ndMoment(reshape(mul(embed.bias!, embed.biasGain), [1, embed.outFeatures]));
}

/** A conditional copy of G with `numClasses` classes whose outputs equal G's for every class. */
export function conditionalGenerator(G: Generator, numClasses: number, o: ConversionOptions = {}): Generator {
  checkClasses("conditionalGenerator", G.cDim, numClasses);
  const kw = { ...G.initKwargs(), c_dim: numClasses } as unknown as Record<string, unknown>;
  const out = Generator.fromInitKwargs(kw);
  const src = G.stateDict(), dst = out.stateDict();
  const rest = copyMatching(src, dst);
  if (G.cDim === numClasses) {
    if (rest.length) throw new Error(`conditionalGenerator: tensors ${rest.join(", ")} did not copy`);
    return out;
  }
  const unknown = rest.filter((k) => !isConversionParam("G", k) && k !== "mapping.fc0.weight");
  if (unknown.length) {
    out.dispose();
    throw new Error(`conditionalGenerator: no way to convert ${unknown.join(", ")}`);
  }
  const fc0 = out.mapping.layers[0];
  const old = src.get("mapping.fc0.weight")!;
  const z = old.shape[1], e = fc0.inFeatures - z;
  scope(() =>
    noGrad(() => {
      const u = constantEmbedding(out.mapping.embed!, o.embedBiasScale ?? 0.01);
      const embedCols = narrow(fc0.weight, 1, z, e); // SGA's random init, full scale
      const shift = matmulT(u, mul(embedCols, fc0.weightGain), false, true); // [1, w]
      copyInto(concat([mul(old, Math.sqrt((z + e) / z)), embedCols], 1), fc0.weight);
      copyInto(sub(fc0.bias!, mul(reshape(shift, [fc0.outFeatures]), 1 / fc0.biasGain)), fc0.bias!);
    })
  );
  return out;
}

/** A conditional copy of D (projection head) whose logits equal D's for every class. */
export function conditionalDiscriminator(
  D: Discriminator,
  numClasses: number,
  o: ConversionOptions = {},
): Discriminator {
  checkClasses("conditionalDiscriminator", D.cDim, numClasses);
  const kw = { ...D.initKwargs(), c_dim: numClasses } as unknown as Record<string, unknown>;
  const out = Discriminator.fromInitKwargs(kw);
  const src = D.stateDict(), dst = out.stateDict();
  const rest = copyMatching(src, dst);
  if (D.cDim === numClasses) {
    if (rest.length) throw new Error(`conditionalDiscriminator: tensors ${rest.join(", ")} did not copy`);
    return out;
  }
  const unknown = rest.filter((k) => !isConversionParam("D", k));
  if (unknown.length) {
    out.dispose();
    throw new Error(`conditionalDiscriminator: no way to convert ${unknown.join(", ")}`);
  }
  const m = out.cmapDim;
  scope(() =>
    noGrad(() => {
      constantEmbedding(out.mapping!.embed!, o.embedBiasScale ?? 0.01);
      const anyClass = oneHot(tensor(new Int32Array([0]), [1], "i32"), numClasses);
      const m0 = reshape(out.mapping!.forward(null, anyClass), [m, 1]); // the same for every class
      const coef = div(mul(m0, Math.sqrt(m)), sum(square(m0)));
      const w = src.get("b4.out.weight")!, b = src.get("b4.out.bias")!;
      copyInto(mul(coef, w), out.b4.out.weight);
      copyInto(mul(reshape(coef, [m]), b), out.b4.out.bias!);
    })
  );
  return out;
}
