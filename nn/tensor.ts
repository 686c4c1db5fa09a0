// Tensor: a shape, a dtype and a value node (nn/lazy.ts): a contiguous GPU buffer, or a lazy elementwise
// tree that becomes one when something needs the buffer. To users a tensor is always contiguous: views
// (permute, slice, broadcast) read their source lazily and are copied only when a kernel needs them;
// reshape shares storage. Memory is released deterministically: every tensor made inside `scope()` is disposed at its end
// unless returned from it or `keep()`-ed.

import { type DType, dtypeBytes, storageBytes } from "../kernels/elementwise.ts";
import { gpu } from "../kernels/runtime.ts";
import {
  beforeOverwrite,
  contiguous,
  drop,
  hold,
  leaf,
  materialise,
  Node,
  op,
  reshapable,
  Storage,
  viewStrides,
} from "./lazy.ts";

export type { DType };
export type Shape = readonly number[];

/** A node of the autograd graph: the op's inputs and a backward rule written with differentiable ops. */
export interface GradNode {
  name: string;
  inputs: Tensor[];
  /**
   * Given the gradient of the output, the gradients of the inputs (null where none flows); `needs[j]`
   * says whether input j's gradient is wanted (see record in nn/autograd.ts).
   */
  backward: (g: Tensor, needs: readonly boolean[]) => (Tensor | null)[];
}

const scopes: Set<Tensor>[] = [];
let nextId = 0;

export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function contiguousStrides(shape: Shape): number[] {
  return contiguous(shape);
}

export class Tensor {
  readonly id = nextId++;
  readonly shape: number[];
  private _dtype: DType;
  /** Whether gradients flow to this tensor (parameters, and results of ops on them). */
  requiresGrad = false;
  gradFn: GradNode | null = null;
  /** Accumulated gradient of a leaf after `backward()`; owned by the leaf. */
  grad: Tensor | null = null;
  private node: Node | null;

  /** Internal: wraps a value node (taking a hold on it); use the creators in nn/creation.ts. */
  constructor(node: Node, dtype: DType) {
    this.node = hold(node);
    this.shape = [...node.shape];
    this._dtype = dtype;
    scopes[scopes.length - 1]?.add(this);
  }

  get dtype(): DType {
    return this._dtype;
  }

  /**
   * Converts the values to another float dtype in place: the same Tensor object gets a new buffer (modules
   * and their layers hold parameters by reference, so Module.toPrecision casts through this). Lazy values
   * that read the old buffer keep reading it. Not differentiable: for parameters, not for activations.
   */
  castInPlace(dtype: "f32" | "f16"): void {
    const n = this.live();
    if (this._dtype === dtype) return;
    if (this._dtype === "i32") throw new Error(`castInPlace: tensor #${this.id} is i32, not a float`);
    if (dtype === "f16") requireShaderF16();
    const next = hold(op("in0", [n], [...n.shape], dtype));
    materialise(next);
    drop(n);
    this.node = next;
    this._dtype = dtype;
    this.gradFn = null;
  }

  /** An uninitialised tensor of the given shape. */
  static empty(shape: Shape, dtype: DType = "f32"): Tensor {
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) throw new Error(`invalid tensor shape [${shape}]`);
    }
    if (dtype === "f16") requireShaderF16();
    const bytes = storageBytes(sizeOf(shape), dtype);
    const storage = new Storage(gpu().alloc(bytes), bytes);
    const n = leaf(storage, [...shape], dtype);
    storage.release(); // the leaf holds it
    return new Tensor(n, dtype);
  }

  /** Internal: a tensor whose value is `node` (a lazy elementwise tree or a leaf). */
  static fromNode(node: Node): Tensor {
    return new Tensor(node, node.dtype);
  }

  /** Internal: the value node (for building lazy ops). */
  get valueNode(): Node {
    return this.live();
  }

  /** The same values with another shape of the same size (no copy where the layout allows one). */
  view(shape: Shape): Tensor {
    const n = this.live();
    if (sizeOf(shape) !== this.size) {
      throw new Error(`cannot view a tensor of shape [${this.shape}] as [${shape}]`);
    }
    const same = shape.length === this.rank && shape.every((d, i) => d === this.shape[i]);
    if (same) return new Tensor(n, this.dtype);
    if (n.isLeaf && !n.contiguous) {
      // A strided view (slice, permute, broadcast) stays one where its strides allow the new shape.
      const st = viewStrides(n.shape, n.strides, shape);
      if (st) return new Tensor(leaf(n.storage!, [...shape], this.dtype, st, n.offset), this.dtype);
    }
    if (!n.isLeaf && reshapable(n, [...shape])) {
      return Tensor.fromNode(op("in0", [n], [...shape], this.dtype, [], "", true));
    }
    const s = materialise(n);
    return new Tensor(leaf(s, [...shape], this.dtype), this.dtype);
  }

  get size(): number {
    return sizeOf(this.shape);
  }
  get rank(): number {
    return this.shape.length;
  }
  get disposed(): boolean {
    return this.node === null;
  }
  /** Whether the value is still a lazy tree (not yet computed into a buffer of its own). */
  get lazy(): boolean {
    return !this.live().contiguous;
  }
  /** The contiguous buffer holding the values (computing a lazy value first). */
  get buffer(): GPUBuffer {
    return materialise(this.live()).buffer;
  }
  /**
   * The buffer, for a kernel that writes into it in place (optimisers, copies): lazy values that read
   * it are computed first, so they keep the values they had.
   */
  get writableBuffer(): GPUBuffer {
    const s = materialise(this.live());
    beforeOverwrite(s);
    return s.buffer;
  }

  private live(): Node {
    if (!this.node) throw new Error(`tensor #${this.id} [${this.shape}] was used after dispose()`);
    return this.node;
  }

  /** Frees the GPU memory now (idempotent). */
  dispose(): void {
    if (!this.node) return;
    drop(this.node);
    this.node = null;
    this.gradFn = null;
    if (this.grad) {
      this.grad.dispose();
      this.grad = null;
    }
    for (const s of scopes) s.delete(this);
  }

  /** Bytes of GPU memory the values take (f16: 2 per element, padded to 4). */
  get bytes(): number {
    return storageBytes(this.size, this.dtype);
  }

  /** Reads the values back as floats (i32 and f16 tensors are converted); the host waits on the GPU here. */
  async data(opts: { checkFinite?: boolean } = {}): Promise<Float32Array> {
    const buf = await gpu().read(this.buffer, this.size * dtypeBytes(this.dtype));
    if (this.dtype === "i32") return Float32Array.from(new Int32Array(buf));
    const out = this.dtype === "f16" ? Float32Array.from(new Float16Array(buf)) : new Float32Array(buf);
    if (opts.checkFinite) {
      for (let i = 0; i < out.length; i++) {
        if (!Number.isFinite(out[i])) {
          throw new Error(`non-finite value ${out[i]} at flat index ${i} of tensor [${this.shape}]`);
        }
      }
    }
    return out;
  }

  /** Reads an i32 tensor back. */
  async ints(): Promise<Int32Array> {
    if (this.dtype !== "i32") throw new Error(`ints() needs an i32 tensor, this one is ${this.dtype}`);
    return new Int32Array(await gpu().read(this.buffer, this.size * 4));
  }

  /** The single value of a one-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1) throw new Error(`item() needs a one-element tensor, got shape [${this.shape}]`);
    return (await this.data())[0];
  }

  /** Nested JS arrays (for printing and small tests). */
  async toArray(): Promise<unknown> {
    const d = Array.from(await this.data());
    const build = (dim: number, off: number): unknown => {
      if (dim === this.rank) return d[off];
      const stride = sizeOf(this.shape.slice(dim + 1));
      return Array.from({ length: this.shape[dim] }, (_, i) => build(dim + 1, off + i * stride));
    };
    return build(0, 0);
  }

  toString(): string {
    return `Tensor(#${this.id}, [${this.shape}], ${this.dtype}${this.requiresGrad ? ", grad" : ""})`;
  }
}

// The host data small 2-D f32 tensors were made from, so facts about their values (a filter's
// separability, nn/upfirdn2d.ts) can be derived without a read-back. Only copyInto's destination sees
// these values again, and it takes them over from its source there.
const SMALL_HOST = 64;
const smallHostData = new WeakMap<Tensor, Float32Array>();

/** The data a small 2-D f32 tensor was created from on the host, if it was (see smallHostData). */
export function creationData(t: Tensor): Float32Array | undefined {
  return smallHostData.get(t);
}

/** Throws a clear error where f16 tensors cannot exist: the device lacks shader-f16. */
export function requireShaderF16(): void {
  if (!gpu().device.features.has("shader-f16")) {
    throw new Error(
      "f16 tensors need the shader-f16 feature, which this adapter does not offer (check " +
        "gpu().probeShaderF16() before choosing f16)",
    );
  }
}

/** Copies host data into a new tensor (f16: the values are rounded to f16 on the host). */
export function fromHost(data: Float32Array | Int32Array, shape: Shape, dtype: DType): Tensor {
  if (data.length !== sizeOf(shape)) {
    throw new Error(
      `data of length ${data.length} does not fit shape [${shape}] (${sizeOf(shape)} elements)`,
    );
  }
  const t = Tensor.empty(shape, dtype);
  if (dtype === "f16") {
    if (data.length > 0) gpu().upload(t.buffer, padToWords(Float16Array.from(data)));
    return t;
  }
  if (data.length > 0) gpu().upload(t.buffer, data);
  if (dtype === "f32" && shape.length === 2 && data.length <= SMALL_HOST && data instanceof Float32Array) {
    smallHostData.set(t, data.slice());
  }
  return t;
}

// writeBuffer copies whole 4-byte words: an odd number of halves gets one zero half.
function padToWords(h: Float16Array): Float16Array {
  if (h.length % 2 === 0) return h;
  const out = new Float16Array(h.length + 1);
  out.set(h);
  return out;
}

/**
 * A strided view of `src` (element `strides` and `offset` into its contiguous layout) as a tensor: read
 * lazily by the kernel that consumes it, copied once if a non-elementwise kernel needs its buffer.
 */
export function stridedCopy(
  src: Tensor,
  shape: Shape,
  strides: number[],
  offset: number,
  _name = "copy",
): Tensor {
  const s = materialise(src.valueNode);
  return new Tensor(leaf(s, [...shape], src.dtype, [...strides], offset), src.dtype);
}

// ---- scopes ----

/** Runs fn; disposes every tensor created inside that is not part of the result or kept. */
export function scope<T>(fn: () => T): T {
  scopes.push(new Set());
  let result: T;
  try {
    result = fn();
  } catch (e) {
    endScope(undefined);
    throw e;
  }
  if (result instanceof Promise) {
    throw new Error("scope() takes a synchronous function; use scopeAsync() for async work");
  }
  endScope(result);
  return result;
}

/** Async variant of scope(); do not interleave two scopes concurrently. */
export async function scopeAsync<T>(fn: () => Promise<T>): Promise<T> {
  scopes.push(new Set());
  let result: T;
  try {
    result = await fn();
  } catch (e) {
    endScope(undefined);
    throw e;
  }
  endScope(result);
  return result;
}

function collect(value: unknown, into: Set<Tensor>, seen = new Set<unknown>()): void {
  if (value instanceof Tensor) {
    into.add(value);
    return;
  }
  if (value === null || typeof value !== "object" || seen.has(value)) return;
  seen.add(value);
  const iter = value instanceof Map ? value.values() : Array.isArray(value) ? value : Object.values(value);
  for (const v of iter) collect(v, into, seen);
}

function endScope(result: unknown): void {
  const mine = scopes.pop()!;
  const keepSet = new Set<Tensor>();
  collect(result, keepSet);
  const parent = scopes[scopes.length - 1];
  for (const t of mine) {
    if (keepSet.has(t)) parent?.add(t);
    else t.dispose();
  }
}

/**
 * Removes tensors from scope tracking: they live until dispose(). Returns its argument. A kept value is
 * computed into its own buffer now: a lazy tree kept across steps would otherwise hold every buffer it
 * reads (and grow, like running statistics updated from themselves).
 */
export function keep<T>(value: T): T {
  const ts = new Set<Tensor>();
  collect(value, ts);
  for (const t of ts) {
    for (const s of scopes) s.delete(t);
    if (!t.disposed) void t.buffer;
  }
  return value;
}
