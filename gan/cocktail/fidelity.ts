// Class fidelity of merged models (metrics/class_fidelity.ts) against the merge's sources, and, for sources
// trained on MNIST digit sets (mnist:0-4 ...), a second, independent view: the share of class-c samples
// that the bundled MNIST digit classifier puts among source c's digits.

import { existsSync } from "node:fs";
import { dirname } from "node:path";
import { Generator as Rng } from "../../nn/creation.ts";
import { scope, type Tensor } from "../../nn/tensor.ts";
import {
  argmaxRows,
  type ClassDraw,
  classFidelity,
  type ClassifierOptions,
  type TrainedClassifier,
  trainSourceClassifier,
} from "../../metrics/class_fidelity.ts";
import { loadMnistFeatureNet, MNIST_ASSET, type MnistNet } from "../../metrics/features/mnist_net.ts";
import { toUint8Range } from "../../metrics/sources.ts";
import type { Generator } from "../stylegan2/generator.ts";
import { RunDir } from "../train/run_dir.ts";
import { type ImageSource, sampleAt } from "./sources.ts";

/** Class fidelity of one model, per class (class c = source c). */
export interface FidelityScores {
  fidelity: number[];
  /** Share of class-c samples the MNIST classifier puts in source c's digit set (MNIST sources only). */
  digitSetShare: number[] | null;
}

export interface FidelityOptions extends Omit<ClassifierOptions, "numClasses" | "channels"> {
  resolution: number;
  channels: number;
  /** Samples per class of every scored model (default 500). */
  samplesPerClass?: number;
  /** Digit set of every source, when known (default: from each source's run configuration). */
  digitSets?: (number[] | null)[];
}

/** The digits of a dataset spec "mnist", "mnist:3" or "mnist:0-4"; null for any other spec. */
export function mnistDigitSet(spec: string): number[] | null {
  const m = /^mnist(?::(\d)(?:-(\d))?)?$/.exec(spec.trim());
  if (!m) return null;
  const lo = m[1] ? Number(m[1]) : 0, hi = m[2] ? Number(m[2]) : m[1] ? lo : 9;
  if (hi < lo) throw new Error(`dataset spec ${spec}: digit range ${lo}-${hi} is empty`);
  return Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
}

/** The digit set a source was trained on, read from its run's config.json (data.name); null if unknown. */
export async function sourceDigitSet(source: ImageSource): Promise<number[] | null> {
  const dir = dirname(source.path);
  if (!existsSync(`${dir}/config.json`)) return null;
  const cfg = await new RunDir(dir).readConfig().catch(() => null);
  const name = (cfg?.data as { name?: unknown } | undefined)?.name;
  return typeof name === "string" ? mnistDigitSet(name) : null;
}

/** A source classifier trained on the sources' samples, and the digit classifier when it applies. */
export class FidelityJudge {
  private constructor(
    readonly sources: ImageSource[],
    readonly o: FidelityOptions,
    readonly trained: TrainedClassifier,
    readonly digitSets: (number[] | null)[] | null,
    private readonly digits: MnistNet | null,
  ) {}

  static async create(sources: ImageSource[], o: FidelityOptions): Promise<FidelityJudge> {
    const { resolution, channels } = o;
    const draw: ClassDraw = (c, n, gen) => sampleAt(sources[c], n, resolution, channels, gen);
    const trained = await trainSourceClassifier(draw, { ...o, numClasses: sources.length, channels });
    const sets = o.digitSets ?? await Promise.all(sources.map(sourceDigitSet));
    const mnist = sets.length === sources.length && sets.every((s) => s !== null) && existsSync(MNIST_ASSET);
    const digits = mnist ? await loadMnistFeatureNet() : null;
    return new FidelityJudge(sources, o, trained, mnist ? sets : null, digits);
  }

  /** What the report says about the classifier: its held-out accuracy on each source is the ceiling. */
  describe(): Record<string, unknown> {
    return {
      classifier: "3 conv layers (16, 32, 32 channels) + linear, trained on fresh samples of the sources",
      ...this.trained.settings,
      heldOutAccuracy: this.trained.heldOut,
      ceiling: this.trained.ceiling,
      trainSeconds: this.trained.seconds,
      samplesPerClass: this.o.samplesPerClass ?? 500,
      digitSets: this.digitSets,
    };
  }

  /** Fidelity of a conditional generator (class c sampled at psi 1 with random noise). */
  async score(G: Generator): Promise<FidelityScores> {
    if (G.cDim !== this.sources.length) {
      throw new Error(
        `class fidelity: the generator has ${G.cDim} classes, there are ${this.sources.length} sources`,
      );
    }
    return await this.scoreDraw((c, n, gen) =>
      G.sample(n, c, { truncationPsi: 1, noiseMode: "random", generator: gen })
    );
  }

  /** The sources themselves (class c = source c): fidelity = held-out accuracy, and their digit-set share. */
  async scoreSources(): Promise<FidelityScores> {
    const { resolution, channels } = this.o;
    return await this.scoreDraw((c, n, gen) => sampleAt(this.sources[c], n, resolution, channels, gen));
  }

  async scoreDraw(draw: ClassDraw): Promise<FidelityScores> {
    const n = this.o.samplesPerClass ?? 500, seed = (this.o.seed ?? 0) * 7919 + 41;
    const fidelity = await classFidelity(this.trained.classifier, draw, n, new Rng(seed));
    const digitSetShare = this.digits ? await this.digitShares(draw, n, new Rng(seed)) : null;
    return { fidelity, digitSetShare };
  }

  private async digitShares(draw: ClassDraw, n: number, gen: Rng): Promise<number[]> {
    const out: number[] = [];
    for (let c = 0; c < this.sources.length; c++) {
      const set = new Set(this.digitSets![c]!);
      let inSet = 0;
      for (let s = 0; s < n; s += 128) {
        const m = Math.min(128, n - s);
        const images = draw(c, m, gen);
        let logits: Tensor | null = null;
        try {
          logits = scope(() => this.digits!.classify(toUint8Range(images)));
          for (const d of argmaxRows(await logits.data(), m, 10)) if (set.has(d)) inSet++;
        } finally {
          images.dispose();
          logits?.dispose();
        }
      }
      out.push(inSet / n);
    }
    return out;
  }

  dispose(): void {
    this.trained.classifier.dispose();
    this.digits?.dispose();
  }
}
