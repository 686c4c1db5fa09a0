// One training iteration of SGA's recipe: Gmain, Greg (lazy path length), Dmain, Dreg (lazy R1), each one
// Adam step, then the EMA of G. Only GPU work is recorded; the loss terms come back as tensors for the tick's
// read-back. All randomness of iteration i comes from streams keyed by (seed, i), so an iteration computes
// the same whether or not the run was stopped and resumed before it.

import { grad, noGrad } from "../../nn/autograd.ts";
import { Generator as Rng, manualSeed, randn } from "../../nn/creation.ts";
import { copyInto } from "../../nn/module.ts";
import type { Adam } from "../../nn/optim.ts";
import { add, detach, mul } from "../../nn/ops.ts";
import { mean } from "../../nn/reduce.ts";
import type { Tensor } from "../../nn/tensor.ts";
import { seededRandom } from "../../data/dataset.ts";
import type { Discriminator } from "../stylegan2/discriminator.ts";
import type { Generator } from "../stylegan2/generator.ts";
import type { BatchSource, StepContext } from "./batches.ts";
import { emaBeta, updateEma } from "./ema.ts";
import {
  discriminatorLoss,
  drawMixingCutoff,
  generatorLoss,
  mappedWs,
  pathLengthPenalty,
  r1Penalty,
} from "./loss.ts";
import type { TrainingRecipe } from "./presets.ts";

/** A 32-bit seed for stream `purpose` of iteration `step` (murmur3's finaliser over the three). */
export function streamSeed(seed: number, step: number, purpose: number): number {
  let h = (seed >>> 0) ^ Math.imul(step + 1, 0x9E3779B1) ^ Math.imul(purpose + 1, 0x85EBCA77);
  h = Math.imul(h ^ (h >>> 16), 0x85EBCA6B);
  h = Math.imul(h ^ (h >>> 13), 0xC2B2AE35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** The purposes of the random streams of one iteration. */
export const STREAM = { global: 0, gpu: 1, host: 2, userGpu: 3, userHost: 4 } as const;

/** The random sources handed to data functions and loss hooks in iteration `step`. */
export function stepContext(seed: number, step: number, curNimg: number): StepContext {
  return {
    step,
    curNimg,
    generator: new Rng(streamSeed(seed, step, STREAM.userGpu)),
    random: seededRandom(streamSeed(seed, step, STREAM.userHost)),
  };
}

export interface StepParts {
  G: Generator;
  D: Discriminator;
  Gema: Generator;
  optG: Adam;
  optD: Adam;
  /** The parameters each optimiser trains (D's without the frozen layers). */
  gParams: Tensor[];
  dParams: Tensor[];
  recipe: TrainingRecipe;
  /** Running mean of path lengths, [1], updated in place. */
  plMean: Tensor;
  seed: number;
  batches: BatchSource;
  extraGLoss?: (G: Generator, ctx: StepContext) => Tensor | null;
  extraDLoss?: (D: Discriminator, ctx: StepContext) => Tensor | null;
}

function setRequiresGrad(ts: Tensor[], on: boolean): void {
  for (const t of ts) t.requiresGrad = on;
}

/**
 * Records one iteration at iteration index `step` with `curNimg` images shown so far; call inside scope().
 * Returns the loss terms as one-element tensors (detached) by name.
 */
export function sgaIteration(p: StepParts, step: number, curNimg: number): [string, Tensor][] {
  const { G, D, recipe: rc, batches } = p;
  const B = rc.batch, numWs = G.numWs, zDim = G.zDim;
  manualSeed(streamSeed(p.seed, step, STREAM.global)); // stray draws from the global stream stay reproducible
  const gen = new Rng(streamSeed(p.seed, step, STREAM.gpu));
  const random = seededRandom(streamSeed(p.seed, step, STREAM.host));
  const ctx = stepContext(p.seed, step, curNimg);
  const out: [string, Tensor][] = [];
  const real = batches.real(ctx);
  const allG = G.parameters(), allD = D.parameters();

  const mixing = (n: number) => {
    const cutoff = drawMixingCutoff(numWs, rc.styleMixingProb, random);
    return { cutoff, z2: cutoff < numWs ? randn([n, zDim], { generator: gen }) : undefined };
  };
  const pathLength = (): Tensor => {
    const n = Math.max(1, Math.floor(B / rc.plBatchShrink));
    const z = randn([n, zDim], { generator: gen });
    const ws = mappedWs(G, z, batches.fakeC(n, random), mixing(n));
    const img = G.synthesis.forward(ws, { noiseMode: "random", generator: gen });
    const pl = pathLengthPenalty(img, ws, p.plMean, {
      weight: rc.plWeight,
      decay: rc.plDecay,
      generator: gen,
    });
    noGrad(() => copyInto(pl.plMean, p.plMean));
    const penalty = mean(pl.penalty);
    out.push(["Loss/pl_penalty", penalty], ["pl_lengths", mean(pl.lengths)]);
    return penalty;
  };
  const plOn = rc.plWeight > 0, r1On = rc.r1Gamma > 0;

  // Gmain (+ path length when it is not lazy). D's weights get no gradients here.
  setRequiresGrad(allD, false);
  setRequiresGrad(p.gParams, true);
  {
    const z = randn([B, zDim], { generator: gen });
    const c = batches.fakeC(B, random);
    const ws = mappedWs(G, z, c, { updateEmas: true, ...mixing(B) });
    const logits = D.forward(G.synthesis.forward(ws, { noiseMode: "random", generator: gen }), c);
    let loss = generatorLoss(logits);
    out.push(["Loss/scores/fake", mean(logits)], ["Loss/G/loss", loss]);
    const extra = p.extraGLoss?.(G, ctx) ?? null;
    if (extra) {
      out.push(["Loss/G/extra", extra]);
      loss = add(loss, extra);
    }
    if (plOn && rc.plInterval === null) loss = add(loss, pathLength());
    p.optG.update(grad(loss, p.gParams));
  }
  // Greg: lazy path length, its gradient scaled by the interval.
  if (plOn && rc.plInterval !== null && step % rc.plInterval === 0) {
    p.optG.update(grad(mul(pathLength(), rc.plInterval), p.gParams));
  }
  // Dmain (+ R1 when it is not lazy). G runs without a graph.
  setRequiresGrad(allG, false);
  setRequiresGrad(p.dParams, true);
  {
    const z = randn([B, zDim], { generator: gen });
    const c = batches.fakeC(B, random);
    const mix = mixing(B);
    const fake = noGrad(() =>
      G.synthesis.forward(mappedWs(G, z, c, mix), { noiseMode: "random", generator: gen })
    );
    const fakeLogits = D.forward(fake, c);
    let realLogits: Tensor, r1: Tensor | null = null;
    if (r1On && rc.r1Interval === null) {
      const r = r1Penalty(D, real.images, real.c, rc.r1Gamma);
      realLogits = r.logits;
      r1 = mean(r.penalty);
      out.push(["Loss/D/reg", r1]);
    } else realLogits = D.forward(real.images, real.c);
    let loss = discriminatorLoss(fakeLogits, realLogits);
    out.push(["Loss/scores/real", mean(realLogits)], ["Loss/D/loss", loss]);
    const extra = p.extraDLoss?.(D, ctx) ?? null;
    if (extra) {
      out.push(["Loss/D/extra", extra]);
      loss = add(loss, extra);
    }
    if (r1) loss = add(loss, r1);
    p.optD.update(grad(loss, p.dParams));
  }
  // Dreg: lazy R1 on the same real batch, its gradient scaled by the interval.
  if (r1On && rc.r1Interval !== null && step % rc.r1Interval === 0) {
    const r1 = mean(r1Penalty(D, real.images, real.c, rc.r1Gamma).penalty);
    out.push(["Loss/D/reg", r1]);
    p.optD.update(grad(mul(r1, rc.r1Interval), p.dParams));
  }
  setRequiresGrad(allG, true);
  updateEma(p.Gema, G, emaBeta(B, rc.emaKimg, rc.emaRampup, curNimg));
  return out.map(([k, t]) => [k, detach(t)]);
}
