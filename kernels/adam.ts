// Fused Adam update: one dispatch per parameter updates the parameter and both moments in place.
// Bias corrections are computed on the host from the step count, so no value is read back.

import { gpu } from "./runtime.ts";

export interface AdamScalars {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** 1 - beta1^t and 1 - beta2^t */
  bc1: number;
  bc2: number;
}

/** param -= lr * mhat / (sqrt(vhat) + eps), with m, v updated from grad; all buffers have n floats. */
export function adamStep(
  param: GPUBuffer,
  grad: GPUBuffer,
  m: GPUBuffer,
  v: GPUBuffer,
  n: number,
  s: AdamScalars,
): void {
  const rt = gpu();
  const u = new ArrayBuffer(32);
  new Uint32Array(u, 0, 1)[0] = n;
  new Float32Array(u, 4, 7).set([s.lr, s.beta1, s.beta2, s.eps, s.weightDecay, s.bc1, s.bc2]);
  const code = () => `
@group(0) @binding(0) var<storage, read_write> p: array<f32>;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> m: array<f32>;
@group(0) @binding(3) var<storage, read_write> v: array<f32>;
struct S { n: u32, lr: f32, b1: f32, b2: f32, eps: f32, wd: f32, bc1: f32, bc2: f32 }
@group(0) @binding(4) var<uniform> s: S;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = gid.x + gid.y * nw.x * 256u;
  if (i >= s.n) { return; }
  let gi = g[i] + s.wd * p[i];
  let mi = s.b1 * m[i] + (1.0 - s.b1) * gi;
  let vi = s.b2 * v[i] + (1.0 - s.b2) * gi * gi;
  m[i] = mi;
  v[i] = vi;
  p[i] = p[i] - s.lr * (mi / s.bc1) / (sqrt(vi / s.bc2) + s.eps);
}`;
  rt.dispatch(
    "adam",
    code,
    [{ buffer: param, write: true }, { buffer: grad }, { buffer: m, write: true }, {
      buffer: v,
      write: true,
    }],
    new Uint8Array(u),
    rt.grid(Math.ceil(n / 256)),
  );
}

/** Bytes moved per Adam step of n parameters (benchmarks). */
export function adamBytes(n: number): number {
  return n * 4 * 7;
}
