// Generic strided elementwise kernel: out[region] = expr(in0, in1, ...), with broadcasting by zero strides.
// One kernel serves unary and binary math, fused epilogues, casts, copies of views (permute, slice,
// broadcast) and writes into regions (concat, pad). Shapes and strides travel in the uniform buffer;
// the rank and which operands are plain contiguous decide the compiled variant.

import { gpu } from "./runtime.ts";

/**
 * Element types of tensors. "f16" is a storage type: kernels load it into f32, compute in f32 and round
 * to f16 only when storing (WGSL's `enable f16;`, which needs the device's shader-f16 feature).
 */
export type DType = "f32" | "i32" | "f16";
export const MAX_RANK = 8;

/** Bytes per element of a dtype. */
export function dtypeBytes(d: DType): number {
  return d === "f16" ? 2 : 4;
}

/** Bytes of a buffer holding n elements of dtype: WebGPU binds storage in whole 4-byte words. */
export function storageBytes(n: number, dtype: DType): number {
  return Math.max(4, Math.ceil((n * dtypeBytes(dtype)) / 4) * 4);
}

/** The WGSL type a loaded element is computed in (f16 loads widen to f32). */
export function computeType(d: DType): "f32" | "i32" {
  return d === "i32" ? "i32" : "f32";
}

/** A WGSL load of a `d` element as its compute type. */
export function loadAs(d: DType, expr: string): string {
  return d === "f16" ? `f32(${expr})` : expr;
}

export interface StridedOperand {
  buffer: GPUBuffer;
  dtype: DType;
  /** Element strides per output dimension (0 broadcasts). */
  strides: number[];
  offset: number;
}

export interface ElementwiseSpec {
  /** Short name shown in errors and profiles. */
  name: string;
  /** WGSL expression over `in0..inK` (typed as their dtype) and `p0..p3` (f32 scalars; P(ju) reads any). */
  expr: string;
  /** Optional WGSL statements before the expression (the `let`s of a fused tree). */
  body?: string;
  inputs: StridedOperand[];
  out: StridedOperand;
  shape: number[];
  scalars?: number[];
  /** u32 words (seeds, counts) readable in the expression as W(0u)..W(3u). */
  words?: number[];
  /** Optional WGSL helper functions the expression calls. */
  helpers?: string;
}

const WG = 256;

function isContiguous(strides: number[], shape: number[]): boolean {
  let expect = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] !== 1 && strides[d] !== expect) return false;
    expect *= shape[d];
  }
  return true;
}

/** Records the elementwise dispatch described by `spec`. */
export function elementwise(spec: ElementwiseSpec): void {
  const rt = gpu();
  const rank = spec.shape.length;
  if (rank > MAX_RANK) throw new Error(`${spec.name}: rank ${rank} exceeds ${MAX_RANK}`);
  const n = spec.shape.reduce((a, b) => a * b, 1);
  if (n === 0) return;
  const operands = [...spec.inputs, spec.out];
  // Operands that are contiguous over the whole output shape index directly with the flat index.
  const flat = operands.map((o) => isContiguous(o.strides, spec.shape));
  const fast = fastCoords(spec.shape);
  const key = [
    "ew",
    spec.name,
    spec.expr,
    spec.helpers ?? "",
    spec.body ?? "",
    rank,
    operands.map((o, i) => o.dtype + (flat[i] ? "c" : "s")).join(","),
    fast ? "fdiv" : "div",
  ].join("|");
  // Uniform: n, then shape (MAX_RANK), then per operand offset + strides (MAX_RANK), then scalars.
  const k = operands.length;
  // Scalars take at least four words (p0..p3), then the u32 words.
  const nScalars = Math.max(4, Math.ceil((spec.scalars?.length ?? 0) / 4) * 4);
  // ...then the shape's reciprocals (fast coordinate division).
  const rBase = 4 + MAX_RANK + k * (4 + MAX_RANK) + nScalars + 4;
  const words = rBase + MAX_RANK;
  const u = new Uint32Array(Math.ceil(words / 4) * 4);
  const f = new Float32Array(u.buffer);
  u[0] = n;
  for (let d = 0; d < rank; d++) u[4 + d] = spec.shape[d];
  operands.forEach((o, i) => {
    const base = 4 + MAX_RANK + i * (4 + MAX_RANK);
    u[base] = o.offset;
    for (let d = 0; d < rank; d++) u[base + 4 + d] = o.strides[d];
  });
  const sBase = 4 + MAX_RANK + k * (4 + MAX_RANK);
  (spec.scalars ?? []).forEach((s, i) => f[sBase + i] = s);
  if ((spec.words?.length ?? 0) > 4) throw new Error(`${spec.name}: at most four u32 words`);
  (spec.words ?? []).forEach((w, i) => u[sBase + nScalars + i] = w >>> 0);
  for (let d = 0; d < rank; d++) f[rBase + d] = 1 / spec.shape[d];
  const uvec = u.length / 4;
  const code = () => {
    const decl = operands.map((o, i) => {
      const name = i < k - 1 ? `in${i}_buf` : "out_buf";
      const access = i < k - 1 ? "read" : "read_write";
      return `@group(0) @binding(${i}) var<storage, ${access}> ${name}: array<${o.dtype}>;`;
    }).join("\n");
    const idx = (i: number) => {
      const base = 4 + MAX_RANK + i * (4 + MAX_RANK);
      if (flat[i]) return `U(${base}u) + i`;
      const terms = [`U(${base}u)`];
      for (let d = 0; d < rank; d++) terms.push(`c${d} * U(${base + 4 + d}u)`);
      return terms.join(" + ");
    };
    const coords = flat.every((c) => c)
      ? []
      : coordinates(rank, (d) => `U(${4 + d}u)`, fast ? (d) => `bitcast<f32>(U(${rBase + d}u))` : null);
    const loads = spec.inputs.map((o, i) => `let in${i} = ${loadAs(o.dtype, `in${i}_buf[${idx(i)}]`)};`).join(
      "\n  ",
    );
    return `${decl}
struct Params { d: array<vec4<u32>, ${uvec}> }
@group(0) @binding(${k}) var<uniform> params: Params;
fn U(j: u32) -> u32 { return params.d[j / 4u][j % 4u]; }
fn P(j: u32) -> f32 { return bitcast<f32>(U(${sBase}u + j)); }
fn W(j: u32) -> u32 { return U(${sBase + nScalars}u + j); }
${fast ? FAST_DIV_WGSL : ""}
${spec.helpers ?? ""}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = gid.x + gid.y * nw.x * ${WG}u;
  if (i >= U(0u)) { return; }
  let p0 = P(0u); let p1 = P(1u); let p2 = P(2u); let p3 = P(3u);
  ${coords.join("\n  ")}
  ${loads}
  ${spec.body ?? ""}
  out_buf[${idx(k - 1)}] = ${spec.out.dtype}(${spec.expr});
}`;
  };
  rt.dispatch(
    key,
    code,
    operands.map((o, i) => ({ buffer: o.buffer, write: i === k - 1 })),
    u,
    rt.grid(Math.ceil(n / WG)),
  );
}

/**
 * Division by a uniform divisor through f32 (x86 has no SIMD integer divide, so u32 `/` on lanes is
 * scalarised): an estimate plus one correction, exact for a < 2^31 and 0 < b < 2^24 (rb = 1/b).
 */
export const FAST_DIV_WGSL = `fn fdiv(a: u32, b: u32, rb: f32) -> u32 {
  let q = u32(f32(a) * rb);
  let r = i32(a) - i32(q * b);
  return u32(i32(q) + i32(floor((f32(r) + 0.5) * rb)));
}`;

/**
 * Whether the flat index of `shape` splits into coordinates by fdiv (exact for indices below 2^31 and
 * sizes below 2^24): x86 has no SIMD integer divide, so on the CPU adapter each u32 `/` and `%` runs
 * lane by lane, and a rank-4 broadcast spent most of its time in them.
 */
export function fastCoords(shape: number[]): boolean {
  return shape.every((d) => d < 2 ** 24) && shape.reduce((a, d) => a * d, 1) < 2 ** 31;
}

/**
 * WGSL statements that split the flat index `i` into coordinates c0..c(rank-1) of a row-major shape
 * whose sizes `size(d)` reads; with `recip` (the sizes' f32 reciprocals), by FAST_DIV_WGSL's function,
 * declared under the name `div`.
 */
export function coordinates(
  rank: number,
  size: (d: number) => string,
  recip: ((d: number) => string) | null,
  div = "fdiv",
): string[] {
  const out = ["var rem = i;"];
  for (let d = rank - 1; d >= 0; d--) {
    out.push(
      recip
        ? `let q${d} = ${div}(rem, ${size(d)}, ${recip(d)}); let c${d} = rem - q${d} * ${
          size(d)
        }; rem = q${d};`
        : `let c${d} = rem % ${size(d)}; rem = rem / ${size(d)};`,
    );
  }
  return out;
}

/** Bytes moved by an elementwise op over f32 operands (for benchmarks). */
export function elementwiseBytes(n: number, nInputs: number): number {
  return 4 * n * (nInputs + 1);
}
