// The 2-D study's protocol step through the engine (nn/ modules, autograd, Adam, lazy elementwise fusion)
// instead of the private fused trainer (fast_gan.ts): issue 11 moves the study onto this path once it
// costs at most 1.2x per G step. Same semantics as the fused trainer: non-saturating loss, dSteps D steps
// then one G step, BatchNorm in training mode (running statistics updated at every generator forward, as
// PyTorch does), PyTorch's Adam, and an EMA of G's parameters and running statistics. Real points are
// sampled on the host (a [batch, 2] upload per D step); nothing is read back inside a step.

import { grad, noGrad } from "../../nn/autograd.ts";
import { manualSeed, randn, tensor } from "../../nn/creation.ts";
import { copyInto, emaInto } from "../../nn/module.ts";
import { Adam } from "../../nn/optim.ts";
import { mul, neg, softplus } from "../../nn/ops.ts";
import { concat } from "../../nn/shape.ts";
import { mean } from "../../nn/reduce.ts";
import { keep, scope, type Tensor } from "../../nn/tensor.ts";
import { type Mixture, sampleMixture } from "./distributions.ts";
import { LATENT, ToyDiscriminator, ToyGenerator } from "./models.ts";
import type { ProtocolConfig } from "./train.ts";

export class EngineToyGan {
  readonly g: ToyGenerator;
  readonly d: ToyDiscriminator;
  readonly gEma: ToyGenerator;
  readonly optG: Adam;
  readonly optD: Adam;
  private realDraws = 0;
  /** -1 for the batch's real rows, +1 for its fake rows. */
  private readonly signs: Tensor;

  /** Networks initialised from `seed` exactly as freshTrainer() initialises the fused trainer's. */
  constructor(readonly data: Mixture, readonly seed: number, readonly cfg: ProtocolConfig) {
    manualSeed(seed);
    this.g = new ToyGenerator();
    this.d = new ToyDiscriminator();
    this.gEma = new ToyGenerator();
    this.gEma.loadStateDict(this.g.stateDict());
    const opts = { lr: cfg.lr, betas: cfg.betas };
    this.optG = new Adam(this.g.parameters(), opts);
    this.optD = new Adam(this.d.parameters(), opts);
    const B = cfg.batch;
    this.signs = keep(tensor(Float32Array.from({ length: 2 * B }, (_, i) => i < B ? -1 : 1), [2 * B, 1]));
  }

  private real(): Tensor {
    const pts = sampleMixture(this.data, this.cfg.batch, this.seed * 1_000_003 + this.realDraws++);
    return tensor(Float32Array.from(pts), [this.cfg.batch, 2]);
  }

  /**
   * mean_r softplus(-D(real)) + mean_f softplus(D(fake)), with real and fake through D as one batch of 2B
   * (D has no batch statistics, so this is exact): 2 mean over the batch of softplus(sign * D).
   */
  discriminatorLoss(real: Tensor, fake: Tensor): Tensor {
    return mul(mean(softplus(mul(this.d.forward(concat([real, fake])), this.signs))), 2);
  }

  /** Records n protocol steps (dSteps D steps + one G step + EMA each); waits for nothing. */
  iterate(n = 1): void {
    const B = this.cfg.batch, { g, d } = this;
    for (let i = 0; i < n; i++) {
      scope(() => {
        for (let k = 0; k < this.cfg.dSteps; k++) {
          const fake = noGrad(() => g.forward(randn([B, LATENT])));
          const lossD = this.discriminatorLoss(this.real(), fake);
          this.optD.update(grad(lossD, this.optD.params));
        }
        const lossG = mean(softplus(neg(d.forward(g.forward(randn([B, LATENT]))))));
        this.optG.update(grad(lossG, this.optG.params));
        this.updateEma();
      });
    }
  }

  /** G_ema <- beta G_ema + (1 - beta) G over parameters and running statistics (the fused trainer's EMA). */
  private updateEma(): void {
    const beta = this.cfg.emaBeta;
    const src = new Map([...this.g.namedParameters(), ...this.g.namedBuffers()]);
    const dsts: Tensor[] = [], srcs: Tensor[] = [];
    for (const [name, dst] of [...this.gEma.namedParameters(), ...this.gEma.namedBuffers()]) {
      const s = src.get(name)!;
      if (name.endsWith("num_batches_tracked")) copyInto(s, dst);
      else {
        dsts.push(dst);
        srcs.push(s);
      }
    }
    emaInto(dsts, srcs, beta);
  }

  dispose(): void {
    for (const m of [this.g, this.d, this.gEma]) m.dispose();
    this.optG.dispose();
    this.optD.dispose();
    this.signs.dispose();
  }
}
