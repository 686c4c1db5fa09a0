// Fused Adam update: one dispatch updates the parameter and both moments in place, for one parameter
// (adamStep) or for several (adamStepMulti, through kernels/multi_tensor.ts). Bias corrections are
// computed on the host from the step count, so no value is read back. Both run the same arithmetic in the
// same order (bit-identical results). The parameter is read once: on llvmpipe the storage accesses set an
// elementwise kernel's time (7 per element took ~2.5x a copy's 2 over 32k floats), so a second read counts.

import { dispatchMulti } from "./multi_tensor.ts";
import { type ElementwiseProgram, renderPrologue } from "./prologue.ts";
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

/**
 * param -= lr * mhat / (sqrt(vhat) + eps), with m, v updated from grad; all buffers have n floats. The
 * gradient may be an elementwise tree (a fused prologue), computed as it is read.
 */
export function adamStep(
  param: GPUBuffer,
  grad: GPUBuffer | ElementwiseProgram,
  m: GPUBuffer,
  v: GPUBuffer,
  n: number,
  s: AdamScalars,
): void {
  const rt = gpu();
  const pro = grad instanceof GPUBuffer ? null : renderPrologue(grad, "load_g", 3, 8);
  const u = new Uint32Array(Math.ceil((8 + (pro?.words.length ?? 0)) / 4) * 4);
  u[0] = n;
  new Float32Array(u.buffer, 4, 7).set([s.lr, s.beta1, s.beta2, s.eps, s.weightDecay, s.bc1, s.bc2]);
  if (pro) u.set(pro.words, 8);
  const ub = pro ? 3 + pro.bindings.length : 4;
  const code = () => `
@group(0) @binding(0) var<storage, read_write> p: array<f32>;
@group(0) @binding(1) var<storage, read_write> m: array<f32>;
@group(0) @binding(2) var<storage, read_write> v: array<f32>;
${pro ? "" : "@group(0) @binding(3) var<storage, read> g: array<f32>;"}
struct Params { d: array<vec4<u32>, ${u.length / 4}> }
@group(0) @binding(${ub}) var<uniform> params: Params;
fn U(j: u32) -> u32 { return params.d[j / 4u][j % 4u]; }
fn F(j: u32) -> f32 { return bitcast<f32>(U(j)); }
${pro?.code ?? ""}
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = gid.x + gid.y * nw.x * 256u;
  if (i >= U(0u)) { return; }
  let lr = F(1u); let b1 = F(2u); let b2 = F(3u); let eps = F(4u); let wd = F(5u);
  let bc1 = F(6u); let bc2 = F(7u);
  let pi = p[i];
  let gi = ${pro ? "load_g(i)" : "g[i]"} + wd * pi;
  let mi = b1 * m[i] + (1.0 - b1) * gi;
  let vi = b2 * v[i] + (1.0 - b2) * gi * gi;
  m[i] = mi;
  v[i] = vi;
  p[i] = pi - lr * (mi / bc1) / (sqrt(vi / bc2) + eps);
}`;
  const bindings = [
    { buffer: param, write: true },
    { buffer: m, write: true },
    { buffer: v, write: true },
    ...(pro ? pro.bindings : [{ buffer: grad as GPUBuffer }]),
  ];
  rt.dispatch(`adam|${pro?.key ?? "buf"}`, code, bindings, u, rt.grid(Math.ceil(n / 256)));
}

/** One parameter of a multi-tensor Adam step: n floats in each buffer. */
export interface AdamItem {
  param: GPUBuffer;
  grad: GPUBuffer | ElementwiseProgram;
  m: GPUBuffer;
  v: GPUBuffer;
  n: number;
}

const MULTI_SPEC = {
  name: "adam",
  outputs: ["p", "m", "v"],
  prelude: `let lr = F(0u); let b1 = F(1u); let b2 = F(2u); let eps = F(3u); let wd = F(4u);
  let bc1 = F(5u); let bc2 = F(6u);`,
  body: (j: number, load: string) =>
    `let pi = p${j}[i];
      let gi = ${load} + wd * pi;
      let mi = b1 * m${j}[i] + (1.0 - b1) * gi;
      let vi = b2 * v${j}[i] + (1.0 - b2) * gi * gi;
      m${j}[i] = mi;
      v${j}[i] = vi;
      p${j}[i] = pi - lr * (mi / bc1) / (sqrt(vi / bc2) + eps);`,
};

/**
 * The Adam update of every item in one dispatch (kernels/multi_tensor.ts). The caller keeps the items'
 * storage bindings within the adapter's limit (multiItemBindings) and binds no buffer both as an output
 * and anywhere else.
 */
export function adamStepMulti(items: AdamItem[], s: AdamScalars): void {
  if (items.length === 0) return;
  if (items.length === 1) {
    const it = items[0];
    adamStep(it.param, it.grad, it.m, it.v, it.n, s);
    return;
  }
  dispatchMulti(
    { ...MULTI_SPEC, shared: [s.lr, s.beta1, s.beta2, s.eps, s.weightDecay, s.bc1, s.bc2] },
    items.map((it) => ({ outputs: [it.param, it.m, it.v], source: it.grad, n: it.n })),
  );
}

/** Bytes moved per Adam step of n parameters (benchmarks). */
export function adamBytes(n: number): number {
  return n * 4 * 7;
}
