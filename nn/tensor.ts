// Tensor: a GPU buffer, a shape and a dtype, always contiguous (views copy through a kernel; reshape shares
// storage). Memory is released deterministically: every tensor made inside `scope()` is disposed at its end
// unless returned from it or `keep()`-ed.

import { type DType, elementwise } from "../kernels/elementwise.ts";
import { gpu } from "../kernels/runtime.ts";

export type { DType };
export type Shape = readonly number[];

/** A node of the autograd graph: the op's inputs and a backward rule written with differentiable ops. */
export interface GradNode {
  name: string;
  inputs: Tensor[];
  /** Given the gradient of the output, the gradients of the inputs (null where none flows). */
  backward: (g: Tensor) => (Tensor | null)[];
}

class Storage {
  refs = 1;
  constructor(readonly buffer: GPUBuffer, readonly bytes: number) {}
  release(): void {
    if (--this.refs === 0) gpu().release(this.buffer);
  }
}

const scopes: Set<Tensor>[] = [];
let nextId = 0;

export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function contiguousStrides(shape: Shape): number[] {
  const s = new Array(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    s[d] = acc;
    acc *= shape[d];
  }
  return s;
}

export class Tensor {
  readonly id = nextId++;
  readonly shape: number[];
  readonly dtype: DType;
  /** Whether gradients flow to this tensor (parameters, and results of ops on them). */
  requiresGrad = false;
  gradFn: GradNode | null = null;
  /** Accumulated gradient of a leaf after `backward()`; owned by the leaf. */
  grad: Tensor | null = null;
  private storage: Storage | null;

  /** Internal: wraps storage; use the creators in nn/creation.ts. */
  constructor(storage: Storage, shape: Shape, dtype: DType) {
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) throw new Error(`invalid tensor shape [${shape}]`);
    }
    this.storage = storage;
    this.shape = [...shape];
    this.dtype = dtype;
    scopes[scopes.length - 1]?.add(this);
  }

  /** An uninitialised tensor of the given shape. */
  static empty(shape: Shape, dtype: DType = "f32"): Tensor {
    const bytes = Math.max(4, sizeOf(shape) * 4);
    return new Tensor(new Storage(gpu().alloc(bytes), bytes), shape, dtype);
  }

  /** A tensor sharing this one's storage with another shape of the same size (no copy). */
  view(shape: Shape): Tensor {
    const s = this.live();
    if (sizeOf(shape) !== this.size) {
      throw new Error(`cannot view a tensor of shape [${this.shape}] as [${shape}]`);
    }
    s.refs++;
    return new Tensor(s, shape, this.dtype);
  }

  get size(): number {
    return sizeOf(this.shape);
  }
  get rank(): number {
    return this.shape.length;
  }
  get disposed(): boolean {
    return this.storage === null;
  }
  get buffer(): GPUBuffer {
    return this.live().buffer;
  }

  private live(): Storage {
    if (!this.storage) throw new Error(`tensor #${this.id} [${this.shape}] was used after dispose()`);
    return this.storage;
  }

  /** Frees the GPU memory now (idempotent). */
  dispose(): void {
    if (!this.storage) return;
    this.storage.release();
    this.storage = null;
    this.gradFn = null;
    if (this.grad) {
      this.grad.dispose();
      this.grad = null;
    }
    for (const s of scopes) s.delete(this);
  }

  /** Reads the values back as floats (i32 tensors are converted); the host waits on the GPU here. */
  async data(opts: { checkFinite?: boolean } = {}): Promise<Float32Array> {
    const buf = await gpu().read(this.buffer, this.size * 4);
    if (this.dtype === "i32") return Float32Array.from(new Int32Array(buf));
    const out = new Float32Array(buf);
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

/** Copies host data into a new tensor. */
export function fromHost(data: Float32Array | Int32Array, shape: Shape, dtype: DType): Tensor {
  if (data.length !== sizeOf(shape)) {
    throw new Error(
      `data of length ${data.length} does not fit shape [${shape}] (${sizeOf(shape)} elements)`,
    );
  }
  const t = Tensor.empty(shape, dtype);
  if (data.length > 0) gpu().upload(t.buffer, data);
  if (dtype === "f32" && shape.length === 2 && data.length <= SMALL_HOST && data instanceof Float32Array) {
    smallHostData.set(t, data.slice());
  }
  return t;
}

/** Copies a strided view of `src` into a new contiguous tensor (permute, slice, broadcast all use it). */
export function stridedCopy(
  src: Tensor,
  shape: Shape,
  strides: number[],
  offset: number,
  name = "copy",
): Tensor {
  const out = Tensor.empty(shape, src.dtype);
  elementwise({
    name,
    expr: "in0",
    inputs: [{ buffer: src.buffer, dtype: src.dtype, strides, offset }],
    out: { buffer: out.buffer, dtype: src.dtype, strides: contiguousStrides(shape), offset: 0 },
    shape: [...shape],
  });
  return out;
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

/** Removes tensors from scope tracking: they live until dispose(). Returns its argument. */
export function keep<T>(value: T): T {
  const ts = new Set<Tensor>();
  collect(value, ts);
  for (const t of ts) for (const s of scopes) s.delete(t);
  return value;
}
