// Scatter matrix sum_i (x_i - mu)(x_i - mu)^T of n feature rows on the GPU. Rows are centred on the host
// with a float64 mean (no cancellation against the mean later), uploaded in chunks, multiplied as
// Xc^T Xc by matmul, and each chunk's product is added into a compensated (hi, lo) f32 accumulator, so
// f32 rounding only acts within a chunk.

import { matmul } from "./matmul.ts";
import { gpu } from "./runtime.ts";

const WG = 256;

/** Returns the d x d scatter matrix (not yet divided by n - ddof) in float64. */
export async function scatterMatrix(
  x: Float32Array | Float64Array,
  n: number,
  d: number,
  mu: Float64Array,
  chunkRows = 1024,
): Promise<Float64Array> {
  if (x.length !== n * d) throw new Error(`scatterMatrix: got ${x.length} values, expected ${n}x${d}`);
  if (mu.length !== d) throw new Error(`scatterMatrix: mean has ${mu.length} entries, expected ${d}`);
  const rt = gpu();
  const maxRows = Math.max(
    1,
    Math.min(chunkRows, Math.floor(rt.device.limits.maxStorageBufferBindingSize / (4 * d))),
  );
  const chunk = rt.alloc(maxRows * d * 4), part = rt.alloc(d * d * 4);
  const hi = rt.alloc(d * d * 4), lo = rt.alloc(d * d * 4);
  try {
    rt.upload(hi, new Float32Array(d * d));
    rt.upload(lo, new Float32Array(d * d));
    const host = new Float32Array(maxRows * d);
    for (let start = 0; start < n; start += maxRows) {
      const rows = Math.min(maxRows, n - start);
      for (let i = 0; i < rows; i++) {
        for (let j = 0; j < d; j++) host[i * d + j] = x[(start + i) * d + j] - mu[j];
      }
      rt.upload(chunk, host.subarray(0, rows * d));
      matmul(chunk, chunk, part, { batch: 1, m: d, n: d, k: rows, transA: true });
      accumulate(part, hi, lo, d * d);
    }
    const h = new Float32Array(await rt.read(hi, d * d * 4)),
      l = new Float32Array(await rt.read(lo, d * d * 4));
    const out = new Float64Array(d * d);
    for (let i = 0; i < d * d; i++) out[i] = h[i] + l[i];
    return out;
  } finally {
    for (const b of [chunk, part, hi, lo]) rt.release(b);
  }
}

// Fast2Sum-style compensated accumulation: hi + lo tracks the running sum to about twice f32 precision.
function accumulate(part: GPUBuffer, hi: GPUBuffer, lo: GPUBuffer, count: number): void {
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
