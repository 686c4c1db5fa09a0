// The study's 2-D networks as engine modules (REFERENCE.md section 7). They define the parameter names
// and shapes of every checkpoint (PyTorch nn.Sequential naming: net.0.weight, net.1.running_mean, ...),
// initialise weights (PyTorch defaults, seeded through manualSeed), and serve as the autograd reference
// that the fast fused trainer (fast_gan.ts) is tested against.

import { Act, BatchNorm, Linear, Sequential } from "../../nn/layers.ts";
import { Module } from "../../nn/module.ts";
import { randn } from "../../nn/creation.ts";
import type { Generator } from "../../nn/creation.ts";
import type { Tensor } from "../../nn/tensor.ts";

export const LATENT = 64;
/** Generator widths: 64 -> 64 -> 128 -> 128 -> 128 -> 64 -> 2. */
export const G_WIDTHS = [LATENT, 64, 128, 128, 128, 64, 2];
/** Discriminator widths: 2 -> 64 -> 128 -> 128 -> 64 -> 1. */
export const D_WIDTHS = [2, 64, 128, 128, 64, 1];

/** One linear layer of a toy network as the fast trainer sees it (names are state-dict keys). */
export interface LayerSpec {
  inF: number;
  outF: number;
  weight: string;
  bias: string;
  /** BatchNorm after this layer (generator hidden layers): its parameter/buffer name prefix. */
  bn?: string;
}

/** Generator layers in order: Linear (+ BatchNorm + ReLU) at Sequential indices 3i, 3i+1, 3i+2. */
export function generatorLayers(): LayerSpec[] {
  return G_WIDTHS.slice(1).map((outF, i) => ({
    inF: G_WIDTHS[i],
    outF,
    weight: `net.${3 * i}.weight`,
    bias: `net.${3 * i}.bias`,
    bn: i < G_WIDTHS.length - 2 ? `net.${3 * i + 1}` : undefined,
  }));
}

/** Discriminator layers in order: Linear (+ ReLU) at Sequential indices 2i, 2i+1. */
export function discriminatorLayers(): LayerSpec[] {
  return D_WIDTHS.slice(1).map((outF, i) => ({
    inF: D_WIDTHS[i],
    outF,
    weight: `net.${2 * i}.weight`,
    bias: `net.${2 * i}.bias`,
  }));
}

/** Generator: z (64) -> five Linear+BatchNorm+ReLU blocks -> Linear to 2-D. */
export class ToyGenerator extends Module {
  readonly net: Sequential;
  constructor() {
    super();
    const layers: (Linear | BatchNorm | Act)[] = [];
    for (const l of generatorLayers()) {
      layers.push(new Linear(l.inF, l.outF));
      if (l.bn) layers.push(new BatchNorm(l.outF), new Act("relu"));
    }
    this.net = this.module("net", new Sequential(layers));
  }
  forward(z: Tensor): Tensor {
    if (z.rank !== 2 || z.shape[1] !== LATENT) {
      throw new Error(`ToyGenerator: z must be [n, ${LATENT}], got [${z.shape}]`);
    }
    return this.net.forward(z);
  }
  /** n samples from fresh latents (BatchNorm as the module's mode says). */
  sample(n: number, opts: { generator?: Generator } = {}): Tensor {
    return this.forward(randn([n, LATENT], opts));
  }
}

/** Discriminator: 2-D -> four Linear+ReLU blocks -> Linear to one logit. */
export class ToyDiscriminator extends Module {
  readonly net: Sequential;
  constructor() {
    super();
    const layers: (Linear | Act)[] = [];
    const specs = discriminatorLayers();
    specs.forEach((l, i) => {
      layers.push(new Linear(l.inF, l.outF));
      if (i < specs.length - 1) layers.push(new Act("relu"));
    });
    this.net = this.module("net", new Sequential(layers));
  }
  forward(x: Tensor): Tensor {
    if (x.rank !== 2 || x.shape[1] !== 2) {
      throw new Error(`ToyDiscriminator: x must be [n, 2], got [${x.shape}]`);
    }
    return this.net.forward(x);
  }
}
