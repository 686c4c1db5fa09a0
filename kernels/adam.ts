// Fused Adam update: one dispatch updates the parameter and both moments in place, for one parameter
// (adamStep) or for several (adamStepMulti: each parameter's workgroups are a range of one grid, its
// buffers its own bindings). Bias corrections are computed on the host from the step count, so no value
// is read back. Both run the same arithmetic in the same order (bit-identical results).

import { type ElementwiseProgram, type RenderedPrologue, renderPrologue, suffixHelpers } from "./prologue.ts";
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
  let gi = ${pro ? "load_g(i)" : "g[i]"} + wd * p[i];
  let mi = b1 * m[i] + (1.0 - b1) * gi;
  let vi = b2 * v[i] + (1.0 - b2) * gi * gi;
  m[i] = mi;
  v[i] = vi;
  p[i] = p[i] - lr * (mi / bc1) / (sqrt(vi / bc2) + eps);
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

/** Storage bindings one item takes: param, m, v and the gradient's buffer or prologue operands. */
export function adamItemBindings(grad: GPUBuffer | ElementwiseProgram): number {
  return 3 + (grad instanceof GPUBuffer ? 1 : grad.operands.length);
}

/** Uniform words of the multi kernel's header: the seven scalars, padded. */
const MULTI_HEADER = 8;

/**
 * The Adam update of every item in one dispatch. The caller keeps the items' storage bindings within
 * the adapter's limit (adamItemBindings) and binds no buffer both as an output and anywhere else.
 */
export function adamStepMulti(items: AdamItem[], s: AdamScalars): void {
  if (items.length === 0) return;
  if (items.length === 1) {
    const it = items[0];
    adamStep(it.param, it.grad, it.m, it.v, it.n, s);
    return;
  }
  const rt = gpu();
  // Uniform: the scalars, then per item (first workgroup, n), then the prologues' words.
  let words = MULTI_HEADER + 2 * items.length;
  let binding = 0;
  const starts: number[] = [];
  let wg = 0;
  const parts = items.map((it, j) => {
    const first = binding;
    binding += 3;
    let pro: (RenderedPrologue & { uBase: number }) | null = null;
    if (!(it.grad instanceof GPUBuffer)) {
      const r = renderPrologue(it.grad, `load_g${j}`, binding, words);
      pro = { ...r, code: suffixHelpers(r.code, `_a${j}`, `load_g${j}`), uBase: words };
      binding += pro.bindings.length;
      words += pro.words.length;
    } else binding += 1;
    starts.push(wg);
    wg += Math.ceil(it.n / 256);
    return { first, pro };
  });
  const u = new Uint32Array(Math.ceil(words / 4) * 4);
  new Float32Array(u.buffer, 0, 7).set([s.lr, s.beta1, s.beta2, s.eps, s.weightDecay, s.bc1, s.bc2]);
  items.forEach((it, j) => {
    u[MULTI_HEADER + 2 * j] = starts[j];
    u[MULTI_HEADER + 2 * j + 1] = it.n;
    const pro = parts[j].pro;
    if (pro) u.set(pro.words, pro.uBase);
  });
  const code = () => {
    const decls: string[] = [];
    const cases: string[] = [];
    items.forEach((_, j) => {
      const { first, pro } = parts[j];
      decls.push(
        `@group(0) @binding(${first}) var<storage, read_write> p${j}: array<f32>;`,
        `@group(0) @binding(${first + 1}) var<storage, read_write> m${j}: array<f32>;`,
        `@group(0) @binding(${first + 2}) var<storage, read_write> v${j}: array<f32>;`,
        pro ? pro.code : `@group(0) @binding(${first + 3}) var<storage, read> g${j}: array<f32>;`,
      );
      cases.push(`case ${j}u: {
      if (i < n) {
        let gi = ${pro ? `load_g${j}(i)` : `g${j}[i]`} + wd * p${j}[i];
        let mi = b1 * m${j}[i] + (1.0 - b1) * gi;
        let vi = b2 * v${j}[i] + (1.0 - b2) * gi * gi;
        m${j}[i] = mi;
        v${j}[i] = vi;
        p${j}[i] = p${j}[i] - lr * (mi / bc1) / (sqrt(vi / bc2) + eps);
      }
    }`);
    });
    return `
${decls.join("\n")}
struct Params { d: array<vec4<u32>, ${u.length / 4}> }
@group(0) @binding(${binding}) var<uniform> params: Params;
fn U(j: u32) -> u32 { return params.d[j / 4u][j % 4u]; }
fn F(j: u32) -> f32 { return bitcast<f32>(U(j)); }
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
    @builtin(num_workgroups) nw: vec3<u32>) {
  let w = wid.x + wid.y * nw.x;
  let lr = F(0u); let b1 = F(1u); let b2 = F(2u); let eps = F(3u); let wd = F(4u);
  let bc1 = F(5u); let bc2 = F(6u);
  // The item is uniform per workgroup: scalar compares find it, then one switch arm runs (a chain of ifs
  // with early returns made llvmpipe run every arm's body masked, a cost growing with the item count).
  var j = 0u;
  for (var t = 1u; t < ${items.length}u; t++) { if (w >= U(${MULTI_HEADER}u + 2u * t)) { j = t; } }
  let i = (w - U(${MULTI_HEADER}u + 2u * j)) * 256u + lid;
  let n = U(${MULTI_HEADER + 1}u + 2u * j);
  switch j {
    ${cases.join("\n    ")}
    default: {}
  }
}`;
  };
  const bindings = items.flatMap((it, j) => [
    { buffer: it.param, write: true },
    { buffer: it.m, write: true },
    { buffer: it.v, write: true },
    ...(parts[j].pro ? parts[j].pro!.bindings : [{ buffer: it.grad as GPUBuffer }]),
  ]);
  const key = `adam|multi|${parts.map((x) => x.pro?.key ?? "buf").join(";")}`;
  rt.dispatch(key, code, bindings, u, rt.grid(wg));
}

/** Bytes moved per Adam step of n parameters (benchmarks). */
export function adamBytes(n: number): number {
  return n * 4 * 7;
}
