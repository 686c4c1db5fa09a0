// The four baselines of GAN Cocktail (REFERENCE.md 6), all trained on the same generated data as the
// merge (class-proportioned batches from every source) and with the root's architecture made
// conditional: from scratch (random init), TransferGAN (init from the root source's G and D), EWC
// (TransferGAN + Fisher-weighted pull towards the source's weights), Freeze-D (TransferGAN with the
// first K discriminator layers fixed). Beside them the real-data upper bound ("realdata", not a baseline
// of the paper but the bound it reports): the from-scratch network trained on real images of every class.

import { Generator as Rng, manualSeed } from "../../nn/creation.ts";
import { Discriminator } from "../stylegan2/discriminator.ts";
import { Generator } from "../stylegan2/generator.ts";
import { cloneGenerator, loadNetworks } from "../train/networks.ts";
import { disposeFisher, empiricalFisher, ewcLambdas, EwcPenalty, fisherForModel } from "./ewc.ts";
import { conditionalRoot } from "./rooting.ts";
import { type ImageSource, mixedSourceBatch, proportionalClasses, StyleGAN2Source } from "./sources.ts";
import { fromTrained, type Networks, runStage, type StageResult, type StageSettings } from "./stage.ts";

export type BaselineMethod = "scratch" | "transfer" | "ewc" | "freezed" | "realdata";
/** The paper's four baselines (realdata needs the user's real data, so it runs only when asked for). */
export const BASELINES: BaselineMethod[] = ["scratch", "transfer", "ewc", "freezed"];

export interface EwcLambdas {
  mapping: number;
  synthesis: number;
  d: number;
}

export interface BaselineOptions {
  method: BaselineMethod;
  sources: ImageSource[];
  /** The source whose architecture (and, except for scratch, weights) the baseline starts from. */
  root: number;
  proportions: number[];
  outDir: string;
  kimg: number;
  settings: StageSettings;
  /** Freeze-D: the first K layers of D stay fixed. */
  freezeD?: number;
  ewcLambda?: EwcLambdas;
  /** Fisher estimate: batches and batch size (default 8 x the training batch). */
  fisherBatches?: number;
  /** realdata: real images of each class, in source order (class c = source c). */
  realData?: ImageSource[];
}

/**
 * Default EWC strengths, sized on the demo's 16x16 sources so that each term is of the order of the GAN
 * loss after a few hundred steps: the mapping network stores its weights divided by its lr multiplier
 * (0.01), so its Fisher per stored unit is ~1e5 times smaller than the synthesis network's. The scale of F
 * depends on the model: tune per experiment (stats.jsonl logs the penalty as Loss/G/extra, Loss/D/extra).
 */
export const DEFAULT_EWC_LAMBDA: EwcLambdas = { mapping: 1e5, synthesis: 10, d: 1 };
export const DEFAULT_FREEZE_D = 4;

/** Fresh conditional networks of the root's architecture (random init, seeded). */
export async function scratchNetworks(
  root: ImageSource,
  numClasses: number,
  seed: number,
): Promise<Networks> {
  if (!(root instanceof StyleGAN2Source)) {
    throw new Error(`the architecture source ${root.name} must be a StyleGAN2 snapshot`);
  }
  const nets = await loadNetworks(root.path);
  try {
    if (!nets.D) throw new Error(`${root.name} has no discriminator (its architecture is needed)`);
    manualSeed(seed);
    const G = Generator.fromInitKwargs({ ...nets.G.initKwargs(), c_dim: numClasses } as never);
    const D = Discriminator.fromInitKwargs({ ...nets.D.initKwargs(), c_dim: numClasses } as never);
    return { G, D, Gema: cloneGenerator(G) };
  } finally {
    for (const m of [nets.G, nets.D, nets.Gema]) m?.dispose();
  }
}

/** Trains one baseline; the caller owns the returned networks. */
export async function trainBaseline(o: BaselineOptions): Promise<StageResult> {
  const { sources, root, method } = o;
  const n = sources.length;
  if (!BASELINES.includes(method) && method !== "realdata") {
    throw new Error(`unknown baseline ${method} (${[...BASELINES, "realdata"].join(", ")})`);
  }
  if (method === "realdata" && o.realData?.length !== n) {
    throw new Error(
      `realdata (the real-data upper bound) needs one real dataset per source (${n}), got ${
        o.realData?.length ?? 0
      }`,
    );
  }
  const fresh = method === "scratch" || method === "realdata";
  if (!Number.isInteger(root) || root < 0 || root >= n) {
    throw new Error(`${method}: root must be a source index in [0, ${n}), got ${root}`);
  }
  const res = sources[root].resolution, ch = sources[root].channels;
  const init = fresh
    ? () => scratchNetworks(sources[root], n, o.settings.seed)
    : () => conditionalRoot(sources[root], n, o.settings.seed, root);
  let penalties: { G: EwcPenalty; D: EwcPenalty } | null = null;
  const lambdas = o.ewcLambda ?? DEFAULT_EWC_LAMBDA;
  if (method === "ewc") penalties = await ewcPenalties(sources[root], n, lambdas, o);
  try {
    return await runStage({
      name: method,
      outDir: `${o.outDir}/${method}`,
      kimg: o.kimg,
      init,
      realBatch: mixedSourceBatch(method === "realdata" ? o.realData! : sources, o.proportions, res, ch),
      fakeClasses: proportionalClasses(o.proportions),
      freezeD: method === "freezed" ? o.freezeD ?? DEFAULT_FREEZE_D : 0,
      extraGLoss: penalties ? (G) => penalties!.G.loss(G) : undefined,
      extraDLoss: penalties ? (D) => penalties!.D.loss(D) : undefined,
      description: {
        method,
        initFrom: fresh ? "random (root architecture)" : sources[root].name,
        sources: sources.map((s) => s.name),
        ...(method === "realdata" ? { trainedOn: o.realData!.map((s) => s.name) } : {}),
        proportions: o.proportions,
        ...(method === "ewc" ? { ewcLambda: lambdas } : {}),
        ...(method === "freezed" ? { freezeD: o.freezeD ?? DEFAULT_FREEZE_D } : {}),
      },
    }, fresh ? o.settings : fromTrained(o.settings));
  } finally {
    penalties?.G.dispose();
    penalties?.D.dispose();
  }
}

/** EWC penalties anchored at the converted root, with the Fisher of the root source's own G and D. */
async function ewcPenalties(
  rootSource: ImageSource,
  numClasses: number,
  l: EwcLambdas,
  o: BaselineOptions,
): Promise<{ G: EwcPenalty; D: EwcPenalty }> {
  if (!(rootSource instanceof StyleGAN2Source)) throw new Error("EWC needs a StyleGAN2 root with D");
  const src = await loadNetworks(rootSource.path);
  const conv = await conditionalRoot(rootSource, numClasses, o.settings.seed, o.root);
  try {
    if (!src.D) throw new Error(`${rootSource.name} has no discriminator for the Fisher estimate`);
    const batch = o.settings.recipe.batch ?? 16;
    const F = empiricalFisher(src.Gema, src.D, {
      batches: o.fisherBatches ?? 8,
      batchSize: batch,
      classLabel: rootSource.classLabel,
      generator: new Rng(o.settings.seed + 7919),
    });
    try {
      return {
        G: new EwcPenalty(fisherForModel(F.G, conv.G), conv.G, ewcLambdas("G", l)),
        D: new EwcPenalty(fisherForModel(F.D, conv.D), conv.D, ewcLambdas("D", l)),
      };
    } finally {
      disposeFisher(F);
    }
  } finally {
    for (const m of [src.G, src.D, src.Gema, conv.G, conv.D, conv.Gema]) m?.dispose();
  }
}
