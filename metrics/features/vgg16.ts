// VGG16 fc2 features (4096-d, after the second fully connected layer's ReLU), the embedding of improved
// precision and recall (Kynkaanniemi et al. 2019). Weights: a torchvision-layout state dict the user
// supplies (features.0.weight ... features.28.bias, classifier.0/3(/6).weight and bias).
// Preprocessing is torchvision's convention: images resized to 224x224 (TF1 bilinear, as for Inception),
// scaled to 0..1 and normalised with the ImageNet mean and std. SGA's TorchScript vgg16.pt is not
// supported: its tensor names and internal preprocessing are not documented here, and a file in another
// layout is rejected with the list of names it lacks.
// `widthDivisor` divides every channel count and the fc width (rounded up): tests only.

import { conv2d } from "../../nn/conv.ts";
import { matmulT } from "../../nn/linalg.ts";
import { add, mul } from "../../nn/ops.ts";
import { maxPool2d } from "../../nn/pool.ts";
import { concat, flatten } from "../../nn/shape.ts";
import { fromHost, keep, type Tensor } from "../../nn/tensor.ts";
import type { HostArray } from "../../nn/io/host.ts";
import { checkImages, extractInChunks, grayToRgb } from "./images.ts";
import { resizeBilinearTF1 } from "./resize.ts";
import { WeightReader } from "./weights.ts";

export interface Vgg16Options {
  /** Test-only: divide every channel count and the fc width by this (rounded up). Default 1. */
  widthDivisor?: number;
  /** Source description used in errors (e.g. the file path). */
  source?: string;
  /**
   * Largest fc weight slice in floats (default 24M = 96 MiB). fc1 of the real network (4096 x 25088,
   * 411 MB) exceeds the 128 MiB storage-binding limit of many adapters (lavapipe's among them), so fc
   * weights are split by output rows into slices of at most this size; tests lower it to cover the split.
   */
  fcSliceFloats?: number;
}

const IMAGENET_MEAN = [0.485, 0.456, 0.406];
const IMAGENET_STD = [0.229, 0.224, 0.225];
/** Output channels of the 13 convs; "M" is a 2x2 max pool. */
const CONFIG: (number | "M")[] = [
  64,
  64,
  "M",
  128,
  128,
  "M",
  256,
  256,
  256,
  "M",
  512,
  512,
  512,
  "M",
  512,
  512,
  512,
  "M",
];
const INPUT = 224;
const HIDDEN = 4096;
const CLASSES = 1000;

interface Layer {
  weight: Tensor;
  bias: Tensor;
}

/** Splits a [rows, cols] weight (and its bias) into row slices of at most `maxFloats` values. */
function sliceRows(w: Float32Array, b: Float32Array, rows: number, cols: number, maxFloats: number): Layer[] {
  const pieces = Math.ceil((rows * cols) / maxFloats);
  const per = Math.ceil(rows / pieces);
  const out: Layer[] = [];
  for (let r0 = 0; r0 < rows; r0 += per) {
    const n = Math.min(per, rows - r0);
    out.push({
      weight: keep(fromHost(w.subarray(r0 * cols, (r0 + n) * cols), [n, cols], "f32")),
      bias: keep(fromHost(b.subarray(r0, r0 + n), [n], "f32")),
    });
  }
  return out;
}

export class Vgg16 {
  readonly name: string;
  readonly dim: number;
  private readonly convs: (Layer | "M")[] = [];
  /** fc1 and fc2, each as row slices (see fcSliceFloats). */
  private readonly fc: Layer[][];
  private readonly scale: Tensor;
  private readonly shift: Tensor;

  constructor(arrays: Map<string, HostArray>, opts: Vgg16Options = {}) {
    const div = opts.widthDivisor ?? 1;
    if (!Number.isInteger(div) || div < 1) throw new Error(`vgg16: widthDivisor must be a positive integer`);
    const c = (n: number) => Math.ceil(n / div);
    this.name = `vgg16-fc2 (torchvision weights${div > 1 ? `, width/${div} test variant` : ""})`;
    const reader = new WeightReader(arrays, `${this.name}${opts.source ? ` from ${opts.source}` : ""}`);

    // Read everything first: nothing is uploaded unless the whole file matches.
    const host: { shape: number[]; w: Float32Array | null; b: Float32Array | null }[] = [];
    let cin = 3, index = 0;
    for (const v of CONFIG) {
      if (v === "M") {
        index++;
        continue;
      }
      const shape = [c(v), cin, 3, 3];
      host.push({
        shape,
        w: reader.take(`features.${index}.weight`, shape),
        b: reader.take(`features.${index}.bias`, [c(v)]),
      });
      cin = c(v);
      index += 2; // conv, relu
    }
    const fcShapes = [[c(HIDDEN), cin * 7 * 7], [c(HIDDEN), c(HIDDEN)]];
    fcShapes.forEach((shape, i) => {
      host.push({
        shape,
        w: reader.take(`classifier.${3 * i}.weight`, shape),
        b: reader.take(`classifier.${3 * i}.bias`, [shape[0]]),
      });
    });
    // The last classifier layer is not used; when present its shape still identifies the network.
    reader.optional("classifier.6.weight", [CLASSES, c(HIDDEN)]);
    reader.check();

    const upload = (h: (typeof host)[number]): Layer => ({
      weight: keep(fromHost(h.w!, h.shape, "f32")),
      bias: keep(fromHost(h.b!, [h.shape[0]], "f32")),
    });
    let next = 0;
    for (const v of CONFIG) this.convs.push(v === "M" ? "M" : upload(host[next++]));
    const maxFloats = opts.fcSliceFloats ?? 24 * 2 ** 20;
    if (!(maxFloats >= 1)) throw new Error(`vgg16: fcSliceFloats must be >= 1, got ${maxFloats}`);
    this.fc = host.slice(next).map((h) => sliceRows(h.w!, h.b!, h.shape[0], h.shape[1], maxFloats));
    this.dim = c(HIDDEN);
    // (x / 255 - mean) / std = x * scale + shift, per channel.
    this.scale = keep(fromHost(Float32Array.from(IMAGENET_STD, (s) => 1 / (255 * s)), [1, 3, 1, 1], "f32"));
    this.shift = keep(
      fromHost(Float32Array.from(IMAGENET_MEAN, (m, i) => -m / IMAGENET_STD[i]), [1, 3, 1, 1], "f32"),
    );
  }

  /** fc2 features [N, dim] of 0..255 images (NCHW, 1 or 3 channels, any size). */
  extract(images: Tensor, opts: { batchSize?: number } = {}): Tensor {
    checkImages(images, this.name);
    return extractInChunks(images, opts.batchSize ?? 8, (x) => this.forward(x));
  }

  private forward(images: Tensor): Tensor {
    const relu = { expr: "max(v, 0.0)" };
    let x = add(mul(grayToRgb(resizeBilinearTF1(images, INPUT, INPUT)), this.scale), this.shift);
    for (const layer of this.convs) {
      x = layer === "M"
        ? maxPool2d(x, { kernel: 2, stride: 2 })
        : conv2d(x, layer.weight, { padding: 1 }, { ...relu, bias: layer.bias.buffer });
    }
    // At 224x224 the conv trunk ends at 7x7, so torchvision's adaptive 7x7 average pool is the identity.
    x = flatten(x, 1);
    for (const slices of this.fc) {
      const parts = slices.map((l) => matmulT(x, l.weight, false, true, { ...relu, bias: l.bias.buffer }));
      x = parts.length === 1 ? parts[0] : concat(parts, 1);
    }
    return x;
  }

  dispose(): void {
    for (const l of [...this.convs, ...this.fc.flat()]) {
      if (l !== "M") {
        l.weight.dispose();
        l.bias.dispose();
      }
    }
    this.scale.dispose();
    this.shift.dispose();
  }
}
