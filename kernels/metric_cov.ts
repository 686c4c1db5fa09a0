// The covariance's compensated accumulator: nn/covariance.ts multiplies each chunk of centred feature rows
// as Xc^T Xc by matmul and adds the product into a (hi, lo) f32 pair here, so f32 rounding only acts
// within a chunk.

import { checkBuffer } from "./matmul.ts";
import { gpu } from "./runtime.ts";

const WG = 256;

/**
 * Fast2Sum-style compensated accumulation of `count` f32 values: hi + lo tracks the running sum of the
 * `part`s added so far to about twice f32 precision (hi and lo are updated in place).
 */
export function compensatedAccumulate(part: GPUBuffer, hi: GPUBuffer, lo: GPUBuffer, count: number): void {
  if (!Number.isInteger(count) || count < 1) throw new Error(`compensatedAccumulate: bad count ${count}`);
  for (const [what, b] of [["part", part], ["hi", hi], ["lo", lo]] as const) {
    checkBuffer(`compensatedAccumulate: ${what}`, b, count);
  }
  if (part === hi || part === lo || hi === lo) {
    throw new Error("compensatedAccumulate: part, hi and lo must be three different buffers");
  }
  const rt = gpu();
  rt.dispatch(
    "metric_cov_accum",
    () => `
@group(0) @binding(0) var<storage, read> part: array<f32>;
@group(0) @binding(1) var<storage, read_write> hi: array<f32>;
@group(0) @binding(2) var<storage, read_write> lo: array<f32>;
struct P { n: u32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(3) var<uniform> p: P;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = gid.x + gid.y * nw.x * ${WG}u;
  if (i >= p.n) { return; }
  let a = hi[i];
  let b = part[i] + lo[i];
  let s = a + b;
  let bb = s - a;
  let err = (a - (s - bb)) + (b - bb);
  hi[i] = s;
  lo[i] = err;
}`,
    [{ buffer: part }, { buffer: hi, write: true }, { buffer: lo, write: true }],
    new Uint32Array([count, 0, 0, 0]),
    rt.grid(Math.ceil(count / WG)),
  );
}
