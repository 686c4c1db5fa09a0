// Creating tensors: from host data, constants, ranges, and seeded random numbers generated on the GPU by a
// counter-based hash (the same seed and call sequence give the same numbers on any adapter).

import { elementwise } from "../kernels/elementwise.ts";
import { op } from "./lazy.ts";
import { contiguousStrides, type DType, fromHost, type Shape, sizeOf, Tensor } from "./tensor.ts";

type Nested = number | boolean | Nested[];

function flatten(data: Nested, shape: number[], out: number[], depth = 0): void {
  if (Array.isArray(data)) {
    if (shape.length <= depth) shape.push(data.length);
    else if (shape[depth] !== data.length) {
      throw new Error(
        `ragged nested array: length ${data.length} at depth ${depth}, expected ${shape[depth]}`,
      );
    }
    for (const d of data) flatten(d, shape, out, depth + 1);
  } else {
    if (shape.length !== depth) throw new Error("ragged nested array: mixed scalars and arrays");
    out.push(Number(data));
  }
}

/** A tensor from nested arrays or a typed array (with `shape`). */
export function tensor(
  data: Nested | Float32Array | Int32Array | ArrayLike<number>,
  shape?: Shape,
  dtype?: DType,
): Tensor {
  if (ArrayBuffer.isView(data) || (typeof data === "object" && !Array.isArray(data))) {
    const arr = data as ArrayLike<number>;
    const dt = dtype ?? (data instanceof Int32Array ? "i32" : "f32");
    const typed = dt === "i32"
      ? (data instanceof Int32Array ? data : Int32Array.from(arr))
      : (data instanceof Float32Array ? data : Float32Array.from(arr));
    return fromHost(typed, shape ?? [arr.length], dt);
  }
  const flat: number[] = [];
  const inferred: number[] = [];
  flatten(data as Nested, inferred, flat);
  const s = shape ?? inferred;
  const dt = dtype ?? "f32";
  return fromHost(dt === "i32" ? Int32Array.from(flat) : Float32Array.from(flat), s, dt);
}

function fill(shape: Shape, expr: string, dtype: DType, scalars: number[] = [], words: number[] = []) {
  const out = Tensor.empty(shape, dtype);
  elementwise({
    name: "fill",
    expr,
    inputs: [],
    out: { buffer: out.buffer, dtype, strides: contiguousStrides(shape), offset: 0 },
    shape: [...shape],
    scalars,
    words,
    helpers: RANDOM_WGSL,
  });
  return out;
}

/** A constant: lazy (nothing is written until a kernel needs the buffer), so it fuses into its consumers. */
export function full(shape: Shape, value: number, dtype: DType = "f32"): Tensor {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`invalid tensor shape [${shape}]`);
  }
  return Tensor.fromNode(op("p0", [], [...shape], dtype, [value]));
}
export function zeros(shape: Shape, dtype: DType = "f32"): Tensor {
  return full(shape, 0, dtype);
}
export function ones(shape: Shape, dtype: DType = "f32"): Tensor {
  return full(shape, 1, dtype);
}
export function zerosLike(t: Tensor): Tensor {
  return zeros(t.shape, t.dtype);
}
export function onesLike(t: Tensor): Tensor {
  return ones(t.shape, t.dtype);
}
/** 0, 1, ..., n-1 (as f32, or i32). */
export function arange(n: number, dtype: DType = "f32"): Tensor {
  return fill([n], "f32(i)", dtype);
}
export function scalar(v: number): Tensor {
  return full([], v);
}

// ---- random numbers ----

// PCG-style hash of (key, counter): 32 well-mixed bits per call, no state on the GPU.
const RANDOM_WGSL = `
fn pcg(v: u32) -> u32 {
  let s = v * 747796405u + 2891336453u;
  let w = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
  return (w >> 22u) ^ w;
}
fn rand_u32(k0: u32, k1: u32, i: u32) -> u32 { return pcg(pcg(pcg(i ^ k0) + k1) ^ (i * 0x9E3779B9u)); }
fn rand_unit(k0: u32, k1: u32, i: u32) -> f32 {
  // 24 random bits -> (0, 1]: never exactly 0, so log() in Box-Muller is finite.
  return (f32(rand_u32(k0, k1, i) >> 8u) + 1.0) * (1.0 / 16777216.0);
}
fn rand_normal(k0: u32, k1: u32, i: u32) -> f32 {
  let u1 = rand_unit(k0, k1, 2u * i);
  let u2 = rand_unit(k0, k1, 2u * i + 1u);
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}`;

let seedState = { seed: 0, calls: 0 };

/** Resets the global generator: the same seed and the same sequence of calls give the same numbers. */
export function manualSeed(seed: number): void {
  seedState = { seed: seed >>> 0, calls: 0 };
}

/** A generator with its own seed and counter (independent of the global one). */
export class Generator {
  private calls = 0;
  constructor(readonly seed: number) {}
  next(): [number, number] {
    return [this.seed >>> 0, (this.calls++ * 0x9E3779B1) >>> 0];
  }
}

function nextKey(gen?: Generator): [number, number] {
  if (gen) return gen.next();
  return [seedState.seed, (seedState.calls++ * 0x9E3779B1 + 0x7F4A7C15) >>> 0];
}

/** Standard normal samples. */
export function randn(shape: Shape, opts: { generator?: Generator } = {}): Tensor {
  return fill(shape, "rand_normal(W(0u), W(1u), i)", "f32", [], nextKey(opts.generator));
}

/** Uniform samples in (lo, hi]. */
export function rand(shape: Shape, lo = 0, hi = 1, opts: { generator?: Generator } = {}): Tensor {
  return fill(shape, "p0 + (p1 - p0) * rand_unit(W(0u), W(1u), i)", "f32", [lo, hi], nextKey(opts.generator));
}

/** Uniform random integers in [0, n). */
export function randint(shape: Shape, n: number, opts: { generator?: Generator } = {}): Tensor {
  return fill(shape, "i32(rand_u32(W(0u), W(1u), i) % W(2u))", "i32", [], [...nextKey(opts.generator), n]);
}

export { sizeOf };
