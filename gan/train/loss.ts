// The StyleGAN2 losses (SGA conventions, REFERENCE.md 3): non-saturating G and D losses, the R1 penalty
// (a gradient of a gradient), path-length regularisation, style mixing, and the Adam settings of lazy
// regularisation. Pure functions of networks and tensors: the training loop decides when each runs.

import { grad } from "../../nn/autograd.ts";
import { type Generator as Rng, randn } from "../../nn/creation.ts";
import { add, lerp, mul, neg, softplus, sqrt, square, sub } from "../../nn/ops.ts";
import { mean, sum } from "../../nn/reduce.ts";
import { concat, narrow } from "../../nn/shape.ts";
import type { Tensor } from "../../nn/tensor.ts";
import type { NoiseMode } from "../stylegan2/layers.ts";

/** What the losses need of a discriminator: logits [N, 1] from images and labels. */
export interface LogitsNet {
  forward(img: Tensor, c: Tensor | null): Tensor;
}

/** What the losses need of a generator: a mapping z, c -> ws and a synthesis ws -> images. */
export interface MappedGenerator {
  readonly numWs: number;
  readonly mapping: {
    forward(z: Tensor, c: Tensor | null, o?: { updateEmas?: boolean }): Tensor;
  };
  readonly synthesis: {
    forward(ws: Tensor, o?: { noiseMode?: NoiseMode; generator?: Rng }): Tensor;
  };
}

/** G's non-saturating loss: mean softplus(-D(G(z))). */
export function generatorLoss(fakeLogits: Tensor): Tensor {
  return mean(softplus(neg(fakeLogits)));
}

/** D's loss: mean softplus(D(G(z))) + mean softplus(-D(x)). */
export function discriminatorLoss(fakeLogits: Tensor, realLogits: Tensor): Tensor {
  const fake = mean(softplus(fakeLogits));
  const real = mean(softplus(neg(realLogits)));
  return add(fake, real);
}

/**
 * R1 per image: gamma/2 * sum_CHW (d sum D(x) / dx)^2, as [N] with a graph back to D's parameters
 * (the gradient is taken with createGraph, so the penalty can be differentiated again).
 * `real` must not carry a graph of its own; it is marked as requiring gradients for the call.
 */
export function r1Penalty(
  D: LogitsNet,
  real: Tensor,
  c: Tensor | null,
  gamma: number,
): { penalty: Tensor; logits: Tensor } {
  if (real.rank !== 4) throw new Error(`r1Penalty: real images must be NCHW, got [${real.shape}]`);
  if (!(gamma >= 0)) throw new Error(`r1Penalty: gamma must be >= 0, got ${gamma}`);
  if (real.gradFn) throw new Error("r1Penalty: real images must be a leaf (detach them first)");
  const prev = real.requiresGrad;
  real.requiresGrad = true;
  try {
    const logits = D.forward(real, c);
    const [gx] = grad(sum(logits), [real], { createGraph: true });
    return { penalty: mul(sum(square(gx), [1, 2, 3]), gamma / 2), logits };
  } finally {
    real.requiresGrad = prev;
  }
}

/**
 * Style mixing (SGA): with probability `prob` a cutoff in [1, numWs); a host random source decides, so
 * nothing is read back. Returns numWs (no mixing) or the cutoff. Always draws two numbers, so the
 * stream advances the same way whatever the outcome.
 */
export function drawMixingCutoff(numWs: number, prob: number, random: () => number): number {
  if (!(prob >= 0 && prob <= 1)) throw new Error(`style mixing probability must be in [0, 1], got ${prob}`);
  const cutoff = 1 + Math.floor(random() * (numWs - 1));
  const mix = random() < prob;
  return mix && numWs > 1 ? cutoff : numWs;
}

/** ws for z (and c), with the ws from `cutoff` on taken from a second latent (style mixing). */
export function mappedWs(
  G: MappedGenerator,
  z: Tensor,
  c: Tensor | null,
  o: { updateEmas?: boolean; cutoff?: number; z2?: Tensor } = {},
): Tensor {
  const ws = G.mapping.forward(z, c, { updateEmas: o.updateEmas });
  const cut = o.cutoff ?? G.numWs;
  if (cut >= G.numWs) return ws;
  if (!Number.isInteger(cut) || cut < 1) {
    throw new Error(`style mixing cutoff must be in [1, numWs), got ${cut}`);
  }
  if (!o.z2) throw new Error("style mixing needs a second latent z2");
  const ws2 = G.mapping.forward(o.z2, c, { updateEmas: false });
  return concat([narrow(ws, 1, 0, cut), narrow(ws2, 1, cut, G.numWs - cut)], 1);
}

export interface PathLengthResult {
  /** (L - pl_mean')^2 * weight, [N]. */
  penalty: Tensor;
  /** L per image, [N]. */
  lengths: Tensor;
  /** The updated running mean (a scalar with a graph, as in SGA); store it detached. */
  plMean: Tensor;
}

/**
 * Path-length regularisation (SGA): y = randn_like(img)/sqrt(HW); g = d sum(img*y)/d ws;
 * L = sqrt(mean over ws of sum over w_dim g^2); pl_mean' = lerp(pl_mean, mean L, decay);
 * penalty = (L - pl_mean')^2 * weight. `ws` must be the input the images were synthesised from.
 */
export function pathLengthPenalty(
  img: Tensor,
  ws: Tensor,
  plMean: Tensor,
  o: { weight: number; decay: number; generator?: Rng },
): PathLengthResult {
  if (img.rank !== 4) throw new Error(`pathLengthPenalty: images must be NCHW, got [${img.shape}]`);
  if (ws.rank !== 3 || ws.shape[0] !== img.shape[0]) {
    throw new Error(`pathLengthPenalty: ws must be [${img.shape[0]}, numWs, wDim], got [${ws.shape}]`);
  }
  if (!ws.requiresGrad) {
    throw new Error("pathLengthPenalty: ws carries no graph (run the mapping with gradients)");
  }
  const [, , h, w] = img.shape;
  const y = mul(randn(img.shape, { generator: o.generator }), 1 / Math.sqrt(h * w));
  const [g] = grad(sum(mul(img, y)), [ws], { createGraph: true });
  const lengths = sqrt(mean(sum(square(g), 2), 1));
  const next = lerp(plMean.view([]), mean(lengths), o.decay);
  const penalty = mul(square(sub(lengths, next)), o.weight);
  return { penalty, lengths, plMean: next };
}

/** Adam settings under lazy regularisation every `interval` steps: lr * r and betas^r, r = I / (I + 1). */
export function lazyRegAdam(
  lr: number,
  betas: [number, number],
  interval: number | null,
): { lr: number; betas: [number, number] } {
  if (interval === null) return { lr, betas: [betas[0], betas[1]] };
  if (!Number.isInteger(interval) || interval < 1) {
    throw new Error(`lazy regularisation interval must be a positive integer or null, got ${interval}`);
  }
  const r = interval / (interval + 1);
  return { lr: lr * r, betas: [betas[0] ** r, betas[1] ** r] };
}
