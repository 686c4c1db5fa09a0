// StyleGAN2 architecture configurations: one flat type, named presets (SGA's train.py configurations and
// small ones that train on a CPU adapter), and the conversion to SGA's constructor arguments
// (`_init_kwargs`), which is also what checkpoints record.

/** Everything that fixes the shapes and the forward computation of a G/D pair. */
export interface StyleGAN2Config {
  resolution: number;
  imgChannels: number;
  zDim: number;
  wDim: number;
  /** Number of classes (0 = unconditional). */
  cDim: number;
  /** Dense layers of G's mapping network. */
  mappingLayers: number;
  /** Dense layers of D's mapping network on c (only when cDim > 0); SGA keeps its default 8. */
  dMappingLayers: number;
  channelBase: number;
  channelMax: number;
  /** Clamp of conv outputs in G and D (SGA's train.py: 256); null = none. */
  convClamp: number | null;
  mbstdGroupSize: number;
  mbstdNumChannels: number;
  /** D architecture: "resnet" (default) or "orig" (SGA's cifar configuration). */
  dArchitecture: "resnet" | "orig";
  /** Recorded for SGA compatibility only: this engine computes everything in float32. */
  numFp16Res: number;
}

/** The training recipe that goes with a preset (REFERENCE.md 3); consumed by the training loop. */
export interface StyleGAN2Recipe {
  batch: number;
  lr: number;
  r1Gamma: number;
  emaKimg: number;
  /** EMA ramp-up fraction, null = none. */
  emaRampup: number | null;
  plWeight: number;
  styleMixingProb: number;
}

const SGA_COMMON = {
  imgChannels: 3,
  zDim: 512,
  wDim: 512,
  cDim: 0,
  dMappingLayers: 8,
  channelMax: 512,
  convClamp: 256,
  mbstdNumChannels: 1,
  dArchitecture: "resnet",
  numFp16Res: 4,
} as const;

const TINY_COMMON = {
  imgChannels: 3,
  zDim: 64,
  wDim: 64,
  cDim: 0,
  mappingLayers: 2,
  dMappingLayers: 2,
  convClamp: 256,
  mbstdGroupSize: 4,
  mbstdNumChannels: 1,
  dArchitecture: "resnet",
  numFp16Res: 0,
} as const;

/** The recipe of the tiny presets (lr and R1 gamma of the small-resolution configs, no path length reg). */
const TINY_RECIPE: StyleGAN2Recipe = {
  batch: 16,
  lr: 0.0025,
  r1Gamma: 0.1,
  emaKimg: 1,
  emaRampup: 0.05,
  plWeight: 0,
  styleMixingProb: 0,
};

export const PRESETS: Record<string, { arch: StyleGAN2Config; recipe: StyleGAN2Recipe }> = {
  // SGA "cifar": note SGA switches D to the 'orig' architecture (no residual skips) for it.
  cifar: {
    arch: {
      ...SGA_COMMON,
      resolution: 32,
      channelBase: 32768,
      mappingLayers: 2,
      mbstdGroupSize: 32,
      dArchitecture: "orig",
    },
    recipe: {
      batch: 64,
      lr: 0.0025,
      r1Gamma: 0.01,
      emaKimg: 500,
      emaRampup: 0.05,
      plWeight: 0,
      styleMixingProb: 0,
    },
  },
  paper256: {
    arch: { ...SGA_COMMON, resolution: 256, channelBase: 16384, mappingLayers: 8, mbstdGroupSize: 8 },
    recipe: {
      batch: 64,
      lr: 0.0025,
      r1Gamma: 1,
      emaKimg: 20,
      emaRampup: null,
      plWeight: 2,
      styleMixingProb: 0.9,
    },
  },
  // The GAN Cocktail runs (SGA's "stylegan2" configuration); the resolution is the data's.
  cocktail: {
    arch: { ...SGA_COMMON, resolution: 256, channelBase: 32768, mappingLayers: 8, mbstdGroupSize: 4 },
    recipe: {
      batch: 32,
      lr: 0.002,
      r1Gamma: 10,
      emaKimg: 10,
      emaRampup: null,
      plWeight: 2,
      styleMixingProb: 0.9,
    },
  },
  // Small networks for the CPU adapter (channels 64/64/32/16 at 4/8/16/32).
  tiny32: {
    arch: { ...TINY_COMMON, resolution: 32, channelBase: 512, channelMax: 64 },
    recipe: { ...TINY_RECIPE },
  },
  // channels 64/64/32 at 4/8/16.
  tiny16: {
    arch: { ...TINY_COMMON, resolution: 16, channelBase: 512, channelMax: 64 },
    recipe: { ...TINY_RECIPE },
  },
};

/** A preset's architecture with overrides, validated. */
export function presetConfig(name: string, overrides: Partial<StyleGAN2Config> = {}): StyleGAN2Config {
  const p = PRESETS[name];
  if (!p) throw new Error(`unknown StyleGAN2 preset "${name}" (known: ${Object.keys(PRESETS).join(", ")})`);
  return validateConfig({ ...p.arch, ...overrides });
}

/** A preset's training recipe. */
export function presetRecipe(name: string): StyleGAN2Recipe {
  const p = PRESETS[name];
  if (!p) throw new Error(`unknown StyleGAN2 preset "${name}" (known: ${Object.keys(PRESETS).join(", ")})`);
  return { ...p.recipe };
}

const isPow2 = (n: number) => Number.isInteger(n) && n >= 4 && (n & (n - 1)) === 0;
const posInt = (n: number) => Number.isInteger(n) && n > 0;

/** Checks a configuration and returns it; every failure names the field. */
export function validateConfig(c: StyleGAN2Config): StyleGAN2Config {
  const bad = (msg: string) => {
    throw new Error(`StyleGAN2 config: ${msg}`);
  };
  if (!isPow2(c.resolution)) bad(`resolution must be a power of two >= 4, got ${c.resolution}`);
  for (const k of ["imgChannels", "wDim", "mappingLayers", "channelBase", "channelMax"] as const) {
    if (!posInt(c[k])) bad(`${k} must be a positive integer, got ${c[k]}`);
  }
  for (const k of ["zDim", "cDim", "dMappingLayers", "numFp16Res", "mbstdNumChannels"] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 0) bad(`${k} must be a non-negative integer, got ${c[k]}`);
  }
  if (c.zDim === 0 && c.cDim === 0) bad("zDim and cDim cannot both be 0");
  if (c.cDim > 0 && c.dMappingLayers < 1) bad("a conditional D needs dMappingLayers >= 1");
  if (!posInt(c.mbstdGroupSize)) bad(`mbstdGroupSize must be a positive integer, got ${c.mbstdGroupSize}`);
  if (c.convClamp !== null && !(c.convClamp > 0)) {
    bad(`convClamp must be positive or null, got ${c.convClamp}`);
  }
  if (c.dArchitecture !== "resnet" && c.dArchitecture !== "orig") {
    bad(`dArchitecture must be "resnet" or "orig", got ${JSON.stringify(c.dArchitecture)}`);
  }
  if (Math.min(Math.floor(c.channelBase / c.resolution), c.channelMax) < 1) {
    bad(`channelBase ${c.channelBase} gives no channels at resolution ${c.resolution}`);
  }
  return c;
}

/** Channels of the layers at resolution `res` (SGA: min(channel_base // res, channel_max)). */
export function channelsAt(channelBase: number, channelMax: number, res: number): number {
  return Math.min(Math.floor(channelBase / res), channelMax);
}

// ---- SGA constructor arguments (snake_case JSON, as in a pickle's _init_kwargs) ----

export interface GeneratorInitKwargs {
  z_dim: number;
  c_dim: number;
  w_dim: number;
  img_resolution: number;
  img_channels: number;
  mapping_kwargs: { num_layers: number };
  synthesis_kwargs: {
    channel_base: number;
    channel_max: number;
    num_fp16_res: number;
    conv_clamp: number | null;
  };
}

export interface DiscriminatorInitKwargs {
  c_dim: number;
  img_resolution: number;
  img_channels: number;
  architecture: "resnet" | "orig";
  channel_base: number;
  channel_max: number;
  num_fp16_res: number;
  conv_clamp: number | null;
  cmap_dim: number | null;
  block_kwargs: Record<string, never>;
  mapping_kwargs: { num_layers: number };
  epilogue_kwargs: { mbstd_group_size: number; mbstd_num_channels: number };
}

export function generatorInitKwargs(c: StyleGAN2Config): GeneratorInitKwargs {
  return {
    z_dim: c.zDim,
    c_dim: c.cDim,
    w_dim: c.wDim,
    img_resolution: c.resolution,
    img_channels: c.imgChannels,
    mapping_kwargs: { num_layers: c.mappingLayers },
    synthesis_kwargs: {
      channel_base: c.channelBase,
      channel_max: c.channelMax,
      num_fp16_res: c.numFp16Res,
      conv_clamp: c.convClamp,
    },
  };
}

export function discriminatorInitKwargs(c: StyleGAN2Config): DiscriminatorInitKwargs {
  return {
    c_dim: c.cDim,
    img_resolution: c.resolution,
    img_channels: c.imgChannels,
    architecture: c.dArchitecture,
    channel_base: c.channelBase,
    channel_max: c.channelMax,
    num_fp16_res: c.numFp16Res,
    conv_clamp: c.convClamp,
    cmap_dim: null,
    block_kwargs: {},
    mapping_kwargs: { num_layers: c.dMappingLayers },
    epilogue_kwargs: { mbstd_group_size: c.mbstdGroupSize, mbstd_num_channels: c.mbstdNumChannels },
  };
}

type Json = Record<string, unknown>;

// Arguments that only change precision or memory layout in SGA: accepted and ignored here.
const IGNORED = new Set(["num_fp16_res", "fp16_channels_last", "channels_last"]);

/** Reads keys of a kwargs object, refusing unknown ones (an unknown key may change the architecture). */
export class KwargsReader {
  private readonly seen = new Set<string>();
  constructor(private readonly obj: Json, private readonly where: string) {
    if (obj === null || typeof obj !== "object" || Array.isArray(obj)) {
      throw new Error(`${where}: expected an object of keyword arguments, got ${JSON.stringify(obj)}`);
    }
  }
  num(key: string, fallback?: number | null): number {
    const v = this.get(key, fallback);
    if (typeof v !== "number" || !Number.isFinite(v)) {
      throw new Error(`${this.where}.${key} must be a number, got ${v}`);
    }
    return v;
  }
  numOrNull(key: string, fallback: number | null): number | null {
    const v = this.get(key, fallback);
    if (v === null) return null;
    if (typeof v !== "number" || !Number.isFinite(v)) {
      throw new Error(`${this.where}.${key} must be a number or null, got ${v}`);
    }
    return v;
  }
  bool(key: string, fallback: boolean): boolean {
    const v = this.get(key, fallback);
    if (typeof v !== "boolean") throw new Error(`${this.where}.${key} must be true or false, got ${v}`);
    return v;
  }
  numList(key: string, fallback: number[]): number[] {
    const v = this.get(key, fallback);
    if (!Array.isArray(v) || v.length === 0 || v.some((a) => typeof a !== "number" || !Number.isFinite(a))) {
      throw new Error(`${this.where}.${key} must be a non-empty list of numbers, got ${JSON.stringify(v)}`);
    }
    return v;
  }
  str(key: string, fallback: string): string {
    const v = this.get(key, fallback);
    if (typeof v !== "string") throw new Error(`${this.where}.${key} must be a string, got ${v}`);
    return v;
  }
  sub(key: string): KwargsReader {
    return new KwargsReader((this.get(key, {}) ?? {}) as Json, `${this.where}.${key}`);
  }
  /** Throws if the object holds keys nobody read (except the ignored ones). */
  done(): void {
    const extra = Object.keys(this.obj).filter((k) => !this.seen.has(k) && !IGNORED.has(k));
    if (extra.length) throw new Error(`${this.where}: unsupported argument(s) ${extra.join(", ")}`);
  }
  private get(key: string, fallback: unknown): unknown {
    this.seen.add(key);
    if (key in this.obj && this.obj[key] !== undefined) return this.obj[key];
    if (fallback === undefined) throw new Error(`${this.where}: missing argument ${key}`);
    return fallback;
  }
}
