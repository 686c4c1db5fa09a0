// GAN Cocktail stage 1, model rooting (REFERENCE.md 6): the root GAN is made class-conditional (N
// classes, one per source) and, for every other source i, a copy of it is fine-tuned on images of source
// i only, labelled i. This yields GAN_{r->i}: the root's architecture and ancestry, source i's domain.

import { manualSeed } from "../../nn/creation.ts";
import { cloneGenerator, loadNetworks } from "../train/networks.ts";
import { conditionalDiscriminator, conditionalGenerator } from "./conditional.ts";
import { type ImageSource, singleSourceBatch, StyleGAN2Source } from "./sources.ts";
import { fromTrained, type Networks, runStage, type StageResult, type StageSettings } from "./stage.ts";

/**
 * The root source made conditional with `numClasses` classes (fresh copies): G from the root's G_ema
 * (REFERENCE.md 6), G_ema a copy of it, D from the root's D. Class `keepClass` (the root's own index)
 * keeps the root's function; every class has its own code. The new parameters (embeddings, D's mapping
 * on c) come from `seed`, so every copy of the converted root, in every rooting run and in the average,
 * starts from the same weights.
 */
export async function conditionalRoot(
  root: ImageSource,
  numClasses: number,
  seed: number,
  keepClass: number,
): Promise<Networks> {
  if (!(root instanceof StyleGAN2Source)) {
    throw new Error(`the root ${root.name} must be a StyleGAN2 snapshot (rooting fine-tunes its G and D)`);
  }
  if (!root.hasD) throw new Error(`the root ${root.name} has no discriminator to fine-tune`);
  const nets = await loadNetworks(root.path);
  try {
    if (!nets.D) throw new Error(`the root ${root.name} has no discriminator to fine-tune`);
    manualSeed(seed);
    const G = conditionalGenerator(nets.Gema, numClasses, { keepClass });
    const D = conditionalDiscriminator(nets.D, numClasses, { keepClass });
    return { G, D, Gema: cloneGenerator(G) };
  } finally {
    for (const m of [nets.G, nets.D, nets.Gema]) m?.dispose();
  }
}

export interface RootingOptions {
  sources: ImageSource[];
  root: number;
  /** Run directory of stage 1; one sub-directory per rooted model. */
  outDir: string;
  kimg: number;
  settings: StageSettings;
  /** Root only this source (one task of a scheduled merge); default every source but the root. */
  only?: number;
}

/** Stage directory of GAN_{r->i}. */
export function rootedDir(outDir: string, root: number, i: number): string {
  return `${outDir}/stage1-root${root}-to-${i}`;
}

/** Trains GAN_{r->i} for every i != r; returns them in source order (the caller owns the networks). */
export async function rootModels(o: RootingOptions): Promise<Map<number, StageResult>> {
  const { sources, root } = o;
  const n = sources.length;
  if (!Number.isInteger(root) || root < 0 || root >= n) {
    throw new Error(`rooting: root must be a source index in [0, ${n}), got ${root}`);
  }
  const res = sources[root].resolution, ch = sources[root].channels;
  const out = new Map<number, StageResult>();
  try {
    for (let i = 0; i < n; i++) {
      if (i === root || (o.only !== undefined && i !== o.only)) continue;
      const r = await runStage({
        name: `root ${root}->${i}`,
        outDir: rootedDir(o.outDir, root, i),
        kimg: o.kimg,
        init: () => conditionalRoot(sources[root], n, o.settings.seed, root),
        realBatch: singleSourceBatch(sources[i], i, res, ch),
        fakeClasses: (m) => new Array(m).fill(i),
        description: {
          method: "cocktail",
          stage: "rooting",
          root: sources[root].name,
          source: sources[i].name,
          label: i,
          resampled: sources[i].resolution !== res ? `${sources[i].resolution} -> ${res}` : null,
        },
      }, fromTrained(o.settings));
      out.set(i, r);
    }
  } catch (e) {
    for (const r of out.values()) for (const m of new Set([r.G, r.D, r.Gema])) m.dispose();
    throw e;
  }
  return out;
}
