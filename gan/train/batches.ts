// Where the loop's images and labels come from: real batches from a dataset (SGA's shuffled order, which
// a resumed run replays) or from a caller's function (merging feeds images of source GANs), and the class
// labels of generated images (drawn from the dataset's labels, as SGA does, or uniform).

import { type Generator as Rng, tensor } from "../../nn/creation.ts";
import { oneHot } from "../../nn/layers.ts";
import { detach } from "../../nn/ops.ts";
import type { Tensor } from "../../nn/tensor.ts";
import { type Dataset, sampler } from "../../data/dataset.ts";

/** Random sources of one iteration, for data sources and loss hooks that need randomness. */
export interface StepContext {
  /** Iteration index (0-based). */
  step: number;
  /** Images shown to D before this iteration. */
  curNimg: number;
  /** A GPU random stream for the caller's functions in this iteration. */
  generator: Rng;
  /** A host random stream in [0, 1) for this iteration. */
  random: () => number;
}

/** A batch of real images: NCHW in [-1, 1]; labels as class indices [N] (i32) or c [N, cDim], or null. */
export interface RealBatch {
  images: Tensor;
  labels: Tensor | null;
}

export interface BatchSourceOptions {
  data?: Dataset;
  realBatch?: (n: number, ctx: StepContext) => RealBatch;
  fakeClasses?: (n: number, random: () => number) => number[];
  batch: number;
  seed: number;
  /** Shape of the networks' images and their number of classes. */
  resolution: number;
  channels: number;
  cDim: number;
}

export class BatchSource {
  private readonly order: Iterator<number[]> | null;

  constructor(private readonly o: BatchSourceOptions) {
    if (!o.data === !o.realBatch) {
      throw new Error("train: give real images as exactly one of `data` or `realBatch`");
    }
    this.order = o.data ? sampler(o.data, o.batch, o.seed) : null;
  }

  /** Skips the batches of `steps` iterations (a resumed run continues the same order). */
  skip(steps: number): void {
    for (let i = 0; i < steps && this.order; i++) this.order.next();
  }

  /** The next real batch, checked, as a graph-free leaf; c as one-hot rows (null when unconditional). */
  real(ctx: StepContext): { images: Tensor; c: Tensor | null } {
    const { data, batch: n } = this.o;
    const rb = data ? data.batch(this.order!.next().value!) : this.o.realBatch!(n, ctx);
    const { resolution: r, channels: ch } = this.o;
    const sh = rb.images.shape;
    if (sh.length !== 4 || sh[0] !== n || sh[1] !== ch || sh[2] !== r || sh[3] !== r) {
      throw new Error(`train: a real batch must be [${n}, ${ch}, ${r}, ${r}], got [${sh}]`);
    }
    return { images: detach(rb.images), c: this.labelsToC(rb.labels, n) };
  }

  /** `n` real images for a preview grid (a seeded sample of the dataset, or the function's images). */
  preview(n: number, seed: number, ctx: StepContext): Tensor {
    const data = this.o.data;
    return data ? data.batch(sampler(data, n, seed).next().value!).images : this.o.realBatch!(n, ctx).images;
  }

  /** One-hot labels for `n` generated images. */
  fakeC(n: number, random: () => number): Tensor | null {
    const { cDim, data } = this.o;
    if (cDim === 0) return null;
    const classes = data?.labels
      ? Array.from({ length: n }, () => data.labels![Math.floor(random() * data.size)])
      : this.o.fakeClasses
      ? this.o.fakeClasses(n, random)
      : Array.from({ length: n }, () => Math.floor(random() * cDim));
    if (classes.length !== n || classes.some((k) => !Number.isInteger(k) || k < 0 || k >= cDim)) {
      throw new Error(`train: fakeClasses must give ${n} integers in [0, ${cDim})`);
    }
    return oneHot(tensor(Int32Array.from(classes), [n], "i32"), cDim);
  }

  private labelsToC(labels: Tensor | null, n: number): Tensor | null {
    const cDim = this.o.cDim;
    if (cDim === 0) return null;
    if (!labels) throw new Error("train: a conditional run, but the real images came without labels");
    if (labels.rank === 1 && labels.shape[0] === n) return oneHot(labels, cDim);
    if (labels.rank === 2 && labels.shape[0] === n && labels.shape[1] === cDim) return labels;
    throw new Error(
      `train: real labels must be [${n}] class indices or [${n}, ${cDim}], got [${labels.shape}]`,
    );
  }
}
