// Elastic weight consolidation for GAN transfer (REFERENCE.md 6): the empirical Fisher diagonal of the
// source model, F_j = mean over batches of (d softplus(-D(G(z))) / d theta_j)^2 on the source's own
// samples, and the penalty lambda * sum_j F_j (theta_j - theta_src,j)^2 with separate lambdas for G's
// mapping network, G's synthesis network and D.

import { grad, noGrad } from "../../nn/autograd.ts";
import { type Generator as Rng, randn, zeros } from "../../nn/creation.ts";
import type { Module } from "../../nn/module.ts";
import { add, mul, square, sub } from "../../nn/ops.ts";
import { sum } from "../../nn/reduce.ts";
import { concat } from "../../nn/shape.ts";
import { keep, scope, type Tensor } from "../../nn/tensor.ts";
import type { Discriminator } from "../stylegan2/discriminator.ts";
import type { Generator } from "../stylegan2/generator.ts";
import { generatorLoss } from "../train/loss.ts";

export interface Fisher {
  G: Map<string, Tensor>;
  D: Map<string, Tensor>;
  batches: number;
  batchSize: number;
}

export interface FisherOptions {
  batches: number;
  batchSize: number;
  /** Class of the samples when the source is conditional. */
  classLabel?: number | null;
  generator?: Rng;
}

/** Empirical Fisher diagonal of every parameter of G and D on the generator loss of G's own samples. */
export function empiricalFisher(G: Generator, D: Discriminator, o: FisherOptions): Fisher {
  const { batches, batchSize } = o;
  if (!Number.isInteger(batches) || batches < 1) {
    throw new Error(`Fisher: batches must be >= 1, got ${batches}`);
  }
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new Error(`Fisher: batchSize must be >= 1, got ${batchSize}`);
  }
  const gNamed = G.namedParameters(), dNamed = D.namedParameters();
  const params = [...gNamed, ...dNamed].map(([, t]) => t);
  let acc: Tensor[] = params.map((p) => keep(zeros(p.shape)));
  try {
    for (let b = 0; b < batches; b++) {
      const next = scope(() => {
        const z = randn([batchSize, G.zDim], { generator: o.generator });
        const c = G.labels(batchSize, G.cDim > 0 ? o.classLabel ?? 0 : null);
        const img = G.forward(z, c, { noiseMode: "random", generator: o.generator });
        const grads = grad(generatorLoss(D.forward(img, c)), params);
        return noGrad(() => grads.map((g, j) => add(acc[j], square(g))));
      });
      for (const t of acc) t.dispose();
      acc = keep(next);
    }
    const scaled = scope(() => noGrad(() => acc.map((t) => mul(t, 1 / batches))));
    keep(scaled);
    const G_ = new Map(gNamed.map(([k], j) => [k, scaled[j]]));
    const D_ = new Map(dNamed.map(([k], j) => [k, scaled[gNamed.length + j]]));
    return { G: G_, D: D_, batches, batchSize };
  } finally {
    for (const t of acc) t.dispose();
  }
}

export function disposeFisher(f: Fisher): void {
  for (const m of [f.G, f.D]) for (const t of m.values()) t.dispose();
}

/**
 * Fisher entries for the parameters of a converted (conditional) model: same-named same-shaped entries
 * carry over; fc0's rescaled z columns get F / s^2 (theta' = s theta), its new embedding columns 0;
 * parameters created by the conversion get no entry (no penalty: they are not the source's).
 */
export function fisherForModel(F: Map<string, Tensor>, model: Module): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [k, p] of model.namedParameters()) {
    const f = F.get(k);
    if (!f) continue;
    if (f.shape.join() === p.shape.join()) {
      out.set(k, keep(scope(() => mul(f, 1))));
    } else if (
      k === "mapping.fc0.weight" && f.rank === 2 && p.shape[0] === f.shape[0] && p.shape[1] > f.shape[1]
    ) {
      const z = f.shape[1], e = p.shape[1] - z;
      out.set(k, keep(scope(() => concat([mul(f, z / (z + e)), zeros([f.shape[0], e])], 1))));
    }
  }
  return out;
}

/** lambda * sum_j F_j (theta_j - anchor_j)^2 over the named parameters that have a Fisher entry. */
export class EwcPenalty {
  private readonly anchors = new Map<string, Tensor>();
  constructor(
    private readonly fisher: Map<string, Tensor>,
    model: Module,
    private readonly lambdaOf: (name: string) => number,
  ) {
    for (const [k, p] of model.namedParameters()) {
      const f = fisher.get(k);
      if (!f) continue;
      if (f.shape.join() !== p.shape.join()) {
        throw new Error(`EWC: Fisher of ${k} is [${f.shape}], the parameter is [${p.shape}]`);
      }
      if (!(lambdaOf(k) >= 0)) throw new Error(`EWC: lambda of ${k} must be >= 0, got ${lambdaOf(k)}`);
      this.anchors.set(k, keep(scope(() => noGrad(() => mul(p, 1)))));
    }
  }

  /** The penalty for the current parameters of `model` (differentiable); null when nothing is anchored. */
  loss(model: Module): Tensor | null {
    let total: Tensor | null = null;
    for (const [k, p] of model.namedParameters()) {
      const a = this.anchors.get(k);
      const lam = a ? this.lambdaOf(k) : 0;
      if (!a || lam === 0) continue;
      const term = mul(sum(mul(this.fisher.get(k)!, square(sub(p, a)))), lam);
      total = total ? add(total, term) : term;
    }
    return total;
  }

  dispose(): void {
    for (const t of this.anchors.values()) t.dispose();
    for (const t of this.fisher.values()) t.dispose();
  }
}

/** Lambda by parameter name: G's mapping network, G's synthesis network, or D. */
export function ewcLambdas(network: "G" | "D", l: { mapping: number; synthesis: number; d: number }) {
  return (name: string): number =>
    network === "D" ? l.d : name.startsWith("mapping.") ? l.mapping : l.synthesis;
}
