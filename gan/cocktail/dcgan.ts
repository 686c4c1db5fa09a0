// A small DCGAN-style generator: a generator of a different family than StyleGAN2, to show that merging
// only needs a source's samples. z -> dense -> [C, 4, 4] -> (transposed conv 4x4 stride 2, bias, ReLU)
// per doubling -> conv 3x3 -> tanh. No batch norm, so sampling does not depend on batch statistics.
// Snapshot: one safetensors file with the tensors by name and the config as JSON metadata.

import { noGrad } from "../../nn/autograd.ts";
import { writeFileAtomic } from "../../nn/checkpoint.ts";
import { type Generator as Rng, randn, zeros } from "../../nn/creation.ts";
import { encodeSafetensors, type HostArray, parseSafetensors } from "../../nn/io/mod.ts";
import { tensorFromHost } from "../../nn/checkpoint.ts";
import { conv2d, conv2dTranspose } from "../../nn/conv.ts";
import { Linear } from "../../nn/layers.ts";
import { Module } from "../../nn/module.ts";
import { add, clamp, mul, relu, tanh } from "../../nn/ops.ts";
import { concat, reshape } from "../../nn/shape.ts";
import { scope, type Tensor } from "../../nn/tensor.ts";
import { readTensors } from "../train/snapshot.ts";

export const DCGAN_FORMAT = "gan-cocktail-dcgan";
export const DCGAN_VERSION = 1;

export interface DcganConfig {
  resolution: number;
  channels: number;
  zDim: number;
  /** Channels at 4x4; halved at every doubling, never below minChannels. */
  baseChannels: number;
  minChannels: number;
}

export function validateDcganConfig(c: DcganConfig): DcganConfig {
  const bad = (m: string) => {
    throw new Error(`DCGAN config: ${m}`);
  };
  if (!Number.isInteger(c.resolution) || c.resolution < 4 || (c.resolution & (c.resolution - 1)) !== 0) {
    bad(`resolution must be a power of two >= 4, got ${c.resolution}`);
  }
  if (c.channels !== 1 && c.channels !== 3) bad(`channels must be 1 or 3, got ${c.channels}`);
  for (const k of ["zDim", "baseChannels", "minChannels"] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 1) bad(`${k} must be a positive integer, got ${c[k]}`);
  }
  return c;
}

/** Channels of the feature map at resolution 4 * 2^i. */
function widths(c: DcganConfig): number[] {
  const n = Math.log2(c.resolution) - 1;
  return Array.from({ length: n }, (_, i) => Math.max(c.minChannels, Math.floor(c.baseChannels / 2 ** i)));
}

// He-normal weights scaled for ReLU: std sqrt(2 / fan_in).
function he(shape: number[], fanIn: number): Tensor {
  const t = randn(shape);
  const out = noGrad(() => mul(t, Math.sqrt(2 / fanIn)));
  t.dispose();
  return out;
}

class UpBlock extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(readonly cin: number, readonly cout: number) {
    super();
    // Transposed-conv weight layout [in, out, k, k]; each output pixel sums cin * 2 * 2 taps.
    this.weight = this.param("weight", he([cin, cout, 4, 4], cin * 4));
    this.bias = this.param("bias", zeros([cout]));
  }
  forward(x: Tensor): Tensor {
    const [n, , h, w] = x.shape;
    const y = conv2dTranspose(x, this.weight, [n, this.cout, 2 * h, 2 * w], { stride: 2, padding: 1 });
    return relu(add(y, reshape(this.bias, [1, this.cout, 1, 1])));
  }
}

export class DcganGenerator extends Module {
  readonly fc: Linear;
  readonly blocks: UpBlock[] = [];
  readonly toImageWeight: Tensor;
  readonly toImageBias: Tensor;
  readonly config: DcganConfig;
  constructor(config: DcganConfig) {
    super();
    this.config = validateDcganConfig({ ...config });
    const ch = widths(this.config);
    this.fc = this.module("fc", new Linear(config.zDim, ch[0] * 16));
    for (let i = 1; i < ch.length; i++) {
      this.blocks.push(this.module(`up${i}`, new UpBlock(ch[i - 1], ch[i])));
    }
    const last = ch[ch.length - 1];
    this.toImageWeight = this.param("to_image.weight", he([config.channels, last, 3, 3], last * 9));
    this.toImageBias = this.param("to_image.bias", zeros([config.channels]));
  }

  /** Images [N, C, R, R] in (-1, 1) from z [N, zDim]. */
  forward(z: Tensor): Tensor {
    const c = this.config;
    if (z.rank !== 2 || z.shape[1] !== c.zDim) {
      throw new Error(`DcganGenerator: z must be [N, ${c.zDim}], got [${z.shape}]`);
    }
    const ch = widths(c);
    let x = reshape(relu(this.fc.forward(z)), [z.shape[0], ch[0], 4, 4]);
    for (const b of this.blocks) x = b.forward(x);
    const y = conv2d(x, this.toImageWeight, { padding: 1 });
    return tanh(add(y, reshape(this.toImageBias, [1, c.channels, 1, 1])));
  }

  /** n images in [-1, 1] without gradients (the source interface). */
  sample(n: number, o: { generator?: Rng; batchSize?: number } = {}): Tensor {
    if (!Number.isInteger(n) || n < 1) throw new Error(`DcganGenerator.sample: n must be >= 1, got ${n}`);
    const bs = o.batchSize ?? n;
    return scope(() =>
      noGrad(() => {
        const parts: Tensor[] = [];
        for (let s = 0; s < n; s += bs) {
          const m = Math.min(bs, n - s);
          parts.push(scope(() => clamp(this.forward(randn([m, this.config.zDim], o)), -1, 1)));
        }
        return parts.length === 1 ? parts[0] : concat(parts, 0);
      })
    );
  }

  /** Writes the snapshot atomically (tensors + config as metadata). */
  async save(path: string, extra: Record<string, unknown> = {}): Promise<void> {
    const named = [...this.stateDict()];
    const data = await readTensors(named.map(([, t]) => t));
    const arrays = new Map<string, HostArray>();
    named.forEach(([k, t], i) => arrays.set(k, { dtype: "f32", shape: [...t.shape], data: data[i] }));
    await writeFileAtomic(
      path,
      encodeSafetensors(arrays, {
        format: DCGAN_FORMAT,
        version: String(DCGAN_VERSION),
        config: JSON.stringify(this.config),
        info: JSON.stringify(extra),
      }),
    );
  }

  /** A generator from snapshot bytes (checked: format, version, names and shapes). */
  static fromBytes(bytes: Uint8Array, where = "DCGAN snapshot"): DcganGenerator {
    let parsed: ReturnType<typeof parseSafetensors>;
    try {
      parsed = parseSafetensors(bytes);
    } catch (e) {
      throw new Error(`${where}: ${(e as Error).message}`);
    }
    const m = parsed.metadata;
    if (m.format !== DCGAN_FORMAT) throw new Error(`${where}: not a DCGAN snapshot (format ${m.format})`);
    if (Number(m.version) !== DCGAN_VERSION) {
      throw new Error(`${where}: unsupported DCGAN version ${m.version}`);
    }
    let config: DcganConfig;
    try {
      config = JSON.parse(m.config);
    } catch {
      throw new Error(`${where}: the config metadata is not valid JSON`);
    }
    const G = new DcganGenerator(config);
    const state = new Map([...parsed.tensors].map(([k, a]) => [k, tensorFromHost(a)]));
    try {
      G.loadStateDict(state, { strict: true });
    } catch (e) {
      G.dispose();
      throw new Error(`${where}: ${(e as Error).message}`);
    } finally {
      for (const t of state.values()) t.dispose();
    }
    return G;
  }

  static async load(path: string): Promise<DcganGenerator> {
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(path);
    } catch (e) {
      throw new Error(`cannot read DCGAN snapshot ${path}: ${(e as Error).message}`);
    }
    return DcganGenerator.fromBytes(bytes, path);
  }
}
