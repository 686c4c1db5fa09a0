// Multi-tensor in-place axpby: dst_k <- a_k * src_k + b_k * dst_k for several f32 tensors in one
// dispatch (each tensor's workgroups are a range of one grid, its buffers its own bindings). An EMA of a
// network's weights is this with a = 1 - beta, b = beta, BatchNorm's running statistics too; one
// dispatch instead of one per tensor. A source may be an elementwise tree (a fused prologue), computed
// as it is read. The arithmetic is the elementwise axpby's (a * x + b * y in f32), so results are
// bit-identical to it.

import { type ElementwiseProgram, type RenderedPrologue, renderPrologue, suffixHelpers } from "./prologue.ts";
import { gpu } from "./runtime.ts";

/** One tensor of the update: dst <- a * src + b * dst over n f32 values, dst written in place. */
export interface AxpbyItem {
  dst: GPUBuffer;
  src: GPUBuffer | ElementwiseProgram;
  n: number;
  a: number;
  b: number;
}

/** Storage bindings one item takes: dst and the source's buffer or prologue operands. */
export function axpbyItemBindings(src: GPUBuffer | ElementwiseProgram): number {
  return 1 + (src instanceof GPUBuffer ? 1 : src.operands.length);
}

/** Uniform words per item: first workgroup, n, a, b (one vec4). */
const ITEM_WORDS = 4;

function buffersRead(src: GPUBuffer | ElementwiseProgram): GPUBuffer[] {
  return src instanceof GPUBuffer ? [src] : src.operands.map((o) => o.buffer);
}

/**
 * The update of every item, in one dispatch. The caller keeps the items' bindings (axpbyItemBindings)
 * within the adapter's storage-binding limit; no buffer may be a dst twice or both a dst and a source.
 */
export function axpbyIntoMulti(items: AxpbyItem[]): void {
  if (items.length === 0) return;
  const dsts = new Set<GPUBuffer>();
  for (const it of items) {
    if (!(Number.isInteger(it.n) && it.n > 0)) throw new Error(`axpbyIntoMulti: bad size ${it.n}`);
    if (dsts.has(it.dst)) throw new Error("axpbyIntoMulti: a buffer is the destination of two items");
    dsts.add(it.dst);
  }
  if (items.some((it) => buffersRead(it.src).some((b) => dsts.has(b)))) {
    throw new Error("axpbyIntoMulti: a destination buffer is also read as a source");
  }
  const rt = gpu();
  const need = items.reduce((s, it) => s + axpbyItemBindings(it.src), 0);
  const limit = rt.device.limits.maxStorageBuffersPerShaderStage;
  if (need > limit) {
    throw new Error(`axpbyIntoMulti: ${items.length} items need ${need} storage bindings (limit ${limit})`);
  }
  // Uniform: per item (first workgroup, n, a, b), then the prologues' words.
  let words = ITEM_WORDS * items.length;
  let binding = 0;
  const parts = items.map((it, j) => {
    const first = binding;
    binding += 1;
    let pro: (RenderedPrologue & { uBase: number }) | null = null;
    if (it.src instanceof GPUBuffer) binding += 1;
    else {
      const r = renderPrologue(it.src, `load_s${j}`, binding, words);
      pro = { ...r, code: suffixHelpers(r.code, `_x${j}`, `load_s${j}`), uBase: words };
      binding += r.bindings.length;
      words += r.words.length;
    }
    return { first, pro };
  });
  const u = new Uint32Array(Math.ceil(words / 4) * 4);
  const f = new Float32Array(u.buffer);
  let wg = 0;
  items.forEach((it, j) => {
    u[ITEM_WORDS * j] = wg;
    u[ITEM_WORDS * j + 1] = it.n;
    f[ITEM_WORDS * j + 2] = it.a;
    f[ITEM_WORDS * j + 3] = it.b;
    wg += Math.ceil(it.n / 256);
    const pro = parts[j].pro;
    if (pro) u.set(pro.words, pro.uBase);
  });
  const k = items.length;
  const code = () => {
    const decls: string[] = [];
    const cases: string[] = [];
    parts.forEach(({ first, pro }, j) => {
      decls.push(
        `@group(0) @binding(${first}) var<storage, read_write> d${j}: array<f32>;`,
        pro ? pro.code : `@group(0) @binding(${first + 1}) var<storage, read> s${j}: array<f32>;`,
      );
      const load = pro ? `load_s${j}(i)` : `s${j}[i]`;
      cases.push(`case ${j}u: { if (i < n) { d${j}[i] = a * ${load} + b * d${j}[i]; } }`);
    });
    return `
${decls.join("\n")}
struct Params { d: array<vec4<u32>, ${u.length / 4}> }
@group(0) @binding(${binding}) var<uniform> params: Params;
fn U(j: u32) -> u32 { return params.d[j / 4u][j % 4u]; }
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
    @builtin(num_workgroups) nw: vec3<u32>) {
  let w = wid.x + wid.y * nw.x;
  // The item is uniform per workgroup: found by scalar compares, then one switch arm runs (a chain of
  // ifs with early returns made llvmpipe run every arm's body masked: cost grew with the item count).
  var j = 0u;
  for (var t = 1u; t < ${k}u; t++) { if (w >= params.d[t].x) { j = t; } }
  let item = params.d[j];
  let i = (w - item.x) * 256u + lid;
  let n = item.y;
  let a = bitcast<f32>(item.z);
  let b = bitcast<f32>(item.w);
  switch j {
    ${cases.join("\n    ")}
    default: {}
  }
}`;
  };
  const bindings = items.flatMap((it, j) => [
    { buffer: it.dst, write: true },
    ...(parts[j].pro ? parts[j].pro!.bindings : [{ buffer: it.src as GPUBuffer }]),
  ]);
  const key = `axpby-into|multi|${parts.map((x) => x.pro?.key ?? "buf").join(";")}`;
  rt.dispatch(key, code, bindings, u, rt.grid(wg));
}
