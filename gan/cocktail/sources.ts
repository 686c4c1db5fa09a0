// Source generators for merging: pretrained generators opened from snapshot files (StyleGAN2 snapshots of
// this project, SGA network pickles, DCGAN snapshots) or run directories, sampled on the fly (no
// gradients, psi 1). Their images are brought to the merged model's resolution and channel count, and
// a merge step draws a class count per class from a multinomial over the class proportions.

import { noGrad } from "../../nn/autograd.ts";
import { type Generator as Rng, tensor } from "../../nn/creation.ts";
import { matmulT } from "../../nn/linalg.ts";
import { parseSafetensors } from "../../nn/io/mod.ts";
import { mean } from "../../nn/reduce.ts";
import { broadcastTo, concat, reshape } from "../../nn/shape.ts";
import { fromHost, scope, type Tensor } from "../../nn/tensor.ts";
import type { Generator } from "../stylegan2/generator.ts";
import { loadNetworks } from "../train/networks.ts";
import { RunDir } from "../train/run_dir.ts";
import type { RealBatch, StepContext } from "../train/loop.ts";
import { mulberry32 } from "../../nn/host_random.ts";
import type { Dataset } from "../../data/dataset.ts";
import { DCGAN_FORMAT, DcganGenerator } from "./dcgan.ts";

/** A pretrained generator whose images feed a merge. */
export interface ImageSource {
  /** The spec it was opened from. */
  readonly name: string;
  /** The snapshot file read. */
  readonly path: string;
  readonly kind: "stylegan2" | "dcgan" | "dataset";
  readonly resolution: number;
  readonly channels: number;
  /** The class sampled from a conditional source, or null. */
  readonly classLabel: number | null;
  /** n images in [-1, 1], NCHW, at the source's own resolution; no gradients, no truncation. */
  sample(n: number, gen?: Rng): Tensor;
  /** Architecture summary for reports. */
  describe(): Record<string, unknown>;
  dispose(): void;
}

/** A StyleGAN2 source: samples its G_ema; rooting reloads G, D and G_ema from `path`. */
export class StyleGAN2Source implements ImageSource {
  readonly kind = "stylegan2";
  constructor(
    readonly name: string,
    readonly path: string,
    readonly G: Generator,
    readonly hasD: boolean,
    readonly classLabel: number | null,
  ) {
    if (G.cDim > 0 && classLabel === null) {
      throw new Error(
        `source ${name}: the generator is conditional (${G.cDim} classes); name one as PATH#CLASS`,
      );
    }
    if (G.cDim === 0 && classLabel !== null) {
      throw new Error(`source ${name}: the generator is unconditional; drop the #${classLabel}`);
    }
  }
  get resolution(): number {
    return this.G.imgResolution;
  }
  get channels(): number {
    return this.G.imgChannels;
  }
  sample(n: number, gen?: Rng): Tensor {
    return this.G.sample(n, this.classLabel, { truncationPsi: 1, noiseMode: "random", generator: gen });
  }
  describe(): Record<string, unknown> {
    return {
      kind: this.kind,
      path: this.path,
      classLabel: this.classLabel,
      hasD: this.hasD,
      params: this.G.parameters().reduce((s, t) => s + t.size, 0),
      G_init_kwargs: this.G.initKwargs(),
    };
  }
  dispose(): void {
    this.G.dispose();
  }
}

/** A DCGAN source (gan/cocktail/dcgan.ts). */
export class DcganSource implements ImageSource {
  readonly kind = "dcgan";
  readonly classLabel = null;
  constructor(readonly name: string, readonly path: string, readonly G: DcganGenerator) {}
  get resolution(): number {
    return this.G.config.resolution;
  }
  get channels(): number {
    return this.G.config.channels;
  }
  sample(n: number, gen?: Rng): Tensor {
    return this.G.sample(n, { generator: gen });
  }
  describe(): Record<string, unknown> {
    return {
      kind: this.kind,
      path: this.path,
      params: this.G.parameters().reduce((s, t) => s + t.size, 0),
      config: this.G.config,
    };
  }
  dispose(): void {
    this.G.dispose();
  }
}

/**
 * Real images in the place of a source: the real-data upper bound that the paper reports (the same
 * conditional network trained on the real data of every class) trains on these, drawn uniformly with
 * replacement. Each draw takes its indices from the step's seeded generator, so runs repeat exactly.
 */
export class DatasetSource implements ImageSource {
  readonly kind = "dataset";
  readonly classLabel = null;
  private draws = 0;
  constructor(readonly dataset: Dataset) {
    if (dataset.size === 0) throw new Error(`real data ${dataset.name}: the dataset is empty`);
  }
  get name(): string {
    return this.dataset.name;
  }
  get path(): string {
    return this.dataset.name;
  }
  get resolution(): number {
    return this.dataset.resolution;
  }
  get channels(): number {
    return this.dataset.channels;
  }
  sample(n: number, gen?: Rng): Tensor {
    const [a, b] = gen ? gen.next() : [0x2545F491, this.draws++];
    const random = mulberry32((a ^ Math.imul(b | 1, 0x9E3779B1)) >>> 0);
    const size = this.dataset.size;
    const indices = Array.from({ length: n }, () => Math.min(size - 1, Math.floor(random() * size)));
    const { images, labels } = this.dataset.batch(indices);
    labels?.dispose();
    return images;
  }
  describe(): Record<string, unknown> {
    const d = this.dataset;
    return { kind: "dataset", name: d.name, images: d.size, resolution: d.resolution, channels: d.channels };
  }
  dispose(): void {}
}

/** "PATH" or "PATH#CLASS" (a class of a conditional source). */
export function parseSourceSpec(spec: string): { path: string; classLabel: number | null } {
  const s = spec.trim();
  if (!s) throw new Error("empty source spec: give a snapshot file or a run directory");
  const m = /^(.*)#(\d+)$/.exec(s);
  return m ? { path: m[1], classLabel: Number(m[2]) } : { path: s, classLabel: null };
}

/** A run directory's newest snapshot, or the path itself when it is a file. */
export function resolveSnapshotPath(path: string): string {
  let stat: Deno.FileInfo;
  try {
    stat = Deno.statSync(path);
  } catch {
    throw new Error(`source ${path}: no such file or directory`);
  }
  if (!stat.isDirectory) return path;
  const latest = new RunDir(path).latestSnapshot();
  if (!latest) throw new Error(`source ${path}: the directory holds no snapshot-*.safetensors`);
  return latest;
}

/** Which kind of generator a .safetensors file holds (from its metadata). */
function safetensorsKind(bytes: Uint8Array, path: string): "stylegan2" | "dcgan" {
  let meta: Record<string, string>;
  try {
    meta = parseSafetensors(bytes).metadata;
  } catch (e) {
    throw new Error(`source ${path}: ${(e as Error).message}`);
  }
  if (meta.training_state) return "stylegan2";
  if (meta.format === DCGAN_FORMAT) return "dcgan";
  throw new Error(
    `source ${path}: a safetensors file that is neither a StyleGAN2 training snapshot nor a DCGAN snapshot`,
  );
}

/** Opens a source: StyleGAN2 snapshot (.safetensors), SGA pickle (.pkl), DCGAN snapshot, or run directory. */
export async function openSource(spec: string): Promise<ImageSource> {
  const { path: given, classLabel } = parseSourceSpec(spec);
  const path = resolveSnapshotPath(given);
  const isPkl = path.toLowerCase().endsWith(".pkl");
  if (!isPkl) {
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(path);
    } catch (e) {
      throw new Error(`source ${path}: ${(e as Error).message}`);
    }
    if (safetensorsKind(bytes, path) === "dcgan") {
      if (classLabel !== null) throw new Error(`source ${spec}: a DCGAN source has no classes`);
      return new DcganSource(spec, path, DcganGenerator.fromBytes(bytes, path));
    }
  }
  const nets = await loadNetworks(path);
  nets.G.dispose();
  const hasD = nets.D !== null;
  nets.D?.dispose();
  try {
    return new StyleGAN2Source(spec, path, nets.Gema, hasD, classLabel);
  } catch (e) {
    nets.Gema.dispose();
    throw e;
  }
}

/** Opens every source; on failure, the ones already open are disposed. */
export async function openSources(specs: string[]): Promise<ImageSource[]> {
  const out: ImageSource[] = [];
  try {
    for (const s of specs) out.push(await openSource(s));
  } catch (e) {
    for (const s of out) s.dispose();
    throw e;
  }
  return out;
}

// ---- resolution and channels ----

/**
 * The [outLen, inLen] matrix of one axis: area averaging when shrinking (each output pixel averages the
 * input interval it covers), bilinear with half-pixel centres (clamped at the edges) when enlarging.
 */
export function resampleMatrix(inLen: number, outLen: number): Float32Array {
  if (!Number.isInteger(inLen) || !Number.isInteger(outLen) || inLen < 1 || outLen < 1) {
    throw new Error(`resample: lengths must be positive integers, got ${inLen} -> ${outLen}`);
  }
  const m = new Float64Array(outLen * inLen);
  const scale = inLen / outLen;
  for (let o = 0; o < outLen; o++) {
    if (outLen <= inLen) {
      const a = o * scale, b = (o + 1) * scale;
      for (let i = Math.floor(a); i < Math.min(Math.ceil(b), inLen); i++) {
        const overlap = Math.min(b, i + 1) - Math.max(a, i);
        if (overlap > 0) m[o * inLen + i] += overlap / scale;
      }
    } else {
      const src = Math.min(Math.max((o + 0.5) * scale - 0.5, 0), inLen - 1);
      const i0 = Math.floor(src), i1 = Math.min(i0 + 1, inLen - 1), f = src - i0;
      m[o * inLen + i0] += 1 - f;
      m[o * inLen + i1] += f;
    }
  }
  return Float32Array.from(m);
}

/** NCHW images brought to `resolution` x `resolution` and `channels` (grey<->RGB: repeat / channel mean). */
export function resampleImages(x: Tensor, resolution: number, channels: number): Tensor {
  if (x.rank !== 4) throw new Error(`resampleImages: images must be NCHW, got [${x.shape}]`);
  if (channels !== 1 && channels !== 3) {
    throw new Error(`resampleImages: channels must be 1 or 3, got ${channels}`);
  }
  const [n, c, h, w] = x.shape;
  if (c !== 1 && c !== 3) throw new Error(`resampleImages: images have ${c} channels (1 or 3 supported)`);
  let y = x;
  if (h !== resolution || w !== resolution) {
    const planes = reshape(y, [n * c, h, w]);
    const rx = fromHost(resampleMatrix(w, resolution), [resolution, w], "f32");
    const ry = fromHost(resampleMatrix(h, resolution), [resolution, h], "f32");
    y = reshape(matmulT(ry, matmulT(planes, rx, false, true)), [n, c, resolution, resolution]);
  }
  if (c === channels) return y;
  return c === 1 ? broadcastTo(y, [n, 3, resolution, resolution]) : mean(y, 1, true);
}

/** n images of a source at the target resolution and channel count. */
export function sampleAt(
  src: ImageSource,
  n: number,
  resolution: number,
  channels: number,
  gen?: Rng,
): Tensor {
  return scope(() => noGrad(() => resampleImages(src.sample(n, gen), resolution, channels)));
}

// ---- class-proportioned batches ----

/** Normalised class proportions (uniform when not given); errors name the bad entry. */
export function normaliseProportions(p: number[] | undefined, numClasses: number): number[] {
  if (!p) return new Array(numClasses).fill(1 / numClasses);
  if (p.length !== numClasses) {
    throw new Error(`class proportions: ${p.length} values for ${numClasses} sources`);
  }
  p.forEach((v, i) => {
    if (!(v >= 0) || !Number.isFinite(v)) throw new Error(`class proportion ${i} must be >= 0, got ${v}`);
  });
  const s = p.reduce((a, b) => a + b, 0);
  if (!(s > 0)) throw new Error("class proportions must not all be 0");
  return p.map((v) => v / s);
}

/** One categorical draw from normalised proportions. */
export function drawClass(proportions: number[], random: () => number): number {
  let u = random();
  for (let k = 0; k < proportions.length; k++) {
    u -= proportions[k];
    if (u < 0) return k;
  }
  for (let k = proportions.length - 1; k >= 0; k--) if (proportions[k] > 0) return k;
  return 0;
}

/** A multinomial draw: how many of n images each class gets. */
export function classCounts(n: number, proportions: number[], random: () => number): number[] {
  const counts = new Array(proportions.length).fill(0);
  for (let i = 0; i < n; i++) counts[drawClass(proportions, random)]++;
  return counts;
}

/**
 * A `realBatch` function for the training loop: per step a multinomial class count over the class
 * proportions, that many images generated by each source (no gradients, psi 1), labelled by source index.
 */
export function mixedSourceBatch(
  sources: ImageSource[],
  proportions: number[],
  resolution: number,
  channels: number,
): (n: number, ctx: StepContext) => RealBatch {
  if (proportions.length !== sources.length) {
    throw new Error(`mixedSourceBatch: ${proportions.length} proportions for ${sources.length} sources`);
  }
  return (n, ctx) => {
    const counts = classCounts(n, proportions, ctx.random);
    const parts: Tensor[] = [], labels: number[] = [];
    counts.forEach((k, i) => {
      if (k === 0) return;
      parts.push(sampleAt(sources[i], k, resolution, channels, ctx.generator));
      for (let j = 0; j < k; j++) labels.push(i);
    });
    const images = parts.length === 1 ? parts[0] : concat(parts, 0);
    return { images, labels: tensor(Int32Array.from(labels), [n], "i32") };
  };
}

/** A `realBatch` function giving images of one source only, all labelled `label` (or unlabelled: null). */
export function singleSourceBatch(
  source: ImageSource,
  label: number | null,
  resolution: number,
  channels: number,
): (n: number, ctx: StepContext) => RealBatch {
  return (n, ctx) => ({
    images: sampleAt(source, n, resolution, channels, ctx.generator),
    labels: label === null ? null : tensor(new Int32Array(n).fill(label), [n], "i32"),
  });
}

/** Class indices of generated images, drawn from the same proportions (the loop's `fakeClasses`). */
export function proportionalClasses(proportions: number[]): (n: number, random: () => number) => number[] {
  return (n, random) => Array.from({ length: n }, () => drawClass(proportions, random));
}
