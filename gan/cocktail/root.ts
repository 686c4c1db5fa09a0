// Automatic root choice (`--root auto`): the pretrained-GAN study (REFERENCE.md 7) found that the recall
// of a starting generator with respect to the target predicts how well fine-tuning goes. Here the
// target of a root candidate is every other source: its score is the recall of its samples against the
// pooled samples of the other sources (the share of their samples inside its sample manifold), in the
// feature space of the evaluation, at the candidate's resolution. Only StyleGAN2 sources with a
// discriminator can be roots; the highest recall wins (ties: the lower index).

import { Generator as Rng } from "../../nn/creation.ts";
import { precisionRecall } from "../../metrics/precision_recall.ts";
import type { FeatureNetwork } from "../../metrics/features/index.ts";
import { concatFeatures, type FeatureSet, featuresOf } from "./evaluate.ts";
import { type ImageSource, sampleAt, StyleGAN2Source } from "./sources.ts";

/** k of the recall's k-NN radii: 5, as the pretrained-GAN study whose finding `--root auto` follows. */
export const ROOT_RECALL_K = 5;

export interface RootCandidateScore {
  index: number;
  source: string;
  /** Recall of the candidate's samples w.r.t. the other sources' samples (null: cannot be a root). */
  recall: number | null;
  precision: number | null;
  why?: string;
}

export interface RootChoice {
  root: number;
  scores: RootCandidateScore[];
  features: string;
  samplesPerSource: number;
  k: number;
}

/** Scores every candidate and returns the best root. */
export async function chooseRoot(
  sources: ImageSource[],
  features: FeatureNetwork,
  o: { samplesPerSource?: number; k?: number; seed?: number; batchSize?: number } = {},
): Promise<RootChoice> {
  if (sources.length < 2) throw new Error(`root choice needs at least 2 sources, got ${sources.length}`);
  const n = o.samplesPerSource ?? 500, k = o.k ?? ROOT_RECALL_K, bs = o.batchSize ?? 128;
  if (!Number.isInteger(n) || n <= k) {
    throw new Error(`root choice: samplesPerSource must be > k=${k}, got ${n}`);
  }
  const scores: RootCandidateScore[] = [];
  for (const [i, cand] of sources.entries()) {
    if (!(cand instanceof StyleGAN2Source) || !cand.hasD) {
      scores.push({
        index: i,
        source: cand.name,
        recall: null,
        precision: null,
        why: "not a StyleGAN2 snapshot with D",
      });
      continue;
    }
    const res = cand.resolution, ch = cand.channels;
    const feats = async (s: ImageSource, seed: number): Promise<FeatureSet> => {
      const gen = new Rng(seed);
      const parts: FeatureSet[] = [];
      for (let at = 0; at < n; at += bs) {
        const imgs = sampleAt(s, Math.min(bs, n - at), res, ch, gen);
        try {
          parts.push(await featuresOf(features, imgs, bs));
        } finally {
          imgs.dispose();
        }
      }
      return concatFeatures(parts);
    };
    const mine = await feats(cand, (o.seed ?? 0) * 7919 + i);
    const others: FeatureSet[] = [];
    for (const [j, s] of sources.entries()) {
      if (j !== i) others.push(await feats(s, (o.seed ?? 0) * 7919 + 31 + j));
    }
    const target = concatFeatures(others);
    const pr = await precisionRecall(target.data, target.n, mine.data, mine.n, mine.d, { k });
    scores.push({ index: i, source: cand.name, recall: pr.recall, precision: pr.precision });
  }
  const valid = scores.filter((s) => s.recall !== null);
  if (!valid.length) {
    throw new Error("no source can be the root (a root must be a StyleGAN2 snapshot with D)");
  }
  const best = valid.reduce((a, b) => (b.recall! > a.recall! ? b : a));
  return { root: best.index, scores, features: features.name, samplesPerSource: n, k };
}
