// Multi-tensor kernels: one dispatch updates several tensors in place (Adam, an EMA, running statistics).
// Each item's workgroups are a range of one grid, its buffers its own bindings, its source a buffer or an
// elementwise tree read through a fused prologue. The item is found per workgroup by scalar compares and
// selects one switch arm. llvmpipe (Mesa 22) runs every arm anyway, under a lane mask (a chain of ifs did
// the same): an item's arm costs on every workgroup of the dispatch, so there groups stay small
// (multiArmBudget).

import { type ElementwiseProgram, type RenderedPrologue, renderPrologue, suffixHelpers } from "./prologue.ts";
import { gpu, onCpuAdapter } from "./runtime.ts";

/** One item: n f32 values in each in-place buffer, read with `source` (a buffer or a tree). */
export interface MultiItem {
  outputs: GPUBuffer[];
  source: GPUBuffer | ElementwiseProgram;
  n: number;
  /** Two per-item scalars, read as `xa` and `xb` in the body. */
  xa?: number;
  xb?: number;
}

export interface MultiSpec {
  /** Pipeline key prefix. */
  name: string;
  /** Names of an item's in-place buffers: item j's are `${name}${j}`. */
  outputs: string[];
  /** f32 scalars every item shares, read as F(0u), F(1u), ... in `prelude`. */
  shared: number[];
  /** WGSL run once per invocation before the item's arm (reads the shared scalars). */
  prelude: string;
  /** Item j's update at index i (i < n is checked around it); `load` is its source value at i. */
  body: (j: number, load: string) => string;
}

/** Workgroups an item of n values takes in dispatchMulti (one 256-thread workgroup per 256 values). */
export function multiItemWorkgroups(n: number): number {
  return Math.ceil(n / 256);
}

/**
 * How much masked work may replace one dispatch. A group of k items over W workgroups runs about W * k
 * arm passes on a CPU adapter, and `deno run -A bench/multi_arms.ts` measures both prices there
 * (llvmpipe, 2 cores, idle): a masked arm pass of a 256-thread workgroup ~2.3 us, a dispatch of a
 * one-workgroup Adam item ~170 us, of which ~150 us is the dispatch itself. So an item of w workgroups
 * joins a group of k items over W only while W + w * k stays within 150 / 2.3, about 64. GPUs branch on
 * uniform values, so there any group is cheaper than its dispatches.
 */
export function multiArmBudget(): number {
  return onCpuAdapter() ? 64 : Infinity;
}

/** Storage bindings an item takes: its outputs and its source's buffer or prologue operands. */
export function multiItemBindings(outputs: number, source: GPUBuffer | ElementwiseProgram): number {
  return outputs + (source instanceof GPUBuffer ? 1 : source.operands.length);
}

/** The buffers a source reads: itself, or its prologue's operands. */
export function sourceBuffers(src: GPUBuffer | ElementwiseProgram): GPUBuffer[] {
  return src instanceof GPUBuffer ? [src] : src.operands.map((o) => o.buffer);
}

/**
 * Records one dispatch of `spec` over `items`. The items' bindings must fit the adapter's storage limit;
 * no buffer may be an output twice or both an output and a source (the caller splits such groups).
 */
export function dispatchMulti(spec: MultiSpec, items: MultiItem[]): void {
  if (items.length === 0) return;
  const outs = new Set<GPUBuffer>();
  for (const it of items) {
    if (!(Number.isInteger(it.n) && it.n > 0)) throw new Error(`${spec.name}: bad size ${it.n}`);
    if (it.outputs.length !== spec.outputs.length) {
      throw new Error(
        `${spec.name}: an item has ${it.outputs.length} outputs, expected ${spec.outputs.length}`,
      );
    }
    for (const b of it.outputs) {
      if (outs.has(b)) throw new Error(`${spec.name}: a buffer is the destination of two items`);
      outs.add(b);
    }
  }
  if (items.some((it) => sourceBuffers(it.source).some((b) => outs.has(b)))) {
    throw new Error(`${spec.name}: a destination buffer is also read as a source`);
  }
  const rt = gpu();
  const need = items.reduce((s, it) => s + multiItemBindings(it.outputs.length, it.source), 0);
  const limit = rt.device.limits.maxStorageBuffersPerShaderStage;
  if (need > limit) {
    throw new Error(`${spec.name}: ${items.length} items need ${need} storage bindings (limit ${limit})`);
  }
  // Uniform: the shared scalars (whole vec4s), one vec4 per item (first workgroup, n, xa, xb), then the
  // prologues' words.
  const head = Math.ceil(spec.shared.length / 4);
  let words = 4 * (head + items.length);
  let binding = 0;
  const parts = items.map((it, j) => {
    const first = binding;
    binding += it.outputs.length;
    let pro: (RenderedPrologue & { uBase: number }) | null = null;
    if (it.source instanceof GPUBuffer) binding += 1;
    else {
      const r = renderPrologue(it.source, `load_s${j}`, binding, words);
      pro = { ...r, code: suffixHelpers(r.code, `_x${j}`, `load_s${j}`), uBase: words };
      binding += r.bindings.length;
      words += r.words.length;
    }
    return { first, pro };
  });
  const u = new Uint32Array(Math.ceil(words / 4) * 4);
  const f = new Float32Array(u.buffer);
  f.set(spec.shared);
  let wg = 0;
  items.forEach((it, j) => {
    const at = 4 * (head + j);
    u[at] = wg;
    u[at + 1] = it.n;
    f[at + 2] = it.xa ?? 0;
    f[at + 3] = it.xb ?? 0;
    wg += multiItemWorkgroups(it.n);
    const pro = parts[j].pro;
    if (pro) u.set(pro.words, pro.uBase);
  });
  const k = items.length;
  const code = () => {
    const decls: string[] = [];
    const cases: string[] = [];
    parts.forEach(({ first, pro }, j) => {
      spec.outputs.forEach((o, q) => {
        decls.push(`@group(0) @binding(${first + q}) var<storage, read_write> ${o}${j}: array<f32>;`);
      });
      const srcBinding = first + spec.outputs.length;
      decls.push(pro ? pro.code : `@group(0) @binding(${srcBinding}) var<storage, read> s${j}: array<f32>;`);
      const load = pro ? `load_s${j}(i)` : `s${j}[i]`;
      cases.push(`case ${j}u: { if (i < n) {\n      ${spec.body(j, load)}\n    } }`);
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
  ${spec.prelude}
  var j = 0u;
  for (var t = 1u; t < ${k}u; t++) { if (w >= params.d[${head}u + t].x) { j = t; } }
  let item = params.d[${head}u + j];
  let i = (w - item.x) * 256u + lid;
  let n = item.y;
  let xa = bitcast<f32>(item.z);
  let xb = bitcast<f32>(item.w);
  switch j {
    ${cases.join("\n    ")}
    default: {}
  }
}`;
  };
  const bindings = items.flatMap((it, j) => [
    ...it.outputs.map((buffer) => ({ buffer, write: true })),
    ...(parts[j].pro ? parts[j].pro!.bindings : [{ buffer: it.source as GPUBuffer }]),
  ]);
  const key = `${spec.name}|multi|${parts.map((x) => x.pro?.key ?? "buf").join(";")}`;
  rt.dispatch(key, code, bindings, u, rt.grid(wg));
}
