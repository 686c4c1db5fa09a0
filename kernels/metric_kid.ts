// KID's GPU work: for one subset pair stacked as Z = [X; Y] (2m x d), the polynomial-kernel Gram
// matrix K = (Z Z^T / d + 1)^3 comes from one matmul with a fused epilogue, then a row kernel sums each
// row's X half and Y half with the diagonal left out. The host adds the 2m row sums in float64.

import { matmul } from "./matmul.ts";
import { gpu } from "./runtime.ts";

const WG = 64;

/** Sums of K over the off-diagonal X-X block, the off-diagonal Y-Y block and the X-Y block. */
export interface PolyBlockSums {
  xx: number;
  yy: number;
  xy: number;
}

/** z holds X (rows 0..m-1) then Y (rows m..2m-1), row-major with d features. */
export async function polyKernelBlockSums(z: Float32Array, m: number, d: number): Promise<PolyBlockSums> {
  if (!Number.isInteger(m) || m < 2) {
    throw new Error(`polyKernelBlockSums: need m >= 2 rows per set, got ${m}`);
  }
  if (!Number.isInteger(d) || d < 1) throw new Error(`polyKernelBlockSums: bad feature dimension ${d}`);
  if (z.length !== 2 * m * d) {
    throw new Error(`polyKernelBlockSums: got ${z.length} values, expected 2*m*d = ${2 * m * d}`);
  }
  const rt = gpu();
  const rows = 2 * m;
  const zb = rt.alloc(z.byteLength), kb = rt.alloc(rows * rows * 4), sums = rt.alloc(rows * 2 * 4);
  try {
    rt.upload(zb, z);
    matmul(zb, zb, kb, { batch: 1, m: rows, n: rows, k: d, transB: true }, {
      alpha: 1 / d,
      expr: "(v + 1.0) * (v + 1.0) * (v + 1.0)",
    });
    halfRowSums(kb, sums, rows);
    const s = new Float32Array(await rt.read(sums, rows * 2 * 4));
    let xx = 0, yy = 0, xy = 0;
    for (let i = 0; i < m; i++) {
      xx += s[2 * i];
      xy += s[2 * i + 1];
      yy += s[2 * (m + i) + 1];
    }
    return { xx, yy, xy };
  } finally {
    rt.release(zb);
    rt.release(kb);
    rt.release(sums);
  }
}

// out[2i] = sum_{j < rows/2, j != i} K[i,j], out[2i+1] = sum_{j >= rows/2, j != i} K[i,j]; a workgroup per
// row, each thread Kahan-summing a strided slice, then a tree reduction.
function halfRowSums(k: GPUBuffer, out: GPUBuffer, rows: number): void {
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
