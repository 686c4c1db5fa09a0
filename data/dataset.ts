// The Dataset interface every source implements, an in-memory implementation, and the seeded sampler.
// Images are held as uint8 CHW on the host and enter the GPU as uint8/127.5 - 1 (REFERENCE.md section 3).

import { fromHost, type Tensor } from "../nn/tensor.ts";
import { mulberry32 } from "../nn/host_random.ts";

export interface Dataset {
  /** The spec it was opened from, e.g. "mnist:0-4". */
  readonly name: string;
  /** Images are square: resolution x resolution. */
  readonly resolution: number;
  /** 1 (grey) or 3 (RGB). */
  readonly channels: number;
  /** 0 when unconditional (labels null). */
  readonly numClasses: number;
  readonly size: number;
  /** Class index in [0, numClasses) per image, or null. */
  readonly labels: Int32Array | null;
  /** Names of the classes, index = label (empty when unconditional). */
  readonly classNames: readonly string[];
  /** Image i as uint8 CHW (a view: do not modify). */
  image(i: number): Uint8Array;
  /** NCHW f32 images in [-1, 1] and i32 [N] labels (null when unconditional). */
  batch(indices: readonly number[]): { images: Tensor; labels: Tensor | null };
}

/** A dataset whose pixels all live in one uint8 array of size x channels x resolution x resolution. */
export class ArrayDataset implements Dataset {
  readonly size: number;
  readonly numClasses: number;

  constructor(
    readonly name: string,
    readonly resolution: number,
    readonly channels: number,
    readonly pixels: Uint8Array,
    readonly labels: Int32Array | null,
    readonly classNames: readonly string[],
  ) {
    const per = channels * resolution * resolution;
    if (per <= 0 || pixels.length % per !== 0) {
      throw new Error(
        `${name}: ${pixels.length} bytes are not a whole number of ${channels}x${resolution}² images`,
      );
    }
    this.size = pixels.length / per;
    if (labels && labels.length !== this.size) {
      throw new Error(`${name}: ${labels.length} labels for ${this.size} images`);
    }
    this.numClasses = labels ? Math.max(classNames.length, maxPlusOne(labels)) : 0;
  }

  image(i: number): Uint8Array {
    this.check(i);
    const per = this.channels * this.resolution * this.resolution;
    return this.pixels.subarray(i * per, (i + 1) * per);
  }

  batch(indices: readonly number[]): { images: Tensor; labels: Tensor | null } {
    if (indices.length === 0) throw new Error(`${this.name}: batch() needs at least one index`);
    const per = this.channels * this.resolution * this.resolution;
    const x = new Float32Array(indices.length * per);
    indices.forEach((idx, k) => {
      const img = this.image(idx);
      for (let j = 0; j < per; j++) x[k * per + j] = img[j] / 127.5 - 1;
    });
    const shape = [indices.length, this.channels, this.resolution, this.resolution];
    const labels = this.labels;
    return {
      images: fromHost(x, shape, "f32"),
      labels: labels ? fromHost(Int32Array.from(indices, (i) => labels[i]), [indices.length], "i32") : null,
    };
  }

  private check(i: number): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.size) {
      throw new Error(`${this.name}: image index ${i} out of range [0, ${this.size})`);
    }
  }
}

function maxPlusOne(labels: Int32Array): number {
  let m = -1;
  for (const l of labels) {
    if (l < 0) throw new Error(`labels must be non-negative class indices, got ${l}`);
    if (l > m) m = l;
  }
  return m + 1;
}

/** Mulberry32 (nn/host_random.ts). */
export const seededRandom = mulberry32;

/** A seeded Fisher-Yates permutation of 0..n-1. */
export function permutation(n: number, random: () => number): Int32Array {
  const p = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

/**
 * Endless batches of indices: each epoch is a fresh seeded permutation, and a batch that crosses an epoch
 * boundary continues into the next permutation (so every batch is full, even when batch > size).
 */
export function* sampler(ds: { size: number; name?: string }, batch: number, seed = 0): Generator<number[]> {
  if (ds.size < 1) throw new Error(`sampler: dataset ${ds.name ?? ""} is empty`);
  if (!Number.isInteger(batch) || batch < 1) {
    throw new Error(`sampler: batch must be a positive integer, got ${batch}`);
  }
  const random = seededRandom(seed);
  let perm = permutation(ds.size, random);
  let pos = 0;
  while (true) {
    const out: number[] = [];
    while (out.length < batch) {
      if (pos === perm.length) {
        perm = permutation(ds.size, random);
        pos = 0;
      }
      out.push(perm[pos++]);
    }
    yield out;
  }
}

/** Which of n items to keep under maxImages: a seeded random subset, returned in ascending order. */
export function subsetIndices(n: number, maxImages?: number, seed = 0): number[] {
  if (maxImages === undefined || maxImages >= n) return Array.from({ length: n }, (_, i) => i);
  if (!Number.isInteger(maxImages) || maxImages < 1) {
    throw new Error(`maxImages must be a positive integer, got ${maxImages}`);
  }
  return Array.from(permutation(n, seededRandom(seed)).subarray(0, maxImages)).sort((a, b) => a - b);
}

/** Refuses to hold more than this many pixel bytes in memory. */
export const MAX_DATASET_BYTES = 2 ** 31;

export function checkDatasetBytes(name: string, n: number, channels: number, resolution: number): void {
  const bytes = n * channels * resolution * resolution;
  if (bytes > MAX_DATASET_BYTES) {
    throw new Error(
      `${name}: ${n} images of ${channels}x${resolution}x${resolution} need ${
        (bytes / 2 ** 30).toFixed(1)
      } GiB; ` +
        `pass maxImages or a smaller resolution`,
    );
  }
}
