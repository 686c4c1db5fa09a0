// Modules: parameters, buffers and children under dotted names (`synthesis.b8.conv0.weight`), so a state
// dict maps one-to-one onto the reference implementation's.

import { gpu } from "../kernels/runtime.ts";
import { keep, type Tensor } from "./tensor.ts";
import { carrySeparableMark } from "./upfirdn2d.ts";

export class Module {
  private readonly params = new Map<string, Tensor>();
  private readonly buffers = new Map<string, Tensor>();
  private readonly children = new Map<string, Module>();
  training = true;

  /** Registers a trainable parameter (it lives until the module is disposed). */
  protected param(name: string, t: Tensor): Tensor {
    keep(t);
    t.requiresGrad = true;
    this.params.set(name, t);
    return t;
  }

  /** Registers a non-trainable state tensor (running statistics, w_avg, ...). */
  protected buffer(name: string, t: Tensor): Tensor {
    keep(t);
    this.buffers.set(name, t);
    return t;
  }

  /** Replaces a registered buffer's tensor (the old one is disposed). */
  protected setBuffer(name: string, t: Tensor): Tensor {
    const old = this.buffers.get(name);
    if (!old) throw new Error(`no buffer named ${name}`);
    keep(t);
    this.buffers.set(name, t);
    if (old !== t) old.dispose();
    return t;
  }

  protected module<M extends Module>(name: string, m: M): M {
    this.children.set(name, m);
    return m;
  }

  namedParameters(prefix = ""): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, t] of this.params) out.push([prefix + n, t]);
    for (const [n, m] of this.children) out.push(...m.namedParameters(`${prefix}${n}.`));
    return out;
  }

  namedBuffers(prefix = ""): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, t] of this.buffers) out.push([prefix + n, t]);
    for (const [n, m] of this.children) out.push(...m.namedBuffers(`${prefix}${n}.`));
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  namedModules(prefix = ""): [string, Module][] {
    const out: [string, Module][] = [[prefix.replace(/\.$/, ""), this]];
    for (const [n, m] of this.children) out.push(...m.namedModules(`${prefix}${n}.`));
    return out;
  }

  /** Parameters and buffers by dotted name. */
  stateDict(): Map<string, Tensor> {
    return new Map([...this.namedParameters(), ...this.namedBuffers()]);
  }

  /** Copies values into this module's tensors (shapes must match); strict: every name must be present. */
  loadStateDict(state: Map<string, Tensor>, { strict = true } = {}): void {
    const mine = this.stateDict();
    if (strict) {
      const missing = [...mine.keys()].filter((k) => !state.has(k));
      const extra = [...state.keys()].filter((k) => !mine.has(k));
      if (missing.length || extra.length) {
        throw new Error(
          `state dict mismatch: missing [${missing.slice(0, 8).join(", ")}${
            missing.length > 8 ? ", ..." : ""
          }]` +
            `, unexpected [${extra.slice(0, 8).join(", ")}${extra.length > 8 ? ", ..." : ""}]`,
        );
      }
    }
    for (const [k, dst] of mine) {
      const src = state.get(k);
      if (!src) continue;
      if (src.shape.join() !== dst.shape.join()) {
        throw new Error(`state dict: ${k} has shape [${src.shape}], the module expects [${dst.shape}]`);
      }
      copyInto(src, dst);
    }
  }

  train(on = true): this {
    for (const [, m] of this.namedModules()) m.training = on;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  dispose(): void {
    for (const [, t] of [...this.namedParameters(), ...this.namedBuffers()]) t.dispose();
  }

  /**
   * Stores every float parameter and buffer as `dtype` (in place: the same tensors, new buffers), so
   * the same forward code runs in that precision: kernels follow their operands' dtypes (f16 storage,
   * f32 arithmetic). FIR filters (names ending in `filter`) stay f32: upfirdn2d reads its taps in f32
   * and derives their separability from the f32 values. f16 needs shader-f16 (Runtime.probeShaderF16).
   */
  toPrecision(dtype: "f32" | "f16"): this {
    for (const [name, t] of [...this.namedParameters(), ...this.namedBuffers()]) {
      if (t.dtype === "i32" || /filter$/.test(name)) continue;
      t.castInPlace(dtype);
    }
    return this;
  }

  /** The dtype of the first float parameter (what toPrecision set), f32 for a module without any. */
  get precision(): "f32" | "f16" {
    const p = this.namedParameters().find(([, t]) => t.dtype !== "i32");
    return p?.[1].dtype === "f16" ? "f16" : "f32";
  }
}

/** Copies src's values into dst in place (same size and dtype), keeping dst's identity. */
export function copyInto(src: Tensor, dst: Tensor): void {
  if (src.size !== dst.size) throw new Error(`copyInto: sizes ${src.size} and ${dst.size} differ`);
  if (src.dtype !== dst.dtype) throw new Error(`copyInto: dtypes ${src.dtype} and ${dst.dtype} differ`);
  if (src.buffer === dst.buffer) return;
  gpu().copy(src.buffer, 0, dst.writableBuffer, 0, src.bytes);
  // Facts derived from dst's old values no longer hold (a filter's separability).
  carrySeparableMark(src, dst);
}
