// KID's row kernel: given the polynomial-kernel Gram matrix K of a subset pair stacked as Z = [X; Y]
// (nn/poly_kernel.ts makes K by one matmul with a fused epilogue), each row's X half and Y half are summed
// with the diagonal left out; the nn op adds the 2m row sums in float64 on the host.

import { checkBuffer } from "./matmul.ts";
import { gpu } from "./runtime.ts";

const WG = 64;

/**
 * out[2i] = sum_{j < rows/2, j != i} K[i,j], out[2i+1] = sum_{j >= rows/2, j != i} K[i,j] for the
 * rows x rows matrix K (rows even); a workgroup per row, each thread Kahan-summing a strided slice, then a
 * tree reduction.
 */
export function halfRowSums(k: GPUBuffer, out: GPUBuffer, rows: number): void {
  if (!Number.isInteger(rows) || rows < 4 || rows % 2 !== 0) {
    throw new Error(`halfRowSums: need an even row count >= 4, got ${rows}`);
  }
  checkBuffer("halfRowSums: K", k, rows * rows);
  checkBuffer("halfRowSums: out", out, rows * 2);
  const rt = gpu();
  const code = () => `
@group(0) @binding(0) var<storage, read> k: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
struct P { rows: u32, half: u32, pad0: u32, pad1: u32 }
@group(0) @binding(2) var<uniform> p: P;
var<workgroup> part: array<vec2<f32>, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = wid.x + wid.y * nw.x;
  if (i >= p.rows) { return; }
  let base = i * p.rows;
  var acc = vec2<f32>(0.0, 0.0);
  var comp = vec2<f32>(0.0, 0.0);
  for (var j = lid; j < p.rows; j = j + ${WG}u) {
    var v = k[base + j];
    if (j == i) { v = 0.0; }
    let h = select(0u, 1u, j >= p.half);
    let y = v - comp[h];
    let t = acc[h] + y;
    comp[h] = (t - acc[h]) - y;
    acc[h] = t;
  }
  part[lid] = acc;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) { part[lid] = part[lid] + part[lid + s]; }
    workgroupBarrier();
  }
  if (lid == 0u) { out[2u * i] = part[0].x; out[2u * i + 1u] = part[0].y; }
}`;
  rt.dispatch(
    "metric_kid_halfrowsums",
    code,
    [{ buffer: k }, { buffer: out, write: true }],
    new Uint32Array([rows, rows / 2, 0, 0]),
    rt.grid(rows),
  );
}
