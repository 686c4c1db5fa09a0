// The StyleGAN2 generator (SGA conventions and state-dict names): synthesis blocks of the "skip"
// architecture, the synthesis network, and the generator = mapping + synthesis, with `sample()` as the
// generator interface used by merging and metrics.

import { noGrad } from "../../nn/autograd.ts";
import type { Activation } from "../../nn/bias_act.ts";
import { type Generator as Rng, randn, tensor } from "../../nn/creation.ts";
import { oneHot } from "../../nn/layers.ts";
import { Module } from "../../nn/module.ts";
import { add, cast, clamp } from "../../nn/ops.ts";
import { broadcastTo, concat, narrow, reshape, unsqueeze } from "../../nn/shape.ts";
import { scope, type Tensor } from "../../nn/tensor.ts";
import { setupFilter, upsample2d } from "../../nn/upfirdn2d.ts";
import {
  channelsAt,
  type GeneratorInitKwargs,
  generatorInitKwargs,
  KwargsReader,
  type StyleGAN2Config,
  validateConfig,
} from "./config.ts";
import {
  type MappingForwardOptions,
  MappingNetwork,
  type MappingOptions,
  RESAMPLE_FILTER,
  type SynthesisForwardOptions,
  SynthesisLayer,
  ToRGBLayer,
} from "./layers.ts";

export interface SynthesisBlockOptions {
  /** Only "skip" (SGA's default for G) is implemented. */
  architecture?: "skip";
  resampleFilter?: number[];
  convClamp?: number | null;
  useNoise?: boolean;
}

/** One resolution of the synthesis network: const (4x4) or conv0 (up 2), conv1, and a ToRGB. */
export class SynthesisBlock extends Module {
  readonly const: Tensor | null;
  readonly conv0: SynthesisLayer | null;
  readonly conv1: SynthesisLayer;
  readonly torgb: ToRGBLayer;
  readonly resampleFilter: Tensor;
  readonly numConv: number;
  readonly numTorgb = 1;
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly wDim: number,
    readonly resolution: number,
    readonly imgChannels: number,
    readonly isLast: boolean,
    o: SynthesisBlockOptions = {},
  ) {
    super();
    if ((o.architecture ?? "skip") !== "skip") {
      throw new Error(`SynthesisBlock: architecture "${o.architecture}" is not supported (only "skip")`);
    }
    const layer = { resampleFilter: o.resampleFilter, convClamp: o.convClamp, useNoise: o.useNoise };
    this.resampleFilter = this.buffer("resample_filter", setupFilter(o.resampleFilter ?? RESAMPLE_FILTER));
    this.const = inChannels === 0 ? this.param("const", randn([outChannels, resolution, resolution])) : null;
    this.conv0 = inChannels === 0 ? null : this.module(
      "conv0",
      new SynthesisLayer(inChannels, outChannels, wDim, resolution, { ...layer, up: 2 }),
    );
    this.conv1 = this.module("conv1", new SynthesisLayer(outChannels, outChannels, wDim, resolution, layer));
    this.torgb = this.module(
      "torgb",
      new ToRGBLayer(outChannels, imgChannels, wDim, { convClamp: o.convClamp }),
    );
    this.numConv = inChannels === 0 ? 1 : 2;
  }

  /** ws: [N, numConv + numTorgb, wDim]. Returns the features and the running image. */
  forward(
    x: Tensor | null,
    img: Tensor | null,
    ws: Tensor,
    o: SynthesisForwardOptions = {},
  ): [Tensor, Tensor] {
    const k = this.numConv + this.numTorgb;
    if (ws.rank !== 3 || ws.shape[1] !== k || ws.shape[2] !== this.wDim) {
      throw new Error(
        `SynthesisBlock b${this.resolution}: ws must be [N, ${k}, ${this.wDim}], got [${ws.shape}]`,
      );
    }
    const n = ws.shape[0];
    const w = (i: number) => reshape(narrow(ws, 1, i, 1), [n, this.wDim]);
    let i = 0;
    if (this.const) {
      x = broadcastTo(unsqueeze(this.const, 0), [n, ...this.const.shape]);
    } else {
      if (!x) throw new Error(`SynthesisBlock b${this.resolution}: needs the features of the previous block`);
      x = this.conv0!.forward(x, w(i++), o);
    }
    x = this.conv1.forward(x, w(i++), o);
    const y = this.torgb.forward(x, w(i), { fused: o.fused });
    return [x, img ? add(upsample2d(img, this.resampleFilter), y) : y];
  }
}

export interface SynthesisOptions extends SynthesisBlockOptions {
  channelBase?: number;
  channelMax?: number;
  /**
   * Recorded for SGA compatibility (SGA's f16 blocks); runs here use one precision for the whole
   * network, f32 unless Module.toPrecision("f16") was called.
   */
  numFp16Res?: number;
}

/** ws [N, numWs, wDim] -> images [N, C, R, R]: blocks b4 .. bR; ToRGB of each shares w with the next conv0. */
export class SynthesisNetwork extends Module {
  readonly blocks: SynthesisBlock[] = [];
  readonly numWs: number;
  readonly blockResolutions: number[];
  constructor(
    readonly wDim: number,
    readonly imgResolution: number,
    readonly imgChannels: number,
    readonly options: SynthesisOptions = {},
  ) {
    super();
    const log2 = Math.log2(imgResolution);
    if (!Number.isInteger(log2) || log2 < 2) {
      throw new Error(`SynthesisNetwork: imgResolution must be a power of two >= 4, got ${imgResolution}`);
    }
    const base = options.channelBase ?? 32768, cmax = options.channelMax ?? 512;
    this.blockResolutions = Array.from({ length: log2 - 1 }, (_, i) => 2 ** (i + 2));
    let numWs = 0;
    for (const res of this.blockResolutions) {
      const cin = res > 4 ? channelsAt(base, cmax, res / 2) : 0;
      const block = new SynthesisBlock(
        cin,
        channelsAt(base, cmax, res),
        wDim,
        res,
        imgChannels,
        res === imgResolution,
        {
          architecture: options.architecture,
          resampleFilter: options.resampleFilter,
          convClamp: options.convClamp,
          useNoise: options.useNoise,
        },
      );
      this.blocks.push(this.module(`b${res}`, block));
      numWs += block.numConv;
    }
    this.numWs = numWs + 1; // the last ToRGB's w
  }

  forward(ws: Tensor, o: SynthesisForwardOptions = {}): Tensor {
    if (ws.rank !== 3 || ws.shape[1] !== this.numWs || ws.shape[2] !== this.wDim) {
      throw new Error(`SynthesisNetwork: ws must be [N, ${this.numWs}, ${this.wDim}], got [${ws.shape}]`);
    }
    let x: Tensor | null = null, img: Tensor | null = null;
    let idx = 0;
    ws = cast(ws, this.precision); // edited ws may arrive in f32 (toPrecision sets the network's)
    for (const block of this.blocks) {
      const blockWs = narrow(ws, 1, idx, block.numConv + block.numTorgb);
      [x, img] = block.forward(x, img, blockWs, o);
      idx += block.numConv;
    }
    return img!;
  }
}

export interface GeneratorOptions {
  mapping?: MappingOptions;
  synthesis?: SynthesisOptions;
}

export interface GeneratorForwardOptions extends MappingForwardOptions, SynthesisForwardOptions {}

export interface SampleOptions {
  truncationPsi?: number;
  truncationCutoff?: number | null;
  /** Default "random" (the distribution the generator was trained on). */
  noiseMode?: "random" | "const" | "none";
  /** Generator of z and of the noise (default: the global one). */
  generator?: Rng;
  /** Images computed per pass (default: all at once). */
  batchSize?: number;
}

/** Class labels for `sample`: one index per image, one index for all, or c itself ([n, cDim]). */
export type ClassLabels = number | ArrayLike<number> | Tensor | null;

/** StyleGAN2 generator: G(z, c) = synthesis(mapping(z, c)). */
export class Generator extends Module {
  readonly mapping: MappingNetwork;
  readonly synthesis: SynthesisNetwork;
  readonly numWs: number;
  constructor(
    readonly zDim: number,
    readonly cDim: number,
    readonly wDim: number,
    readonly imgResolution: number,
    readonly imgChannels: number,
    private readonly options: GeneratorOptions = {},
  ) {
    super();
    for (const [k, v] of Object.entries({ zDim, cDim, wDim, imgChannels })) {
      if (!Number.isInteger(v) || v < (k === "zDim" || k === "cDim" ? 0 : 1)) {
        throw new Error(
          `Generator: ${k} must be a ${
            k === "zDim" || k === "cDim" ? "non-negative" : "positive"
          } integer, got ${v}`,
        );
      }
    }
    this.synthesis = this.module(
      "synthesis",
      new SynthesisNetwork(wDim, imgResolution, imgChannels, options.synthesis),
    );
    this.numWs = this.synthesis.numWs;
    this.mapping = this.module("mapping", new MappingNetwork(zDim, cDim, wDim, this.numWs, options.mapping));
  }

  static fromConfig(c: StyleGAN2Config): Generator {
    validateConfig(c);
    return new Generator(c.zDim, c.cDim, c.wDim, c.resolution, c.imgChannels, {
      mapping: { numLayers: c.mappingLayers },
      synthesis: {
        channelBase: c.channelBase,
        channelMax: c.channelMax,
        convClamp: c.convClamp,
        numFp16Res: c.numFp16Res,
      },
    });
  }

  /** Builds a generator from SGA's constructor arguments (a pickle's `_init_kwargs`). */
  static fromInitKwargs(kwargs: Record<string, unknown>): Generator {
    const r = new KwargsReader(kwargs, "Generator init kwargs");
    const m = r.sub("mapping_kwargs"), s = r.sub("synthesis_kwargs");
    const beta = m.numOrNull("w_avg_beta", 0.995);
    const mapping: MappingOptions = {
      numLayers: m.num("num_layers", 8),
      embedFeatures: m.numOrNull("embed_features", null) ?? undefined,
      layerFeatures: m.numOrNull("layer_features", null) ?? undefined,
      activation: m.str("activation", "lrelu") as Activation,
      lrMultiplier: m.num("lr_multiplier", 0.01),
      wAvgBeta: beta,
    };
    const arch = s.str("architecture", "skip");
    if (arch !== "skip") {
      throw new Error(`Generator init kwargs: synthesis architecture "${arch}" is not supported`);
    }
    const synthesis: SynthesisOptions = {
      channelBase: s.num("channel_base", 32768),
      channelMax: s.num("channel_max", 512),
      numFp16Res: s.num("num_fp16_res", 0),
      convClamp: s.numOrNull("conv_clamp", null),
      useNoise: s.bool("use_noise", true),
      resampleFilter: s.numList("resample_filter", RESAMPLE_FILTER),
    };
    const dims = ["z_dim", "c_dim", "w_dim", "img_resolution", "img_channels"].map((k) => r.num(k));
    m.done();
    s.done();
    r.done();
    return new Generator(dims[0], dims[1], dims[2], dims[3], dims[4], { mapping, synthesis });
  }

  /** The architecture as SGA's `_init_kwargs` (plain JSON). */
  initKwargs(): GeneratorInitKwargs {
    const s = this.options.synthesis ?? {}, m = this.options.mapping ?? {};
    const kw = generatorInitKwargs({
      resolution: this.imgResolution,
      imgChannels: this.imgChannels,
      zDim: this.zDim,
      wDim: this.wDim,
      cDim: this.cDim,
      mappingLayers: this.mapping.numLayers,
      dMappingLayers: 0,
      channelBase: s.channelBase ?? 32768,
      channelMax: s.channelMax ?? 512,
      convClamp: s.convClamp ?? null,
      mbstdGroupSize: 4,
      mbstdNumChannels: 1,
      dArchitecture: "resnet",
      numFp16Res: s.numFp16Res ?? 0,
    });
    const extra: Record<string, unknown> = {};
    if (m.embedFeatures !== undefined) extra.embed_features = m.embedFeatures;
    if (m.layerFeatures !== undefined) extra.layer_features = m.layerFeatures;
    if (m.activation !== undefined && m.activation !== "lrelu") extra.activation = m.activation;
    if (m.lrMultiplier !== undefined && m.lrMultiplier !== 0.01) extra.lr_multiplier = m.lrMultiplier;
    if (m.wAvgBeta !== undefined && m.wAvgBeta !== 0.995) extra.w_avg_beta = m.wAvgBeta;
    Object.assign(kw.mapping_kwargs, extra);
    if (s.useNoise === false) Object.assign(kw.synthesis_kwargs, { use_noise: false });
    if (s.resampleFilter && s.resampleFilter.join() !== RESAMPLE_FILTER.join()) {
      Object.assign(kw.synthesis_kwargs, { resample_filter: s.resampleFilter });
    }
    return kw;
  }

  /** Images [N, C, R, R] (unclamped, about [-1, 1]) from z [N, zDim] and c [N, cDim] (null if unconditional). */
  forward(z: Tensor, c: Tensor | null, o: GeneratorForwardOptions = {}): Tensor {
    const ws = this.mapping.forward(z, c, o);
    return this.synthesis.forward(ws, o);
  }

  /** c [n, cDim] for class labels (one-hot), or null for an unconditional generator. */
  labels(n: number, classes: ClassLabels): Tensor | null {
    if (this.cDim === 0) {
      if (classes !== null && classes !== undefined) {
        throw new Error("Generator.sample: this generator is unconditional; pass classes = null");
      }
      return null;
    }
    if (classes === null || classes === undefined) {
      throw new Error(`Generator.sample: this generator is conditional (${this.cDim} classes); pass classes`);
    }
    if (typeof classes === "object" && "shape" in classes && "dtype" in classes) {
      const t = classes as Tensor;
      if (t.rank === 2 && t.shape[0] === n && t.shape[1] === this.cDim) return t;
      if (t.rank === 1 && t.shape[0] === n) return oneHot(t, this.cDim);
      throw new Error(
        `Generator.sample: classes tensor must be [${n}] or [${n}, ${this.cDim}], got [${t.shape}]`,
      );
    }
    const list = typeof classes === "number"
      ? new Array(n).fill(classes)
      : Array.from(classes as ArrayLike<number>);
    if (list.length !== n) throw new Error(`Generator.sample: ${list.length} class labels for ${n} images`);
    for (const k of list) {
      if (!Number.isInteger(k) || k < 0 || k >= this.cDim) {
        throw new Error(`Generator.sample: class ${k} is not an integer in [0, ${this.cDim})`);
      }
    }
    return oneHot(tensor(Int32Array.from(list), [n], "i32"), this.cDim);
  }

  /** n images in [-1, 1], NCHW, without gradients (the generator interface used by merging and metrics). */
  sample(n: number, classes: ClassLabels = null, o: SampleOptions = {}): Tensor {
    if (!Number.isInteger(n) || n < 1) {
      throw new Error(`Generator.sample: n must be a positive integer, got ${n}`);
    }
    const bs = o.batchSize ?? n;
    if (!Number.isInteger(bs) || bs < 1) {
      throw new Error(`Generator.sample: batchSize must be >= 1, got ${bs}`);
    }
    return scope(() =>
      noGrad(() => {
        const c = this.labels(n, classes);
        const parts: Tensor[] = [];
        for (let start = 0; start < n; start += bs) {
          const m = Math.min(bs, n - start);
          parts.push(scope(() => {
            const z = randn([m, this.zDim], { generator: o.generator });
            const cm = c && m !== n ? narrow(c, 0, start, m) : c;
            const img = this.forward(z, cm, {
              truncationPsi: o.truncationPsi,
              truncationCutoff: o.truncationCutoff,
              noiseMode: o.noiseMode ?? "random",
              generator: o.generator,
            });
            return clamp(img, -1, 1);
          }));
        }
        return parts.length === 1 ? parts[0] : concat(parts, 0);
      })
    );
  }
}
