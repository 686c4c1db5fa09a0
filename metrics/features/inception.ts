// The FID feature network: Inception-v3 as in TensorFlow's 2015-12-05 graph, 2048-d pool3 features.
// It differs from torchvision's Inception-v3 in its pool branches: average pools leave the zero padding
// out of the divisor, and the last block (Mixed_7c) pools its branch with a max pool. Every conv is
// conv -> batch norm (eps 1e-3) -> ReLU; the batch norm is folded into the conv's weight and bias at
// load time, so a unit is one conv with a fused bias + ReLU epilogue.
//
// Weights come from a file the user supplies, in one of two layouts:
//   pytorch-fid  pt_inception-2015-12-05-*.pth: Conv2d_1a_3x3.conv.weight, Conv2d_1a_3x3.bn.{weight,bias,
//                running_mean,running_var}, Mixed_5b.branch1x1.conv.weight, ..., fc.weight [1008, 2048]
//   SGA          inception-2015-12-05.pt (TorchScript): layers.conv.{weight,beta,mean,var} (no BN scale),
//                layers.mixed.tower.conv_1.weight, ..., output.weight
// `widthDivisor` divides every channel count (rounded up): only tests use it, to run the same code on a
// network small enough for golden files.

import { conv2d } from "../../nn/conv.ts";
import { add, mul } from "../../nn/ops.ts";
import { avgPool2d, maxPool2d } from "../../nn/pool.ts";
import { mean } from "../../nn/reduce.ts";
import { concat } from "../../nn/shape.ts";
import { fromHost, keep, type Tensor } from "../../nn/tensor.ts";
import type { HostArray } from "../../nn/io/host.ts";
import { checkImages, extractInChunks, grayToRgb } from "./images.ts";
import { type FidMode, resizeBilinear } from "./resize.ts";
import { foldBatchNorm, WeightReader } from "./weights.ts";

export type InceptionLayout = "pytorch-fid" | "sga-torchscript";

export interface InceptionOptions {
  /** Test-only: divide every channel count by this (rounded up). Default 1 (the real network). */
  widthDivisor?: number;
  /** Input side the images are resized to (default 299, the graph's). */
  inputSize?: number;
  /** Source description used in the network's name and errors (e.g. the file path). */
  source?: string;
  /** Preprocessing convention (default "tf", as the TF graph and SGA). */
  fidMode?: FidMode;
}

export interface ExtractOptions {
  /** Images per forward pass (memory vs. dispatch overhead); default 16. */
  batchSize?: number;
}

const BN_EPS = 1e-3;
const NUM_CLASSES = 1008;

type Pair = [number, number];
const pair = (v: number | Pair): Pair => (typeof v === "number" ? [v, v] : v);

/** One conv + folded batch norm + ReLU; host weights until upload(). */
class ConvUnit {
  weight: Tensor | null = null;
  bias: Tensor | null = null;
  constructor(
    readonly shape: [number, number, number, number],
    readonly stride: number,
    readonly pad: Pair,
    private host: { weight: Float32Array; bias: Float32Array } | null,
  ) {}
  upload(): void {
    if (!this.host) throw new Error("inception: conv weights missing (load errors should have been raised)");
    this.weight = keep(fromHost(this.host.weight, this.shape, "f32"));
    this.bias = keep(fromHost(this.host.bias, [this.shape[0]], "f32"));
    this.host = null;
  }
  f(x: Tensor): Tensor {
    const [py, px] = this.pad;
    return conv2d(x, this.weight!, { stride: this.stride, padding: [py, py, px, px] }, {
      bias: this.bias!.buffer,
      expr: "max(v, 0.0)",
    });
  }
  dispose(): void {
    this.weight?.dispose();
    this.bias?.dispose();
  }
}

/** Creates conv units by (pytorch-fid name, SGA name), reading and folding their weights. */
class Builder {
  readonly units: ConvUnit[] = [];
  constructor(readonly reader: WeightReader, readonly layout: InceptionLayout, readonly div: number) {}
  /** A channel count of the real network, scaled by the width divisor. */
  c = (channels: number): number => Math.ceil(channels / this.div);

  conv(
    fid: string,
    sga: string,
    cin: number,
    cout: number,
    k: number | Pair,
    stride = 1,
    pad: number | Pair = 0,
  ) {
    const [kh, kw] = pair(k);
    const shape: [number, number, number, number] = [cout, cin, kh, kw];
    const r = this.reader;
    let w: Float32Array | null, gamma: Float32Array | null, beta, rm, rv;
    if (this.layout === "pytorch-fid") {
      w = r.take(`${fid}.conv.weight`, shape);
      gamma = r.optional(`${fid}.bn.weight`, [cout]);
      beta = r.take(`${fid}.bn.bias`, [cout]);
      rm = r.take(`${fid}.bn.running_mean`, [cout]);
      rv = r.take(`${fid}.bn.running_var`, [cout]);
    } else {
      const p = `layers.${sga}`;
      w = r.take(`${p}.weight`, shape);
      gamma = null; // the TF graph's batch norms have no scale
      beta = r.take(`${p}.beta`, [cout]);
      rm = r.take(`${p}.mean`, [cout]);
      rv = r.take(`${p}.var`, [cout]);
    }
    const host = w && beta && rm && rv
      ? foldBatchNorm(w, cout, { gamma, beta, mean: rm, variance: rv }, BN_EPS)
      : null;
    const unit = new ConvUnit(shape, stride, pair(pad), host);
    this.units.push(unit);
    return unit;
  }
}

interface Block {
  out: number;
  f: (x: Tensor) => Tensor;
}

const avgPoolSame = (x: Tensor) => avgPool2d(x, { kernel: 3, stride: 1, padding: 1, countIncludePad: false });
const maxPoolSame = (x: Tensor) => maxPool2d(x, { kernel: 3, stride: 1, padding: 1 });
const maxPoolDown = (x: Tensor) => maxPool2d(x, { kernel: 3, stride: 2 });

/** Mixed_5b/5c/5d: 1x1, 5x5, double 3x3 and pooled 1x1 branches. */
function blockA(b: Builder, fid: string, sga: string, cin: number, poolFeatures: number): Block {
  const c = b.c;
  const b1 = b.conv(`${fid}.branch1x1`, `${sga}.conv`, cin, c(64), 1);
  const b5a = b.conv(`${fid}.branch5x5_1`, `${sga}.tower.conv`, cin, c(48), 1);
  const b5b = b.conv(`${fid}.branch5x5_2`, `${sga}.tower.conv_1`, c(48), c(64), 5, 1, 2);
  const d1 = b.conv(`${fid}.branch3x3dbl_1`, `${sga}.tower_1.conv`, cin, c(64), 1);
  const d2 = b.conv(`${fid}.branch3x3dbl_2`, `${sga}.tower_1.conv_1`, c(64), c(96), 3, 1, 1);
  const d3 = b.conv(`${fid}.branch3x3dbl_3`, `${sga}.tower_1.conv_2`, c(96), c(96), 3, 1, 1);
  const bp = b.conv(`${fid}.branch_pool`, `${sga}.tower_2.conv`, cin, c(poolFeatures), 1);
  return {
    out: c(64) + c(64) + c(96) + c(poolFeatures),
    f: (x) => concat([b1.f(x), b5b.f(b5a.f(x)), d3.f(d2.f(d1.f(x))), bp.f(avgPoolSame(x))], 1),
  };
}

/** Mixed_6a: strided 3x3, strided double 3x3 and a max pool (17x17 grid). */
function blockB(b: Builder, fid: string, sga: string, cin: number): Block {
  const c = b.c;
  const b3 = b.conv(`${fid}.branch3x3`, `${sga}.conv`, cin, c(384), 3, 2);
  const d1 = b.conv(`${fid}.branch3x3dbl_1`, `${sga}.tower.conv`, cin, c(64), 1);
  const d2 = b.conv(`${fid}.branch3x3dbl_2`, `${sga}.tower.conv_1`, c(64), c(96), 3, 1, 1);
  const d3 = b.conv(`${fid}.branch3x3dbl_3`, `${sga}.tower.conv_2`, c(96), c(96), 3, 2);
  return {
    out: c(384) + c(96) + cin,
    f: (x) => concat([b3.f(x), d3.f(d2.f(d1.f(x))), maxPoolDown(x)], 1),
  };
}

/** Mixed_6b..6e: factorised 7x7 branches (1x7 then 7x1). */
function blockC(b: Builder, fid: string, sga: string, cin: number, c7: number): Block {
  const c = b.c;
  const b1 = b.conv(`${fid}.branch1x1`, `${sga}.conv`, cin, c(192), 1);
  const s1 = b.conv(`${fid}.branch7x7_1`, `${sga}.tower.conv`, cin, c(c7), 1);
  const s2 = b.conv(`${fid}.branch7x7_2`, `${sga}.tower.conv_1`, c(c7), c(c7), [1, 7], 1, [0, 3]);
  const s3 = b.conv(`${fid}.branch7x7_3`, `${sga}.tower.conv_2`, c(c7), c(192), [7, 1], 1, [3, 0]);
  const d1 = b.conv(`${fid}.branch7x7dbl_1`, `${sga}.tower_1.conv`, cin, c(c7), 1);
  const d2 = b.conv(`${fid}.branch7x7dbl_2`, `${sga}.tower_1.conv_1`, c(c7), c(c7), [7, 1], 1, [3, 0]);
  const d3 = b.conv(`${fid}.branch7x7dbl_3`, `${sga}.tower_1.conv_2`, c(c7), c(c7), [1, 7], 1, [0, 3]);
  const d4 = b.conv(`${fid}.branch7x7dbl_4`, `${sga}.tower_1.conv_3`, c(c7), c(c7), [7, 1], 1, [3, 0]);
  const d5 = b.conv(`${fid}.branch7x7dbl_5`, `${sga}.tower_1.conv_4`, c(c7), c(192), [1, 7], 1, [0, 3]);
  const bp = b.conv(`${fid}.branch_pool`, `${sga}.tower_2.conv`, cin, c(192), 1);
  return {
    out: 4 * c(192),
    f: (x) =>
      concat([
        b1.f(x),
        s3.f(s2.f(s1.f(x))),
        d5.f(d4.f(d3.f(d2.f(d1.f(x))))),
        bp.f(avgPoolSame(x)),
      ], 1),
  };
}

/** Mixed_7a: strided 3x3 and 7x7x3 branches and a max pool (8x8 grid). */
function blockD(b: Builder, fid: string, sga: string, cin: number): Block {
  const c = b.c;
  const t1 = b.conv(`${fid}.branch3x3_1`, `${sga}.tower.conv`, cin, c(192), 1);
  const t2 = b.conv(`${fid}.branch3x3_2`, `${sga}.tower.conv_1`, c(192), c(320), 3, 2);
  const s1 = b.conv(`${fid}.branch7x7x3_1`, `${sga}.tower_1.conv`, cin, c(192), 1);
  const s2 = b.conv(`${fid}.branch7x7x3_2`, `${sga}.tower_1.conv_1`, c(192), c(192), [1, 7], 1, [0, 3]);
  const s3 = b.conv(`${fid}.branch7x7x3_3`, `${sga}.tower_1.conv_2`, c(192), c(192), [7, 1], 1, [3, 0]);
  const s4 = b.conv(`${fid}.branch7x7x3_4`, `${sga}.tower_1.conv_3`, c(192), c(192), 3, 2);
  return {
    out: c(320) + c(192) + cin,
    f: (x) => concat([t2.f(t1.f(x)), s4.f(s3.f(s2.f(s1.f(x)))), maxPoolDown(x)], 1),
  };
}

/** Mixed_7b (average pool, padding excluded) and Mixed_7c (max pool): expanded 1x3 / 3x1 branches. */
function blockE(b: Builder, fid: string, sga: string, cin: number, pool: "avg" | "max"): Block {
  const c = b.c;
  const b1 = b.conv(`${fid}.branch1x1`, `${sga}.conv`, cin, c(320), 1);
  const t1 = b.conv(`${fid}.branch3x3_1`, `${sga}.tower_conv`, cin, c(384), 1);
  const t2a = b.conv(`${fid}.branch3x3_2a`, `${sga}.tower_mixed_conv`, c(384), c(384), [1, 3], 1, [0, 1]);
  const t2b = b.conv(`${fid}.branch3x3_2b`, `${sga}.tower_mixed_conv_1`, c(384), c(384), [3, 1], 1, [1, 0]);
  const d1 = b.conv(`${fid}.branch3x3dbl_1`, `${sga}.tower_1_conv`, cin, c(448), 1);
  const d2 = b.conv(`${fid}.branch3x3dbl_2`, `${sga}.tower_1_conv_1`, c(448), c(384), 3, 1, 1);
  const d3a = b.conv(`${fid}.branch3x3dbl_3a`, `${sga}.tower_1_mixed_conv`, c(384), c(384), [1, 3], 1, [
    0,
    1,
  ]);
  const d3b = b.conv(`${fid}.branch3x3dbl_3b`, `${sga}.tower_1_mixed_conv_1`, c(384), c(384), [3, 1], 1, [
    1,
    0,
  ]);
  const bp = b.conv(`${fid}.branch_pool`, `${sga}.tower_2_conv`, cin, c(192), 1);
  const poolFn = pool === "avg" ? avgPoolSame : maxPoolSame;
  return {
    out: c(320) + 4 * c(384) + c(192),
    f: (x) => {
      const t = t1.f(x), d = d2.f(d1.f(x));
      return concat([b1.f(x), t2a.f(t), t2b.f(t), d3a.f(d), d3b.f(d), bp.f(poolFn(x))], 1);
    },
  };
}

/** Decides which layout a weight file uses from its tensor names. */
export function detectInceptionLayout(arrays: Map<string, HostArray>): InceptionLayout {
  if (arrays.has("Conv2d_1a_3x3.conv.weight")) return "pytorch-fid";
  if (arrays.has("layers.conv.weight")) return "sga-torchscript";
  const names = [...arrays.keys()];
  throw new Error(
    "not an FID Inception-v3 weight file: expected pytorch-fid names (Conv2d_1a_3x3.conv.weight, ...) or " +
      `SGA TorchScript names (layers.conv.weight, ...); the file holds ${names.length} tensors, e.g. ` +
      (names.slice(0, 6).join(", ") || "none"),
  );
}

/** Inception-v3 (TF 2015-12-05 graph) returning pool3 features. */
export class InceptionV3 {
  readonly name: string;
  readonly dim: number;
  readonly layout: InceptionLayout;
  readonly inputSize: number;
  readonly fidMode: FidMode;
  private readonly units: ConvUnit[];
  private readonly body: (x: Tensor) => Tensor;

  constructor(arrays: Map<string, HostArray>, opts: InceptionOptions = {}) {
    const div = opts.widthDivisor ?? 1;
    if (!Number.isInteger(div) || div < 1) {
      throw new Error(`inception: widthDivisor must be a positive integer`);
    }
    this.inputSize = opts.inputSize ?? 299;
    this.fidMode = opts.fidMode ?? "tf";
    if (this.fidMode !== "tf" && this.fidMode !== "pytorch-fid") {
      throw new Error(`inception: fidMode must be tf or pytorch-fid, got ${this.fidMode}`);
    }
    if (!Number.isInteger(this.inputSize) || this.inputSize < 75) {
      throw new Error(`inception: inputSize must be an integer >= 75, got ${this.inputSize}`);
    }
    this.layout = detectInceptionLayout(arrays);
    const weights = this.layout === "pytorch-fid" ? "pytorch-fid weights" : "SGA TorchScript weights";
    this.name = `inception-v3-tf2015 (${weights}${div > 1 ? `, width/${div} test variant` : ""})`;
    const reader = new WeightReader(arrays, `${this.name}${opts.source ? ` from ${opts.source}` : ""}`);
    const b = new Builder(reader, this.layout, div);
    const c = b.c;

    const stem = [
      b.conv("Conv2d_1a_3x3", "conv", 3, c(32), 3, 2),
      b.conv("Conv2d_2a_3x3", "conv_1", c(32), c(32), 3),
      b.conv("Conv2d_2b_3x3", "conv_2", c(32), c(64), 3, 1, 1),
    ];
    const stem2 = [
      b.conv("Conv2d_3b_1x1", "conv_3", c(64), c(80), 1),
      b.conv("Conv2d_4a_3x3", "conv_4", c(80), c(192), 3),
    ];
    const blocks: Block[] = [];
    let ch = c(192);
    const push = (blk: Block) => {
      blocks.push(blk);
      ch = blk.out;
    };
    push(blockA(b, "Mixed_5b", "mixed", ch, 32));
    push(blockA(b, "Mixed_5c", "mixed_1", ch, 64));
    push(blockA(b, "Mixed_5d", "mixed_2", ch, 64));
    push(blockB(b, "Mixed_6a", "mixed_3", ch));
    push(blockC(b, "Mixed_6b", "mixed_4", ch, 128));
    push(blockC(b, "Mixed_6c", "mixed_5", ch, 160));
    push(blockC(b, "Mixed_6d", "mixed_6", ch, 160));
    push(blockC(b, "Mixed_6e", "mixed_7", ch, 192));
    push(blockD(b, "Mixed_7a", "mixed_8", ch));
    push(blockE(b, "Mixed_7b", "mixed_9", ch, "avg"));
    push(blockE(b, "Mixed_7c", "mixed_10", ch, "max"));
    this.dim = ch;

    // The classifier is not used for features, but its shape tells the FID network (1008 classes)
    // from torchvision's ImageNet Inception-v3 (1000 classes), whose convs have the same names.
    const fc = this.layout === "pytorch-fid" ? "fc" : "output";
    reader.take(`${fc}.weight`, [c(NUM_CLASSES), ch]);
    reader.take(`${fc}.bias`, [c(NUM_CLASSES)]);
    const fcShape = arrays.get(`${fc}.weight`)?.shape;
    if (fcShape && fcShape[0] === 1000) {
      throw new Error(
        `${this.name}: ${fc}.weight has 1000 classes: this is torchvision's ImageNet Inception-v3, not the ` +
          "FID network (TF 2015-12-05 graph, 1008 classes); FID needs pytorch-fid's pt_inception-2015-12-05 weights",
      );
    }
    reader.check();

    this.units = b.units;
    for (const u of this.units) u.upload();
    this.body = (x) => {
      for (const u of stem) x = u.f(x);
      x = maxPoolDown(x);
      for (const u of stem2) x = u.f(x);
      x = maxPoolDown(x);
      for (const blk of blocks) x = blk.f(x);
      return mean(x, [2, 3]); // pool3: global average of the 8x8 grid
    };
  }

  /** Pool3 features [N, dim] of 0..255 images (NCHW, 1 or 3 channels, any size). */
  extract(images: Tensor, opts: ExtractOptions = {}): Tensor {
    checkImages(images, this.name);
    return extractInChunks(images, opts.batchSize ?? 16, (x) => this.forward(x));
  }

  /** Preprocessing and the network for one chunk (no chunking, no checks). */
  private forward(images: Tensor): Tensor {
    const x = grayToRgb(resizeBilinear(images, this.inputSize, this.inputSize, this.fidMode));
    // tf: (x - 128) / 128; pytorch-fid: (x / 255) * 2 - 1 = x / 127.5 - 1.
    const normalized = this.fidMode === "tf" ? add(mul(x, 1 / 128), -1) : add(mul(x, 1 / 127.5), -1);
    return this.body(normalized);
  }

  dispose(): void {
    for (const u of this.units) u.dispose();
  }
}
