// A register-tiled GEMM generator shared by matmul and the three implicit-GEMM conv2d passes:
// C[z][m][n] = sum_k A[z][m][k] * B[z][k][n]. Each thread owns a TM x TN block of C in registers and
// streams A and B straight from storage, four k at a time. How elements are fetched (strides,
// implicit im2col, padding) and how results are stored (epilogues, split-K partials) comes from the
// caller as WGSL snippets, so the tiling logic exists once.
//
// Why no workgroup-shared tiles: on Mesa 22 lavapipe (the CPU adapter) every storage *and*
// shared-memory load is emulated lane by lane (~10 cycles per float per lane, uniform addresses
// included), so staging through shared memory only adds loads. What pays is reuse in registers:
// per k step a thread loads tm + tn floats for tm * tn FMAs, so big thread tiles win (until LLVM's
// compile time explodes), and vec4 loads trim the per-load overhead a little.
//
// The texture path: lavapipe's textureLoad of an rgba32float texel is a real vector gather (~10x
// the storage-load rate per lane), so operands can instead be packed once per GEMM into textures
// whose texels hold four consecutive elements (kernels/pack_texture.ts) and read with textureLoad.
// Loaders are the same OperandLoader snippets; bindings may be textures. gemmPath() picks the path.

import { FAST_DIV_WGSL } from "./elementwise.ts";
import { gpu, onCpuAdapter } from "./runtime.ts";

/** Compile-time tile: each thread computes tm x tn outputs; a workgroup is wx x wy threads. */
export interface GemmTile {
  tm: number;
  tn: number;
  wx: number;
  wy: number;
}

/**
 * How an operand is fetched. For A the "fixed" index is m (thread rows i < TM); for B it is n.
 * - vec "none": `load(i, k, q)` is an f32 for fixed index i and reduction index k (= kChunk + q).
 * - vec "k":    `load(i, k, q)` is a vec4 of reduction indices k..k+3 (q = 0; needs K % 4 == 0).
 * - vec "fixed": `load(g, k, q)` is a vec4 over fixed indices 4g..4g+3 (needs the extent % 4 == 0).
 * `setup(i)` runs once per thread for each fixed index i (for "fixed": each group g) and may declare
 * `let`s that `load` uses. `perK(q, k)` runs once per reduction index of a chunk (shared by all
 * fixed indices). Loads must return zero outside the operand; `kOk${q}` (k + q < kEnd) is in scope.
 * Variables in scope: z (batch), s (split), M, N, K, kBegin, kEnd, m0/n0 (thread's first row/column),
 * mLeft/nLeft (rows/columns of the thread tile inside C: i < mLeft is in range), and U(i)/F(i)
 * read uniform words as u32/f32.
 */
export interface OperandLoader {
  vec: "none" | "k" | "fixed";
  setup?: (i: number) => string;
  perK?: (q: number, k: string) => string;
  load: (i: number, k: string, q: number) => string;
}

/** A storage buffer (array<f32>, or array<vec4<f32>> with vec4) or a texture_2d<f32> binding. */
export type GemmBinding =
  | {
    buffer: GPUBuffer;
    name: string;
    write?: boolean;
    /** Declare as array<vec4<f32>> (for vec4 loads) instead of array<f32>. */
    vec4?: boolean;
    /**
     * f16 storage. A write binding is declared array<f16> and `OutT` is f16, so stores written as
     * `NAME[i] = OutT(o);` round the f32 sum once (split-K partials stay f32). A read binding is declared
     * array<f16> (array<vec4<f16>> with vec4) and every `NAME[...]` read in the kernel is widened to
     * f32, so loaders are written once for both.
     */
    f16?: boolean;
    /** Declared by the spec's helpers (a fused prologue's operand), not here; `name` only labels it. */
    declared?: boolean;
  }
  | { texture: GPUTextureView; name: string };

export interface GemmSpec {
  /** Pipeline key prefix (first field is the kernel name); with the tile it must identify the WGSL. */
  key: string;
  tile: GemmTile;
  bindings: GemmBinding[];
  /** Uniform words after the reserved ones (u32 bit patterns; f32Bits for floats). */
  uniform: number[];
  /** Extra WGSL (helper functions). */
  helpers?: string;
  loadA: OperandLoader;
  loadB: OperandLoader;
  /**
   * WGSL statements storing f32 `v` (the sum over [kBegin, kEnd)) for output (z, s, m, n), which is
   * in range; i and j are the thread-tile row and column, for names declared by the loaders' setup.
   */
  store: (i: number, j: number) => string;
  m: number;
  n: number;
  k: number;
  batch: number;
  /** Split K over this many workgroups (default 1); `store` sees the split index `s`. */
  splits?: number;
  /**
   * Order of the multiply-adds of a k chunk: "q-outer" (each k step over all accumulators) or
   * "q-inner" (each accumulator's 4 k steps back to back). Lavapipe keeps every per-thread value
   * in its own SIMD register, so big tiles spill accumulators; q-inner moves each spilled one once
   * per chunk, not per k (measured ~1.4x on the texture path, neutral on the load-bound storage path).
   */
  fmaOrder?: "q-outer" | "q-inner";
  /** Test hook: pretend the per-dimension grid limit is this (exercises grid folding). */
  maxGridDim?: number;
}

/** Reserved uniform words: M, N, K, batch, tilesN, tilesM, splits, kPer; callers' words start here. */
export const GEMM_USER_WORD = 8;

const KU = 4; // reduction indices per loop iteration

/**
 * Tuning and test hooks: `tile` forces every GEMM's tile (bench/gemm_quick.ts), `path` forces the
 * operand path (like the GC_GEMM_PATH environment variable, which it overrides).
 */
export const gemmTuning: { tile: GemmTile | null; path: GemmPath | null } = { tile: null, path: null };

/** How GEMM operands are read: straight from storage buffers, or packed into textures first. */
export type GemmPath = "storage" | "texture";

let envPath: GemmPath | null = null;

/**
 * The GC_GEMM_PATH setting (storage|texture; unset or empty: the adapter decides). kernels/ reads no
 * environment itself, so the browser can import it: Deno entry points pass the variable in here
 * (cli/gemm_env.ts).
 */
export function setGemmPathSetting(v: string | undefined): void {
  if (v === undefined || v === "") {
    envPath = null;
    return;
  }
  if (v !== "storage" && v !== "texture") {
    throw new Error(`GC_GEMM_PATH must be "storage" or "texture", got "${v}"`);
  }
  envPath = v;
}

/**
 * GEMMs from this many FLOPs (~ matmul 80^3) take the texture path on a CPU adapter. Per CPU-second
 * (bench/gemm_quick.ts small) the paths tie at 32^3 and textures lead from 64^3 up (0.5 vs 0.4
 * GFLOP), but below ~1 MFLOP the run is dominated by dispatch overhead (the texture path adds up to
 * two pack dispatches) and the extra pipelines' compile time is not worth it.
 */
export const TEXTURE_MIN_FLOPS = 2 ** 20;

/**
 * The operand path for a GEMM of `flops`: forced by gemmTuning.path or GC_GEMM_PATH, else textures on
 * a CPU adapter for GEMMs big enough to pay for packing. Real GPUs keep the storage path (their
 * storage loads are fast and it is the more portable one). Callers fall back to storage when the
 * packed operands do not fit the texture size limit.
 */
export function gemmPath(flops: number): GemmPath {
  const forced = gemmTuning.path ?? envPath;
  if (forced) return forced;
  return onCpuAdapter() && flops >= TEXTURE_MIN_FLOPS ? "texture" : "storage";
}

const TILE_CANDIDATES: GemmTile[] = [
  { tm: 32, tn: 32, wx: 4, wy: 2 },
  { tm: 16, tn: 32, wx: 4, wy: 4 },
  { tm: 32, tn: 16, wx: 4, wy: 4 },
  { tm: 16, tn: 16, wx: 8, wy: 4 },
  { tm: 16, tn: 16, wx: 4, wy: 2 },
  { tm: 16, tn: 16, wx: 1, wy: 8 },
  { tm: 16, tn: 16, wx: 8, wy: 1 },
  { tm: 8, tn: 16, wx: 4, wy: 4 },
  { tm: 16, tn: 8, wx: 4, wy: 4 },
  { tm: 8, tn: 8, wx: 4, wy: 2 },
  { tm: 16, tn: 4, wx: 4, wy: 4 },
  { tm: 4, tn: 16, wx: 2, wy: 4 },
  { tm: 4, tn: 4, wx: 4, wy: 2 },
];

/** The GEMM kernels that take their tile from gemmTile: matmul and the three conv2d passes. */
export type GemmKind = "matmul" | "conv_fwd" | "conv_dx" | "conv_dw";
export const GEMM_KINDS: GemmKind[] = ["matmul", "conv_fwd", "conv_dx", "conv_dw"];

/**
 * A GPU's tiles per GEMM kind: `big` for GEMMs that still give a workgroup per ~multiprocessor with it (at
 * least GPU_WORKGROUPS / 8 output tiles), `small` for the rest (split-K fills the adapter there).
 */
export type GpuTiles = Record<GemmKind, { big: GemmTile; small: GemmTile }>;

/**
 * Without a tuned table: many light threads (registers are per thread on a GPU), 64x64 blocks of 4x4
 * per thread, 32x32 blocks for small GEMMs (measured on an H100, bench/results/2026-11-23-h100-*.json:
 * conv c512 4x4 b8 had 16 workgroups of 64x64).
 */
export const DEFAULT_GPU_TILES: GpuTiles = Object.fromEntries(GEMM_KINDS.map((k) => [k, {
  big: { tm: 4, tn: 4, wx: 16, wy: 16 },
  small: { tm: 4, tn: 4, wx: 8, wy: 8 },
}])) as GpuTiles;

/** What a GPU's tile autotune times (cli/gemm_tiles.ts): register tiles of 4 or 8, 64 to 256 threads. */
export const GPU_TILE_CANDIDATES: GemmTile[] = [
  { tm: 4, tn: 4, wx: 16, wy: 16 },
  { tm: 4, tn: 4, wx: 8, wy: 8 },
  { tm: 4, tn: 4, wx: 32, wy: 8 },
  { tm: 8, tn: 4, wx: 16, wy: 16 },
  { tm: 4, tn: 8, wx: 16, wy: 16 },
  { tm: 8, tn: 8, wx: 16, wy: 16 },
  { tm: 8, tn: 8, wx: 8, wy: 8 },
  { tm: 8, tn: 8, wx: 16, wy: 8 },
  { tm: 8, tn: 8, wx: 8, wy: 16 },
];

let gpuTiles: GpuTiles | null = null;

/**
 * Sets the tiles a GPU adapter uses (a tuned table, cli/gemm_tiles.ts; null: DEFAULT_GPU_TILES). CPU
 * adapters keep their modelled choice. kernels/ reads no files itself, so the Deno side hands it in.
 */
export function setGpuTiles(t: GpuTiles | null): void {
  if (t) {
    for (const k of GEMM_KINDS) {
      if (!t[k]) throw new Error(`gemm: the GPU tiles have no entry for ${k}`);
      checkTile(t[k].big);
      checkTile(t[k].small);
    }
  }
  gpuTiles = t;
}

/** The GPU tiles in force. */
export function currentGpuTiles(): GpuTiles {
  return gpuTiles ?? DEFAULT_GPU_TILES;
}

/**
 * Workgroups that keep the adapter busy: 16 on the CPU adapter (a few per core), 1024 on a GPU (about
 * 8 per multiprocessor of a large one; WebGPU does not report the count). Split-K GEMMs split until
 * they reach it.
 */
const CPU_WORKGROUPS = 16, GPU_WORKGROUPS = 1024;
export function fillingWorkgroups(): number {
  return onCpuAdapter() ? CPU_WORKGROUPS : GPU_WORKGROUPS;
}

/**
 * Compile time on the CPU adapter grows steeply with the accumulators per thread (LLVM: ~3 s at
 * 16x16, ~8 s at 16x32, ~20 s at 32x32), so big tiles are kept for GEMMs whose run time dwarfs it.
 */
function allowedTile(t: GemmTile, flops: number): boolean {
  const acc = t.tm * t.tn;
  return acc <= 256 || (acc <= 512 && flops >= 2 ** 29) || flops >= 2 ** 32;
}

/**
 * Tile for a GEMM of this size: the allowed candidate with the least modelled cost. Loads per
 * output and k step are 1/tm + 1/tn (the CPU adapter's bottleneck), padding to whole tiles is
 * wasted work, and fewer than ~8 workgroups leave cores idle.
 */
export function gemmTile(
  m: number,
  n: number,
  k: number,
  batch: number,
  path: GemmPath = "storage",
  kind: GemmKind = "matmul",
): GemmTile {
  if (gemmTuning.tile) return gemmTuning.tile;
  if (path === "texture") return textureTile(m, n, batch);
  if (!onCpuAdapter()) {
    const tiles = currentGpuTiles()[kind];
    return tileCount(m, n, batch, tiles.big) >= GPU_WORKGROUPS / 8 ? tiles.big : tiles.small;
  }
  let best = TILE_CANDIDATES[TILE_CANDIDATES.length - 1], bestCost = Infinity;
  for (const t of TILE_CANDIDATES) {
    if (!allowedTile(t, 2 * m * n * k * batch)) continue;
    const bm = t.tm * t.wy, bn = t.tn * t.wx;
    const groups = Math.ceil(m / bm) * Math.ceil(n / bn) * batch;
    const padded = groups * bm * bn;
    const cost = padded * (1 / t.tm + 1 / t.tn) * Math.max(1, 8 / groups);
    if (cost < bestCost * 0.999) [best, bestCost] = [t, cost];
  }
  return best;
}

const TEXTURE_TILES: GemmTile[] = [
  { tm: 16, tn: 16, wx: 8, wy: 4 },
  { tm: 16, tn: 16, wx: 4, wy: 4 },
  { tm: 16, tn: 16, wx: 4, wy: 2 },
  { tm: 16, tn: 16, wx: 2, wy: 4 },
  { tm: 8, tn: 16, wx: 4, wy: 2 },
  { tm: 8, tn: 8, wx: 8, wy: 4 },
  { tm: 8, tn: 8, wx: 4, wy: 2 },
  { tm: 4, tn: 8, wx: 4, wy: 2 },
];

/**
 * Texture-path tile: loads are cheap there, so the model is multiply-adds on padded tiles times a
 * per-tile overhead 1 + 5 (1/tm + 1/tn) (fitted to matmul 512: 16x16 ~1.4x faster than 8x8 per
 * CPU-second), with fewer than 8 workgroups leaving cores idle. Workgroups keep >= 8 threads (one
 * AVX2 row of lanes), tm a multiple of 4 (some loaders read 4 rows per texel); 16x16 is the largest:
 * 32x16 gained <10% for ~3x the compile time.
 */
function textureTile(m: number, n: number, batch: number): GemmTile {
  let best = TEXTURE_TILES[0], bestCost = Infinity;
  for (const t of TEXTURE_TILES) {
    const bm = t.tm * t.wy, bn = t.tn * t.wx;
    const groups = Math.ceil(m / bm) * Math.ceil(n / bn) * batch;
    const cost = groups * bm * bn * (1 + 5 * (1 / t.tm + 1 / t.tn)) * Math.max(1, 8 / groups);
    if (cost < bestCost * 0.999) [best, bestCost] = [t, cost];
  }
  return best;
}

const bitsF32 = new Float32Array(1), bitsU32 = new Uint32Array(bitsF32.buffer);

/** f32 bit pattern as u32, for uniform words that hold floats (called per dispatch: no allocation). */
export function f32Bits(x: number): number {
  bitsF32[0] = x;
  return bitsU32[0];
}

/** A 2-D grid [x, y] with x*y >= total and both <= maxDim (workgroups past total exit at once). */
export function foldGrid(total: number, maxDim: number): [number, number] {
  if (total <= maxDim) return [Math.max(1, total), 1];
  const y = Math.ceil(total / maxDim);
  if (y > maxDim) throw new Error(`gemm: ${total} workgroups exceed the grid limit ${maxDim}^2`);
  return [Math.ceil(total / y), y];
}

/** Which output tile, batch and split a flat workgroup index computes (mirrors the WGSL). */
export function decodeWorkgroup(
  flat: number,
  tilesN: number,
  tilesM: number,
  splits: number,
): { tileN: number; tileM: number; z: number; s: number } {
  const r = Math.floor(flat / tilesN), zs = Math.floor(r / tilesM);
  return { tileN: flat % tilesN, tileM: r % tilesM, z: Math.floor(zs / splits), s: zs % splits };
}

function checkTile(t: GemmTile): void {
  const ok = [t.tm, t.tn, t.wx, t.wy].every((v) => Number.isInteger(v) && v > 0) && t.tn % 4 === 0 &&
    t.wx * t.wy <= 256;
  if (!ok) throw new Error(`gemm: unsupported tile ${JSON.stringify(t)} (tn must be a multiple of 4)`);
}

/** WGSL source of a GEMM kernel (exported for inspection and tests). */
export function gemmSource(spec: GemmSpec): string {
  const { tm, tn, wx, wy } = spec.tile;
  checkTile(spec.tile);
  const A = spec.loadA, B = spec.loadB;
  if (A.vec === "fixed" && tm % 4 !== 0) throw new Error("gemm: vec4 A rows need tm % 4 == 0");
  const words = GEMM_USER_WORD + spec.uniform.length;
  for (const b of spec.bindings) {
    if ("buffer" in b && b.f16 && b.write && b.vec4) {
      throw new Error(`gemm ${spec.key}: f16 outputs are scalar bindings (${b.name})`);
    }
  }
  const decls = spec.bindings.map((b, i) =>
    "texture" in b
      ? `@group(0) @binding(${i}) var ${b.name}: texture_2d<f32>;`
      : b.declared
      ? ""
      : `@group(0) @binding(${i}) var<storage, ${b.write ? "read_write" : "read"}> ${b.name}: ` +
        `array<${b.vec4 ? `vec4<${b.f16 ? "f16" : "f32"}>` : b.f16 ? "f16" : "f32"}>;`
  ).join("\n");
  const outT = gemmOutF16(spec) ? "f16" : "f32";
  const setup = (L: OperandLoader, count: number) => {
    if (!L.setup) return "";
    const n = L.vec === "fixed" ? count / 4 : count;
    return Array.from({ length: n }, (_, i) => L.setup!(i)).join("\n  ");
  };
  const body: string[] = [];
  const qInner = spec.fmaOrder === "q-inner";
  for (let q = 0; q < KU; q++) body.push(`let kOk${q} = k + ${q}u < kEnd;`);
  for (let q = 0; q < KU; q++) for (const L of [A, B]) if (L.perK) body.push(L.perK(q, `(k + ${q}u)`));
  // Loads named a{i} (vec over the chunk's 4 k, loaded once per chunk), a{i}_{q} (scalar) or
  // a{g}_{q} (vec over 4 fixed indices); the same for b.
  for (const [L, p, count] of [[A, "a", tm], [B, "b", tn]] as const) {
    if (L.vec === "k") { for (let i = 0; i < count; i++) body.push(`let ${p}${i} = ${L.load(i, "k", 0)};`); }
  }
  const val = (L: OperandLoader, p: string, i: number, q: number) =>
    L.vec === "k" ? `${p}${i}[${q}]` : L.vec === "fixed" ? `${p}${i >> 2}_${q}[${i & 3}]` : `${p}${i}_${q}`;
  for (let q = 0; q < KU; q++) {
    for (const [L, p, count] of [[A, "a", tm], [B, "b", tn]] as const) {
      if (L.vec === "k") continue;
      const n = L.vec === "fixed" ? count / 4 : count;
      for (let i = 0; i < n; i++) body.push(`let ${p}${i}_${q} = ${L.load(i, `(k + ${q}u)`, q)};`);
    }
    for (let g = 0; g < tn / 4; g++) {
      const bv = B.vec === "fixed"
        ? `b${g}_${q}`
        : `vec4<f32>(${[0, 1, 2, 3].map((c) => val(B, "b", 4 * g + c, q)).join(", ")})`;
      body.push(`let bv${g}_${q} = ${bv};`);
    }
    for (let i = 0; i < tm; i++) {
      body.push(`let av${i}_${q} = vec4<f32>(${val(A, "a", i, q)});`);
      if (!qInner) {
        for (let g = 0; g < tn / 4; g++) body.push(`c${i}_${g} = fma(av${i}_${q}, bv${g}_${q}, c${i}_${g});`);
      }
    }
  }
  if (qInner) {
    // Each accumulator takes its 4 k steps back to back: one register round trip per chunk.
    for (let i = 0; i < tm; i++) {
      for (let g = 0; g < tn / 4; g++) {
        for (let q = 0; q < KU; q++) body.push(`c${i}_${g} = fma(av${i}_${q}, bv${g}_${q}, c${i}_${g});`);
      }
    }
  }
  const acc: string[] = [], stores: string[] = [];
  for (let i = 0; i < tm; i++) {
    for (let g = 0; g < tn / 4; g++) {
      acc.push(`var c${i}_${g} = vec4<f32>(0.0);`);
      for (let c = 0; c < 4; c++) {
        stores.push(
          `if ((${i}u < mLeft) & (${4 * g + c}u < nLeft)) { let m = m0 + ${i}u; let n = n0 + ${
            4 * g + c
          }u; ` +
            `let v = c${i}_${g}[${c}]; ${spec.store(i, 4 * g + c)} }`,
        );
      }
    }
  }
  let src = `${decls}
alias OutT = ${outT};
struct Params { d: array<vec4<u32>, ${Math.ceil(words / 4)}> }
@group(0) @binding(${spec.bindings.length}) var<uniform> params: Params;
fn U(j: u32) -> u32 { return params.d[j / 4u][j % 4u]; }
fn F(j: u32) -> f32 { return bitcast<f32>(U(j)); }
${FAST_DIV_WGSL}
${spec.helpers ?? ""}
@compute @workgroup_size(${wx * wy})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let M = U(0u); let N = U(1u); let K = U(2u); let batch = U(3u);
  let tilesN = U(4u); let tilesM = U(5u); let splits = U(6u); let kPer = U(7u);
  let flat = wid.x + wid.y * nw.x;
  let r = flat / tilesN;
  let zs = r / tilesM;
  if (zs >= batch * splits) { return; }
  let z = zs / splits;
  let s = zs % splits;
  let m0 = (r % tilesM) * ${tm * wy}u + (lid / ${wx}u) * ${tm}u;
  let n0 = (flat % tilesN) * ${tn * wx}u + (lid % ${wx}u) * ${tn}u;
  let mLeft = select(0u, M - m0, m0 < M);
  let nLeft = select(0u, N - n0, n0 < N);
  let kBegin = s * kPer;
  let kEnd = min(K, kBegin + kPer);
  ${setup(A, tm)}
  ${setup(B, tn)}
  ${acc.join("\n  ")}
  for (var k = kBegin; k < kEnd; k = k + ${KU}u) {
    ${body.join("\n    ")}
  }
  ${stores.join("\n  ")}
}`;
  for (const b of spec.bindings) {
    if ("buffer" in b && b.f16 && !b.write) src = widenReads(src, b.name, b.vec4 ? "vec4<f32>" : "f32");
  }
  return src;
}

/** Wraps every `name[...]` (brackets balanced) in `type(...)`: f16 loads become f32 values. */
export function widenReads(src: string, name: string, type: string): string {
  const re = new RegExp(`\\b${name}\\[`, "g");
  let out = "", last = 0;
  for (let m = re.exec(src); m; m = re.exec(src)) {
    let depth = 0, j = m.index + name.length;
    for (; j < src.length; j++) {
      if (src[j] === "[") depth++;
      else if (src[j] === "]" && --depth === 0) break;
    }
    if (j >= src.length) throw new Error(`widenReads: unbalanced ${name}[ in a GEMM kernel`);
    out += `${src.slice(last, m.index)}${type}(${src.slice(m.index, j + 1)})`;
    last = j + 1;
    re.lastIndex = last;
  }
  return out + src.slice(last);
}

function gemmOutF16(spec: GemmSpec): boolean {
  return spec.bindings.some((b) => "buffer" in b && b.f16 === true && b.write === true);
}

/** The f16 bindings' part of a pipeline key. */
function f16Key(spec: GemmSpec): string {
  const names = spec.bindings.filter((b) => "buffer" in b && b.f16).map((b) => b.name);
  return names.length ? `|f16:${names.join(",")}` : "";
}

/** Records the GEMM described by `spec`. */
export function gemm(spec: GemmSpec): void {
  const { m, n, k, batch } = spec;
  for (const [name, v] of Object.entries({ m, n, k, batch })) {
    if (!Number.isInteger(v) || v < 0) {
      throw new Error(`gemm ${spec.key}: ${name} must be a non-negative integer, got ${v}`);
    }
  }
  if (m === 0 || n === 0 || batch === 0) return;
  const rt = gpu();
  const t = spec.tile;
  const splits = Math.max(1, Math.min(spec.splits ?? 1, Math.ceil(k / KU)));
  const kPer = Math.ceil(k / splits / KU) * KU;
  const tilesN = Math.ceil(n / (t.tn * t.wx)), tilesM = Math.ceil(m / (t.tm * t.wy));
  const [gx, gy] = foldGrid(tilesN * tilesM * batch * splits, spec.maxGridDim ?? rt.maxWorkgroups);
  const words = GEMM_USER_WORD + spec.uniform.length;
  const u = new Uint32Array(Math.ceil(words / 4) * 4);
  u.set([m, n, k, batch, tilesN, tilesM, splits, kPer]);
  u.set(spec.uniform, GEMM_USER_WORD);
  rt.dispatch(
    `${spec.key}|${t.tm}x${t.tn}/${t.wx}x${t.wy}|u${words}|${spec.fmaOrder ?? "q-outer"}${f16Key(spec)}`,
    () => gemmSource(spec),
    spec.bindings,
    u,
    [gx, gy, 1],
  );
}

// ---- epilogues: what a GEMM does to each output before storing it ----

export interface Epilogue {
  bias?: GPUBuffer;
  biasAlong?: "m" | "n";
  /** WGSL expression over `v` (f32 accumulator, alpha applied and bias added). */
  expr?: string;
  /** out = alpha * acc before bias. */
  alpha?: number;
}

/**
 * WGSL statements computing `o` = epilogue(v); alpha is uniform word `alphaWord`, the bias is read
 * at `biasIndex` (default: m or n as `biasAlong` says).
 */
export function epilogueCode(epi: Epilogue | undefined, alphaWord: number, biasIndex?: string): string {
  let code = `var o = v * F(${alphaWord}u);`;
  if (epi?.bias) code += ` o = o + bias[${biasIndex ?? (epi.biasAlong === "m" ? "m" : "n")}];`;
  if (epi?.expr) code += " o = epi(o);";
  return code;
}

/** The `epi(v)` helper function (when an expression is given). */
export function epilogueHelper(epi: Epilogue | undefined): string {
  return epi?.expr ? `fn epi(v: f32) -> f32 { return ${epi.expr}; }` : "";
}

/** The epilogue's part of a pipeline key. */
export function epilogueKey(epi: Epilogue | undefined): string {
  return `${epi?.bias ? "bias" + (epi.biasAlong ?? "n") : "nobias"}:${epi?.expr ?? ""}`;
}

/** Checks an epilogue against the output extent it runs along. */
export function checkEpilogue(what: string, epi: Epilogue | undefined, along: number): void {
  if (!epi) return;
  if (epi.biasAlong && !epi.bias) throw new Error(`${what}: biasAlong given without a bias buffer`);
  if (epi.bias && epi.bias.size < along * 4) {
    throw new Error(`${what}: bias buffer holds ${epi.bias.size} bytes, needs ${along * 4}`);
  }
  if (epi.alpha !== undefined && !Number.isFinite(epi.alpha)) {
    throw new Error(`${what}: alpha must be finite, got ${epi.alpha}`);
  }
}

/** The epilogue of a split-K GEMM, applied by the sum pass: bias index (i / channelStride) % channels. */
export interface SplitEpilogue {
  epi: Epilogue;
  channelStride: number;
  channels: number;
}

/**
 * out[i] = sum over s < splits of parts[s * count + i]: the second pass of a split-K GEMM, with the
 * GEMM's epilogue (alpha, bias, expression) applied to the sum when given.
 */
export function sumSplits(
  parts: GPUBuffer,
  out: GPUBuffer,
  splits: number,
  count: number,
  e?: SplitEpilogue,
  outF16 = false,
): void {
  if (parts === out) throw new Error("sumSplits: parts and out must be different buffers");
  if (parts.size < splits * count * 4 || out.size < count * (outF16 ? 2 : 4)) {
    throw new Error(`sumSplits: buffers too small for ${splits} x ${count} f32`);
  }
  if (count === 0) return;
  const rt = gpu();
  const wg = 64;
  const bias = e?.epi.bias;
  const uBinding = bias ? 3 : 2;
  const finish = e
    ? `var o = acc * bitcast<f32>(u[1].x);${bias ? " o = o + bias[(i / u[0].z) % u[0].w];" : ""}${
      e.epi.expr ? " o = epi(o);" : ""
    } O[i] = ${outF16 ? "f16" : "f32"}(o);`
    : `O[i] = ${outF16 ? "f16" : "f32"}(acc);`;
  rt.dispatch(
    `gemm_sum_splits|${e ? epilogueKey(e.epi) : "plain"}${outF16 ? "|out16" : ""}`,
    () =>
      `@group(0) @binding(0) var<storage, read> P: array<f32>;
@group(0) @binding(1) var<storage, read_write> O: array<${outF16 ? "f16" : "f32"}>;
${bias ? "@group(0) @binding(2) var<storage, read> bias: array<f32>;" : ""}
@group(0) @binding(${uBinding}) var<uniform> u: array<vec4<u32>, 2>;
${e ? epilogueHelper(e.epi) : ""}
@compute @workgroup_size(${wg})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = gid.x + gid.y * nw.x * ${wg}u;
  if (i >= u[0].y) { return; }
  var acc = 0.0;
  for (var s = 0u; s < u[0].x; s = s + 1u) { acc = acc + P[s * u[0].y + i]; }
  ${finish}
}`,
    [{ buffer: parts }, { buffer: out, write: true }, ...(bias ? [{ buffer: bias }] : [])],
    new Uint32Array([
      splits,
      count,
      e?.channelStride ?? 1,
      e?.channels ?? 1,
      f32Bits(e?.epi.alpha ?? 1),
      0,
      0,
      0,
    ]),
    rt.grid(Math.ceil(count / wg)),
  );
}

/**
 * Runs a GEMM that may split K: with one split, `record` writes `out` directly; otherwise it writes
 * `splits` partial results (f32) into a scratch buffer that sumSplits adds into `out` (running the
 * epilogue; `{ buffer, f16: true }`: out is f16).
 */
export function intoSplits(
  into: GPUBuffer | { buffer: GPUBuffer; f16: boolean },
  splits: number,
  count: number,
  record: (target: GPUBuffer) => void,
  e?: SplitEpilogue,
): void {
  const [out, outF16] = into instanceof GPUBuffer ? [into, false] : [into.buffer, into.f16];
  if (splits <= 1) {
    record(out);
    return;
  }
  const rt = gpu();
  const parts = rt.alloc(splits * count * 4);
  try {
    record(parts);
    sumSplits(parts, out, splits, count, e, outF16);
  } finally {
    rt.release(parts);
  }
}

/**
 * K splits for a GEMM with `tiles` output tiles: enough workgroups to fill the adapter, at least 256 of
 * K per split, at most 64 splits.
 */
export function kSplits(tiles: number, k: number): number {
  return Math.max(1, Math.min(Math.ceil(fillingWorkgroups() / tiles), Math.floor(k / 256), 64));
}

/** Output tiles of an m x n (x batch) GEMM with this tile. */
export function tileCount(m: number, n: number, batch: number, t: GemmTile): number {
  return Math.ceil(m / (t.tm * t.wy)) * Math.ceil(n / (t.tn * t.wx)) * batch;
}
