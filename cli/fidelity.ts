// `fidelity`: class fidelity of a class-conditional snapshot against the sources it merges (class c =
// source c): a source classifier is trained on the sources' fresh samples (its held-out accuracy is the
// ceiling), then the share of the model's class-c samples assigned to source c is reported per class; for
// MNIST digit-set sources also the bundled digit classifier's digit-set share.

import { initGPU } from "../kernels/runtime.ts";
import { FidelityJudge, mnistDigitSet } from "../gan/cocktail/fidelity.ts";
import { openSources } from "../gan/cocktail/sources.ts";
import { loadNetworks } from "../gan/train/networks.ts";
import { num, parse, report } from "./args.ts";
import { collectList } from "./merge.ts";

const USAGE = `usage: cli.ts fidelity SNAPSHOT --sources A B [C ...] [--samples N] [--steps N] [--seed S]
                       [--digits SPEC ...] [--json]

Class fidelity of a class-conditional generator (class c = source c, as merge writes them): a small
classifier learns to tell the sources apart on their own fresh samples; class c's fidelity is the share
of the model's class-c samples it assigns to source c (1 = faithful, 1/N = chance). The classifier's
held-out accuracy on the sources is printed as the ceiling. For sources trained on MNIST digit sets
(read from their run's config.json, or given with --digits mnist:0-4 mnist:5-9) also the share of
class-c samples that the bundled MNIST classifier puts among source c's digits.`;

const OPTIONS = {
  sources: { type: "string", help: "the merged sources, in class order (space-separated)" },
  digits: { type: "string", help: "MNIST digit set per source (space-separated specs, e.g. mnist:0-4)" },
  samples: { type: "string", help: "samples per class", default: "500" },
  steps: { type: "string", help: "Adam steps of the source classifier", default: "200" },
  seed: { type: "string", help: "seed of the classifier and the samples", default: "0" },
  json: { type: "boolean", help: "print the result as JSON" },
} as const;

export async function fidelityCommand(args: string[]): Promise<void> {
  const s = collectList(args, "sources");
  const d = collectList(s.rest, "digits");
  const { values: v, positionals } = parse(d.rest, USAGE, OPTIONS);
  if (positionals.length !== 1) {
    throw new Error(`give one SNAPSHOT to score (see --help), got ${positionals.length}`);
  }
  if (s.list.length < 2) throw new Error("--sources needs at least two generators (see --help)");
  const digitSets = d.list.length
    ? d.list.map((spec) => {
      const set = mnistDigitSet(spec);
      if (!set) throw new Error(`--digits: '${spec}' is not an MNIST digit set (mnist, mnist:3, mnist:0-4)`);
      return set;
    })
    : undefined;
  if (digitSets && digitSets.length !== s.list.length) {
    throw new Error(`--digits needs one spec per source (${s.list.length}), got ${digitSets.length}`);
  }
  await initGPU();
  const sources = await openSources(s.list);
  const nets = await loadNetworks(positionals[0]);
  let judge: FidelityJudge | null = null;
  try {
    const G = nets.Gema;
    if (G.cDim !== sources.length) {
      throw new Error(
        `${positionals[0]}: the generator has ${G.cDim} classes, but ${sources.length} sources were given`,
      );
    }
    judge = await FidelityJudge.create(sources, {
      resolution: G.imgResolution,
      channels: G.imgChannels,
      seed: num(v.seed, "seed"),
      steps: num(v.steps, "steps"),
      samplesPerClass: num(v.samples, "samples"),
      digitSets,
    });
    const model = await judge.score(G);
    const src = await judge.scoreSources();
    const result = { snapshot: positionals[0], classifier: judge.describe(), model, sources: src };
    const pct = (x: number) => x.toFixed(3);
    const lines = sources.map((so, c) =>
      `class ${c} (${so.name}): fidelity ${pct(model.fidelity[c])} (source ${pct(src.fidelity[c])})` +
      (model.digitSetShare
        ? `; digit-set share ${pct(model.digitSetShare[c])} (source ${pct(src.digitSetShare![c])})`
        : "")
    );
    report(
      result,
      !!v.json,
      `classifier ceiling (held-out accuracy on the sources): ${pct(judge.trained.ceiling)}\n${
        lines.join("\n")
      }`,
    );
  } finally {
    judge?.dispose();
    for (const m of [nets.G, nets.D, nets.Gema]) m?.dispose();
    for (const so of sources) so.dispose();
  }
}
