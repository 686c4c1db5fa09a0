// Batched matrix multiply on f32 buffers or elementwise trees (f16 tensors among them; outputs f32 or f16)
// with optional transposes, broadcast operands and a fused epilogue (alpha, bias, activation
// expression). Layouts become strides in the uniform; a compiled variant differs only where vec4 loads
// are possible (a contiguous extent that is a multiple of 4).
// On the texture path (gemmPath) A and B are first packed into rgba32float textures along their
// contiguous axis (a pure re-layout, a buffer-to-texture copy when rows are 256-byte aligned; a tree is
// computed by the pack). On the storage path a tree is a fused prologue that the GEMM's loads call.

import {
  checkEpilogue,
  type Epilogue,
  epilogueCode,
  epilogueHelper,
  epilogueKey,
  f32Bits,
  gemm,
  GEMM_USER_WORD,
  type GemmBinding,
  gemmPath,
  type GemmTile,
  gemmTile,
  type OperandLoader,
} from "./gemm.ts";
import { packRows, type PackSource, plainOperand, rowsLayout } from "./pack_texture.ts";
import { type ElementwiseProgram, renderPrologue, suffixHelpers } from "./prologue.ts";
import { gpu } from "./runtime.ts";

export { checkEpilogue, type Epilogue, epilogueCode, epilogueHelper, epilogueKey };

export interface MatmulParams {
  batch: number;
  m: number;
  n: number;
  k: number;
  transA?: boolean;
  transB?: boolean;
  broadcastA?: boolean;
  broadcastB?: boolean;
  /** The output is f16 (the f32 sums are rounded once, at the store). */
  outF16?: boolean;
}

/** Throws unless `buf` holds at least `elems` f32. */
export function checkBuffer(what: string, buf: GPUBuffer, elems: number): void {
  if (buf.size < elems * 4) {
    throw new Error(`${what} buffer holds ${buf.size} bytes, needs ${elems * 4} (${elems} f32)`);
  }
}

/** Throws unless a buffer holds at least `elems` f32, or a tree exactly `elems` elements. */
function checkOperand(what: string, src: PackSource, elems: number): void {
  if (src instanceof GPUBuffer) return checkBuffer(what, src, elems);
  const n = src.shape.reduce((x, d) => x * d, 1);
  if (n !== elems) throw new Error(`${what}: elementwise source has ${n} elements, needs ${elems}`);
}

/** Throws unless every listed value is a non-negative integer. */
export function checkCounts(what: string, values: Record<string, number>): void {
  for (const [name, v] of Object.entries(values)) {
    if (!Number.isInteger(v) || v < 0) {
      throw new Error(`${what}: ${name} must be a non-negative integer, got ${v}`);
    }
  }
}

/**
 * Loader of a strided operand X[z][f][k] (f = the fixed index: m for A, n for B) with strides
 * (zS, fS, kS) in uniform words w, w+1, w+2. `contig` says which index has stride 1; vec4 loads are
 * used along it when its extent (`kExtent` or `fExtent`) is a multiple of 4. Scalar loads go through
 * `read` (a prologue's load function, for a tree; the binding itself by default).
 */
function stridedLoader(
  name: string,
  w: number,
  fixed: "m" | "n",
  contig: "k" | "fixed",
  vec4: boolean,
  read = (index: string) => `${name}[${index}]`,
): OperandLoader {
  const f0 = fixed === "m" ? "m0" : "n0", left = fixed === "m" ? "mLeft" : "nLeft";
  const p = name.toLowerCase();
  const base = (off: string) => `z * U(${w}u) + (${f0} + ${off}u) * U(${w + 1}u)`;
  if (!vec4) {
    return {
      vec: "none",
      setup: (i) => `let ${p}R${i} = ${base(String(i))}; let ${p}Ok${i} = ${i}u < ${left};`,
      load: (i, k, q) => `select(0.0, ${read(`${p}R${i} + ${k} * U(${w + 2}u)`)}, ${p}Ok${i} & kOk${q})`,
    };
  }
  if (contig === "k") {
    return {
      vec: "k",
      setup: (i) => `let ${p}R${i} = (${base(String(i))}) / 4u; let ${p}Ok${i} = ${i}u < ${left};`,
      load: (i, k) => `select(vec4<f32>(0.0), ${name}4[${p}R${i} + ${k} / 4u], ${p}Ok${i})`,
    };
  }
  return {
    vec: "fixed",
    setup: (g) => `let ${p}R${g} = ${base(String(4 * g))}; let ${p}Ok${g} = ${4 * g}u < ${left};`,
    load: (g, k, q) =>
      `select(vec4<f32>(0.0), ${name}4[(${p}R${g} + ${k} * U(${w + 2}u)) / 4u], ${p}Ok${g} & kOk${q})`,
  };
}

/**
 * Loader of a texture-packed operand (rows layout, see pack_texture.ts) whose texels run along k
 * (rows are the fixed index) or along the fixed index (rows are k). Uniform words w..w+3: texels per
 * row, rows per batch, batches side by side, and 0/1 for a broadcast/batched operand. Zero padding
 * from the pack covers k past K; rows or columns past M/N only feed outputs that are not stored.
 */
function textureLoader(
  name: string,
  w: number,
  fixed: "m" | "n",
  texelsAlong: "k" | "fixed",
): OperandLoader {
  const p = name.toLowerCase(), f0 = fixed === "m" ? "m0" : "n0";
  const origin = `let ${p}Z = z * U(${w + 3}u); let ${p}OX = (${p}Z % U(${w + 2}u)) * U(${w}u); ` +
    `let ${p}OY = (${p}Z / U(${w + 2}u)) * U(${w + 1}u);`;
  if (texelsAlong === "k") {
    return {
      vec: "k",
      setup: (i) => `${i === 0 ? origin : ""} let ${p}Y${i} = ${p}OY + ${f0} + ${i}u;`,
      load: (i, k) => `textureLoad(${name}, vec2<u32>(${p}OX + ${k} / 4u, ${p}Y${i}), 0)`,
    };
  }
  return {
    vec: "fixed",
    setup: (g) => `${g === 0 ? origin : ""} let ${p}X${g} = ${p}OX + ${f0} / 4u + ${g}u;`,
    load: (g, k) => `textureLoad(${name}, vec2<u32>(${p}X${g}, ${p}OY + ${k}), 0)`,
  };
}

/** The packed-texture layouts of A and B, or null when an operand does not fit a texture. */
function textureLayouts(p: MatmulParams) {
  const { batch, m, n, k } = p;
  // Source matrices as [rows][cols] with cols contiguous: A is [m][k] or [k][m], B is [k][n] or [n][k].
  const aBatch = p.broadcastA ? 1 : batch, bBatch = p.broadcastB ? 1 : batch;
  const [aRows, aCols] = p.transA ? [k, m] : [m, k];
  const [bRows, bCols] = p.transB ? [n, k] : [k, n];
  const la = rowsLayout(aBatch, aRows, aCols), lb = rowsLayout(bBatch, bRows, bCols);
  return la && lb ? { aBatch, bBatch, aRows, aCols, bRows, bCols, la, lb } : null;
}

/**
 * Below this many FLOPs a storage-path GEMM computes a tree operand in its loads. Every thread tile
 * that reads an element recomputes it, which costs less than the kernel that would store it only while
 * the GEMM is small (then the dispatch, not the arithmetic, is the cost).
 */
export const TREE_MAX_FLOPS = 2 ** 20;

/**
 * Whether A and B should come as elementwise trees (f16 tensors among them) rather than buffers: on the
 * texture path the pack computes them (into f32 texels), and a small storage-path GEMM in its loads.
 */
export function matmulTakesTrees(p: MatmulParams): boolean {
  if (p.batch * p.m * p.n === 0 || p.k === 0) return false;
  const flops = matmulFlops(p);
  return gemmPath(flops) === "texture" ? textureLayouts(p) !== null : flops < TREE_MAX_FLOPS;
}

/** How the storage-path GEMM reads one operand: bindings, loader, and a prologue's code and words. */
interface StorageOperand {
  bindings: GemmBinding[];
  loader: OperandLoader;
  key: string;
  code: string;
  words: Uint32Array;
}

/**
 * A (or B) on the storage path: a buffer read with vec4 loads where `vec4` allows, or a tree rendered
 * as `fn load_a(i) -> f32` at the operand's flat index (its bindings from `firstBinding`, its words from
 * uniform word `uBase`). Strides sit in words w..w+2 either way.
 */
function storageOperand(
  src: PackSource,
  name: "A" | "B",
  w: number,
  contig: "k" | "fixed",
  vec4: boolean,
  firstBinding: number,
  uBase: number,
): StorageOperand {
  const fixed = name === "A" ? "m" : "n";
  const plain = plainOperand(src);
  if (plain) {
    const n = vec4 ? `${name}4` : name;
    return {
      bindings: [{ buffer: plain.buffer, name: n, vec4, f16: plain.f16 }],
      loader: stridedLoader(name, w, fixed, contig, vec4),
      key: `${contig}${vec4 ? 4 : 1}`,
      code: "",
      words: new Uint32Array(0),
    };
  }
  const tree = src as ElementwiseProgram, fn = `load_${name.toLowerCase()}`;
  const pro = renderPrologue(tree, fn, firstBinding, uBase);
  return {
    bindings: tree.operands.map((o, j) => ({ buffer: o.buffer, name: `${fn}_in${j}`, declared: true })),
    loader: stridedLoader(name, w, fixed, contig, false, (i) => `${fn}(${i})`),
    key: `${contig}t[${pro.key}]`,
    code: suffixHelpers(pro.code, `_x${name}`, fn),
    words: pro.words,
  };
}

/** The texture path of matmul; false (nothing recorded) when an operand does not fit a texture. */
function matmulTexture(
  a: PackSource,
  b: PackSource,
  out: GPUBuffer,
  p: MatmulParams,
  epi?: Epilogue,
): boolean {
  const { batch, m, n, k } = p;
  const t = textureLayouts(p);
  if (!t) return false;
  const { aBatch, bBatch, aRows, aCols, bRows, bCols, la, lb } = t;
  const rt = gpu();
  const ta = packRows(a, {
    batch: aBatch,
    rows: aRows,
    cols: aCols,
    zStride: m * k,
    rowStride: aCols,
    colStride: 1,
  }, la);
  const tb = packRows(b, {
    batch: bBatch,
    rows: bRows,
    cols: bCols,
    zStride: k * n,
    rowStride: bCols,
    colStride: 1,
  }, lb);
  const aAlong = p.transA ? "fixed" : "k", bAlong = p.transB ? "k" : "fixed";
  gemm({
    key: `matmul|tex:${aAlong}:${bAlong}|${epilogueKey(epi)}`,
    tile: gemmTile(m, n, k, batch, "texture"),
    bindings: [
      { texture: rt.view(ta.texture), name: "TA" },
      { texture: rt.view(tb.texture), name: "TB" },
      ...(epi?.bias ? [{ buffer: epi.bias, name: "bias" }] : []),
      { buffer: out, name: "C", write: true, f16: p.outF16 },
    ],
    uniform: [
      la.w,
      la.rp,
      la.bx,
      p.broadcastA ? 0 : 1,
      lb.w,
      lb.rp,
      lb.bx,
      p.broadcastB ? 0 : 1,
      f32Bits(epi?.alpha ?? 1),
    ],
    helpers: epilogueHelper(epi),
    loadA: textureLoader("TA", 8, "m", aAlong),
    loadB: textureLoader("TB", 12, "n", bAlong),
    store: () => `${epilogueCode(epi, 16)} C[(z * M + m) * N + n] = OutT(o);`,
    m,
    n,
    k,
    batch,
    fmaOrder: "q-inner",
  });
  rt.releaseTexture(ta.texture);
  rt.releaseTexture(tb.texture);
  return true;
}

/**
 * out[b,m,n] = epilogue(sum_k A[b,m,k] * B[b,k,n]). A and B are f32 buffers, f16 buffers as one-load
 * programs (kernels/pack_texture.ts plainOperand), or any elementwise trees (matmulTakesTrees(p) says
 * when they are cheaper than buffers; the caller keeps their buffers within the adapter's binding limit).
 */
export function matmul(
  a: PackSource,
  b: PackSource,
  out: GPUBuffer,
  p: MatmulParams,
  epi?: Epilogue,
): void {
  const { batch, m, n, k } = p;
  checkCounts("matmul", { batch, m, n, k });
  const reads = [a, b].flatMap((s) => s instanceof GPUBuffer ? [s] : s.operands.map((o) => o.buffer));
  if (reads.includes(out) || epi?.bias === out) {
    throw new Error("matmul: the output buffer must differ from the inputs");
  }
  checkOperand("matmul: A", a, (p.broadcastA ? 1 : batch) * m * k);
  checkOperand("matmul: B", b, (p.broadcastB ? 1 : batch) * k * n);
  if (out.size < batch * m * n * (p.outF16 ? 2 : 4)) {
    throw new Error(`matmul: out buffer holds ${out.size} bytes, too few for ${batch * m * n} elements`);
  }
  checkEpilogue("matmul", epi, epi?.biasAlong === "m" ? m : n);
  if (batch * m * n === 0) return;
  if (k > 0 && gemmPath(matmulFlops(p)) === "texture" && matmulTexture(a, b, out, p, epi)) return;
  const tile: GemmTile = gemmTile(m, n, k, batch);
  // A as (z, m, k) strides, B as (z, n, k) strides (the loader's fixed index first); a tree is read at
  // these flat indices of its row-major shape.
  const aZ = p.broadcastA ? 0 : m * k, bZ = p.broadcastB ? 0 : k * n;
  const aStr = p.transA ? [aZ, 1, m] : [aZ, k, 1];
  const bStr = p.transB ? [bZ, k, 1] : [bZ, 1, n];
  const aContig = p.transA ? "fixed" : "k", bContig = p.transB ? "k" : "fixed";
  const aVec = p.transA ? m % 4 === 0 && tile.tm % 4 === 0 : k % 4 === 0;
  const bVec = p.transB ? k % 4 === 0 : n % 4 === 0;
  const uniform = [...aStr, ...bStr, f32Bits(epi?.alpha ?? 1)];
  const u0 = GEMM_USER_WORD + uniform.length;
  const A = storageOperand(a, "A", 8, aContig, aVec, 0, u0);
  const B = storageOperand(b, "B", 11, bContig, bVec, A.bindings.length, u0 + A.words.length);
  const bindings: GemmBinding[] = [
    ...A.bindings,
    ...B.bindings,
    ...(epi?.bias ? [{ buffer: epi.bias, name: "bias" }] : []),
    { buffer: out, name: "C", write: true, f16: p.outF16 },
  ];
  const limit = gpu().device.limits.maxStorageBuffersPerShaderStage;
  if (bindings.length > limit) {
    throw new Error(
      `matmul: the operands' trees read ${bindings.length - 1} buffers, more than this adapter binds ` +
        `(${limit} with the output); materialise one first`,
    );
  }
  gemm({
    key: `matmul|${A.key}${B.key}|${epilogueKey(epi)}`,
    tile,
    bindings,
    uniform: [...uniform, ...A.words, ...B.words],
    helpers: `${epilogueHelper(epi) ?? ""}${A.code}${B.code}`,
    loadA: A.loader,
    loadB: B.loader,
    store: () => `${epilogueCode(epi, 14)} C[(z * M + m) * N + n] = OutT(o);`,
    m,
    n,
    k,
    batch,
  });
}

/** FLOPs of a matmul (multiply and add counted separately). */
export function matmulFlops(p: MatmulParams): number {
  return 2 * p.batch * p.m * p.n * p.k;
}
