// Checked access to a user-supplied weight file: every expected tensor is looked up by name and shape, and
// all problems (missing names, wrong shapes) are reported together in one error that says which network
// the file was expected to hold, so a truncated or foreign file fails clearly instead of computing garbage.

import { type HostArray, toFloat32 } from "../../nn/io/host.ts";
import { loadStateDict } from "../../nn/io/torch.ts";

const MAX_LISTED = 12;

/** Reads a weight file (torch zip / TorchScript / legacy / npz / safetensors) as named host arrays. */
export async function readWeightFile(path: string | URL, what: string): Promise<Map<string, HostArray>> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new Error(`cannot read ${what} weight file ${path}: ${(e as Error).message}`);
  }
  try {
    return loadStateDict(bytes);
  } catch (e) {
    throw new Error(`${what} weight file ${path} could not be read: ${(e as Error).message}`);
  }
}

/** Looks tensors up by name, collecting every problem; `check()` throws them all at once. */
export class WeightReader {
  private readonly missing: string[] = [];
  private readonly wrongShape: string[] = [];
  private found = 0;

  constructor(
    private readonly arrays: Map<string, HostArray>,
    /** Names the network and the file, e.g. "inception-v3-tf2015 (pytorch-fid layout) from x.pth". */
    private readonly what: string,
  ) {}

  /** The tensor `name` as float32 with exactly `shape`, or null (recorded as a problem). */
  take(name: string, shape: readonly number[]): Float32Array | null {
    const a = this.arrays.get(name);
    if (!a) {
      this.missing.push(`${name} [${shape}]`);
      return null;
    }
    this.found++;
    if (a.shape.join() !== shape.join()) {
      this.wrongShape.push(`${name}: file has [${a.shape}], expected [${shape}]`);
      return null;
    }
    return toFloat32(a);
  }

  /** Like take(), but an absent tensor is not a problem (e.g. a batch-norm scale the TF graph lacks). */
  optional(name: string, shape: readonly number[]): Float32Array | null {
    return this.arrays.has(name) ? this.take(name, shape) : null;
  }

  /** Throws one error listing every missing or mis-shaped tensor. */
  check(): void {
    if (!this.missing.length && !this.wrongShape.length) return;
    const lines: string[] = [];
    const list = (title: string, items: string[]) => {
      if (!items.length) return;
      lines.push(`${title} (${items.length}):`);
      for (const s of items.slice(0, MAX_LISTED)) lines.push(`  ${s}`);
      if (items.length > MAX_LISTED) lines.push(`  ... and ${items.length - MAX_LISTED} more`);
    };
    list("missing tensors", this.missing);
    list("tensors with the wrong shape", this.wrongShape);
    if (this.found === 0) {
      const names = [...this.arrays.keys()];
      lines.push(
        `none of the expected names is in the file: it is not this network's weight file ` +
          `(it holds ${names.length} tensors, e.g. ${names.slice(0, 5).join(", ") || "none"})`,
      );
    } else if (this.missing.length) {
      lines.push("the file may be truncated, or hold a different variant of the network");
    }
    throw new Error(`${this.what}: the weight file does not match the network.\n${lines.join("\n")}`);
  }
}

/**
 * Folds an inference batch norm into the preceding bias-free convolution:
 * w' = w * g / sqrt(var + eps), b' = beta - mean * g / sqrt(var + eps) (float64 arithmetic).
 */
export function foldBatchNorm(
  w: Float32Array,
  cout: number,
  bn: { gamma: Float32Array | null; beta: Float32Array; mean: Float32Array; variance: Float32Array },
  eps: number,
): { weight: Float32Array; bias: Float32Array } {
  const per = w.length / cout;
  if (!Number.isInteger(per)) {
    throw new Error(`foldBatchNorm: weight of ${w.length} values has no ${cout} rows`);
  }
  const weight = new Float32Array(w.length);
  const bias = new Float32Array(cout);
  for (let o = 0; o < cout; o++) {
    const s = (bn.gamma ? bn.gamma[o] : 1) / Math.sqrt(bn.variance[o] + eps);
    if (!Number.isFinite(s)) throw new Error(`foldBatchNorm: channel ${o} has variance ${bn.variance[o]}`);
    for (let j = 0; j < per; j++) weight[o * per + j] = w[o * per + j] * s;
    bias[o] = bn.beta[o] - bn.mean[o] * s;
  }
  return { weight, bias };
}
