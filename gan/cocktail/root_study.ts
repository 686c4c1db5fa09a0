// The root study (`compare --root-study`): GAN Cocktail from every eligible root, each merged model's
// union FID next to the root's recall score, to measure whether `--root auto` picks the best root
// (REFERENCE.md 6 leaves the root open; section 7 suggests recall).

import type { FeatureNetwork } from "../../metrics/features/index.ts";
import type { TrainingRecipe } from "../train/presets.ts";
import type { Evaluator } from "./evaluate.ts";
import { mergeSources } from "./merge.ts";
import { chooseRoot, type RootChoice } from "./root.ts";
import type { ImageSource } from "./sources.ts";
import { disposeNetworks, type StageObserver } from "./stage.ts";

export interface RootStudyOptions {
  /** The compare run's directory: each root's merge goes to OUT/root-study/rootI. */
  outDir: string;
  kimg: number;
  proportions?: number[];
  resume?: boolean;
  preset?: string;
  recipe?: Partial<TrainingRecipe>;
  observer?: StageObserver;
  /** Samples per source for the recall scores when no root choice was made before. */
  samplesPerSource: number;
}

/** Cocktail from every eligible root: recall score vs merged union FID (REFERENCE.md 6, open question). */
export async function rootStudy(
  sources: ImageSource[],
  o: RootStudyOptions,
  d: {
    features: FeatureNetwork;
    choice: RootChoice | null;
    seed: number;
    evaluatorFor: (res: number, ch: number) => Promise<Evaluator>;
    done: { root: number; unionFid: number; realUnionFid: number | null } | null;
    log: (m: string) => void;
  },
) {
  const choice = d.choice ??
    await chooseRoot(sources, d.features, {
      seed: d.seed,
      samplesPerSource: o.samplesPerSource,
    });
  const rows: Record<string, unknown>[] = [];
  for (const s of choice.scores) {
    if (s.recall === null) continue;
    const src = sources[s.index];
    let unionFid: number, realUnionFid: number | null = null;
    if (d.done && d.done.root === s.index) {
      unionFid = d.done.unionFid;
      realUnionFid = d.done.realUnionFid;
    } else {
      d.log(`root study: cocktail with root ${s.index}`);
      const r = await mergeSources({
        sources,
        method: "cocktail",
        outDir: `${o.outDir}/root-study/root${s.index}`,
        kimg: o.kimg,
        root: s.index,
        proportions: o.proportions,
        seed: d.seed,
        resume: o.resume,
        preset: o.preset,
        recipe: o.recipe,
        observer: o.observer,
      });
      try {
        const scores = await (await d.evaluatorFor(src.resolution, src.channels)).evaluate(r.Gema);
        unionFid = scores.unionFid;
        realUnionFid = scores.real?.unionFid ?? null;
      } finally {
        disposeNetworks(r);
      }
    }
    rows.push({
      root: s.index,
      source: s.source,
      recall: s.recall,
      unionFid,
      realUnionFid,
      resolution: src.resolution,
    });
  }
  const byRecall = rows.reduce((a, b) => ((b.recall as number) > (a.recall as number) ? b : a));
  const byFid = rows.reduce((a, b) => ((b.unionFid as number) < (a.unionFid as number) ? b : a));
  return {
    rows,
    pickedByRecall: byRecall.root,
    bestByUnionFid: byFid.root,
    agree: byRecall.root === byFid.root,
    caveat: "one run per root: the FID differences carry seed noise; roots of different resolutions are " +
      "scored at their own resolution",
  };
}
