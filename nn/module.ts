// Modules: parameters, buffers and children under dotted names (`synthesis.b8.conv0.weight`), so a state
// dict maps one-to-one onto the reference implementation's.

import { axpbyIntoMulti } from "../kernels/axpby_multi.ts";
import { gpu } from "../kernels/runtime.ts";
import { noGrad } from "./autograd.ts";
import { axpby, cast } from "./ops.ts";
import { keep, type Tensor } from "./tensor.ts";
import { carrySeparableMark } from "./upfirdn2d.ts";
import { UpdateGroups } from "./update_groups.ts";

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

/** Tensors one multi-tensor in-place update dispatch takes at most (keeps its shader small). */
const MAX_AXPBY_PER_DISPATCH = 16;

/** dst <- a * src + b * dst, in place. */
export interface AxpbyUpdate {
  dst: Tensor;
  src: Tensor;
  a: number;
  b: number;
}

/**
 * Every update in place, in order: f32 ones in one dispatch per up to 16 (kernels/axpby_multi.ts),
 * bit-identical to copyInto(axpby(src, a, dst, b), dst) one by one (which f16 ones still take). An
 * EMA of weights (emaInto) and BatchNorm's running statistics are this. Records GPU work only.
 */
export function axpbyInto(updates: AxpbyUpdate[]): void {
  updates.forEach(({ dst: d, src: s }, k) => {
    if (d.size !== s.size) throw new Error(`axpbyInto: update ${k} is [${s.shape}] into [${d.shape}]`);
    if (d.dtype === "i32" || s.dtype === "i32") {
      throw new Error(`axpbyInto: update ${k} is i32 (copy integer state instead)`);
    }
  });
  const groups = new UpdateGroups(axpbyIntoMulti, MAX_AXPBY_PER_DISPATCH);
  updates.forEach(({ dst, src, a, b }, k) => {
    if (dst.dtype !== "f32" || src.dtype !== "f32") {
      // f16 state (a module after toPrecision): the elementwise path, stored back in dst's dtype.
      groups.flush();
      noGrad(() => copyInto(cast(axpby(src, a, dst, b), dst.dtype), dst));
      return;
    }
    groups.add(`axpbyInto: update ${k}`, [dst], src, ([d], s) => ({ dst: d, src: s, n: dst.size, a, b }));
  });
  groups.flush();
}

/** dst_k <- beta * dst_k + (1 - beta) * src_k for every pair (an EMA of weights; see axpbyInto). */
export function emaInto(dsts: Tensor[], srcs: Tensor[], beta: number): void {
  if (dsts.length !== srcs.length) throw new Error(`emaInto: ${dsts.length} targets, ${srcs.length} sources`);
  if (!(beta >= 0 && beta <= 1)) throw new Error(`emaInto: beta must be in [0, 1], got ${beta}`);
  dsts.forEach((d, k) => {
    if (d.shape.join() !== srcs[k].shape.join()) {
      throw new Error(`emaInto: pair ${k} is [${srcs[k].shape}] into [${d.shape}]`);
    }
  });
  axpbyInto(dsts.map((dst, k) => ({ dst, src: srcs[k], a: 1 - beta, b: beta })));
}
