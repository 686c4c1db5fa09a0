// Reductions over the middle axis of a contiguous [outer, R, inner] view: out[o, j] = op_r in[o, r, j].
// Rows (inner = 1) reduce with a workgroup each; long rows go through chunked partials in two passes.

import type { DType } from "./elementwise.ts";
import { gpu } from "./runtime.ts";

export type ReduceOp = "sum" | "max" | "min";

const WG = 128;
const CHUNK = 8192;

const identity: Record<ReduceOp, string> = { sum: "0.0", max: "-3.4e38", min: "3.4e38" };
const combine: Record<ReduceOp, (a: string, b: string) => string> = {
  sum: (a, b) => `${a} + ${b}`,
  max: (a, b) => `max(${a}, ${b})`,
  min: (a, b) => `min(${a}, ${b})`,
};

/** Records out[outer, inner] = op over r of x[outer, r, inner]; `tmp` gives scratch buffers for long rows. */
export function reduce(
  x: GPUBuffer,
  out: GPUBuffer,
  outer: number,
  r: number,
  inner: number,
  op: ReduceOp,
  dtype: DType = "f32",
): void {
  if (dtype !== "f32") throw new Error(`reduce: only f32 is supported, got ${dtype}`);
  const rt = gpu();
  if (outer * inner === 0) return;
  if (inner === 1 && r > 4 * CHUNK) {
    // Two passes: partials over chunks of the row, then the partials.
    const chunks = Math.ceil(r / CHUNK);
    const tmp = rt.alloc(outer * chunks * 4);
    rowReduce(x, tmp, outer * chunks, r, CHUNK, chunks, op);
    rowReduce(tmp, out, outer, chunks, chunks, 1, op);
    rt.release(tmp);
  } else if (inner === 1 && r >= 32) {
    rowReduce(x, out, outer, r, r, 1, op);
  } else {
    columnReduce(x, out, outer, r, inner, op);
  }
}

// Workgroup per output row; row `g` covers elements [(g / chunks) * rowLen + (g % chunks) * chunk, +chunk).
function rowReduce(
  x: GPUBuffer,
  out: GPUBuffer,
  rows: number,
  rowLen: number,
  chunk: number,
  chunks: number,
  op: ReduceOp,
): void {
  const rt = gpu();
  const u = new Uint32Array([rows, rowLen, chunk, chunks]);
  const code = () => `
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
struct P { rows: u32, rowLen: u32, chunk: u32, chunks: u32 }
@group(0) @binding(2) var<uniform> p: P;
var<workgroup> part: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let g = wid.x + wid.y * nw.x;
  if (g >= p.rows) { return; }
  let row = g / p.chunks;
  let c = g % p.chunks;
  let start = c * p.chunk;
  let end = min(start + p.chunk, p.rowLen);
  let base = row * p.rowLen;
  var acc: f32 = ${identity[op]};
  for (var j = start + lid; j < end; j = j + ${WG}u) {
    acc = ${combine[op]("acc", "x[base + j]")};
  }
  part[lid] = acc;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) { part[lid] = ${combine[op]("part[lid]", "part[lid + s]")}; }
    workgroupBarrier();
  }
  if (lid == 0u) { out[g] = part[0]; }
}`;
  rt.dispatch(`reduce_rows|${op}`, code, [{ buffer: x }, { buffer: out, write: true }], u, rt.grid(rows));
}

// Thread per output element, looping over the reduced axis (coalesced across inner).
function columnReduce(x: GPUBuffer, out: GPUBuffer, outer: number, r: number, inner: number, op: ReduceOp) {
  const rt = gpu();
  const n = outer * inner;
  const u = new Uint32Array([n, r, inner, 0]);
  const code = () => `
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
struct P { n: u32, r: u32, inner: u32, pad: u32 }
@group(0) @binding(2) var<uniform> p: P;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = gid.x + gid.y * nw.x * 64u;
  if (i >= p.n) { return; }
  let o = i / p.inner;
  let j = i % p.inner;
  var idx = o * p.r * p.inner + j;
  var acc: f32 = ${identity[op]};
  for (var k = 0u; k < p.r; k = k + 1u) {
    acc = ${combine[op]("acc", "x[idx]")};
    idx = idx + p.inner;
  }
  out[i] = acc;
}`;
  rt.dispatch(
    `reduce_cols|${op}`,
    code,
    [{ buffer: x }, { buffer: out, write: true }],
    u,
    rt.grid(Math.ceil(n / 64)),
  );
}
