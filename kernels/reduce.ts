// Reductions over the middle axis of a contiguous [outer, R, inner] view: out[o, j] = op_r in[o, r, j].
// Rows (inner = 1) reduce with a workgroup each (sized per adapter); long rows go through chunked partials in two passes.

import type { DType } from "./elementwise.ts";
import { type ElementwiseProgram, renderPrologue } from "./prologue.ts";
import { type Binding, gpu, onCpuAdapter } from "./runtime.ts";

/** The reduced operand: a buffer, or an elementwise tree computed as it is read (a fused prologue). */
export type ReduceInput = GPUBuffer | ElementwiseProgram;

/**
 * The WGSL that reads element `j` of the input, the bindings before `out`, the uniform words after the
 * kernel's own four, and the key part, for a buffer or a prologue.
 */
function inputOf(
  x: ReduceInput,
): { load: (j: string) => string; code: string; bindings: Binding[]; words: Uint32Array; key: string } {
  if (x instanceof GPUBuffer) {
    return {
      load: (j) => `x[${j}]`,
      code: "@group(0) @binding(0) var<storage, read> x: array<f32>;",
      bindings: [{ buffer: x }],
      words: new Uint32Array(0),
      key: "buf",
    };
  }
  const p = renderPrologue(x, "load_x", 0, 4);
  return { load: (j) => `load_x(${j})`, code: p.code, bindings: p.bindings, words: p.words, key: p.key };
}

/** The kernel's four words then the input's words, padded to whole vec4s. */
function uniformOf(own: number[], extra: Uint32Array): Uint32Array {
  const u = new Uint32Array(Math.ceil((4 + extra.length) / 4) * 4);
  u.set(own);
  u.set(extra, 4);
  return u;
}

export type ReduceOp = "sum" | "max" | "min";

const CHUNK = 8192;

/**
 * Threads per row: one SIMD group on the CPU adapter, where each barrier of the tree costs a coroutine
 * switch per group (128 threads made row sums 4-5x slower there); a wide workgroup on GPUs.
 */
function rowWorkgroup(): number {
  return onCpuAdapter() ? 8 : 128;
}

const identity: Record<ReduceOp, string> = { sum: "0.0", max: "-3.4e38", min: "3.4e38" };
const combine: Record<ReduceOp, (a: string, b: string) => string> = {
  sum: (a, b) => `${a} + ${b}`,
  max: (a, b) => `max(${a}, ${b})`,
  min: (a, b) => `min(${a}, ${b})`,
};

/** Records out[outer, inner] = op over r of x[outer, r, inner]; `tmp` gives scratch buffers for long rows. */
export function reduce(
  x: ReduceInput,
  out: GPUBuffer,
  outer: number,
  r: number,
  inner: number,
  op: ReduceOp,
  dtype: DType = "f32",
): void {
  // Sums run in f32 whatever the storage: an f16 output is rounded once, at the store.
  if (dtype === "i32") throw new Error("reduce: i32 outputs are not supported (f32 or f16)");
  const rt = gpu();
  if (outer * inner === 0) return;
  if (inner === 1 && r > 4 * CHUNK) {
    // Two passes: partials over chunks of the row, then the partials.
    const chunks = Math.ceil(r / CHUNK);
    const tmp = rt.alloc(outer * chunks * 4);
    rowReduce(x, tmp, outer * chunks, r, CHUNK, chunks, op, "f32");
    rowReduce(tmp, out, outer, chunks, chunks, 1, op, dtype);
    rt.release(tmp);
  } else if (inner === 1 && r >= 32) {
    rowReduce(x, out, outer, r, r, 1, op, dtype);
  } else {
    columnReduce(x, out, outer, r, inner, op, dtype);
  }
}

// Workgroup per output row; row `g` covers elements [(g / chunks) * rowLen + (g % chunks) * chunk, +chunk).
function rowReduce(
  x: ReduceInput,
  out: GPUBuffer,
  rows: number,
  rowLen: number,
  chunk: number,
  chunks: number,
  op: ReduceOp,
  dtype: DType,
): void {
  const rt = gpu();
  const WG = rowWorkgroup();
  const inp = inputOf(x);
  const u = uniformOf([rows, rowLen, chunk, chunks], inp.words);
  const ob = inp.bindings.length;
  const code = () => `
${inp.code}
@group(0) @binding(${ob}) var<storage, read_write> out: array<${dtype}>;
struct Params { d: array<vec4<u32>, ${u.length / 4}> }
@group(0) @binding(${ob + 1}) var<uniform> params: Params;
fn U(j: u32) -> u32 { return params.d[j / 4u][j % 4u]; }
var<workgroup> part: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let g = wid.x + wid.y * nw.x;
  if (g >= U(0u)) { return; }
  let row = g / U(3u);
  let c = g % U(3u);
  let start = c * U(2u);
  let end = min(start + U(2u), U(1u));
  let base = row * U(1u);
  var acc: f32 = ${identity[op]};
  for (var j = start + lid; j < end; j = j + ${WG}u) {
    acc = ${combine[op]("acc", inp.load("base + j"))};
  }
  part[lid] = acc;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) { part[lid] = ${combine[op]("part[lid]", "part[lid + s]")}; }
    workgroupBarrier();
  }
  if (lid == 0u) { out[g] = ${dtype}(part[0]); }
}`;
  rt.dispatch(
    `reduce_rows|${WG}|${op}|${dtype}|${inp.key}`,
    code,
    [...inp.bindings, { buffer: out, write: true }],
    u,
    rt.grid(rows),
  );
}

/**
 * One dispatch of a thread per column of x[outer, r, inner] (coalesced across inner): the shader binds the
 * input, then `outs`, then the uniform (n = outer * inner, r, inner, `word3`, the input's words); `body` runs
 * with `i` (the column) and `start` (its first element) defined, stepping by U(2u) over U(1u) rows.
 */
function columnDispatch(
  key: string,
  inp: ReturnType<typeof inputOf>,
  outs: { buffer: GPUBuffer; name: string; type: string }[],
  outer: number,
  r: number,
  inner: number,
  word3: number,
  body: string,
): void {
  const rt = gpu();
  const n = outer * inner;
  const u = uniformOf([n, r, inner, word3], inp.words);
  const ob = inp.bindings.length;
  const code = () => `
${inp.code}
${
    outs.map((o, q) => `@group(0) @binding(${ob + q}) var<storage, read_write> ${o.name}: array<${o.type}>;`)
      .join("\n")
  }
struct Params { d: array<vec4<u32>, ${u.length / 4}> }
@group(0) @binding(${ob + outs.length}) var<uniform> params: Params;
fn U(j: u32) -> u32 { return params.d[j / 4u][j % 4u]; }
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = gid.x + gid.y * nw.x * 64u;
  if (i >= U(0u)) { return; }
  let start = (i / U(2u)) * U(1u) * U(2u) + i % U(2u);
  ${body}
}`;
  rt.dispatch(
    key,
    code,
    [...inp.bindings, ...outs.map((o) => ({ buffer: o.buffer, write: true }))],
    u,
    rt.grid(Math.ceil(n / 64)),
  );
}

// Thread per output element, looping over the reduced axis.
function columnReduce(
  x: ReduceInput,
  out: GPUBuffer,
  outer: number,
  r: number,
  inner: number,
  op: ReduceOp,
  dtype: DType,
) {
  const inp = inputOf(x);
  columnDispatch(
    `reduce_cols|${op}|${dtype}|${inp.key}`,
    inp,
    [{ buffer: out, name: "out", type: dtype }],
    outer,
    r,
    inner,
    0,
    `var idx = start;
  var acc: f32 = ${identity[op]};
  for (var k = 0u; k < U(1u); k = k + 1u) {
    acc = ${combine[op]("acc", inp.load("idx"))};
    idx = idx + U(2u);
  }
  out[i] = ${dtype}(acc);`,
  );
}

/**
 * Per column of x[outer, r, inner] (BatchNorm's batch statistics over [N, C]): mean[o, j] and the biased
 * variance var[o, j], in one dispatch of a thread per column that reads the column twice, summing x and
 * then (x - mean)^2, each sum scaled by 1/r: the arithmetic of mean(x) and mean(square(x - mean(x))),
 * which take two dispatches.
 */
export function columnMoments(
  x: ReduceInput,
  mean: GPUBuffer,
  variance: GPUBuffer,
  outer: number,
  r: number,
  inner: number,
): void {
  const n = outer * inner;
  if (n === 0) return;
  if (!(r > 0)) throw new Error(`columnMoments: the reduced extent must be positive, got ${r}`);
  for (const [what, b] of [["mean", mean], ["variance", variance]] as const) {
    if (b.size < n * 4) {
      throw new Error(`columnMoments: ${what} buffer holds ${b.size} bytes, needs ${n * 4}`);
    }
  }
  const inp = inputOf(x);
  const inv = new Uint32Array(new Float32Array([1 / r]).buffer)[0];
  columnDispatch(
    `reduce_moments|${inp.key}`,
    inp,
    [{ buffer: mean, name: "outMean", type: "f32" }, { buffer: variance, name: "outVar", type: "f32" }],
    outer,
    r,
    inner,
    inv,
    `let scale = bitcast<f32>(U(3u));
  var s: f32 = 0.0;
  var idx = start;
  for (var k = 0u; k < U(1u); k = k + 1u) {
    s = s + ${inp.load("idx")};
    idx = idx + U(2u);
  }
  let mu = s * scale;
  var q: f32 = 0.0;
  idx = start;
  for (var k = 0u; k < U(1u); k = k + 1u) {
    let d = ${inp.load("idx")} - mu;
    q = q + d * d;
    idx = idx + U(2u);
  }
  outMean[i] = mu;
  outVar[i] = q * scale;`,
  );
}
