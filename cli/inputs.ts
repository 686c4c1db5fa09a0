// Inputs of the metric commands (fid, kid, pr, metrics, select) and of `generate`: every argument is opened
// and checked before any feature is extracted, and image inputs are brought to one resolution.
//   .npz            FID statistics (pytorch-fid's mu, sigma; ours also record n, ddof, mode, network, size)
//   .npy            features [n, d]
//   a generator     through the one resolver `openGenerator`: a snapshot file, a run directory (its latest
//                   snapshot), an SGA .pkl, a DCGAN snapshot, PATH#CLASS
//   anything else   a dataset spec (mnist, emoji:google, folder:PATH, zip:PATH, ...)

import { datasetFingerprint, openDataset } from "../data/open.ts";
import { type Dataset, permutation, seededRandom } from "../data/dataset.ts";
import {
  type ImageSource as GeneratorSource,
  openSource,
  parseSourceSpec,
  resampleImages,
} from "../gan/cocktail/sources.ts";
import type { StyleGAN2Source } from "../gan/cocktail/sources.ts";
import { RunDir } from "../gan/train/run_dir.ts";
import { Generator as Rng } from "../nn/creation.ts";
import { parseNpy } from "../nn/io/npy.ts";
import { toFloat32 } from "../nn/io/host.ts";
import { noGrad } from "../nn/autograd.ts";
import { scope, type Tensor } from "../nn/tensor.ts";
import type { FidStats } from "../metrics/fid.ts";
import { readStatsNpz, type StatsMeta } from "../metrics/sources.ts";

/** Whether a spec names a generator rather than a dataset (a run directory counts; a plain image folder not). */
export function isGeneratorSpec(spec: string): boolean {
  if (/^(folder|zip|mnist|emoji)(:|$)/i.test(spec.trim())) return false;
  const { path } = parseSourceSpec(spec);
  if (/\.(safetensors|pkl)$/i.test(path)) return true;
  try {
    return Deno.statSync(path).isDirectory && new RunDir(path).latestSnapshot() !== null;
  } catch {
    return false;
  }
}

/**
 * The one way a command opens a generator. A conditional StyleGAN2 generator named without #CLASS is
 * sampled over all its classes in turn (metrics of a merged model); merging itself needs a class per source.
 */
export async function openGenerator(
  spec: string,
  opts: { allClasses?: boolean } = {},
): Promise<GeneratorSource> {
  try {
    return await openSource(spec);
  } catch (e) {
    const conditional = /is conditional/.test((e as Error).message);
    if (!opts.allClasses || !conditional || parseSourceSpec(spec).classLabel !== null) throw e;
  }
  const one = await openSource(`${spec}#0`) as StyleGAN2Source;
  const G = one.G, classes = G.cDim;
  let drawn = 0;
  return {
    name: spec,
    path: one.path,
    kind: "stylegan2",
    resolution: one.resolution,
    channels: one.channels,
    classLabel: null,
    sample(n: number, gen?: Rng): Tensor {
      const labels = Array.from({ length: n }, (_, i) => (drawn + i) % classes);
      drawn += n;
      return G.sample(n, labels, { truncationPsi: 1, noiseMode: "random", generator: gen });
    },
    describe: () => ({ ...one.describe(), classLabel: null, classes: `all ${classes}, in turn` }),
    dispose: () => one.dispose(),
  };
}

export interface StatsInput {
  kind: "stats";
  spec: string;
  stats: FidStats & StatsMeta;
  d: number;
}

export interface FeaturesInput {
  kind: "features";
  spec: string;
  data: Float32Array;
  n: number;
  d: number;
}

/** A source of images (generator or dataset), opened but not yet sampled. */
export interface ImagesInput {
  kind: "images";
  spec: string;
  generator: boolean;
  /** Its own resolution. */
  resolution: number;
  /** At most this many images (a dataset's size; Infinity for a generator). */
  max: number;
  /** n images NCHW in [-1, 1] at `resolution` (the next n: datasets cycle, generators draw anew). */
  sampler(resolution: number, seed: number): Promise<(n: number) => Tensor>;
  /** For reports: what it is, at which resolution. */
  describe(resolution: number): string;
  /** Content fingerprint for caches (datasets only). */
  fingerprint(): Promise<string | null>;
  dispose(): void;
}

export type MetricInput = StatsInput | FeaturesInput | ImagesInput;

async function readFeaturesNpy(path: string): Promise<FeaturesInput> {
  let a;
  try {
    a = parseNpy(await Deno.readFile(path));
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
  if (a.shape.length !== 2) throw new Error(`${path}: expected features [n, d], got shape [${a.shape}]`);
  const data = toFloat32(a);
  const bad = data.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new Error(`${path}: non-finite value at row ${Math.floor(bad / a.shape[1])}`);
  return { kind: "features", spec: path, data, n: a.shape[0], d: a.shape[1] };
}

function datasetInput(spec: string, ds: Dataset): ImagesInput {
  const opened = new Map<number, Dataset>([[ds.resolution, ds]]);
  return {
    kind: "images",
    spec,
    generator: false,
    resolution: ds.resolution,
    max: ds.size,
    async sampler(resolution, seed) {
      if (!opened.has(resolution)) opened.set(resolution, await openDataset(spec, { resolution }));
      const at = opened.get(resolution)!;
      // A seeded random subset: datasets are stored in class order (mnist), so a prefix of n < size images
      // would be a few classes only.
      const order = permutation(at.size, seededRandom(seed));
      let next = 0;
      return (n) => {
        const idx = Array.from({ length: n }, (_, i) => order[(next + i) % at.size]);
        next += n;
        const b = at.batch(idx);
        b.labels?.dispose();
        return b.images;
      };
    },
    describe: (r) =>
      `dataset ${ds.name} (${ds.size} images, ${ds.resolution}px${
        r !== ds.resolution ? `, brought to ${r}px` : ""
      })`,
    fingerprint: () => datasetFingerprint(spec),
    dispose() {},
  };
}

function generatorInput(spec: string, g: GeneratorSource): ImagesInput {
  return {
    kind: "images",
    spec,
    generator: true,
    resolution: g.resolution,
    max: Infinity,
    sampler(resolution, seed) {
      const rng = new Rng(seed);
      return Promise.resolve((n: number) =>
        scope(() => {
          const x = g.sample(n, rng);
          return x.shape[2] === resolution ? x : noGrad(() => resampleImages(x, resolution, x.shape[1]));
        })
      );
    },
    describe: (r) =>
      `generator ${spec} (${g.kind}${g.kind === "stylegan2" ? " G_ema" : ""}, psi 1, ${g.resolution}px${
        r !== g.resolution ? `, images brought to ${r}px` : ""
      })`,
    fingerprint: () => Promise.resolve(null),
    dispose: () => g.dispose(),
  };
}

/** Opens and checks one input (files read, generators and datasets opened; nothing extracted). */
export async function openInput(spec: string): Promise<MetricInput> {
  const lower = spec.toLowerCase();
  if (lower.endsWith(".npz")) {
    let stats;
    try {
      stats = await readStatsNpz(spec);
    } catch (e) {
      throw new Error(`${spec}: ${(e as Error).message.replace(`${spec}: `, "")}`);
    }
    return { kind: "stats", spec, stats, d: stats.mu.length };
  }
  if (lower.endsWith(".npy")) return await readFeaturesNpy(spec);
  if (isGeneratorSpec(spec)) return generatorInput(spec, await openGenerator(spec, { allClasses: true }));
  return datasetInput(spec, await openDataset(spec));
}

/** Opens every input before any work; on failure the ones already open are disposed. */
export async function openInputs(specs: string[]): Promise<MetricInput[]> {
  const out: MetricInput[] = [];
  try {
    for (const s of specs) out.push(await openInput(s));
  } catch (e) {
    disposeInputs(out);
    throw e;
  }
  return out;
}

export function disposeInputs(inputs: MetricInput[]): void {
  for (const i of inputs) if (i.kind === "images") i.dispose();
}

/**
 * The one resolution image inputs are compared at: a statistics file's recorded resolution when one
 * takes part (features cannot be resampled), else the smallest image input's (downsampling never invents
 * detail; a generator is compared at the resolution it was trained at). Statistics of two different
 * recorded resolutions are refused, naming both.
 */
export function commonResolution(inputs: MetricInput[]): { resolution: number | null; note: string } {
  const fixed = inputs.filter((i): i is StatsInput => i.kind === "stats" && i.stats.resolution !== undefined);
  const images = inputs.filter((i): i is ImagesInput => i.kind === "images");
  for (const f of fixed.slice(1)) {
    if (f.stats.resolution !== fixed[0].stats.resolution) {
      throw new Error(
        `${fixed[0].spec} holds statistics of ${fixed[0].stats.resolution}px images and ${f.spec} of ` +
          `${f.stats.resolution}px: statistics cannot be brought to one resolution`,
      );
    }
  }
  if (!images.length) {
    const r = fixed[0]?.stats.resolution ?? null;
    return { resolution: r, note: r ? `${r}px (as the statistics record)` : "as the inputs were made" };
  }
  if (fixed.length) {
    const r = fixed[0].stats.resolution!;
    const moved = images.filter((i) => i.resolution !== r).map((i) => `${i.spec} ${i.resolution}px`);
    return {
      resolution: r,
      note: `${r}px, the resolution ${fixed[0].spec} records${
        moved.length ? ` (brought there: ${moved.join(", ")})` : ""
      }`,
    };
  }
  const r = Math.min(...images.map((i) => i.resolution));
  const moved = images.filter((i) => i.resolution !== r).map((i) => `${i.spec} ${i.resolution}px`);
  const unknown = inputs.filter((i) => i.kind === "stats").map((i) => i.spec);
  return {
    resolution: r,
    note: (moved.length ? `${r}px (brought down to the smallest input: ${moved.join(", ")})` : `${r}px`) +
      (unknown.length
        ? `; ${unknown.join(", ")} records no resolution: make sure it was made at ${r}px`
        : ""),
  };
}

/** A count option: a positive integer, checked before any work. */
export function positiveCount(v: number, name: string, min = 1): number {
  if (!Number.isInteger(v) || v < min) throw new Error(`--${name} must be an integer >= ${min}, got ${v}`);
  return v;
}
