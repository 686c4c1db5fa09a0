// `merge`: merges N >= 2 pretrained generators with GAN Cocktail (or trains one of the baselines on their
// images) into a class-conditional StyleGAN2 of the root's architecture. Each stage trains in its own
// resumable run directory under --out; the final snapshot's path is printed last.

import { initGPU } from "../kernels/runtime.ts";
import { writeFileAtomic } from "../nn/checkpoint.ts";
import type { EwcLambdas } from "../gan/cocktail/baselines.ts";
import { evaluateMerged, openFeatures } from "../gan/cocktail/compare.ts";
import { chooseRoot, ROOT_RECALL_K } from "../gan/cocktail/root.ts";
import { type MergeMethod, mergeSources, METHODS } from "../gan/cocktail/merge.ts";
import { openSources } from "../gan/cocktail/sources.ts";
import { disposeNetworks, type StageObserver } from "../gan/cocktail/stage.ts";
import type { TrainingRecipe } from "../gan/train/presets.ts";
import { num, parse, report } from "./args.ts";
import { Progress } from "./progress.ts";

const USAGE = `usage: cli.ts merge --sources A B [C ...] --method METHOD --out DIR --kimg K [options]

Merges pretrained generators without their data (GAN Cocktail, Avrahami et al. 2022) into one
class-conditional StyleGAN2 (class i = source i) of the root source's architecture.
Sources: StyleGAN2 snapshots (.safetensors) or run directories of this project, SGA pickles (.pkl),
DCGAN snapshots; PATH#K takes class K of a conditional source. Only StyleGAN2 sources with a D can be
the root; other sources only contribute images (resampled to the root's resolution when it differs).
Methods: ${METHODS.join(", ")}.
  cocktail   stage 1 roots every source in the root (K kimg each), stage 2 averages and fine-tunes (K kimg)
  scratch    a conditional GAN of the root's architecture from random weights (N*K kimg)
  transfer   TransferGAN: from the root's G and D (N*K kimg)
  ewc        TransferGAN + EWC penalty (Fisher of the root on its own samples)
  freezed    TransferGAN with the first --freezed D layers frozen
--eval scores the merged model: per-class FID and class fidelity (does class c look like source c?).`;

export const MERGE_OPTIONS = {
  sources: { type: "string", help: "source generators (space-separated after --sources)" },
  method: { type: "string", help: `one of ${METHODS.join(", ")}`, default: "cocktail" },
  out: { type: "string", help: "output directory (one run directory per stage inside)" },
  kimg: { type: "string", help: "training budget per stage, in thousands of images" },
  "root-kimg": { type: "string", help: "cocktail: budget of each rooting run in kimg (default --kimg)" },
  root: {
    type: "string",
    help: "root source index, or 'auto' (highest recall of its samples)",
    default: "0",
  },
  freezed: { type: "string", help: "Freeze-D: number of frozen D layers", default: "4" },
  "ewc-lambda": { type: "string", help: "EWC lambdas for mapping,synthesis,D (e.g. 100,100,100)" },
  proportions: { type: "string", help: "class proportions, comma-separated (default uniform)" },
  preset: { type: "string", help: "training preset (default: the root's own run's)" },
  batch: { type: "string", help: "batch size override" },
  lr: { type: "string", help: "learning rate override" },
  gamma: { type: "string", help: "R1 gamma override" },
  tick: { type: "string", help: "kimg per tick override" },
  features: {
    type: "string",
    help: "feature network of --root auto and of the evaluation (mnist, inception:PATH, pixels, ...)",
  },
  seed: { type: "string", help: "seed", default: "0" },
  resume: { type: "boolean", help: "continue the stages found in --out" },
  json: { type: "boolean", help: "print the result as JSON" },
} as const;

const MERGE_ONLY = {
  eval: {
    type: "boolean",
    help: "evaluate the merged model: per-class FID and class fidelity against the sources' samples",
  },
  samples: { type: "string", help: "samples per class for --eval", default: "500" },
} as const;

/** Space-separated values after an option (--sources A B C): parseArgs keeps only the first. */
export function collectList(args: string[], name: string): { list: string[]; rest: string[] } {
  const at = args.indexOf(`--${name}`);
  if (at < 0) return { list: [], rest: args };
  let end = at + 1;
  while (end < args.length && !args[end].startsWith("--")) end++;
  return { list: args.slice(at + 1, end), rest: [...args.slice(0, at), ...args.slice(end)] };
}

export function parseNumbers(v: string, what: string, count?: number): number[] {
  const xs = v.split(",").map((s) => Number(s.trim()));
  if (xs.some((x) => !Number.isFinite(x))) {
    throw new Error(`--${what} must be comma-separated numbers, got '${v}'`);
  }
  if (count !== undefined && xs.length !== count) {
    throw new Error(`--${what} needs ${count} numbers, got ${xs.length}`);
  }
  return xs;
}

export function parseLambdas(v: string | boolean | undefined): EwcLambdas | undefined {
  if (typeof v !== "string") return undefined;
  const [mapping, synthesis, d] = parseNumbers(v, "ewc-lambda", 3);
  return { mapping, synthesis, d };
}

/** `--root-kimg`: undefined when not given (rooting then takes --kimg). */
export function optionalKimg(v: string | boolean | undefined): number | undefined {
  return v === undefined ? undefined : num(v, "root-kimg");
}

export function recipeOverrides(v: Record<string, string | boolean | undefined>): Partial<TrainingRecipe> {
  const o = (k: string) => (v[k] === undefined ? undefined : num(v[k], k));
  const r: Partial<TrainingRecipe> = {
    batch: o("batch"),
    lr: o("lr"),
    r1Gamma: o("gamma"),
    tickKimg: o("tick"),
  };
  return Object.fromEntries(Object.entries(r).filter(([, x]) => x !== undefined));
}

/** Progress bars per stage on stderr. */
export function progressObserver(prefix: string): StageObserver {
  let bar: Progress | null = null;
  return {
    start: (stage, total, unit) => {
      bar = new Progress(`${prefix}${stage}`, total, unit ?? "img");
    },
    step: (_stage, done, stats) =>
      bar?.update(done, {
        ...(stats["Loss/G/loss"] !== undefined ? { G: stats["Loss/G/loss"] } : {}),
        ...(stats["Loss/D/loss"] !== undefined ? { D: stats["Loss/D/loss"] } : {}),
      }),
    end: () => {
      bar?.done();
      bar = null;
    },
    log: (m) => console.error(m),
  };
}

export async function mergeCommand(args: string[]): Promise<void> {
  const { list: sourceSpecs, rest } = collectList(args, "sources");
  const { values: v } = parse(rest, USAGE, {
    ...MERGE_OPTIONS,
    ...MERGE_ONLY,
    k: {
      type: "string",
      help: "--root auto: k of the recall's k-NN radii (the pretrained-GAN study's)",
      default: String(ROOT_RECALL_K),
    },
  });
  if (sourceSpecs.length < 2) throw new Error("--sources needs at least two generators (see --help)");
  if (!v.out) throw new Error("--out is required");
  const method = String(v.method) as MergeMethod;
  if (method === "realdata") {
    throw new Error(
      "realdata (the real-data upper bound) needs real data: `compare --methods realdata --real SPEC ...`",
    );
  }
  if (!METHODS.includes(method)) {
    throw new Error(`--method must be one of ${METHODS.join(", ")}, got ${method}`);
  }
  const kimg = num(v.kimg, "kimg");
  const seed = num(v.seed, "seed");
  const k = num(v.k, "k");
  if (!Number.isInteger(k) || k < 1) throw new Error(`--k must be a positive integer, got ${v.k}`);
  await initGPU();
  const sources = await openSources(sourceSpecs);
  try {
    let root: number;
    let rootInfo: unknown = null;
    if (v.root === "auto") {
      const features = await openFeatures(v.features as string | undefined);
      try {
        const choice = await chooseRoot(sources, features, { seed, k });
        root = choice.root;
        rootInfo = choice;
        console.error(`root chosen by recall (k ${k}): source ${root}`);
      } finally {
        features.dispose();
      }
    } else root = num(v.root, "root");
    const result = await mergeSources({
      sources,
      method,
      outDir: String(v.out),
      kimg,
      rootKimg: optionalKimg(v["root-kimg"]),
      root,
      proportions: v.proportions
        ? parseNumbers(String(v.proportions), "proportions", sources.length)
        : undefined,
      seed,
      resume: !!v.resume,
      preset: v.preset as string | undefined,
      recipe: recipeOverrides(v),
      freezeD: num(v.freezed, "freezed"),
      ewcLambda: parseLambdas(v["ewc-lambda"]),
      observer: progressObserver(`${method}: `),
    });
    let evaluation: Awaited<ReturnType<typeof evaluateMerged>> | null = null;
    try {
      if (v.eval) {
        evaluation = await evaluateMerged(sources, result.Gema, {
          features: v.features as string | undefined,
          samplesPerClass: num(v.samples, "samples"),
          seed,
          observer: progressObserver(`${method}: `),
        });
      }
    } finally {
      disposeNetworks(result);
    }
    const summary = {
      method,
      snapshot: result.snapshot,
      root,
      rootChoice: rootInfo,
      stages: result.stages,
      rooted: result.rooted ?? null,
      averaged: result.averaged ?? null,
      settings: result.settings,
      notes: result.notes,
      sources: sources.map((s) => s.describe()),
      evaluation,
    };
    await writeFileAtomic(`${v.out}/merge-${method}.json`, JSON.stringify(summary, null, 2) + "\n");
    const evalLines = evaluation
      ? [
        `evaluation against the sources' samples (${evaluation.featureNetwork}; class fidelity ceiling ${
          (evaluation.classFidelity.ceiling as number).toFixed(3)
        }): union FID ${evaluation.scores.unionFid.toFixed(2)}`,
        ...evaluation.scores.perClass.map((p) =>
          `  class ${p.class} (${p.source}): FID ${p.fid.toFixed(2)}, fidelity ${p.fidelity?.toFixed(3)}` +
          (p.digitSetShare !== undefined ? `, digit-set share ${p.digitSetShare.toFixed(3)}` : "")
        ),
      ].map((l) => `${l}\n`).join("")
      : "";
    report(
      summary,
      !!v.json,
      `${result.notes.map((n) => `note: ${n}\n`).join("")}${evalLines}merged model: ${result.snapshot}`,
    );
  } finally {
    for (const s of sources) s.dispose();
  }
}
