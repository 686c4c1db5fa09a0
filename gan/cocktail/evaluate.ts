// Evaluation of merged models (REFERENCE.md 6): per-class FID and FID of the union (all classes pooled,
// equal counts), KID, improved precision/recall, against the source generators' own samples (brought to
// the merged model's resolution) and against real data per class when the user has it; and the weight
// distance d(A, B) = mean over layers of the L2 norm of the layers' weight difference.

import { Generator as Rng } from "../../nn/creation.ts";
import type { Module } from "../../nn/module.ts";
import { add, mul } from "../../nn/ops.ts";
import { mean } from "../../nn/reduce.ts";
import { reshape } from "../../nn/shape.ts";
import { scope, type Tensor } from "../../nn/tensor.ts";
import type { Dataset } from "../../data/dataset.ts";
import { subsetIndices } from "../../data/dataset.ts";
import { fidFromStats, statsFromFeatures } from "../../metrics/fid.ts";
import { kid } from "../../metrics/kid.ts";
import { precisionRecall } from "../../metrics/precision_recall.ts";
import { toUint8Range } from "../../metrics/sources.ts";
import type { FeatureNetwork } from "../../metrics/features/index.ts";
import type { Generator } from "../stylegan2/generator.ts";
import { readTensors } from "../train/snapshot.ts";
import type { FidelityJudge, FidelityScores } from "./fidelity.ts";
import type { StageObserver } from "./stage.ts";
import { type ImageSource, resampleImages, sampleAt } from "./sources.ts";

/** Features of a set of images, on the host: n rows of d. */
export interface FeatureSet {
  data: Float32Array;
  n: number;
  d: number;
}

export interface Scores {
  fid: number;
  kid: number;
  kidStd: number;
  precision: number;
  recall: number;
}

export interface ClassScores extends Scores {
  class: number;
  source: string;
  /** Share of this class's samples that the source classifier assigns to this class's source. */
  fidelity?: number;
  /** Share of them that the MNIST digit classifier puts in the source's digit set (MNIST sources). */
  digitSetShare?: number;
  /** The same scores against real images of this class, when given. */
  real?: Scores;
}

export interface ModelScores {
  unionFid: number;
  union: Scores;
  perClass: ClassScores[];
  /** Union scores against the real data, when given. */
  real?: Scores & { unionFid: number };
}

export interface EvalOptions {
  features: FeatureNetwork;
  samplesPerClass: number;
  /** Resolution and channels of the merged models (the root's). */
  resolution: number;
  channels: number;
  seed?: number;
  /** Covariance normalisation of FID (1: N-1, the default; 0: N as SGA). */
  ddof?: 0 | 1;
  /** k of precision/recall (default 3, as SGA). */
  prK?: number;
  kidSubsets?: number;
  batchSize?: number;
  /** Progress of drawing, feature extraction and scoring, in parts (one per feature chunk and score set). */
  observer?: StageObserver;
}

/** Counts an evaluation's parts done on the observer's bar (nothing without an observer). */
class Parts {
  private done = 0;
  constructor(private readonly o: EvalOptions, private readonly label: string, total: number) {
    o.observer?.start(label, total, "parts");
  }
  tick(): void {
    this.o.observer?.step(this.label, ++this.done, {});
  }
  end(): void {
    this.o.observer?.end(this.label);
  }
}

/** A feature network on raw pixels (grey, area-resized to side x side, in [-1, 1]): needs no weights. */
export function pixelFeatureNetwork(side = 8): FeatureNetwork {
  if (!Number.isInteger(side) || side < 1) throw new Error(`pixel features: side must be >= 1, got ${side}`);
  return {
    name: `raw pixels (grey, ${side}x${side} area resize)`,
    dim: side * side,
    extract(images: Tensor): Tensor {
      if (images.rank !== 4) throw new Error(`pixel features: images must be NCHW, got [${images.shape}]`);
      return scope(() => {
        const x = resampleImages(images, side, images.shape[1]);
        const grey = images.shape[1] === 1 ? x : mean(x, 1, true);
        return reshape(add(mul(grey, 1 / 127.5), -1), [images.shape[0], side * side]);
      });
    },
    dispose() {},
  };
}

/**
 * Features of images in [-1, 1], quantised to uint8 first by the conversion the metric commands use
 * (metrics/sources.ts toUint8Range), so `compare` and `metrics` measure the same quantity.
 */
export async function featuresOf(net: FeatureNetwork, images: Tensor, batchSize = 128): Promise<FeatureSet> {
  const f = scope(() => net.extract(toUint8Range(images), { batchSize }));
  try {
    if (f.rank !== 2 || f.shape[0] !== images.shape[0]) {
      throw new Error(`feature network ${net.name} returned [${f.shape}] for ${images.shape[0]} images`);
    }
    return { data: await f.data(), n: f.shape[0], d: f.shape[1] };
  } finally {
    f.dispose();
  }
}

/** Features of n images drawn in chunks by `draw(k)` (each chunk freed after use). */
async function drawFeatures(
  net: FeatureNetwork,
  n: number,
  chunk: number,
  draw: (k: number, offset: number) => Tensor,
  progress?: Parts,
): Promise<FeatureSet> {
  const parts: FeatureSet[] = [];
  for (let s = 0; s < n; s += chunk) {
    const k = Math.min(chunk, n - s);
    const imgs = draw(k, s);
    try {
      parts.push(await featuresOf(net, imgs, chunk));
    } finally {
      imgs.dispose();
    }
    progress?.tick();
  }
  return concatFeatures(parts);
}

export function concatFeatures(parts: FeatureSet[]): FeatureSet {
  const d = parts[0].d, n = parts.reduce((s, p) => s + p.n, 0);
  const data = new Float32Array(n * d);
  let off = 0;
  for (const p of parts) {
    if (p.d !== d) throw new Error(`feature sets of dimensions ${p.d} and ${d} cannot be pooled`);
    data.set(p.data, off);
    off += p.data.length;
  }
  return { data, n, d };
}

/** FID, KID and precision/recall of `fake` against `ref`. */
export async function scoreSets(ref: FeatureSet, fake: FeatureSet, o: EvalOptions): Promise<Scores> {
  const ddof = o.ddof ?? 1;
  const a = await statsFromFeatures(ref.data, ref.n, ref.d, { ddof });
  const b = await statsFromFeatures(fake.data, fake.n, fake.d, { ddof });
  const f = await fidFromStats(a, b, ref.d);
  const k = await kid(ref.data, ref.n, fake.data, fake.n, ref.d, {
    subsets: o.kidSubsets ?? 100,
    seed: o.seed ?? 0,
  });
  const pr = await precisionRecall(ref.data, ref.n, fake.data, fake.n, ref.d, { k: o.prK ?? 3 });
  return { fid: f.fid, kid: k.kid, kidStd: k.std, precision: pr.precision, recall: pr.recall };
}

/** Reference features of every class (the sources' samples, and real data when given), computed once. */
export class Evaluator {
  private constructor(
    readonly sources: ImageSource[],
    readonly o: EvalOptions,
    readonly refs: FeatureSet[],
    readonly reals: FeatureSet[] | null,
  ) {}

  /** Class fidelity beside every per-class FID, when set (gan/cocktail/fidelity.ts). */
  judge: FidelityJudge | null = null;

  static async create(sources: ImageSource[], o: EvalOptions, real?: Dataset[] | null): Promise<Evaluator> {
    const n = o.samplesPerClass;
    if (!Number.isInteger(n) || n < 8) throw new Error(`evaluation: samplesPerClass must be >= 8, got ${n}`);
    if (real && real.length !== sources.length) {
      throw new Error(
        `evaluation: ${real.length} real datasets for ${sources.length} sources (one per source)`,
      );
    }
    const bs = o.batchSize ?? 128;
    const realIdx = real?.map((ds, i) => subsetIndices(ds.size, n, (o.seed ?? 0) + i)) ?? [];
    const progress = new Parts(
      o,
      "reference features",
      sources.length * Math.ceil(n / bs) + realIdx.reduce((s, idx) => s + Math.ceil(idx.length / bs), 0),
    );
    const refs: FeatureSet[] = [];
    for (let i = 0; i < sources.length; i++) {
      const gen = new Rng((o.seed ?? 0) * 1000 + 101 + i);
      refs.push(
        await drawFeatures(
          o.features,
          n,
          bs,
          (k) => sampleAt(sources[i], k, o.resolution, o.channels, gen),
          progress,
        ),
      );
    }
    let reals: FeatureSet[] | null = null;
    if (real) {
      reals = [];
      for (const [i, ds] of real.entries()) {
        const idx = realIdx[i];
        reals.push(
          await drawFeatures(
            o.features,
            idx.length,
            bs,
            (k, at) => realImages(ds, idx.slice(at, at + k), o),
            progress,
          ),
        );
      }
    }
    progress.end();
    return new Evaluator(sources, o, refs, reals);
  }

  /** Scores of a conditional generator (class i = source i). */
  async evaluate(G: Generator, label = "model"): Promise<ModelScores> {
    if (G.cDim !== this.sources.length) {
      throw new Error(
        `evaluate ${label}: the generator has ${G.cDim} classes, there are ${this.sources.length} sources`,
      );
    }
    const n = this.o.samplesPerClass, bs = this.o.batchSize ?? 128;
    const progress = this.parts(`evaluating ${label}`);
    const fakes: FeatureSet[] = [];
    for (let i = 0; i < this.sources.length; i++) {
      const gen = new Rng((this.o.seed ?? 0) * 1000 + 7 + i);
      fakes.push(
        await drawFeatures(
          this.o.features,
          n,
          bs,
          (k) => G.sample(k, i, { truncationPsi: 1, noiseMode: "random", generator: gen }),
          progress,
        ),
      );
    }
    const scores = await this.scoreAll(fakes, progress);
    const fidelity = await this.judge?.score(G);
    if (this.judge) progress.tick();
    progress.end();
    return withFidelity(scores, fidelity);
  }

  /** The scores of a second, independent sample of each source: the floor set by finite samples. */
  async floor(): Promise<ModelScores> {
    const n = this.o.samplesPerClass, bs = this.o.batchSize ?? 128;
    const progress = this.parts("evaluating the floor (a second sample of each source)");
    const fakes: FeatureSet[] = [];
    for (let i = 0; i < this.sources.length; i++) {
      const gen = new Rng((this.o.seed ?? 0) * 1000 + 503 + i);
      fakes.push(
        await drawFeatures(
          this.o.features,
          n,
          bs,
          (k) => sampleAt(this.sources[i], k, this.o.resolution, this.o.channels, gen),
          progress,
        ),
      );
    }
    const scores = await this.scoreAll(fakes, progress);
    const fidelity = await this.judge?.scoreSources();
    if (this.judge) progress.tick();
    progress.end();
    return withFidelity(scores, fidelity);
  }

  /** An evaluation's parts: feature chunks of every class, the score sets, class fidelity. */
  private parts(label: string): Parts {
    const chunks = this.sources.length * Math.ceil(this.o.samplesPerClass / (this.o.batchSize ?? 128));
    const sets = (this.sources.length + 1) * (this.reals ? 2 : 1);
    return new Parts(this.o, label, chunks + sets + (this.judge ? 1 : 0));
  }

  private async scoreAll(fakes: FeatureSet[], progress: Parts): Promise<ModelScores> {
    const perClass: ClassScores[] = [];
    for (let i = 0; i < this.sources.length; i++) {
      const s = await scoreSets(this.refs[i], fakes[i], this.o);
      progress.tick();
      let real: Scores | undefined;
      if (this.reals) {
        real = await scoreSets(this.reals[i], fakes[i], this.o);
        progress.tick();
      }
      perClass.push({ class: i, source: this.sources[i].name, ...s, ...(real ? { real } : {}) });
    }
    const unionFake = concatFeatures(fakes);
    const union = await scoreSets(concatFeatures(this.refs), unionFake, this.o);
    progress.tick();
    const out: ModelScores = { unionFid: union.fid, union, perClass };
    if (this.reals) {
      const r = await scoreSets(concatFeatures(balance(this.reals)), balance([unionFake])[0], this.o);
      progress.tick();
      out.real = { ...r, unionFid: r.fid };
    }
    return out;
  }
}

function withFidelity(m: ModelScores, f: FidelityScores | undefined): ModelScores {
  if (!f) return m;
  m.perClass.forEach((p, c) => {
    p.fidelity = f.fidelity[c];
    if (f.digitSetShare) p.digitSetShare = f.digitSetShare[c];
  });
  return m;
}

// Real sets may be smaller than the sample count; the union keeps equal counts per class.
function balance(sets: FeatureSet[]): FeatureSet[] {
  const m = Math.min(...sets.map((s) => s.n));
  return sets.map((s) => (s.n === m ? s : { data: s.data.slice(0, m * s.d), n: m, d: s.d }));
}

// Real images as [-1, 1] at the evaluation resolution and channel count.
function realImages(ds: Dataset, indices: number[], o: EvalOptions): Tensor {
  return scope(() => resampleImages(ds.batch(indices).images, o.resolution, o.channels));
}

// ---- weight distance ----

export interface WeightDistance {
  distance: number;
  layers: number;
}

/** Names of the weights two models share with the same shape (the "layers" of the distance). */
export function sharedWeights(a: Module, b: Module): string[] {
  const bs = new Map(b.namedParameters());
  return a.namedParameters()
    .filter(([k, t]) =>
      (k.endsWith(".weight") || k.endsWith(".const")) && bs.get(k)?.shape.join() === t.shape.join()
    )
    .map(([k]) => k);
}

/** d(A, B) = mean over the given layers of ||W_A - W_B||_2 (float64 on the host). */
export async function weightDistance(
  a: Module,
  b: Module,
  names = sharedWeights(a, b),
): Promise<WeightDistance> {
  if (!names.length) throw new Error("weightDistance: the models share no weights of equal shape");
  const pa = new Map(a.namedParameters()), pb = new Map(b.namedParameters());
  const ta = names.map((k) => pa.get(k)), tb = names.map((k) => pb.get(k));
  names.forEach((k, i) => {
    if (!ta[i] || !tb[i]) throw new Error(`weightDistance: ${k} is missing in one model`);
  });
  const [va, vb] = [await readTensors(ta as Tensor[]), await readTensors(tb as Tensor[])];
  let total = 0;
  for (let i = 0; i < names.length; i++) {
    let s = 0;
    for (let j = 0; j < va[i].length; j++) {
      const d = va[i][j] - vb[i][j];
      s += d * d;
    }
    total += Math.sqrt(s);
  }
  return { distance: total / names.length, layers: names.length };
}
