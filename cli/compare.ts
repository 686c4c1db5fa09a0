// `compare`: GAN Cocktail and the baselines on the same sources and budget, evaluated together: per-class
// and union FID, KID, precision/recall against the sources' samples (and real data when given), weight
// distances, sample grids per class and an interpolation strip, in report.json and index.html. The
// report's path is printed last.

import { initGPU } from "../kernels/runtime.ts";
import { compareMethods } from "../gan/cocktail/compare.ts";
import { ALL_METHODS, type MergeMethod, METHODS } from "../gan/cocktail/merge.ts";
import { num, parse, report } from "./args.ts";
import {
  collectList,
  MERGE_OPTIONS,
  optionalKimg,
  parseLambdas,
  parseNumbers,
  progressObserver,
  recipeOverrides,
} from "./merge.ts";

const USAGE =
  `usage: cli.ts compare --sources A B [C ...] --out DIR --kimg K [--methods m1,m2] [--real SPEC ...]
                      [--features SPEC] [options]

Runs GAN Cocktail and the baselines (${METHODS.join(", ")}) on the same sources and budget (see
'merge --help'), then evaluates every merged model against the sources' own samples (and against real
data, one dataset spec per source, when --real is given) and writes DIR/report.json and DIR/index.html.
With --real, --methods may also name realdata: the real-data upper bound (the same conditional network
from scratch, trained on the real images of every class with the same budget as the baselines).
Feature networks: mnist (bundled), inception:PATH, vgg16:PATH, PATH, or pixels[:N] (raw pixels).`;

const { method: _m, ...shared } = MERGE_OPTIONS;
const OPTIONS = {
  ...shared,
  methods: {
    type: "string",
    help: `comma-separated methods (default the paper's: ${METHODS.join(",")}; also realdata, with --real)`,
  },
  real: { type: "string", help: "real data per source, for evaluation only (space-separated dataset specs)" },
  samples: { type: "string", help: "samples per class for the metrics", default: "1000" },
  ddof: { type: "string", help: "FID covariance normalisation: 1 (N-1) or 0 (N, as SGA)", default: "1" },
  "no-floor": { type: "boolean", help: "skip scoring a second sample of each source (the floor)" },
  "root-study": {
    type: "boolean",
    help: "also run cocktail from every eligible root: does the recall-based root choice pick the best?",
  },
} as const;

export async function compareCommand(args: string[]): Promise<void> {
  const s = collectList(args, "sources");
  const r = collectList(s.rest, "real");
  const { values: v } = parse(r.rest, USAGE, OPTIONS);
  if (s.list.length < 2) throw new Error("--sources needs at least two generators (see --help)");
  if (!v.out) throw new Error("--out is required");
  const methods = (v.methods ? String(v.methods).split(",").map((x) => x.trim()) : METHODS) as MergeMethod[];
  for (const m of methods) {
    if (!ALL_METHODS.includes(m)) throw new Error(`unknown method '${m}' (${ALL_METHODS.join(", ")})`);
  }
  const ddof = num(v.ddof, "ddof");
  if (ddof !== 0 && ddof !== 1) throw new Error(`--ddof must be 0 or 1, got ${ddof}`);
  const rt = await initGPU();
  const { reportPath, report: rep } = await compareMethods({
    adapter: rt.info.description || rt.info.vendor,
    sources: s.list,
    outDir: String(v.out),
    kimg: num(v.kimg, "kimg"),
    rootKimg: optionalKimg(v["root-kimg"]),
    methods,
    root: v.root === "auto" ? "auto" : num(v.root, "root"),
    real: r.list.length ? r.list : undefined,
    features: v.features as string | undefined,
    samplesPerClass: num(v.samples, "samples"),
    seed: num(v.seed, "seed"),
    resume: !!v.resume,
    preset: v.preset as string | undefined,
    recipe: recipeOverrides(v),
    freezeD: num(v.freezed, "freezed"),
    ewcLambda: parseLambdas(v["ewc-lambda"]),
    proportions: v.proportions
      ? parseNumbers(String(v.proportions), "proportions", s.list.length)
      : undefined,
    ddof: ddof as 0 | 1,
    floor: !v["no-floor"],
    rootStudy: !!v["root-study"],
    observer: progressObserver(""),
  });
  const lines = Object.entries(rep.methods).map(([m, x]) =>
    `${m.padEnd(10)} union FID ${x.unionFid.toFixed(2)}  per class ${
      x.perClass.map((p) => p.fid.toFixed(2)).join(" / ")
    }  class fidelity ${x.perClass.map((p) => p.fidelity?.toFixed(3) ?? "-").join(" / ")}`
  );
  report(
    {
      report: reportPath,
      methods: Object.fromEntries(Object.entries(rep.methods).map(([m, x]) => [m, x.unionFid])),
    },
    !!v.json,
    `features: ${rep.featureNetwork}; covariance ${rep.covariance}\n${lines.join("\n")}\n${reportPath}`,
  );
}
