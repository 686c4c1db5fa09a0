// The StyleGAN2 discriminator (SGA conventions and state-dict names): "resnet" (or "orig") blocks from
// the image resolution down to 8, then the 4x4 epilogue with minibatch std; conditional models map c
// to cmap and project: logit = sum(x * cmap, 1) / sqrt(cmap_dim).

import type { Activation } from "../../nn/bias_act.ts";
import { minibatchStd } from "../../nn/mbstd.ts";
import { Module } from "../../nn/module.ts";
import { add, mul } from "../../nn/ops.ts";
import { sum } from "../../nn/reduce.ts";
import { flatten } from "../../nn/shape.ts";
import type { Tensor } from "../../nn/tensor.ts";
import { setupFilter } from "../../nn/upfirdn2d.ts";
import {
  channelsAt,
  type DiscriminatorInitKwargs,
  KwargsReader,
  type StyleGAN2Config,
  validateConfig,
} from "./config.ts";
import { Conv2dLayer, FullyConnectedLayer, MappingNetwork, RESAMPLE_FILTER } from "./layers.ts";

export type DArchitecture = "resnet" | "orig";

export interface DiscriminatorBlockOptions {
  architecture?: DArchitecture;
  activation?: Activation;
  resampleFilter?: number[];
  convClamp?: number | null;
  /** Freeze-D: layers with index < freezeLayers get their weights as buffers (no gradients). */
  freezeLayers?: number;
}

/** fromrgb (first block only), conv0 3x3, conv1 3x3 down 2; resnet adds skip 1x1 down 2, both branches * sqrt(.5). */
export class DiscriminatorBlock extends Module {
  readonly fromrgb: Conv2dLayer | null;
  readonly conv0: Conv2dLayer;
  readonly conv1: Conv2dLayer;
  readonly skip: Conv2dLayer | null;
  readonly architecture: DArchitecture;
  /** Layer names in Freeze-D order, each with its global index. */
  readonly layerIndices: [string, number][] = [];
  constructor(
    readonly inChannels: number,
    readonly tmpChannels: number,
    readonly outChannels: number,
    readonly resolution: number,
    readonly imgChannels: number,
    readonly firstLayerIdx: number,
    o: DiscriminatorBlockOptions = {},
  ) {
    super();
    if (inChannels !== 0 && inChannels !== tmpChannels) {
      throw new Error(
        `DiscriminatorBlock b${resolution}: inChannels ${inChannels} must be 0 or ${tmpChannels}`,
      );
    }
    this.architecture = o.architecture ?? "resnet";
    if (this.architecture !== "resnet" && this.architecture !== "orig") {
      throw new Error(
        `DiscriminatorBlock: architecture "${this.architecture}" is not supported (resnet, orig)`,
      );
    }
    const act = o.activation ?? "lrelu";
    const filter = o.resampleFilter ?? RESAMPLE_FILTER;
    this.buffer("resample_filter", setupFilter(filter));
    const trainable = (name: string) => {
      const idx = firstLayerIdx + this.layerIndices.length;
      this.layerIndices.push([name, idx]);
      return idx >= (o.freezeLayers ?? 0);
    };
    const clamp = o.convClamp ?? null;
    this.fromrgb = inChannels === 0
      ? this.module(
        "fromrgb",
        new Conv2dLayer(imgChannels, tmpChannels, 1, {
          activation: act,
          trainable: trainable("fromrgb"),
          convClamp: clamp,
        }),
      )
      : null;
    this.conv0 = this.module(
      "conv0",
      new Conv2dLayer(tmpChannels, tmpChannels, 3, {
        activation: act,
        trainable: trainable("conv0"),
        convClamp: clamp,
      }),
    );
    this.conv1 = this.module(
      "conv1",
      new Conv2dLayer(tmpChannels, outChannels, 3, {
        activation: act,
        down: 2,
        trainable: trainable("conv1"),
        resampleFilter: filter,
        convClamp: clamp,
      }),
    );
    this.skip = this.architecture === "resnet"
      ? this.module(
        "skip",
        new Conv2dLayer(tmpChannels, outChannels, 1, {
          bias: false,
          down: 2,
          trainable: trainable("skip"),
          resampleFilter: filter,
        }),
      )
      : null;
  }

  get numLayers(): number {
    return this.layerIndices.length;
  }

  forward(x: Tensor | null, img: Tensor): Tensor {
    if (this.fromrgb) {
      const r = this.resolution;
      if (img.rank !== 4 || img.shape[1] !== this.imgChannels || img.shape[2] !== r || img.shape[3] !== r) {
        throw new Error(
          `Discriminator b${r}: images must be [N, ${this.imgChannels}, ${r}, ${r}], got [${img.shape}]`,
        );
      }
      x = this.fromrgb.forward(img);
    }
    if (!x) {
      throw new Error(`DiscriminatorBlock b${this.resolution}: needs the features of the previous block`);
    }
    if (!this.skip) return this.conv1.forward(this.conv0.forward(x));
    const g = Math.SQRT1_2;
    return add(this.skip.forward(x, g), this.conv1.forward(this.conv0.forward(x), g));
  }
}

export interface EpilogueOptions {
  mbstdGroupSize?: number;
  /** 0 disables the minibatch-std layer. */
  mbstdNumChannels?: number;
  activation?: Activation;
  convClamp?: number | null;
}

/** 4x4 head: minibatch std, conv 3x3, dense C*16 -> C, dense C -> 1 (or -> cmapDim with projection). */
export class DiscriminatorEpilogue extends Module {
  readonly conv: Conv2dLayer;
  readonly fc: FullyConnectedLayer;
  readonly out: FullyConnectedLayer;
  readonly mbstdGroupSize: number;
  readonly mbstdNumChannels: number;
  constructor(
    readonly inChannels: number,
    readonly cmapDim: number,
    readonly resolution: number,
    o: EpilogueOptions = {},
  ) {
    super();
    const act = o.activation ?? "lrelu";
    this.mbstdGroupSize = o.mbstdGroupSize ?? 4;
    this.mbstdNumChannels = o.mbstdNumChannels ?? 1;
    this.conv = this.module(
      "conv",
      new Conv2dLayer(inChannels + this.mbstdNumChannels, inChannels, 3, {
        activation: act,
        convClamp: o.convClamp,
      }),
    );
    this.fc = this.module(
      "fc",
      new FullyConnectedLayer(inChannels * resolution * resolution, inChannels, { activation: act }),
    );
    this.out = this.module("out", new FullyConnectedLayer(inChannels, cmapDim > 0 ? cmapDim : 1));
  }

  forward(x: Tensor, cmap: Tensor | null): Tensor {
    const r = this.resolution;
    if (x.rank !== 4 || x.shape[1] !== this.inChannels || x.shape[2] !== r || x.shape[3] !== r) {
      throw new Error(
        `DiscriminatorEpilogue: x must be [N, ${this.inChannels}, ${r}, ${r}], got [${x.shape}]`,
      );
    }
    if (this.mbstdNumChannels > 0) {
      x = minibatchStd(x, { groupSize: this.mbstdGroupSize, numChannels: this.mbstdNumChannels });
    }
    const y = this.out.forward(this.fc.forward(flatten(this.conv.forward(x), 1)));
    if (this.cmapDim === 0) return y;
    if (!cmap || cmap.rank !== 2 || cmap.shape[0] !== y.shape[0] || cmap.shape[1] !== this.cmapDim) {
      throw new Error(`DiscriminatorEpilogue: cmap must be [${y.shape[0]}, ${this.cmapDim}]`);
    }
    return mul(sum(mul(y, cmap), 1, true), 1 / Math.sqrt(this.cmapDim));
  }
}

export interface DiscriminatorOptions {
  architecture?: DArchitecture;
  channelBase?: number;
  channelMax?: number;
  /** Recorded for SGA compatibility; everything runs in float32. */
  numFp16Res?: number;
  convClamp?: number | null;
  /** Width of the projection (default: the channels at resolution 4). */
  cmapDim?: number | null;
  block?: { activation?: Activation; resampleFilter?: number[]; freezeLayers?: number };
  /** D's mapping network on c (SGA defaults: 8 layers, lr multiplier 0.01). */
  mapping?: {
    numLayers?: number;
    lrMultiplier?: number;
    activation?: Activation;
    embedFeatures?: number;
    layerFeatures?: number;
  };
  epilogue?: EpilogueOptions;
}

/** StyleGAN2 discriminator: images [N, C, R, R] (and c [N, cDim]) -> logits [N, 1]. */
export class Discriminator extends Module {
  readonly blocks: DiscriminatorBlock[] = [];
  readonly mapping: MappingNetwork | null;
  readonly b4: DiscriminatorEpilogue;
  readonly cmapDim: number;
  readonly blockResolutions: number[];
  constructor(
    readonly cDim: number,
    readonly imgResolution: number,
    readonly imgChannels: number,
    private readonly options: DiscriminatorOptions = {},
  ) {
    super();
    const log2 = Math.log2(imgResolution);
    if (!Number.isInteger(log2) || log2 < 3) {
      throw new Error(`Discriminator: imgResolution must be a power of two >= 8, got ${imgResolution}`);
    }
    if (!Number.isInteger(cDim) || cDim < 0) throw new Error(`Discriminator: cDim must be >= 0, got ${cDim}`);
    const base = options.channelBase ?? 32768, cmax = options.channelMax ?? 512;
    const ch = (res: number) => channelsAt(base, cmax, res);
    this.blockResolutions = Array.from({ length: log2 - 2 }, (_, i) => 2 ** (log2 - i));
    this.cmapDim = cDim > 0 ? (options.cmapDim ?? ch(4)) : 0;
    let layerIdx = 0;
    for (const res of this.blockResolutions) {
      const block = new DiscriminatorBlock(
        res < imgResolution ? ch(res) : 0,
        ch(res),
        ch(res / 2),
        res,
        imgChannels,
        layerIdx,
        {
          ...options.block,
          architecture: options.architecture,
          convClamp: options.convClamp,
        },
      );
      this.blocks.push(this.module(`b${res}`, block));
      layerIdx += block.numLayers;
    }
    this.mapping = cDim > 0
      ? this.module(
        "mapping",
        new MappingNetwork(0, cDim, this.cmapDim, null, { ...options.mapping, wAvgBeta: null }),
      )
      : null;
    this.b4 = this.module(
      "b4",
      new DiscriminatorEpilogue(ch(4), this.cmapDim, 4, {
        ...options.epilogue,
        convClamp: options.convClamp,
      }),
    );
  }

  static fromConfig(c: StyleGAN2Config, o: { freezeLayers?: number } = {}): Discriminator {
    validateConfig(c);
    return new Discriminator(c.cDim, c.resolution, c.imgChannels, {
      architecture: c.dArchitecture,
      channelBase: c.channelBase,
      channelMax: c.channelMax,
      numFp16Res: c.numFp16Res,
      convClamp: c.convClamp,
      block: { freezeLayers: o.freezeLayers },
      mapping: { numLayers: c.dMappingLayers },
      epilogue: { mbstdGroupSize: c.mbstdGroupSize, mbstdNumChannels: c.mbstdNumChannels },
    });
  }

  /** Builds a discriminator from SGA's constructor arguments (a pickle's `_init_kwargs`). */
  static fromInitKwargs(kwargs: Record<string, unknown>, o: { freezeLayers?: number } = {}): Discriminator {
    const r = new KwargsReader(kwargs, "Discriminator init kwargs");
    const b = r.sub("block_kwargs"), m = r.sub("mapping_kwargs"), e = r.sub("epilogue_kwargs");
    const arch = r.str("architecture", "resnet");
    if (arch !== "resnet" && arch !== "orig") {
      throw new Error(`Discriminator init kwargs: architecture "${arch}" is not supported (resnet, orig)`);
    }
    const blockAct = b.str("activation", "lrelu") as Activation;
    const frozen = b.num("freeze_layers", 0);
    const dims = ["c_dim", "img_resolution", "img_channels"].map((k) => r.num(k));
    const options: DiscriminatorOptions = {
      architecture: arch,
      channelBase: r.num("channel_base", 32768),
      channelMax: r.num("channel_max", 512),
      numFp16Res: r.num("num_fp16_res", 0),
      convClamp: r.numOrNull("conv_clamp", null),
      cmapDim: r.numOrNull("cmap_dim", null),
      block: {
        activation: blockAct,
        resampleFilter: b.numList("resample_filter", RESAMPLE_FILTER),
        freezeLayers: o.freezeLayers ?? frozen,
      },
      mapping: {
        numLayers: m.num("num_layers", 8),
        lrMultiplier: m.num("lr_multiplier", 0.01),
        activation: m.str("activation", "lrelu") as Activation,
        embedFeatures: m.numOrNull("embed_features", null) ?? undefined,
        layerFeatures: m.numOrNull("layer_features", null) ?? undefined,
      },
      epilogue: {
        mbstdGroupSize: e.num("mbstd_group_size", 4),
        mbstdNumChannels: e.num("mbstd_num_channels", 1),
        activation: e.str("activation", "lrelu") as Activation,
      },
    };
    b.done();
    m.done();
    e.done();
    r.done();
    return new Discriminator(dims[0], dims[1], dims[2], options);
  }

  /** The architecture as SGA's `_init_kwargs` (plain JSON). */
  initKwargs(): DiscriminatorInitKwargs {
    const o = this.options;
    const ep = o.epilogue ?? {};
    const kw: DiscriminatorInitKwargs = {
      c_dim: this.cDim,
      img_resolution: this.imgResolution,
      img_channels: this.imgChannels,
      architecture: o.architecture ?? "resnet",
      channel_base: o.channelBase ?? 32768,
      channel_max: o.channelMax ?? 512,
      num_fp16_res: o.numFp16Res ?? 0,
      conv_clamp: o.convClamp ?? null,
      cmap_dim: o.cmapDim ?? null,
      block_kwargs: {},
      mapping_kwargs: { num_layers: this.mapping?.numLayers ?? o.mapping?.numLayers ?? 8 },
      epilogue_kwargs: {
        mbstd_group_size: ep.mbstdGroupSize ?? 4,
        mbstd_num_channels: ep.mbstdNumChannels ?? 1,
      },
    };
    const blockExtra: Record<string, unknown> = {};
    if (o.block?.freezeLayers) blockExtra.freeze_layers = o.block.freezeLayers;
    if (o.block?.activation && o.block.activation !== "lrelu") blockExtra.activation = o.block.activation;
    if (o.block?.resampleFilter && o.block.resampleFilter.join() !== RESAMPLE_FILTER.join()) {
      blockExtra.resample_filter = o.block.resampleFilter;
    }
    Object.assign(kw.block_kwargs, blockExtra);
    if (o.mapping?.lrMultiplier !== undefined && o.mapping.lrMultiplier !== 0.01) {
      Object.assign(kw.mapping_kwargs, { lr_multiplier: o.mapping.lrMultiplier });
    }
    if (o.mapping?.activation && o.mapping.activation !== "lrelu") {
      Object.assign(kw.mapping_kwargs, { activation: o.mapping.activation });
    }
    if (o.mapping?.embedFeatures !== undefined) {
      Object.assign(kw.mapping_kwargs, { embed_features: o.mapping.embedFeatures });
    }
    if (o.mapping?.layerFeatures !== undefined) {
      Object.assign(kw.mapping_kwargs, { layer_features: o.mapping.layerFeatures });
    }
    if (ep.activation && ep.activation !== "lrelu") {
      Object.assign(kw.epilogue_kwargs, { activation: ep.activation });
    }
    return kw;
  }

  /** Module prefixes of the blocks' layers in Freeze-D order (index = position). */
  freezeOrder(): string[] {
    return this.blocks.flatMap((b) => b.layerIndices.map(([name]) => `b${b.resolution}.${name}`));
  }

  /** Logits [N, 1] for images [N, C, R, R] and labels c [N, cDim] (null if unconditional). */
  forward(img: Tensor, c: Tensor | null = null): Tensor {
    let x: Tensor | null = null;
    for (const block of this.blocks) x = block.forward(x, img);
    let cmap: Tensor | null = null;
    if (this.mapping) {
      if (!c) throw new Error(`Discriminator: this discriminator is conditional; pass c [N, ${this.cDim}]`);
      cmap = this.mapping.forward(null, c);
    }
    return this.b4.forward(x!, cmap);
  }
}
