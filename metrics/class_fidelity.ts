// Class fidelity (the project's own metric, REFERENCE.md 6): a small classifier learns to tell N image
// sources apart on their own fresh samples; a class-conditional model's class-c fidelity is the share of
// its class-c samples that the classifier assigns to source c. Pooled scores (union FID) reward a blend
// of the sources; this one drops to chance when a model ignores its class input.
// The classifier sees images exactly as the feature networks do (quantised to uint8, toUint8Range), is
// trained on an endless stream of fresh samples (no sample is seen twice, so it cannot overfit one draw),
// and its accuracy on further fresh samples of the sources is the ceiling any model can reach.

import { grad } from "../nn/autograd.ts";
import { Generator as Rng, manualSeed, rand, tensor, zeros } from "../nn/creation.ts";
import { conv2d } from "../nn/conv.ts";
import { oneHot } from "../nn/layers.ts";
import { matmulT } from "../nn/linalg.ts";
import { Module } from "../nn/module.ts";
import { add, detach, mul, relu } from "../nn/ops.ts";
import { Adam } from "../nn/optim.ts";
import { mean } from "../nn/reduce.ts";
import { concat, reshape } from "../nn/shape.ts";
import { scope, type Tensor } from "../nn/tensor.ts";
import { submitQueued, waitForQueue } from "../nn/queue.ts";
import { crossEntropy } from "./features/mnist_net.ts";
import { toUint8Range } from "./sources.ts";

/** n images of class (source) c, NCHW in [-1, 1]; the caller disposes them. */
export type ClassDraw = (c: number, n: number, gen: Rng) => Tensor;

const WIDTHS = [16, 32, 32];
const STRIDES = [1, 2, 2];

/** Three 3x3 convolutions with ReLU (16, 32, 32 channels; the last two stride 2), mean pool, linear. */
export class SourceClassifier extends Module {
  private readonly w: Tensor[] = [];
  private readonly b: Tensor[] = [];
  private readonly fcW: Tensor;
  private readonly fcB: Tensor;

  constructor(readonly numClasses: number, readonly channels: number) {
    super();
    if (!Number.isInteger(numClasses) || numClasses < 2) {
      throw new Error(`class fidelity: needs at least 2 sources, got ${numClasses}`);
    }
    let cin = channels;
    WIDTHS.forEach((cout, i) => {
      const bound = Math.sqrt(6 / (cin * 9)); // He-uniform
      this.w.push(this.param(`conv${i}.weight`, rand([cout, cin, 3, 3], -bound, bound)));
      this.b.push(this.param(`conv${i}.bias`, zeros([cout])));
      cin = cout;
    });
    const bound = 1 / Math.sqrt(cin);
    this.fcW = this.param("fc.weight", rand([numClasses, cin], -bound, bound));
    this.fcB = this.param("fc.bias", zeros([numClasses]));
  }

  /** Logits [N, numClasses] of images in [-1, 1] (quantised to uint8 first, as every metric does). */
  forward(images: Tensor): Tensor {
    if (images.rank !== 4 || images.shape[1] !== this.channels) {
      throw new Error(`class fidelity: images must be [N, ${this.channels}, H, W], got [${images.shape}]`);
    }
    let x = add(mul(toUint8Range(images), 1 / 127.5), -1);
    this.w.forEach((w, i) => {
      x = relu(add(conv2d(x, w, { stride: STRIDES[i], padding: 1 }), reshape(this.b[i], [1, -1, 1, 1])));
    });
    return add(matmulT(mean(x, [2, 3]), this.fcW, false, true), this.fcB);
  }

  /** The predicted class of every image. */
  async predict(images: Tensor): Promise<Int32Array> {
    const logits = scope(() => this.forward(images));
    try {
      return argmaxRows(await logits.data(), images.shape[0], this.numClasses);
    } finally {
      logits.dispose();
    }
  }
}

/** Index of the largest entry of each row of an [n, k] array (the first one on ties). */
export function argmaxRows(v: ArrayLike<number>, n: number, k: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 1; j < k; j++) if (v[i * k + j] > v[i * k + best]) best = j;
    out[i] = best;
  }
  return out;
}

export interface ClassifierOptions {
  numClasses: number;
  channels: number;
  /** Adam steps (default 200), each on `batch` (default 32) fresh images split evenly over the classes. */
  steps?: number;
  batch?: number;
  lr?: number;
  seed?: number;
  /** Fresh images per class for the held-out accuracy (default 256). */
  heldOutPerClass?: number;
  onProgress?: (step: number, steps: number) => void;
}

export interface TrainedClassifier {
  classifier: SourceClassifier;
  /** Held-out accuracy per source (the share of source c's fresh samples assigned to c). */
  heldOut: number[];
  /** Mean held-out accuracy: the ceiling of class fidelity. */
  ceiling: number;
  settings: { steps: number; batch: number; lr: number; seed: number; heldOutPerClass: number };
  seconds: number;
}

/** Trains the source classifier on fresh samples of every source; the caller disposes `classifier`. */
export async function trainSourceClassifier(
  draw: ClassDraw,
  o: ClassifierOptions,
): Promise<TrainedClassifier> {
  const steps = o.steps ?? 200, lr = o.lr ?? 2e-3, seed = o.seed ?? 0, k = o.numClasses;
  const batch = o.batch ?? 32, heldOutPerClass = o.heldOutPerClass ?? 256;
  for (const [name, v] of Object.entries({ steps, batch, heldOutPerClass })) {
    if (!Number.isInteger(v) || v < 1) {
      throw new Error(`class fidelity: ${name} must be a positive integer, got ${v}`);
    }
  }
  if (!(lr > 0)) throw new Error(`class fidelity: lr must be positive, got ${lr}`);
  const t0 = performance.now();
  manualSeed(seed);
  const classifier = new SourceClassifier(k, o.channels);
  const params = classifier.parameters();
  const opt = new Adam(params, { lr });
  const gen = new Rng(seed * 7919 + 17);
  const per = Math.max(1, Math.floor(batch / k));
  const labels = tensor(
    Int32Array.from({ length: per * k }, (_, i) => Math.floor(i / per)),
    [per * k],
    "i32",
  );
  try {
    const targets = oneHot(labels, k);
    for (let step = 1; step <= steps; step++) {
      opt.lr = step > steps * 0.7 ? lr * 0.1 : lr;
      const loss = scope(() => {
        const images = concat(Array.from({ length: k }, (_, c) => draw(c, per, gen)), 0);
        const l = crossEntropy(classifier.forward(images), targets);
        opt.update(grad(l, params));
        return step === steps ? detach(l) : null;
      });
      submitQueued();
      if (loss) {
        const v = await loss.item();
        loss.dispose();
        if (!Number.isFinite(v)) {
          throw new Error(`class fidelity: the classifier's loss became ${v} at step ${step}`);
        }
      }
      if (step % 2 === 0) await waitForQueue(); // bounds the queued work, as training does
      o.onProgress?.(step, steps);
    }
    targets.dispose();
    const heldOut = await classFidelity(classifier, draw, heldOutPerClass, new Rng(seed * 7919 + 29));
    return {
      classifier,
      heldOut,
      ceiling: heldOut.reduce((s, x) => s + x, 0) / k,
      settings: { steps, batch: per * k, lr, seed, heldOutPerClass },
      seconds: (performance.now() - t0) / 1000,
    };
  } catch (e) {
    classifier.dispose();
    throw e;
  } finally {
    labels.dispose();
    opt.dispose();
  }
}

/**
 * Class fidelity of a model: for every class c, the share of its `perClass` class-c samples (from `draw`)
 * that the classifier assigns to source c.
 */
export async function classFidelity(
  classifier: SourceClassifier,
  draw: ClassDraw,
  perClass: number,
  gen: Rng,
  chunk = 128,
): Promise<number[]> {
  if (!Number.isInteger(perClass) || perClass < 1) {
    throw new Error(`class fidelity: samples per class must be a positive integer, got ${perClass}`);
  }
  return (await classShares(classifier, draw, perClass, gen, chunk)).map((row, c) => row[c]);
}

/** For every class c of `draw`, the share of its samples that the classifier puts in each source. */
export async function classShares(
  classifier: SourceClassifier,
  draw: ClassDraw,
  perClass: number,
  gen: Rng,
  chunk = 128,
): Promise<number[][]> {
  const k = classifier.numClasses, out: number[][] = [];
  for (let c = 0; c < k; c++) {
    const counts = new Array(k).fill(0);
    for (let s = 0; s < perClass; s += chunk) {
      const m = Math.min(chunk, perClass - s);
      const images = draw(c, m, gen);
      try {
        for (const p of await classifier.predict(images)) counts[p]++;
      } finally {
        images.dispose();
      }
    }
    out.push(counts.map((x) => x / perClass));
  }
  return out;
}
