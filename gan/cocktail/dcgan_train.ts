// Training of the DCGAN-style source generator (dcgan.ts), so a merge can take a source of another family
// than StyleGAN2. The critic is a small StyleGAN2 discriminator (resnet, minibatch std) and the losses are
// the project's (non-saturating G and D losses, lazy R1); Adam as DCGAN (betas 0.5, 0.999). Only G is
// saved: a source is only ever sampled.

import { grad, noGrad } from "../../nn/autograd.ts";
import { manualSeed, randn } from "../../nn/creation.ts";
import { Adam } from "../../nn/optim.ts";
import { add, mul } from "../../nn/ops.ts";
import { mean } from "../../nn/reduce.ts";
import { scope, type Tensor } from "../../nn/tensor.ts";
import { submitQueued } from "../../nn/queue.ts";
import { type Dataset, sampler } from "../../data/dataset.ts";
import { presetConfig } from "../stylegan2/config.ts";
import { Discriminator } from "../stylegan2/discriminator.ts";
import { discriminatorLoss, generatorLoss, r1Penalty } from "../train/loss.ts";
import { type DcganConfig, DcganGenerator } from "./dcgan.ts";

export interface DcganTrainOptions {
  data: Dataset;
  /** Snapshot file to write. */
  out: string;
  kimg: number;
  config?: Partial<Omit<DcganConfig, "resolution" | "channels">>;
  batch?: number;
  lr?: number;
  r1Gamma?: number;
  seed?: number;
  onStep?: (doneImages: number, totalImages: number, losses: Record<string, number> | null) => void;
}

/** Trains a DCGAN generator on a dataset and writes its snapshot; the caller owns the returned G. */
export async function trainDcgan(o: DcganTrainOptions): Promise<DcganGenerator> {
  const batch = o.batch ?? 16, lr = o.lr ?? 0.0005, gamma = o.r1Gamma ?? 0.1, seed = o.seed ?? 0;
  if (!(o.kimg > 0)) throw new Error(`trainDcgan: kimg must be positive, got ${o.kimg}`);
  if (!Number.isInteger(batch) || batch < 4 || batch % 4) {
    throw new Error(`trainDcgan: batch must be a multiple of 4 (minibatch std), got ${batch}`);
  }
  manualSeed(seed);
  const { resolution, channels } = o.data;
  const G = new DcganGenerator({
    zDim: 64,
    baseChannels: 64,
    minChannels: 16,
    ...o.config,
    resolution,
    channels,
  });
  const D = Discriminator.fromConfig(
    presetConfig("tiny16", { resolution, imgChannels: channels, channelBase: 256, channelMax: 32, cDim: 0 }),
  );
  const gParams = G.parameters(), dParams = D.parameters();
  const optG = new Adam(gParams, { lr, betas: [0.5, 0.999] });
  const optD = new Adam(dParams, { lr, betas: [0.5, 0.999] });
  const order = sampler(o.data, batch, seed);
  const total = Math.round(o.kimg * 1000);
  let last: Record<string, number> | null = null;
  try {
    for (let step = 0, done = 0; done < total; step++, done += batch) {
      const losses = scope(() => {
        const z = randn([batch, G.config.zDim]);
        for (const p of dParams) p.requiresGrad = false;
        const gLoss = generatorLoss(D.forward(G.forward(z), null));
        optG.update(grad(gLoss, gParams));
        for (const p of dParams) p.requiresGrad = true;
        const fake = noGrad(() => G.forward(randn([batch, G.config.zDim])));
        const real = o.data.batch(order.next().value!).images;
        let dLoss: Tensor = discriminatorLoss(D.forward(fake, null), D.forward(real, null));
        if (gamma > 0 && step % 16 === 0) {
          dLoss = add(dLoss, mul(mean(r1Penalty(D, real, null, gamma).penalty), 16));
        }
        optD.update(grad(dLoss, dParams));
        return [noGrad(() => mul(gLoss, 1)), noGrad(() => mul(dLoss, 1))];
      });
      submitQueued();
      if (step % 8 === 0 || done + batch >= total) {
        last = { G: await losses[0].item(), D: await losses[1].item() };
        if (!Number.isFinite(last.G) || !Number.isFinite(last.D)) {
          throw new Error(`trainDcgan: losses became non-finite at step ${step} (G ${last.G}, D ${last.D})`);
        }
      }
      for (const t of losses) t.dispose();
      o.onStep?.(Math.min(done + batch, total), total, last);
    }
    await G.save(o.out, { trainedOn: o.data.name, kimg: o.kimg, batch, lr, r1Gamma: gamma, seed });
    return G;
  } catch (e) {
    G.dispose();
    throw e;
  } finally {
    optG.dispose();
    optD.dispose();
    D.dispose();
  }
}
