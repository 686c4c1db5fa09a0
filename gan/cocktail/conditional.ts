// Conversion of an unconditional StyleGAN2 pair into a class-conditional one (REFERENCE.md 6), as the
// GAN Cocktail authors' models are: every class has its own code from the start. G's mapping network gets
// the embedding of c concatenated after normalisation (SGA layout), D gets the projection head with its
// own mapping network on c; both embeddings keep SGA's fresh init (weight N(0, 1), bias 0), so
// normalize(embed(c)) is a distinct random unit-scale code u_c for every class, in G and in D.
// The model's own class `keepClass` (the root's index among the sources) keeps its function exactly:
// - G: fc0's z columns are rescaled by sqrt((z+e)/z) (its equalized-lr gain changed), and fc0's bias
//   absorbs the contribution of u_keep, so G(z, keepClass) = G(z); another class c shifts fc0's input by
//   the random full-scale columns times (u_c - u_keep).
// - D: logit = sum_k out_k(x) m_k(c) / sqrt(M). The out layer is coef (x) old_row + P R, with
//   coef = m_keep sqrt(M) / |m_keep|^2 and P R the fresh random out layer projected orthogonally to
//   m_keep: class keepClass gets the old logit exactly, every other class also sees the full-rank random
//   features R x, so the head can tell classes apart from the first step.

import { noGrad } from "../../nn/autograd.ts";
import { tensor } from "../../nn/creation.ts";
import { oneHot } from "../../nn/layers.ts";
import { copyInto } from "../../nn/module.ts";
import { add, div, mul, square, sub } from "../../nn/ops.ts";
import { matmulT } from "../../nn/linalg.ts";
import { sum } from "../../nn/reduce.ts";
import { concat, narrow, reshape } from "../../nn/shape.ts";
import { scope, type Tensor } from "../../nn/tensor.ts";
import { Discriminator } from "../stylegan2/discriminator.ts";
import { Generator } from "../stylegan2/generator.ts";
import { normalize2ndMoment } from "../stylegan2/layers.ts";

/** Names of parameters that conversion creates (no counterpart in the unconditional model). */
export function isConversionParam(network: "G" | "D", name: string): boolean {
  return network === "G"
    ? name.startsWith("mapping.embed.")
    : name.startsWith("mapping.") || name.startsWith("b4.out.");
}

export interface ConversionOptions {
  /** The class whose outputs equal the unconditional model's (default 0: the root's own index). */
  keepClass?: number;
}

function checkClasses(what: string, have: number, want: number, keep: number): void {
  if (!Number.isInteger(want) || want < 1) throw new Error(`${what}: numClasses must be >= 1, got ${want}`);
  if (!Number.isInteger(keep) || keep < 0 || keep >= want) {
    throw new Error(`${what}: keepClass must be a class index in [0, ${want}), got ${keep}`);
  }
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

/** One-hot row [1, n] of class c. */
function classRow(c: number, n: number): Tensor {
  return oneHot(tensor(new Int32Array([c]), [1], "i32"), n);
}

/** A conditional copy of G with `numClasses` distinct class codes; class keepClass computes what G did. */
export function conditionalGenerator(G: Generator, numClasses: number, o: ConversionOptions = {}): Generator {
  const keep = o.keepClass ?? 0;
  checkClasses("conditionalGenerator", G.cDim, numClasses, keep);
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
      const u = normalize2ndMoment(out.mapping.embed!.forward(classRow(keep, numClasses))); // [1, e]
      const embedCols = narrow(fc0.weight, 1, z, e); // SGA's random init, full scale
      const shift = matmulT(u, mul(embedCols, fc0.weightGain), false, true); // [1, w]
      copyInto(concat([mul(old, Math.sqrt((z + e) / z)), embedCols], 1), fc0.weight);
      copyInto(sub(fc0.bias!, mul(reshape(shift, [fc0.outFeatures]), 1 / fc0.biasGain)), fc0.bias!);
    })
  );
  return out;
}

/** A conditional copy of D (full-rank projection head); class keepClass gets D's logits exactly. */
export function conditionalDiscriminator(
  D: Discriminator,
  numClasses: number,
  o: ConversionOptions = {},
): Discriminator {
  const keep = o.keepClass ?? 0;
  checkClasses("conditionalDiscriminator", D.cDim, numClasses, keep);
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
      const mk = reshape(out.mapping!.forward(null, classRow(keep, numClasses)), [m, 1]);
      const norm2 = sum(square(mk));
      const coef = div(mul(mk, Math.sqrt(m)), norm2);
      // P R = R - m_keep (m_keep^T R) / |m_keep|^2: the fresh layer, blind to class keepClass.
      const project = (r: Tensor) => sub(r, div(mul(mk, sum(mul(mk, r), 0, true)), norm2));
      const w = src.get("b4.out.weight")!, b = src.get("b4.out.bias")!; // [1, C], [1]
      const rw = out.b4.out.weight, rb = reshape(out.b4.out.bias!, [m, 1]);
      copyInto(add(mul(coef, w), project(rw)), rw);
      copyInto(reshape(add(mul(coef, b), project(rb)), [m]), out.b4.out.bias!);
    })
  );
  return out;
}
