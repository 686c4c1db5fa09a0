// Repacks GEMM operands from storage buffers into rgba32float textures, whose texels hold four
// consecutive elements along one axis, so the GEMM's inner loop reads operands with textureLoad (a
// vector gather on lavapipe, ~10x the rate of its lane-by-lane storage loads). Two layouts:
//  - rows: a batched matrix X[z][r][c] (any strides) with texel (c/4) of row r; batches are stacked
//    vertically and wrap into side-by-side columns when they would pass the height limit.
//  - image: a grouped NCHW tensor with texel = 4 consecutive channels of one group at one pixel,
//    the image framed by zero borders (conv padding then needs no masks in the GEMM loader).
// Contiguous 256-byte-aligned rows are copied (copyBufferToTexture, a memcpy). Otherwise a pack
// kernel gathers the source through a raw staging texture (also filled by a copy), so its scattered
// reads are texel loads as well; small unframed images with contiguous channel planes (conv weights)
// take a block-transposing kernel that reads whole texels. Measured on conv weights 512x512x3x3
// (CPU-ms per pack): storage reads 32, staged 22, block 11, against 46 for the GEMM that used them;
// what remains is mostly lavapipe's per-texel cost of textureStore.
// Every texel a GEMM reads for an output it stores is written (zeros outside the source), so a
// pooled texture's old contents never reach a result.
// A source may also be an elementwise tree (kernels/prologue.ts): the pack kernel computes the values
// as it gathers them, so the tree needs no kernel and no buffer of its own (and no staging copy).

import { FAST_DIV_WGSL } from "./elementwise.ts";
import { f32Bits } from "./gemm.ts";
import { type ElementwiseProgram, renderPrologue } from "./prologue.ts";
import { gpu } from "./runtime.ts";

/** What a pack reads: a buffer, or an elementwise tree read at the same flat (row-major) indices. */
export type PackSource = GPUBuffer | ElementwiseProgram;

/** A storage buffer and whether it holds f16 (what the storage-path GEMMs bind). */
export interface PlainOperand {
  buffer: GPUBuffer;
  f16: boolean;
}

/**
 * The buffer of a source read as it is stored: an f32 buffer, or a program that only loads one contiguous
 * f16 buffer (how f16 tensors travel to kernels); null for any other program.
 */
export function plainOperand(src: PackSource): PlainOperand | null {
  if (src instanceof GPUBuffer) return { buffer: src, f16: false };
  const o = src.operands[0];
  const n = src.shape.reduce((a, d) => a * d, 1);
  let expect = 1, contiguous = true;
  for (let d = src.shape.length - 1; d >= 0; d--) {
    if (src.shape[d] !== 1 && o?.strides[d] !== expect) contiguous = false;
    expect *= src.shape[d];
  }
  const plain = src.operands.length === 1 && o.dtype === "f16" && o.offset === 0 && contiguous &&
    src.body === "" && src.result === "in0" && n > 0;
  return plain ? { buffer: o.buffer, f16: true } : null;
}

/** Elements a pack source holds. */
function sourceElements(src: PackSource): number {
  return src instanceof GPUBuffer ? src.size / 4 : src.shape.reduce((a, d) => a * d, 1);
}

/** A packed operand: release `texture` (gpu().releaseTexture) after recording the GEMM that reads it. */
export interface PackedTexture {
  texture: GPUTexture;
  /** Region written (texels); the texture may be larger (pool size classes). */
  width: number;
  height: number;
}

/** Rows layout: texel (x, y) of batch z, row r, texel column c4 is at ((z % bx) * w + c4, (z / bx) * rp + r). */
export interface RowsLayout {
  /** Texels per row (ceil(cols / 4)). */
  w: number;
  /** Rows per batch (rows rounded up to a multiple of 4; the extra rows are zero). */
  rp: number;
  /** Batches side by side in one texture row of batches. */
  bx: number;
}

/** Image layout: channel quad c4 of block o (o = b * groups + g), padded pixel (y, x) is at
 * ((c4 % cx) * wp + x, floor(c4 / cx) * outer * hp + o * hp + y). */
export interface ImageLayout {
  /** Padded image height and width (image at rows padTop.., columns padLeft..). */
  hp: number;
  wp: number;
  /** Channel quads per group (ceil(channels per group / 4)). */
  c4: number;
  /** Channel quads side by side in one band; bands stack vertically. */
  cx: number;
  /** Blocks: batch * groups. */
  outer: number;
}

function maxDim(): number {
  return gpu().device.limits.maxTextureDimension2D;
}

/** The rows layout for `batch` matrices of rows x cols, or null when it exceeds the texture limit. */
export function rowsLayout(batch: number, rows: number, cols: number): RowsLayout | null {
  const max = maxDim();
  const w = Math.max(1, Math.ceil(cols / 4)), rp = Math.max(4, Math.ceil(rows / 4) * 4);
  if (w > max || rp > max) return null;
  // Stack batches vertically; wrap into the fewest side-by-side columns that fit.
  const bands = Math.floor(max / rp);
  const bx = Math.ceil(batch / bands);
  if (bx * w > max) return null;
  return { w, rp, bx };
}

/** Texel extent of a rows layout holding `batch` matrices. */
export function rowsExtent(l: RowsLayout, batch: number): [number, number] {
  return [l.bx * l.w, Math.ceil(batch / l.bx) * l.rp];
}

/** The image layout, or null when it exceeds the texture limit. */
export function imageLayout(
  outer: number,
  channelsPerGroup: number,
  hp: number,
  wp: number,
): ImageLayout | null {
  const max = maxDim();
  const c4 = Math.max(1, Math.ceil(channelsPerGroup / 4));
  if (wp > max || outer * hp > max) return null;
  const cx = Math.min(c4, Math.floor(max / wp));
  if (Math.ceil(c4 / cx) * outer * hp > max) return null;
  return { hp, wp, c4, cx, outer };
}

/** Texel extent of an image layout. */
export function imageExtent(l: ImageLayout): [number, number] {
  return [l.cx * l.wp, Math.ceil(l.c4 / l.cx) * l.outer * l.hp];
}

const rcp = (v: number) => f32Bits(1 / Math.max(1, v));

function checkSource(what: string, src: PackSource, lastIndex: number): void {
  const n = sourceElements(src);
  if (lastIndex + 1 > n) {
    throw new Error(`${what}: source holds ${n} floats, the layout reads up to ${lastIndex + 1}`);
  }
}

function checkCounts(what: string, v: Record<string, number>): void {
  for (const [name, x] of Object.entries(v)) {
    if (!Number.isInteger(x) || x < 0) {
      throw new Error(`${what}: ${name} must be a non-negative integer, got ${x}`);
    }
  }
}

/** Texels per pack thread: lavapipe's per-invocation overhead is about that of a texel's work. */
const TEXELS_PER_THREAD = 4;

/** Texels per row of a staged source: 32 KiB rows (a multiple of 256 bytes, as copies require). */
const RAW_WIDTH = 2048;

/**
 * Copies floats [0, count) of `src` into a raw texture, 4 per texel and RAW_WIDTH texels per row;
 * null when it would pass the texture size limit (the pack then reads the buffer directly).
 */
function stageSource(src: GPUBuffer, count: number): GPUTexture | null {
  const texels = Math.ceil(count / 4), rows = Math.ceil(texels / RAW_WIDTH);
  if (rows > maxDim() || texels * 16 > src.size) return null;
  const rt = gpu();
  const raw = rt.allocTexture(Math.min(texels, RAW_WIDTH), rows);
  const pitch = RAW_WIDTH * 16;
  if (rows > 1) rt.copyToTexture(src, 0, pitch, raw, 0, 0, RAW_WIDTH, rows - 1);
  rt.copyToTexture(src, (rows - 1) * pitch, pitch, raw, 0, rows - 1, texels - (rows - 1) * RAW_WIDTH, 1);
  return raw;
}

/** The shared WGSL frame: one thread per texel of the region, `decode` sets base/step/lanes. */
function packSource(
  words: number,
  decode: string,
  staged: boolean,
  prologue?: { code: string; operands: number; x4: boolean },
): string {
  const shift = Math.log2(RAW_WIDTH);
  const source = prologue !== undefined
    ? `${prologue.code}
fn src(i: u32) -> f32 { return load_src(i); }`
    : staged
    ? `@group(0) @binding(0) var R: texture_2d<f32>;
fn src(i: u32) -> f32 {
  let t = i >> 2u;
  return textureLoad(R, vec2<u32>(t & ${RAW_WIDTH - 1}u, t >> ${shift}u), 0)[i & 3u];
}`
    : `@group(0) @binding(0) var<storage, read> S: array<f32>;
fn src(i: u32) -> f32 { return S[i]; }`;
  // With a prologue the texture is binding 0 and the tree's operands follow it.
  const tb = prologue !== undefined ? 0 : 1, ub = prologue !== undefined ? 1 + prologue.operands : 2;
  return `${source}
@group(0) @binding(${tb}) var T: texture_storage_2d<rgba32float, write>;
struct Params { d: array<vec4<u32>, ${Math.ceil(words / 4)}> }
@group(0) @binding(${ub}) var<uniform> params: Params;
fn U(j: u32) -> u32 { return params.d[j / 4u][j % 4u]; }
fn F(j: u32) -> f32 { return bitcast<f32>(U(j)); }
${FAST_DIV_WGSL}
fn packTexel(X: u32, Y: u32) {
  ${decode}
  // Branch-free (lanes past the source read a clamped address and are zeroed).
  ${
    prologue?.x4
      ? "let v = select(vec4<f32>(0.0), load_src_x4(base, step), vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(lanes));"
      : `let v = vec4<f32>(
    select(0.0, src(base), 0u < lanes),
    select(0.0, src(u32(i32(base) + step)), 1u < lanes),
    select(0.0, src(u32(i32(base) + 2 * step)), 2u < lanes),
    select(0.0, src(u32(i32(base) + 3 * step)), 3u < lanes),
  );`
  }
  textureStore(T, vec2<u32>(X, Y), v);
}
@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  if (gid.y >= U(1u)) { return; }
  for (var t = 0u; t < ${TEXELS_PER_THREAD}u; t = t + 1u) {
    let X = gid.x * ${TEXELS_PER_THREAD}u + t;
    if (X < U(0u)) { packTexel(X, gid.y); }
  }
}`;
}

/**
 * Records one pack of `src` (floats [0, count) are read) into `tex`; u[0], u[1] are the region. With
 * `laneDim`, a tree source is read four lanes at a time along that dimension of its shape (see
 * renderPrologue; the caller has checked that kept lanes never carry out of it).
 */
function dispatchPack(
  name: string,
  words: number,
  decode: string,
  src: PackSource,
  count: number,
  tex: GPUTexture,
  u: number[],
  laneDim?: number,
): void {
  const rt = gpu();
  const groups: [number, number, number] = [
    Math.ceil(u[0] / (8 * TEXELS_PER_THREAD)),
    Math.ceil(u[1] / 8),
    1,
  ];
  if (!(src instanceof GPUBuffer)) {
    // The tree's words follow the pack's in the uniform; its operands follow the texture's binding.
    const pro = renderPrologue(src, "load_src", 1, words, laneDim);
    const data = new Uint32Array(Math.ceil((words + pro.words.length) / 4) * 4);
    data.set(u);
    data.set(pro.words, words);
    rt.dispatch(
      `${name}|pro|${pro.key}`,
      () =>
        packSource(words + pro.words.length, decode, false, {
          code: pro.code,
          operands: pro.bindings.length,
          x4: laneDim !== undefined,
        }),
      [{ storageTexture: rt.view(tex) }, ...pro.bindings],
      data,
      groups,
    );
    return;
  }
  const raw = stageSource(src, count);
  const data = new Uint32Array(Math.ceil(u.length / 4) * 4);
  data.set(u);
  rt.dispatch(
    `${name}|${raw ? "staged" : "storage"}`,
    () => packSource(words, decode, raw !== null),
    [raw ? { texture: rt.view(raw) } : { buffer: src }, { storageTexture: rt.view(tex) }],
    data,
    groups,
  );
  if (raw) rt.releaseTexture(raw);
}

/** Source view of a rows pack: element (z, r, c) is src[offset + z*zStride + r*rowStride + c*colStride]. */
export interface RowsSource {
  batch: number;
  rows: number;
  cols: number;
  zStride: number;
  rowStride: number;
  colStride: number;
  offset?: number;
}

/**
 * Packs a batched matrix into a rows-layout texture (allocated here). Contiguous rows whose byte
 * length is a multiple of 256 are copied with copyBufferToTexture; anything else runs the pack kernel.
 */
export function packRows(src: PackSource, s: RowsSource, layout?: RowsLayout): PackedTexture {
  const off = s.offset ?? 0;
  checkCounts("packRows", { batch: s.batch, rows: s.rows, cols: s.cols, offset: off });
  if (s.batch === 0 || s.rows === 0 || s.cols === 0) throw new Error("packRows: empty source");
  for (const st of [s.zStride, s.rowStride, s.colStride]) {
    if (!Number.isInteger(st) || st < 0) throw new Error(`packRows: strides must be non-negative integers`);
  }
  const l = layout ?? rowsLayout(s.batch, s.rows, s.cols);
  if (!l) throw new Error(`packRows: ${s.batch} x ${s.rows} x ${s.cols} does not fit the texture size limit`);
  const last = off + (s.batch - 1) * s.zStride + (s.rows - 1) * s.rowStride + (s.cols - 1) * s.colStride;
  checkSource("packRows", src, last);
  const rt = gpu();
  const [width, height] = rowsExtent(l, s.batch);
  const texture = rt.allocTexture(width, height);
  const contiguous = src instanceof GPUBuffer && s.colStride === 1 && s.cols % 4 === 0 &&
    s.rowStride % 64 === 0 && s.rows === l.rp &&
    l.bx === 1 && (s.batch === 1 || s.zStride === s.rows * s.rowStride) && off % 4 === 0;
  if (contiguous) {
    // The texture's rows are the source rows: one copy (row pitch a multiple of 256 bytes).
    rt.copyToTexture(src, off * 4, s.rowStride * 4, texture, 0, 0, l.w, s.batch * s.rows);
  } else {
    dispatchPack(
      "pack_rows",
      14,
      `let zx = fdiv(X, U(4u), F(12u)); let c4 = X - zx * U(4u);
  let zy = fdiv(Y, U(5u), F(13u)); let r = Y - zy * U(5u);
  let z = zy * U(6u) + zx;
  let c = 4u * c4;
  let ok = (z < U(7u)) & (r < U(2u)) & (c < U(3u));
  let lanes = select(0u, min(4u, U(3u) - c), ok);
  let base = U(11u) + z * U(8u) + r * U(9u) + c * U(10u);
  let step = i32(U(10u));`,
      src,
      last + 1,
      texture,
      [
        width,
        height,
        s.rows,
        s.cols,
        l.w,
        l.rp,
        l.bx,
        s.batch,
        s.zStride,
        s.rowStride,
        s.colStride,
        off,
        rcp(l.w),
        rcp(l.rp),
      ],
    );
  }
  return { texture, width, height };
}

/**
 * Source view of an image pack: element (b, ch, y, x) with ch = g * channelsPerGroup + c is
 * src[b*bStride + ch*cStride + y*yStride + x*xStride] for y < h, x < w; the layout's outer
 * index is b * groups + g.
 */
export interface ImageSource {
  batch: number;
  groups: number;
  channelsPerGroup: number;
  h: number;
  w: number;
  bStride: number;
  cStride: number;
  yStride: number;
  xStride: number;
  padTop: number;
  padLeft: number;
}

const same = (x: number[], y: number[]) => x.length === y.length && x.every((v, i) => v === y[i]);

/** Whether two flat records (a view, a layout) hold the same fields and values. */
function sameFields<T extends object>(x: T, y: T): boolean {
  const keys = Object.keys(x) as (keyof T)[];
  return keys.length === Object.keys(y).length && keys.every((k) => x[k] === y[k]);
}

/** Whether two pack sources read the same values (the same buffer, or trees equal in every part). */
function sameSource(a: PackSource, b: PackSource): boolean {
  if (a instanceof GPUBuffer || b instanceof GPUBuffer) return a === b;
  return a.body === b.body && a.result === b.result && a.helpers === b.helpers && same(a.shape, b.shape) &&
    same(a.scalars, b.scalars) && a.operands.length === b.operands.length &&
    a.operands.every((o, i) => {
      const q = b.operands[i];
      return o.buffer === q.buffer && o.dtype === q.dtype && o.offset === q.offset &&
        same(o.strides, q.strides);
    });
}

interface SharedPack {
  src: PackSource;
  view: ImageSource;
  layout: ImageLayout;
  packed: PackedTexture;
}

/** The image packs of the innermost sharePacks scope; null outside one. */
let sharedPacks: SharedPack[] | null = null;

/**
 * Runs `fn` with image packs shared: a packImage of the same source, view and layout as an earlier one
 * in the scope returns that texture instead of packing again (a backward rule packs dy for both the
 * input and the weight gradient). The sources must not be written inside the scope; releasePacked is a
 * no-op there for shared textures, which are released when the scope ends (nested scopes join the outer).
 */
export function sharePacks<T>(fn: () => T): T {
  if (sharedPacks) return fn();
  const packs: SharedPack[] = sharedPacks = [];
  try {
    return fn();
  } finally {
    sharedPacks = null;
    for (const p of packs) gpu().releaseTexture(p.packed.texture);
  }
}

/** Gives a pack's texture back (kept until the end of a sharePacks scope that holds it). */
export function releasePacked(p: PackedTexture): void {
  if (sharedPacks?.some((s) => s.packed === p)) return;
  gpu().releaseTexture(p.texture);
}

/**
 * Packs a grouped image tensor into an image-layout texture (allocated here, or the shared one of an
 * identical pack inside sharePacks). Release it with releasePacked.
 */
export function packImage(src: PackSource, s: ImageSource, l: ImageLayout): PackedTexture {
  if (sharedPacks) {
    const hit = sharedPacks.find((p) =>
      sameFields(p.view, s) && sameFields(p.layout, l) && sameSource(p.src, src)
    );
    if (hit) return hit.packed;
    const packed = packImageOnce(src, s, l);
    sharedPacks.push({ src, view: { ...s }, layout: { ...l }, packed });
    return packed;
  }
  return packImageOnce(src, s, l);
}

/**
 * The dimension of a tree's shape along which an image pack's four channel lanes step without carrying
 * out of it, or undefined. Holds when the view is the tree's own contiguous NCHW order and a dimension of
 * stride h*w has a multiple of the C channels as its extent (coordinate (b*C + ch) mod extent, ch + k < C
 * for kept lanes).
 */
function imageLaneDim(shape: number[], s: ImageSource): number | undefined {
  const c = s.groups * s.channelsPerGroup, plane = s.h * s.w;
  if (s.xStride !== 1 || s.yStride !== s.w || s.cStride !== plane || s.bStride !== c * plane) {
    return undefined;
  }
  let stride = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (stride === plane && shape[d] % c === 0 && shape[d] > 1) return d;
    stride *= shape[d];
  }
  return undefined;
}

function packImageOnce(src: PackSource, s: ImageSource, l: ImageLayout): PackedTexture {
  checkCounts("packImage", { ...s });
  if (s.batch * s.groups !== l.outer) {
    throw new Error(`packImage: layout has ${l.outer} blocks, source ${s.batch} x ${s.groups}`);
  }
  if (s.padTop + s.h > l.hp || s.padLeft + s.w > l.wp || Math.ceil(s.channelsPerGroup / 4) > l.c4) {
    throw new Error("packImage: the padded image does not fit the layout");
  }
  if (s.batch * s.groups * s.channelsPerGroup * s.h * s.w === 0) throw new Error("packImage: empty source");
  const last = (s.batch - 1) * s.bStride + (s.groups * s.channelsPerGroup - 1) * s.cStride +
    (s.h - 1) * s.yStride + (s.w - 1) * s.xStride;
  checkSource("packImage", src, last);
  const rt = gpu();
  const [width, height] = imageExtent(l);
  const texture = rt.allocTexture(width, height);
  if (src instanceof GPUBuffer && blockPackable(s, l)) {
    packImageBlocks(src, s, l, texture, last + 1);
    return { texture, width, height };
  }
  const band = l.outer * l.hp;
  dispatchPack(
    "pack_image",
    23,
    `let cq = fdiv(X, U(2u), F(19u)); let x = i32(X - cq * U(2u)) - i32(U(7u));
  let bd = fdiv(Y, U(17u), F(20u)); let rem = Y - bd * U(17u);
  let o = fdiv(rem, U(3u), F(21u)); let y = i32(rem - o * U(3u)) - i32(U(6u));
  let b = fdiv(o, U(9u), F(22u)); let g = o - b * U(9u);
  let c = 4u * (bd * U(18u) + cq);
  let ok = (u32(y) < U(4u)) & (u32(x) < U(5u)) & (c < U(8u));
  let lanes = select(0u, min(4u, U(8u) - c), ok);
  let base = b * U(10u) + (g * U(8u) + c) * U(11u) + u32(y) * U(12u) + u32(x) * U(13u);
  let step = i32(U(11u));`,
    src,
    last + 1,
    texture,
    [
      width,
      height,
      l.wp,
      l.hp,
      s.h,
      s.w,
      s.padTop,
      s.padLeft,
      s.channelsPerGroup,
      s.groups,
      s.bStride,
      s.cStride,
      s.yStride,
      s.xStride,
      0,
      0,
      0,
      band,
      l.cx,
      rcp(l.wp),
      rcp(band),
      rcp(l.hp),
      rcp(s.groups),
    ],
    src instanceof GPUBuffer ? undefined : imageLaneDim(src.shape, s),
  );
  return { texture, width, height };
}

/** Largest image (pixels) the block pack handles: its per-thread code is unrolled over pixels. */
const BLOCK_PIXELS = 64;

/**
 * Whether packImageBlocks applies: small unframed images whose channel planes are contiguous and
 * whose channel quads start on a texel (e.g. conv weights, cin % 4 == 0, as [cout][cin][kh*kw]).
 */
function blockPackable(s: ImageSource, l: ImageLayout): boolean {
  const plane = s.h * s.w;
  return plane <= BLOCK_PIXELS && s.xStride === 1 && (s.h === 1 || s.yStride === s.w) &&
    s.cStride === plane &&
    s.channelsPerGroup % 4 === 0 && s.bStride % 4 === 0 && s.padTop === 0 && s.padLeft === 0 &&
    l.hp === s.h && l.wp === s.w;
}

/**
 * The image pack as a 4 x pixels transpose per thread: one thread per (block, channel quad) reads
 * the quad's 4 contiguous planes as whole texels (4 floats per load, not 1) and writes one texel per
 * pixel. Quads past the channels are not written (the GEMM never reads them for stored outputs).
 */
function packImageBlocks(
  src: GPUBuffer,
  s: ImageSource,
  l: ImageLayout,
  texture: GPUTexture,
  count: number,
): void {
  const rt = gpu();
  const plane = s.h * s.w, quads = s.channelsPerGroup / 4;
  const raw = stageSource(src, count);
  const shift = Math.log2(RAW_WIDTH);
  const load = raw
    ? (t: string) => `textureLoad(R, vec2<u32>((${t}) & ${RAW_WIDTH - 1}u, (${t}) >> ${shift}u), 0)`
    : (t: string) => `S4[${t}]`;
  const texels = Math.ceil((4 * plane) / 4);
  const body: string[] = [];
  for (let i = 0; i < texels; i++) body.push(`let v${i} = ${load(`first + ${i}u`)};`);
  const f = (idx: number) => `v${idx >> 2}[${idx & 3}]`;
  for (let px = 0; px < plane; px++) {
    body.push(
      `textureStore(T, vec2<u32>(qx + ${px % s.w}u, qy + ${Math.floor(px / s.w)}u), ` +
        `vec4<f32>(${f(px)}, ${f(plane + px)}, ${f(2 * plane + px)}, ${f(3 * plane + px)}));`,
    );
  }
  const code = () =>
    `${
      raw
        ? "@group(0) @binding(0) var R: texture_2d<f32>;"
        : "@group(0) @binding(0) var<storage, read> S4: array<vec4<f32>>;"
    }
@group(0) @binding(1) var T: texture_storage_2d<rgba32float, write>;
@group(0) @binding(2) var<uniform> u: array<vec4<u32>, 2>;
@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c4 = gid.x; let o = gid.y;
  if (c4 >= u[0].x || o >= u[0].y) { return; }
  let b = o / u[0].z; let g = o - b * u[0].z;
  // The quad's 4 planes start on a texel: (b*bStride + (g*channels + 4*c4)*plane) / 4.
  let first = (b * u[0].w + (g * u[1].x + 4u * c4) * ${plane}u) / 4u;
  let qx = (c4 % u[1].y) * ${s.w}u;
  let qy = (c4 / u[1].y) * u[1].z + o * ${s.h}u;
  ${body.join("\n  ")}
}`;
  rt.dispatch(
    `pack_image_blocks|${s.h}x${s.w}|${raw ? "staged" : "storage"}`,
    code,
    [raw ? { texture: rt.view(raw) } : { buffer: src }, { storageTexture: rt.view(texture) }],
    new Uint32Array([quads, l.outer, s.groups, s.bStride, s.channelsPerGroup, l.cx, l.outer * l.hp, 0]),
    [Math.ceil(quads / 8), Math.ceil(l.outer / 8), 1],
  );
  if (raw) rt.releaseTexture(raw);
}
