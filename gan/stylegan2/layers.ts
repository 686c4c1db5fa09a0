// StyleGAN2 layers (SGA conventions and state-dict names): equalized-lr dense and conv layers, the
// modulated synthesis layer with noise, ToRGB, and the mapping network with its tracked w average.

import { noGrad } from "../../nn/autograd.ts";
import { type Activation, biasAct } from "../../nn/bias_act.ts";
import { full, type Generator as Rng, randn, zeros } from "../../nn/creation.ts";
import { matmulT } from "../../nn/linalg.ts";
import { conv2dResample, modulatedConv2d } from "../../nn/modulated_conv.ts";
import { copyInto, Module } from "../../nn/module.ts";
import { add, cast, lerp, mul, rsqrt, square } from "../../nn/ops.ts";
import { mean } from "../../nn/reduce.ts";
import { setupFilter } from "../../nn/upfirdn2d.ts";
import { broadcastTo, concat, narrow, reshape, unsqueeze } from "../../nn/shape.ts";
import type { Tensor } from "../../nn/tensor.ts";

/** SGA's default gain of an activation (sqrt 2 for the rectifiers). */
export function defaultGain(act: Activation): number {
  return act === "relu" || act === "lrelu" || act === "swish" ? Math.SQRT2 : 1;
}

export const RESAMPLE_FILTER = [1, 3, 3, 1];

export type NoiseMode = "random" | "const" | "none";

function checkShape(x: Tensor, want: (number | null)[], what: string): void {
  if (x.rank !== want.length || want.some((d, i) => d !== null && d !== x.shape[i])) {
    throw new Error(`${what}: expected shape [${want.map((d) => d ?? "*")}], got [${x.shape}]`);
  }
}

/** x * rsqrt(mean(x^2 over dim 1) + 1e-8). */
export function normalize2ndMoment(x: Tensor): Tensor {
  return mul(x, rsqrt(add(mean(square(x), 1, true), 1e-8)));
}

export interface FullyConnectedOptions {
  bias?: boolean;
  activation?: Activation;
  /** Equalized learning rate: weights are stored as N(0,1)/lrMultiplier and used times lrMultiplier/sqrt(in). */
  lrMultiplier?: number;
  biasInit?: number;
}

/** Dense layer with equalized learning rate: y = act(x (w * gain)^T + b * lrMultiplier). */
export class FullyConnectedLayer extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly activation: Activation;
  readonly weightGain: number;
  readonly biasGain: number;
  constructor(readonly inFeatures: number, readonly outFeatures: number, o: FullyConnectedOptions = {}) {
    super();
    if (!(inFeatures > 0) || !(outFeatures > 0)) {
      throw new Error(`FullyConnectedLayer: features must be positive, got ${inFeatures} -> ${outFeatures}`);
    }
    const lr = o.lrMultiplier ?? 1;
    this.activation = o.activation ?? "linear";
    this.weight = this.param("weight", scaled(randn([outFeatures, inFeatures]), 1 / lr));
    this.bias = (o.bias ?? true) ? this.param("bias", full([outFeatures], o.biasInit ?? 0)) : null;
    this.weightGain = lr / Math.sqrt(inFeatures);
    this.biasGain = lr;
  }
  forward(x: Tensor): Tensor {
    checkShape(x, [null, this.inFeatures], "FullyConnectedLayer input");
    const y = matmulT(x, mul(this.weight, this.weightGain), false, true);
    const b = this.bias && this.biasGain !== 1 ? mul(this.bias, this.biasGain) : this.bias;
    if (!b && this.activation === "linear") return y;
    return biasAct(y, b, { act: this.activation, dim: 1 });
  }
}

// randn / lr without keeping the unscaled copy alive.
function scaled(t: Tensor, s: number): Tensor {
  if (s === 1) return t;
  const out = noGrad(() => mul(t, s));
  t.dispose();
  return out;
}

export interface Conv2dLayerOptions {
  bias?: boolean;
  activation?: Activation;
  up?: number;
  down?: number;
  resampleFilter?: number[];
  convClamp?: number | null;
  /** false (Freeze-D): weight and bias are registered as buffers, so they get no gradients. */
  trainable?: boolean;
}

/** Conv layer with equalized learning rate (gain 1/sqrt(in*k*k), padding k//2) and FIR resampling. */
export class Conv2dLayer extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly resampleFilter: Tensor;
  readonly activation: Activation;
  readonly up: number;
  readonly down: number;
  readonly padding: number;
  readonly weightGain: number;
  readonly convClamp: number | null;
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: number,
    o: Conv2dLayerOptions = {},
  ) {
    super();
    if (!(inChannels > 0) || !(outChannels > 0) || !(kernelSize > 0)) {
      throw new Error(`Conv2dLayer: bad sizes ${inChannels} -> ${outChannels}, kernel ${kernelSize}`);
    }
    this.activation = o.activation ?? "linear";
    this.up = o.up ?? 1;
    this.down = o.down ?? 1;
    this.convClamp = o.convClamp ?? null;
    this.resampleFilter = this.buffer("resample_filter", setupFilter(o.resampleFilter ?? RESAMPLE_FILTER));
    this.padding = Math.floor(kernelSize / 2);
    this.weightGain = 1 / Math.sqrt(inChannels * kernelSize * kernelSize);
    const reg = (o.trainable ?? true) ? this.param.bind(this) : this.buffer.bind(this);
    this.weight = reg("weight", randn([outChannels, inChannels, kernelSize, kernelSize]));
    this.bias = (o.bias ?? true) ? reg("bias", zeros([outChannels])) : null;
  }
  /** `gain` scales the output and the clamp (the resnet branches use sqrt(0.5)). */
  forward(x: Tensor, gain = 1): Tensor {
    checkShape(x, [null, this.inChannels, null, null], "Conv2dLayer input");
    const y = conv2dResample(x, mul(this.weight, this.weightGain), {
      f: this.resampleFilter,
      up: this.up,
      down: this.down,
      padding: this.padding,
      flipWeight: this.up === 1,
    });
    return biasAct(y, this.bias, {
      act: this.activation,
      gain: defaultGain(this.activation) * gain,
      clamp: this.convClamp !== null ? this.convClamp * gain : undefined,
    });
  }
}

export interface SynthesisLayerOptions {
  kernelSize?: number;
  up?: number;
  useNoise?: boolean;
  activation?: Activation;
  resampleFilter?: number[];
  convClamp?: number | null;
}

export interface SynthesisForwardOptions {
  noiseMode?: NoiseMode;
  /**
   * Modulated conv as one grouped conv (true) or scaled activations around a shared conv (false, the
   * default: same numbers, and faster on this engine, ~1.3x forward and ~1.6x backward for tiny32).
   */
  fused?: boolean;
  /** Generator of the random noise (default: the global one). */
  generator?: Rng;
}

/** Modulated 3x3 conv (styles from w by an affine layer), demodulation, noise, bias, lrelu, clamp. */
export class SynthesisLayer extends Module {
  readonly affine: FullyConnectedLayer;
  readonly weight: Tensor;
  readonly bias: Tensor;
  readonly resampleFilter: Tensor;
  readonly noiseConst: Tensor | null;
  readonly noiseStrength: Tensor | null;
  readonly up: number;
  readonly padding: number;
  readonly activation: Activation;
  readonly convClamp: number | null;
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly wDim: number,
    readonly resolution: number,
    o: SynthesisLayerOptions = {},
  ) {
    super();
    const k = o.kernelSize ?? 3;
    this.up = o.up ?? 1;
    this.activation = o.activation ?? "lrelu";
    this.convClamp = o.convClamp ?? null;
    this.padding = Math.floor(k / 2);
    this.resampleFilter = this.buffer("resample_filter", setupFilter(o.resampleFilter ?? RESAMPLE_FILTER));
    this.affine = this.module("affine", new FullyConnectedLayer(wDim, inChannels, { biasInit: 1 }));
    this.weight = this.param("weight", randn([outChannels, inChannels, k, k]));
    const useNoise = o.useNoise ?? true;
    this.noiseConst = useNoise ? this.buffer("noise_const", randn([resolution, resolution])) : null;
    this.noiseStrength = useNoise ? this.param("noise_strength", zeros([])) : null;
    this.bias = this.param("bias", zeros([outChannels]));
  }

  forward(x: Tensor, w: Tensor, o: SynthesisForwardOptions & { gain?: number } = {}): Tensor {
    const inRes = this.resolution / this.up;
    checkShape(x, [null, this.inChannels, inRes, inRes], "SynthesisLayer input");
    checkShape(w, [x.shape[0], this.wDim], "SynthesisLayer w");
    const mode = o.noiseMode ?? "random";
    if (mode !== "random" && mode !== "const" && mode !== "none") {
      throw new Error(`noiseMode must be "random", "const" or "none", got ${JSON.stringify(mode)}`);
    }
    const styles = this.affine.forward(w);
    const r = this.resolution;
    let noise: Tensor | null = null;
    if (this.noiseStrength && mode === "random") {
      // Drawn in f32 (the same stream at every precision), stored at the layer's.
      const draw = cast(randn([x.shape[0], 1, r, r], { generator: o.generator }), this.weight.dtype);
      noise = mul(draw, this.noiseStrength);
    } else if (this.noiseStrength && mode === "const") {
      noise = reshape(mul(this.noiseConst!, this.noiseStrength), [1, 1, r, r]);
    }
    const y = modulatedConv2d(x, this.weight, styles, {
      noise,
      up: this.up,
      padding: this.padding,
      resampleFilter: this.resampleFilter,
      flipWeight: this.up === 1,
      fused: o.fused ?? false,
    });
    const gain = o.gain ?? 1;
    return biasAct(y, this.bias, {
      act: this.activation,
      gain: defaultGain(this.activation) * gain,
      clamp: this.convClamp !== null ? this.convClamp * gain : undefined,
    });
  }
}

/** 1x1 modulated conv without demodulation (styles scaled by 1/sqrt(in*k*k)), bias, clamp. */
export class ToRGBLayer extends Module {
  readonly affine: FullyConnectedLayer;
  readonly weight: Tensor;
  readonly bias: Tensor;
  readonly weightGain: number;
  readonly convClamp: number | null;
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly wDim: number,
    o: { kernelSize?: number; convClamp?: number | null } = {},
  ) {
    super();
    const k = o.kernelSize ?? 1;
    this.convClamp = o.convClamp ?? null;
    this.affine = this.module("affine", new FullyConnectedLayer(wDim, inChannels, { biasInit: 1 }));
    this.weight = this.param("weight", randn([outChannels, inChannels, k, k]));
    this.bias = this.param("bias", zeros([outChannels]));
    this.weightGain = 1 / Math.sqrt(inChannels * k * k);
  }
  forward(x: Tensor, w: Tensor, o: { fused?: boolean } = {}): Tensor {
    checkShape(x, [null, this.inChannels, null, null], "ToRGBLayer input");
    const styles = mul(this.affine.forward(w), this.weightGain);
    const k = this.weight.shape[2];
    const y = modulatedConv2d(x, this.weight, styles, {
      demodulate: false,
      padding: Math.floor(k / 2),
      fused: o.fused ?? false,
    });
    return biasAct(y, this.bias, { act: "linear", clamp: this.convClamp ?? undefined });
  }
}

export interface MappingOptions {
  numLayers?: number;
  /** Label embedding width (default wDim). */
  embedFeatures?: number;
  /** Hidden width (default wDim). */
  layerFeatures?: number;
  activation?: Activation;
  lrMultiplier?: number;
  /** Decay of the tracked w average; null = no w_avg buffer (D's mapping). */
  wAvgBeta?: number | null;
}

export interface MappingForwardOptions {
  truncationPsi?: number;
  /** Truncate only the first `truncationCutoff` ws (null: all). */
  truncationCutoff?: number | null;
  /** Track w_avg <- lerp(mean(w), w_avg, beta) (the training loop asks for it on its G steps). */
  updateEmas?: boolean;
}

/** z (and c) -> w: normalised inputs, dense lrelu layers at lr multiplier 0.01, broadcast to numWs. */
export class MappingNetwork extends Module {
  readonly numLayers: number;
  readonly wAvgBeta: number | null;
  readonly embed: FullyConnectedLayer | null;
  readonly layers: FullyConnectedLayer[] = [];
  constructor(
    readonly zDim: number,
    readonly cDim: number,
    readonly wDim: number,
    readonly numWs: number | null,
    o: MappingOptions = {},
  ) {
    super();
    if (zDim + cDim === 0) throw new Error("MappingNetwork: needs z (zDim > 0) or c (cDim > 0)");
    this.numLayers = o.numLayers ?? 8;
    if (!(this.numLayers >= 1)) {
      throw new Error(`MappingNetwork: numLayers must be >= 1, got ${this.numLayers}`);
    }
    this.wAvgBeta = o.wAvgBeta === undefined ? 0.995 : o.wAvgBeta;
    const embedFeatures = cDim > 0 ? (o.embedFeatures ?? wDim) : 0;
    const layerFeatures = o.layerFeatures ?? wDim;
    const dims = [zDim + embedFeatures, ...new Array(this.numLayers - 1).fill(layerFeatures), wDim];
    this.embed = cDim > 0 ? this.module("embed", new FullyConnectedLayer(cDim, embedFeatures)) : null;
    for (let i = 0; i < this.numLayers; i++) {
      this.layers.push(this.module(
        `fc${i}`,
        new FullyConnectedLayer(dims[i], dims[i + 1], {
          activation: o.activation ?? "lrelu",
          lrMultiplier: o.lrMultiplier ?? 0.01,
        }),
      ));
    }
    if (numWs !== null && this.wAvgBeta !== null) this.buffer("w_avg", zeros([wDim]));
  }

  /** The tracked average of w ([wDim]); throws when the network does not track one. */
  get wAvg(): Tensor {
    const t = this.namedBuffers().find(([n]) => n === "w_avg")?.[1];
    if (!t) throw new Error("MappingNetwork: this network tracks no w_avg");
    return t;
  }

  /** [N, numWs, wDim] (or [N, wDim] when numWs is null). */
  forward(z: Tensor | null, c: Tensor | null, o: MappingForwardOptions = {}): Tensor {
    const parts: Tensor[] = [];
    // Inputs enter at the parameters' precision (toPrecision): f32 z and c are cast here.
    const dtype = this.precision;
    if (this.zDim > 0) {
      if (!z) throw new Error("MappingNetwork: z is required (zDim > 0)");
      checkShape(z, [null, this.zDim], "MappingNetwork z");
      parts.push(normalize2ndMoment(cast(z, dtype)));
    }
    if (this.cDim > 0) {
      if (!c) throw new Error(`MappingNetwork: c [N, ${this.cDim}] is required (a conditional network)`);
      checkShape(c, [z ? z.shape[0] : null, this.cDim], "MappingNetwork c");
      parts.push(normalize2ndMoment(this.embed!.forward(cast(c, dtype))));
    }
    let x = parts.length === 1 ? parts[0] : concat(parts, 1);
    for (const layer of this.layers) x = layer.forward(x);

    if (o.updateEmas) {
      if (this.wAvgBeta === null || this.numWs === null) {
        throw new Error("MappingNetwork: updateEmas needs a tracked w_avg");
      }
      const beta = this.wAvgBeta;
      // In place (copy), so holders of the buffer (EMA, averaging) keep seeing the live tensor.
      noGrad(() => {
        const next = lerp(mean(x, 0), this.wAvg, beta);
        copyInto(next, this.wAvg);
        next.dispose();
      });
    }
    if (this.numWs === null) return x;
    const n = x.shape[0];
    let ws = broadcastTo(unsqueeze(x, 1), [n, this.numWs, this.wDim]);
    const psi = o.truncationPsi ?? 1;
    if (psi !== 1) {
      if (this.wAvgBeta === null) throw new Error("MappingNetwork: truncation needs a tracked w_avg");
      const cut = Math.min(o.truncationCutoff ?? this.numWs, this.numWs);
      if (!Number.isInteger(cut) || cut < 0) {
        throw new Error(`truncationCutoff must be an integer >= 0, got ${cut}`);
      }
      const head = lerp(reshape(this.wAvg, [1, 1, this.wDim]), narrow(ws, 1, 0, cut), psi);
      ws = cut === this.numWs ? head : concat([head, narrow(ws, 1, cut, this.numWs - cut)], 1);
    }
    return ws;
  }
}
