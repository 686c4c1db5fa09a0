// Common layers: Linear, BatchNorm, activations and Sequential.

import { batchNormTrain } from "./batch_norm.ts";
import { arange, ones, rand, zeros } from "./creation.ts";
import { linear, type LinearAct } from "./linalg.ts";
import { axpbyInto, type AxpbyUpdate, Module } from "./module.ts";
import { add, equal, leakyRelu, mul, relu, rsqrt, sub, tanh } from "./ops.ts";
import { reshape } from "./shape.ts";
import type { Tensor } from "./tensor.ts";

/** y = x W^T + b with PyTorch's default (Kaiming-uniform) initialisation. */
export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(readonly inFeatures: number, readonly outFeatures: number, { bias = true } = {}) {
    super();
    const bound = 1 / Math.sqrt(inFeatures);
    this.weight = this.param("weight", rand([outFeatures, inFeatures], -bound, bound));
    this.bias = bias ? this.param("bias", rand([outFeatures], -bound, bound)) : null;
  }
  forward(x: Tensor): Tensor {
    return this.forwardAct(x, "linear");
  }
  /** act(x W^T + b), the bias and activation applied in the GEMM's epilogue where it can. */
  forwardAct(x: Tensor, act: LinearAct): Tensor {
    if (x.shape[x.rank - 1] !== this.inFeatures) {
      throw new Error(`Linear(${this.inFeatures}, ${this.outFeatures}): input has shape [${x.shape}]`);
    }
    return linear(x, this.weight, this.bias, act);
  }
}

/**
 * Batch normalisation over all axes but the channel axis 1 ([N, C] or [N, C, H, W]). Training uses the
 * batch's biased variance and updates running statistics (unbiased variance), as PyTorch does.
 */
export class BatchNorm extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(readonly channels: number, readonly momentum = 0.1, readonly eps = 1e-5) {
    super();
    this.weight = this.param("weight", ones([channels]));
    this.bias = this.param("bias", zeros([channels]));
    this.buffer("running_mean", zeros([channels]));
    this.buffer("running_var", ones([channels]));
    this.buffer("num_batches_tracked", zeros([1]));
  }
  forward(x: Tensor): Tensor {
    if (!this.training) return this.evalForward(x);
    const { y, statUpdates } = this.trainForward(x);
    axpbyInto(statUpdates);
    return y;
  }

  /**
   * Training mode: y from the batch's statistics, and the running-statistics updates for the caller to
   * apply (Sequential applies those of all its BatchNorm layers in one dispatch).
   */
  trainForward(x: Tensor): { y: Tensor; statUpdates: AxpbyUpdate[] } {
    this.checkInput(x);
    const { y, mean: mu, variance: v } = batchNormTrain(x, this.weight, this.bias, this.eps);
    const n = x.size / this.channels, m = this.momentum;
    const buffers = new Map(this.namedBuffers());
    // PyTorch's update, with the unbiased variance.
    return {
      y,
      statUpdates: [
        { dst: buffers.get("running_mean")!, src: mu, a: m, b: 1 - m },
        { dst: buffers.get("running_var")!, src: v, a: (m * n) / Math.max(n - 1, 1), b: 1 - m },
      ],
    };
  }

  private evalForward(x: Tensor): Tensor {
    this.checkInput(x);
    const buffers = new Map(this.namedBuffers());
    const bshape = x.shape.map((d, i) => (i === 1 ? d : 1));
    const mu = reshape(buffers.get("running_mean")!, bshape);
    const v = reshape(buffers.get("running_var")!, bshape);
    const xhat = mul(sub(x, mu), rsqrt(add(v, this.eps)));
    return add(mul(xhat, reshape(this.weight, bshape)), reshape(this.bias, bshape));
  }

  private checkInput(x: Tensor): void {
    if (x.shape[1] !== this.channels) {
      throw new Error(`BatchNorm(${this.channels}): input has shape [${x.shape}]`);
    }
  }
}

export type Activation = "relu" | "lrelu" | "tanh" | "linear";

export function activate(x: Tensor, act: Activation): Tensor {
  switch (act) {
    case "relu":
      return relu(x);
    case "lrelu":
      return leakyRelu(x, 0.2);
    case "tanh":
      return tanh(x);
    case "linear":
      return x;
  }
}

/** Runs child modules (anything with forward) in order. */
export class Sequential extends Module {
  readonly layers: { forward(x: Tensor): Tensor }[] = [];
  constructor(layers: (Module & { forward(x: Tensor): Tensor })[]) {
    super();
    layers.forEach((l, i) => this.layers.push(this.module(String(i), l)));
  }
  forward(x: Tensor): Tensor {
    const ls = this.layers, statUpdates: AxpbyUpdate[] = [];
    for (let i = 0; i < ls.length; i++) {
      const l = ls[i], next = ls[i + 1];
      // A Linear and the ReLU after it are one GEMM (bias and activation in its epilogue).
      if (l instanceof Linear && next instanceof Act && next.act === "relu") {
        x = l.forwardAct(x, "relu");
        i++;
      } else if (l instanceof BatchNorm && l.training) {
        // Running statistics are read only in eval mode: all layers' updates go in one dispatch below.
        const r = l.trainForward(x);
        x = r.y;
        statUpdates.push(...r.statUpdates);
      } else x = l.forward(x);
    }
    if (statUpdates.length) axpbyInto(statUpdates);
    return x;
  }
}

/** An activation as a module (no parameters), for Sequential. */
export class Act extends Module {
  constructor(readonly act: Activation) {
    super();
  }
  forward(x: Tensor): Tensor {
    return activate(x, this.act);
  }
}

/** One-hot rows of `labels` (i32, or f32 holding integers) with n classes; carries no gradient. */
export function oneHot(labels: Tensor, n: number): Tensor {
  return equal(reshape(labels, [labels.size, 1]), reshape(arange(n, labels.dtype), [1, n]));
}
