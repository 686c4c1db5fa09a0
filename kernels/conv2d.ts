// 2-D convolution (NCHW, cross-correlation, groups) and its two gradients, all as implicit GEMMs on
// the shared register-tiled generator: no im2col buffer, the loaders compute input addresses and
// padding masks on the fly. Groups are the GEMM's batch index z, which also covers StyleGAN2's fused
// modulated conv (x as [1, N*cin, H, W], per-sample weights [N*cout, cin, k, k], groups = N).
//   forward      z = group, M = cout/g, N = batch*outH*outW, K = cin/g*kh*kw
//   input grad   z = group, M = cin/g,  N = batch*h*w,       K = cout/g*kh*kw (taps that hit a stride)
//   weight grad  z = group, M = cout/g, N = cin/g*kh*kw,     K = batch*outH*outW (split over workgroups)
// On the texture path (gemmPath) x, dy and w are first packed into rgba32float textures holding 4
// channels per texel, the image framed by zero borders (pack_texture.ts); K then runs over
// (channel quad, tap), each texel load brings 4 reduction terms, and padding needs no masks.

import {
  checkEpilogue,
  type Epilogue,
  epilogueCode,
  epilogueHelper,
  epilogueKey,
  f32Bits,
  gemm,
  gemmPath,
  gemmTile,
  intoSplits,
  kSplits,
  type OperandLoader,
  tileCount,
} from "./gemm.ts";
import {
  type ImageLayout,
  imageLayout,
  type PackedTexture,
  packImage,
  type PackSource,
  type PlainOperand,
  plainOperand,
  releasePacked,
} from "./pack_texture.ts";
import { checkBuffer, checkCounts } from "./matmul.ts";
import { gpu } from "./runtime.ts";

export type { Epilogue } from "./gemm.ts";

export interface Conv2dParams {
  batch: number;
  cin: number;
  cout: number;
  h: number;
  w: number;
  kh: number;
  kw: number;
  strideY: number;
  strideX: number;
  padTop: number;
  padLeft: number;
  groups: number;
  outH: number;
  outW: number;
  /**
   * The output of the forward and input-gradient passes is f16 (their f32 sums are rounded once, at
   * the store); the weight gradient is always f32.
   */
  outF16?: boolean;
}

// Uniform words after the GEMM's reserved ones (GEMM_USER_WORD = 8; word 8 holds the batch).
const W_CIN = 9, W_COUT = 10, W_H = 11, W_W = 12, W_KH = 13, W_KW = 14, W_SY = 15, W_SX = 16;
const W_PT = 17, W_PL = 18, W_CING = 19, W_COUTG = 20, W_OH = 21, W_OW = 22, W_ALPHA = 23;
const W_R_OHW = 24, W_R_OW = 25, W_R_KHW = 26, W_R_KW = 27, W_R_HW = 28, W_R_W = 29;

/** Shape names shared by every conv kernel's WGSL (uniform reads; integer coordinates are i32). */
const SHAPE_CORE_WGSL = `fn cCin() -> u32 { return U(${W_CIN}u); }
fn cCout() -> u32 { return U(${W_COUT}u); }
fn cH() -> u32 { return U(${W_H}u); }
fn cW() -> u32 { return U(${W_W}u); }
fn cKW() -> u32 { return U(${W_KW}u); }
fn cKHW() -> u32 { return U(${W_KH}u) * U(${W_KW}u); }
fn cSY() -> u32 { return U(${W_SY}u); }
fn cSX() -> u32 { return U(${W_SX}u); }
fn cPT() -> i32 { return i32(U(${W_PT}u)); }
fn cPL() -> i32 { return i32(U(${W_PL}u)); }
fn cCinG() -> u32 { return U(${W_CING}u); }
fn cCoutG() -> u32 { return U(${W_COUTG}u); }
fn cOH() -> u32 { return U(${W_OH}u); }
fn cOW() -> u32 { return U(${W_OW}u); }
fn cOHW() -> u32 { return U(${W_OH}u) * U(${W_OW}u); }
fn cHW() -> u32 { return U(${W_H}u) * U(${W_W}u); }
fn divOHW(a: u32) -> u32 { return fdiv(a, cOHW(), F(${W_R_OHW}u)); }
fn divOW(a: u32) -> u32 { return fdiv(a, cOW(), F(${W_R_OW}u)); }
fn divKHW(a: u32) -> u32 { return fdiv(a, cKHW(), F(${W_R_KHW}u)); }
fn divKW(a: u32) -> u32 { return fdiv(a, cKW(), F(${W_R_KW}u)); }
fn divHW(a: u32) -> u32 { return fdiv(a, cHW(), F(${W_R_HW}u)); }
fn divW(a: u32) -> u32 { return fdiv(a, cW(), F(${W_R_W}u)); }`;

const SHAPE_WGSL = SHAPE_CORE_WGSL + `
// x[base + y*W + x] with zero padding outside the image (ok = false also reads zero).
// Bounds are combined with '&', not '&&': a short-circuit '&&' becomes branches, and SwiftShader (chromium's
// CPU WebGPU) never finished compiling a GEMM that inlines 16 such loads per K step (it grew past 1.5 GB).
fn ldX(base: i32, y: i32, x: i32, ok: bool) -> f32 {
  let inside = ok & (u32(y) < cH()) & (u32(x) < cW());
  return select(0.0, X[u32(base + y * i32(cW()) + x)], inside);
}`;

function validate(p: Conv2dParams): void {
  const { outF16: _outF16, ...counts } = p;
  checkCounts("conv2d", counts);
  for (const k of ["cin", "cout", "kh", "kw", "strideY", "strideX", "groups"] as const) {
    if (p[k] < 1) throw new Error(`conv2d: ${k} must be at least 1, got ${p[k]}`);
  }
  if (p.cin % p.groups !== 0 || p.cout % p.groups !== 0) {
    throw new Error(`conv2d: cin ${p.cin} and cout ${p.cout} must be multiples of groups ${p.groups}`);
  }
  // The f32 division helper is exact below 2^24 divisors; index sizes stay far below 2^31 here.
  if (p.batch * p.cin * p.h * p.w >= 2 ** 31 || p.batch * p.cout * p.outH * p.outW >= 2 ** 31) {
    throw new Error("conv2d: tensors of 2^31 elements or more are not supported");
  }
}

function uniformWords(p: Conv2dParams, alpha = 1): number[] {
  const r = (v: number) => f32Bits(1 / Math.max(1, v));
  return [
    p.batch,
    p.cin,
    p.cout,
    p.h,
    p.w,
    p.kh,
    p.kw,
    p.strideY,
    p.strideX,
    p.padTop,
    p.padLeft,
    p.cin / p.groups,
    p.cout / p.groups,
    p.outH,
    p.outW,
    f32Bits(alpha),
    r(p.outH * p.outW),
    r(p.outW),
    r(p.kh * p.kw),
    r(p.kw),
    r(p.h * p.w),
    r(p.w),
  ];
}

function checkDistinct(what: string, out: GPUBuffer, ...inputs: (PackSource | undefined)[]): void {
  const reads = inputs.flatMap((i) =>
    i === undefined ? [] : i instanceof GPUBuffer ? [i] : i.operands.map((o) => o.buffer)
  );
  if (reads.includes(out)) throw new Error(`${what}: the output buffer must differ from the inputs`);
}

/** Throws unless an output buffer holds `elems` elements (f16 where p.outF16 says so). */
function checkOut(what: string, buf: GPUBuffer, elems: number, p: Conv2dParams): void {
  if (buf.size < elems * (p.outF16 ? 2 : 4)) {
    throw new Error(`${what} buffer holds ${buf.size} bytes, too few for ${elems} elements`);
  }
}

/** Throws unless a source holds at least `elems` f32 (a tree: exactly `elems`). */
function checkSource(what: string, src: PackSource, elems: number): void {
  if (src instanceof GPUBuffer) return checkBuffer(what, src, elems);
  const n = src.shape.reduce((a, d) => a * d, 1);
  if (n !== elems) throw new Error(`${what}: elementwise source has ${n} elements, needs ${elems}`);
}

/** The buffer of a source on the storage path (an elementwise source takes the texture path only). */
function bufferOf(what: string, src: PackSource): PlainOperand {
  const p = plainOperand(src);
  if (p) return p;
  throw new Error(`${what}: an elementwise source needs the texture path (check conv2dTakesTrees first)`);
}

/**
 * Whether a conv2d pass runs on the texture path here, where its operands may be elementwise trees
 * (packed as they are computed) instead of buffers.
 */
export function conv2dTakesTrees(p: Conv2dParams, pass: "forward" | "inputGrad" | "weightGrad"): boolean {
  if (gemmPath(conv2dFlops(p)) !== "texture") return false;
  if (pass === "forward") return forwardLayouts(p) !== null;
  if (pass === "inputGrad") return inputGradLayouts(p) !== null;
  return weightGradLayouts(p) !== null;
}

/** Weights as GEMM A rows (o = fixed index, k = (ci, ky, kx)), vec4 along k when K % 4 == 0. */
function weightRowsLoader(vec4: boolean): OperandLoader {
  const row = (i: number) => `(z * cCoutG() + m0 + ${i}u) * K`;
  if (vec4) {
    return {
      vec: "k",
      setup: (i) => `let aR${i} = ${row(i)} / 4u; let aOk${i} = ${i}u < mLeft;`,
      load: (i, k) => `select(vec4<f32>(0.0), Wt4[aR${i} + ${k} / 4u], aOk${i})`,
    };
  }
  return {
    vec: "none",
    setup: (i) => `let aR${i} = ${row(i)}; let aOk${i} = ${i}u < mLeft;`,
    load: (i, k, q) => `select(0.0, Wt[aR${i} + ${k}], aOk${i} & kOk${q})`,
  };
}

/** y = conv2d(x, w) (+ bias along cout, then the epilogue expression). */
export function conv2dForward(
  x: PackSource,
  w: PackSource,
  out: GPUBuffer,
  p: Conv2dParams,
  epi?: Epilogue,
): void {
  validate(p);
  checkSource("conv2dForward: x", x, p.batch * p.cin * p.h * p.w);
  checkSource("conv2dForward: w", w, p.cout * (p.cin / p.groups) * p.kh * p.kw);
  checkOut("conv2dForward: out", out, p.batch * p.cout * p.outH * p.outW, p);
  checkEpilogue("conv2dForward", epi, p.cout);
  checkDistinct("conv2dForward", out, x, w, epi?.bias);
  if (gemmPath(conv2dFlops(p)) === "texture" && forwardTexture(x, w, out, p, epi)) return;
  const [px, pw] = [bufferOf("conv2dForward", x), bufferOf("conv2dForward", w)];
  const m = p.cout / p.groups, n = p.batch * p.outH * p.outW, k = (p.cin / p.groups) * p.kh * p.kw;
  const vecW = k % 4 === 0;
  const tile = gemmTile(m, n, k, p.groups, "storage", "conv_fwd");
  // Few output tiles (small images, a GPU's many cores): split K, and the sum pass runs the epilogue.
  const splits = kSplits(tileCount(m, n, p.groups, tile), k);
  const total = p.batch * p.cout * p.outH * p.outW;
  const fused = splits > 1 ? undefined : epi;
  intoSplits({ buffer: out, f16: !!p.outF16 }, splits, total, (target) => {
    gemm({
      key: `conv_fwd|w${vecW ? 4 : 1}|${splits > 1 ? "split" : epilogueKey(epi)}`,
      tile,
      bindings: [
        { buffer: px.buffer, name: "X", f16: px.f16 },
        { buffer: pw.buffer, name: vecW ? "Wt4" : "Wt", vec4: vecW, f16: pw.f16 },
        ...(fused?.bias ? [{ buffer: fused.bias, name: "bias" }] : []),
        { buffer: target, name: "Y", write: true, f16: p.outF16 && target === out },
      ],
      uniform: uniformWords(p, fused?.alpha ?? 1),
      helpers: SHAPE_WGSL + "\n" + epilogueHelper(fused),
      loadA: weightRowsLoader(vecW),
      loadB: {
        vec: "none",
        // Column n = (b, oy, ox): the input window's corner and image base, once per thread.
        setup: (j) =>
          `let bb${j} = divOHW(n0 + ${j}u); let br${j} = n0 + ${j}u - bb${j} * cOHW(); ` +
          `let boy${j} = divOW(br${j}); let box${j} = br${j} - boy${j} * cOW(); ` +
          `let xB${j} = i32((bb${j} * cCin() + z * cCinG()) * cHW()); ` +
          `let iy${j} = i32(boy${j} * cSY()) - cPT(); let ix${j} = i32(box${j} * cSX()) - cPL(); ` +
          `let bOk${j} = ${j}u < nLeft;`,
        // Row k = (ci, ky, kx): the same for every column.
        perK: (q, k) =>
          `let kc${q} = divKHW(${k}); let kr${q} = ${k} - kc${q} * cKHW(); let ky${q} = divKW(kr${q}); ` +
          `let kx${q} = i32(kr${q} - ky${q} * cKW()); let kO${q} = i32(kc${q} * cHW());`,
        load: (j, _k, q) => `ldX(xB${j} + kO${q}, iy${j} + i32(ky${q}), ix${j} + kx${q}, bOk${j} & kOk${q})`,
      },
      store: (_i, j) =>
        splits > 1
          ? `Y[s * batch * M * N + (bb${j} * cCout() + z * cCoutG() + m) * cOHW() + br${j}] = v;`
          : `${
            epilogueCode(epi, W_ALPHA, "z * cCoutG() + m")
          } Y[(bb${j} * cCout() + z * cCoutG() + m) * cOHW() + br${j}] = OutT(o);`,
      m,
      n,
      k,
      batch: p.groups,
      splits,
    });
  }, epi && { epi, channelStride: p.outH * p.outW, channels: p.cout });
}

// Input-gradient phase words (after the shape words): one GEMM per stride phase (py, px).
const W_PY = 30, W_PX = 31, W_RY = 32, W_RX = 33, W_CY = 34, W_CX = 35, W_HT = 36, W_WT = 37, W_UY = 38;
const W_UX = 39, W_R_HTWT = 40, W_R_WT = 41, W_R_UYUX = 42, W_R_UX = 43;

/** The pixels and taps of one stride phase of the input gradient (see conv2dInputGrad). */
export interface InputGradPhase {
  py: number;
  px: number;
  /** First dx row/column of the phase; its pixels are ry + t*strideY, rx + s*strideX. */
  ry: number;
  rx: number;
  /** dy row of pixel t and tap u is t + cy - u (likewise columns). */
  cy: number;
  cx: number;
  /** Pixel rows/columns in the phase and taps ky = py + u*strideY (u < uy), kx = px + v*strideX. */
  ht: number;
  wt: number;
  uy: number;
  ux: number;
}

/**
 * Splits dx pixels by (iy + padTop) mod strideY and likewise for x: within one phase every kernel
 * tap ky = py + u*strideY lands on the stride grid, so no tap is wasted (a stride-2 gradient would
 * otherwise read four times the taps it uses). For stride 1 there is one phase.
 */
export function inputGradPhases(p: Conv2dParams): InputGradPhase[] {
  const axis = (pos: number, pad: number, stride: number, size: number, k: number) => {
    const r = (((pos - pad) % stride) + stride) % stride;
    return {
      r,
      c: (r + pad - pos) / stride,
      t: r < size ? Math.ceil((size - r) / stride) : 0,
      u: pos < k ? Math.ceil((k - pos) / stride) : 0,
    };
  };
  const phases: InputGradPhase[] = [];
  for (let py = 0; py < p.strideY; py++) {
    const y = axis(py, p.padTop, p.strideY, p.h, p.kh);
    for (let px = 0; px < p.strideX; px++) {
      const x = axis(px, p.padLeft, p.strideX, p.w, p.kw);
      if (y.t * x.t === 0) continue;
      phases.push({ py, px, ry: y.r, rx: x.r, cy: y.c, cx: x.c, ht: y.t, wt: x.t, uy: y.u, ux: x.u });
    }
  }
  return phases;
}

function phaseWords(ph: InputGradPhase): number[] {
  const r = (v: number) => f32Bits(1 / Math.max(1, v));
  return [
    ...[ph.py, ph.px, ph.ry, ph.rx, ph.cy, ph.cx, ph.ht, ph.wt, ph.uy, ph.ux],
    ...[r(ph.ht * ph.wt), r(ph.wt), r(ph.uy * ph.ux), r(ph.ux)],
  ];
}

const PHASE_WGSL = `
fn cWT() -> u32 { return U(${W_WT}u); }
fn cUX() -> u32 { return U(${W_UX}u); }
fn cUYUX() -> u32 { return U(${W_UY}u) * U(${W_UX}u); }
fn cHTWT() -> u32 { return U(${W_HT}u) * U(${W_WT}u); }`;

/** dx = the adjoint of conv2dForward with respect to x, applied to dy (dx is fully overwritten). */
export function conv2dInputGrad(dy: PackSource, w: PackSource, dx: GPUBuffer, p: Conv2dParams): void {
  validate(p);
  checkSource("conv2dInputGrad: dy", dy, p.batch * p.cout * p.outH * p.outW);
  checkSource("conv2dInputGrad: w", w, p.cout * (p.cin / p.groups) * p.kh * p.kw);
  checkOut("conv2dInputGrad: dx", dx, p.batch * p.cin * p.h * p.w, p);
  checkDistinct("conv2dInputGrad", dx, dy, w);
  if (gemmPath(conv2dFlops(p)) === "texture" && inputGradTexture(dy, w, dx, p)) return;
  const [pdy, pw] = [bufferOf("conv2dInputGrad", dy), bufferOf("conv2dInputGrad", w)];
  const phases = inputGradPhases(p);
  for (const ph of phases) {
    // GEMM per phase: M = cin/g, N = batch*ht*wt (b, t, s), K = cout/g*uy*ux (o, u, v).
    const m = p.cin / p.groups, n = p.batch * ph.ht * ph.wt, k = (p.cout / p.groups) * ph.uy * ph.ux;
    const tile = gemmTile(m, n, k, p.groups, "storage", "conv_dx");
    // Split K when one phase covers every pixel (stride 1) and there are few output tiles; the partial
    // sums then tile dx exactly, so one sum pass finishes it.
    const whole = phases.length === 1 && ph.ht === p.h && ph.wt === p.w;
    const splits = whole ? kSplits(tileCount(m, n, p.groups, tile), k) : 1;
    const total = p.batch * p.cin * p.h * p.w;
    intoSplits({ buffer: dx, f16: !!p.outF16 }, splits, total, (target) => {
      gemm({
        key: `conv_dx|split${splits > 1 ? 1 : 0}`,
        tile,
        bindings: [{ buffer: pdy.buffer, name: "DY", f16: pdy.f16 }, {
          buffer: pw.buffer,
          name: "Wt",
          f16: pw.f16,
        }, {
          buffer: target,
          name: "DX",
          write: true,
          f16: p.outF16 && target === dx,
        }],
        uniform: [...uniformWords(p), ...phaseWords(ph)],
        helpers: SHAPE_CORE_WGSL + PHASE_WGSL + `
// dy[base + oy*outW + ox], zero outside the output.
fn ldDY(base: u32, oy: i32, ox: i32, ok: bool) -> f32 {
  let inside = ok & (u32(oy) < cOH()) & (u32(ox) < cOW());
  return select(0.0, DY[base + u32(oy) * cOW() + u32(ox)], inside);
}`,
        loadA: {
          // w[g*coutG + o, ci, py + u*sy, px + v*sx] with fixed ci and k = (o, u, v).
          vec: "none",
          setup: (i) => `let aC${i} = (m0 + ${i}u) * cKHW(); let aOk${i} = ${i}u < mLeft;`,
          perK: (q, kk) =>
            `let ko${q} = fdiv(${kk}, cUYUX(), F(${W_R_UYUX}u)); let kr${q} = ${kk} - ko${q} * cUYUX(); ` +
            `let ku${q} = fdiv(kr${q}, cUX(), F(${W_R_UX}u)); let kv${q} = kr${q} - ku${q} * cUX(); ` +
            `let kw${q} = (z * cCoutG() + ko${q}) * cCinG() * cKHW() + ` +
            `(U(${W_PY}u) + ku${q} * cSY()) * cKW() + U(${W_PX}u) + kv${q} * cSX();`,
          load: (i, _k, q) => `select(0.0, Wt[kw${q} + aC${i}], aOk${i} & kOk${q})`,
        },
        loadB: {
          // Column n = (b, t, s); row k = (o, u, v) reads dy[b, g*coutG + o, t + cy - u, s + cx - v].
          vec: "none",
          setup: (j) =>
            `let bb${j} = fdiv(n0 + ${j}u, cHTWT(), F(${W_R_HTWT}u)); let br${j} = n0 + ${j}u - bb${j} * cHTWT(); ` +
            `let bt${j} = fdiv(br${j}, cWT(), F(${W_R_WT}u)); let bs${j} = br${j} - bt${j} * cWT(); ` +
            `let dB${j} = (bb${j} * cCout() + z * cCoutG()) * cOHW(); ` +
            `let ty${j} = i32(bt${j} + U(${W_CY}u)); let tx${j} = i32(bs${j} + U(${W_CX}u)); ` +
            `let bOk${j} = ${j}u < nLeft;`,
          perK: (q) => `let dO${q} = ko${q} * cOHW();`,
          load: (j, _k, q) =>
            `ldDY(dB${j} + dO${q}, ty${j} - i32(ku${q}), tx${j} - i32(kv${q}), bOk${j} & kOk${q})`,
        },
        store: (_i, j) =>
          `DX[${splits > 1 ? "s * batch * M * N + " : ""}((bb${j} * cCin() + z * cCinG() + m) * cH() + ` +
          `U(${W_RY}u) + bt${j} * cSY()) * cW() + U(${W_RX}u) + bs${j} * cSX()] = OutT(v);`,
        m,
        n,
        k,
        batch: p.groups,
        splits,
      });
    });
  }
}

/** dw = the adjoint of conv2dForward with respect to w, applied to dy (dw is fully overwritten). */
export function conv2dWeightGrad(x: PackSource, dy: PackSource, dw: GPUBuffer, p: Conv2dParams): void {
  validate(p);
  checkSource("conv2dWeightGrad: x", x, p.batch * p.cin * p.h * p.w);
  checkSource("conv2dWeightGrad: dy", dy, p.batch * p.cout * p.outH * p.outW);
  if (p.outF16) throw new Error("conv2dWeightGrad: the weight gradient is f32 only (outF16 set)");
  checkBuffer("conv2dWeightGrad: dw", dw, p.cout * (p.cin / p.groups) * p.kh * p.kw);
  checkDistinct("conv2dWeightGrad", dw, x, dy);
  if (gemmPath(conv2dFlops(p)) === "texture" && weightGradTexture(x, dy, dw, p)) return;
  const [px, pdy] = [bufferOf("conv2dWeightGrad", x), bufferOf("conv2dWeightGrad", dy)];
  const m = p.cout / p.groups, n = (p.cin / p.groups) * p.kh * p.kw, k = p.batch * p.outH * p.outW;
  const tile = gemmTile(m, n, k, p.groups, "storage", "conv_dw");
  const splits = kSplits(tileCount(m, n, p.groups, tile), k);
  const total = p.groups * m * n;
  // dy rows are contiguous within an image: vec4 loads when images hold a multiple of 4 pixels.
  const vecDy = (p.outH * p.outW) % 4 === 0;
  intoSplits(dw, splits, total, (target) => {
    gemm({
      key: `conv_dw|dy${vecDy ? 4 : 1}|split${splits > 1 ? 1 : 0}`,
      tile,
      bindings: [
        { buffer: px.buffer, name: "X", f16: px.f16 },
        { buffer: pdy.buffer, name: vecDy ? "DY4" : "DY", vec4: vecDy, f16: pdy.f16 },
        { buffer: target, name: "DW", write: true },
      ],
      uniform: uniformWords(p),
      helpers: SHAPE_WGSL,
      loadA: {
        // dy[b, g*coutG + o, oy, ox] with fixed o and k = (b, oy, ox) = (wb, wr).
        vec: vecDy ? "k" : "none",
        setup: (i) => `let aO${i} = (z * cCoutG() + m0 + ${i}u) * cOHW(); let aOk${i} = ${i}u < mLeft;`,
        perK: (q, k) =>
          `let wb${q} = divOHW(${k}); let wr${q} = ${k} - wb${q} * cOHW(); let wd${q} = wb${q} * cCout() * cOHW() + wr${q};`,
        load: vecDy
          ? (i) => `select(vec4<f32>(0.0), DY4[(wd0 + aO${i}) / 4u], aOk${i})`
          : (i, _k, q) => `select(0.0, DY[wd${q} + aO${i}], aOk${i} & kOk${q})`,
      },
      loadB: {
        // x[b, g*cinG + ci, oy*sy - pt + ky, ox*sx - pl + kx] with fixed (ci, ky, kx).
        vec: "none",
        setup: (j) =>
          `let bc${j} = divKHW(n0 + ${j}u); let bk${j} = n0 + ${j}u - bc${j} * cKHW(); ` +
          `let bky${j} = divKW(bk${j}); let bkx${j} = i32(bk${j} - bky${j} * cKW()); ` +
          `let xC${j} = i32((z * cCinG() + bc${j}) * cHW()); let bOk${j} = ${j}u < nLeft;`,
        perK: (q) =>
          `let woy${q} = divOW(wr${q}); let wox${q} = wr${q} - woy${q} * cOW(); ` +
          `let xb${q} = i32(wb${q} * cCin() * cHW()); ` +
          `let iy${q} = i32(woy${q} * cSY()) - cPT(); let ix${q} = i32(wox${q} * cSX()) - cPL();`,
        load: (j, _k, q) =>
          `ldX(xb${q} + xC${j}, iy${q} + i32(bky${j}), ix${q} + bkx${j}, bOk${j} & kOk${q})`,
      },
      store: () => `DW[s * ${splits > 1 ? "batch * M * N" : "0u"} + (z * M + m) * N + n] = v;`,
      m,
      n,
      k,
      batch: p.groups,
      splits,
    });
  });
}

/** FLOPs of one conv pass (forward, input grad and weight grad do the same multiply-adds). */
export function conv2dFlops(p: Conv2dParams): number {
  return 2 * p.batch * p.cout * p.outH * p.outW * (p.cin / p.groups) * p.kh * p.kw;
}

// ---- the texture path ----
// Words after the phase words: the A and B images' (wp, outer*hp, cx, hp, 1/cx), then groups,
// the dy frame's top/left border (input grad), channel quads and 1/quads, and dw's split stride.
const W_TA = 44, W_TB = 49, W_G = 54, W_DYPT = 55, W_DYPL = 56, W_C4 = 57, W_R_C4 = 58, W_TOTAL = 59;
const NO_PHASE = new Array(14).fill(0);

function imageWords(l: ImageLayout): number[] {
  return [l.wp, l.outer * l.hp, l.cx, l.hp, f32Bits(1 / l.cx)];
}

/** Texel column and band row of channel quad c4 of the packed image whose words start at w. */
const TEX_WGSL = `
fn quadX(w: u32, c4: u32) -> u32 { return (c4 - fdiv(c4, U(w + 2u), F(w + 4u)) * U(w + 2u)) * U(w); }
fn quadY(w: u32, c4: u32) -> u32 { return fdiv(c4, U(w + 2u), F(w + 4u)) * U(w + 1u); }`;

/** The zero frame around x that keeps every tap of forward and weight grad inside the packed image. */
function xFrame(p: Conv2dParams): { hp: number; wp: number } {
  return {
    hp: Math.max(p.padTop + p.h, (p.outH - 1) * p.strideY + p.kh),
    wp: Math.max(p.padLeft + p.w, (p.outW - 1) * p.strideX + p.kw),
  };
}

/** Packs x[b, g*cinG + c, y, x] as image blocks b*groups + g, framed for the taps. */
function packX(x: PackSource, p: Conv2dParams, l: ImageLayout) {
  return packImage(x, {
    batch: p.batch,
    groups: p.groups,
    channelsPerGroup: p.cin / p.groups,
    h: p.h,
    w: p.w,
    bStride: p.cin * p.h * p.w,
    cStride: p.h * p.w,
    yStride: p.w,
    xStride: 1,
    padTop: p.padTop,
    padLeft: p.padLeft,
  }, l);
}

/** Packs dy[b, g*coutG + o, y, x] as image blocks b*groups + g with the given border. */
function packDy(dy: PackSource, p: Conv2dParams, l: ImageLayout, padTop: number, padLeft: number) {
  return packImage(dy, {
    batch: p.batch,
    groups: p.groups,
    channelsPerGroup: p.cout / p.groups,
    h: p.outH,
    w: p.outW,
    bStride: p.cout * p.outH * p.outW,
    cStride: p.outH * p.outW,
    yStride: p.outW,
    xStride: 1,
    padTop,
    padLeft,
  }, l);
}

/**
 * Packs w[o, ci, ky, kx] as blocks o with channels ci, each block one row of kh*kw taps: forward
 * chunks (quad, tap) walk along a texture row, and the input grad reads 4 input channels per texel.
 */
function packW(w: PackSource, p: Conv2dParams, l: ImageLayout) {
  const cinG = p.cin / p.groups, khw = p.kh * p.kw;
  return packImage(w, {
    batch: p.cout,
    groups: 1,
    channelsPerGroup: cinG,
    h: 1,
    w: khw,
    bStride: cinG * khw,
    cStride: khw,
    yStride: 0,
    xStride: 1,
    padTop: 0,
    padLeft: 0,
  }, l);
}

function release(...textures: PackedTexture[]): void {
  for (const t of textures) releasePacked(t);
}

/** Forward on textures: K = (channel quad, ky, kx) x 4 channels; false when a pack does not fit. */
function forwardLayouts(p: Conv2dParams): { lw: ImageLayout; lx: ImageLayout } | null {
  const cinG = p.cin / p.groups, f = xFrame(p);
  const lw = imageLayout(p.cout, cinG, 1, p.kh * p.kw),
    lx = imageLayout(p.batch * p.groups, cinG, f.hp, f.wp);
  return lw && lx ? { lw, lx } : null;
}

function forwardTexture(
  x: PackSource,
  w: PackSource,
  out: GPUBuffer,
  p: Conv2dParams,
  epi?: Epilogue,
): boolean {
  const layouts = forwardLayouts(p);
  if (!layouts) return false;
  const { lw, lx } = layouts;
  const rt = gpu();
  const tw = packW(w, p, lw), tx = packX(x, p, lx);
  const m = p.cout / p.groups, n = p.batch * p.outH * p.outW, k = lw.c4 * p.kh * p.kw * 4;
  gemm({
    key: `conv_fwd|tex|${epilogueKey(epi)}`,
    tile: gemmTile(m, n, k, p.groups, "texture"),
    bindings: [
      { texture: rt.view(tw.texture), name: "TA" },
      { texture: rt.view(tx.texture), name: "TB" },
      ...(epi?.bias ? [{ buffer: epi.bias, name: "bias" }] : []),
      { buffer: out, name: "Y", write: true, f16: p.outF16 },
    ],
    uniform: [
      ...uniformWords(p, epi?.alpha ?? 1),
      ...NO_PHASE,
      ...imageWords(lw),
      ...imageWords(lx),
      p.groups,
    ],
    helpers: SHAPE_CORE_WGSL + TEX_WGSL + "\n" + epilogueHelper(epi),
    loadA: {
      // Weight block o = g*coutG + m; the chunk's (quad, ky, kx) is shared with B.
      vec: "k",
      setup: (i) => `let aY${i} = z * cCoutG() + m0 + ${i}u;`,
      perK: (q, kk) =>
        q !== 0 ? "" : `let kc = ${kk} / 4u; let fc4 = divKHW(kc); let ft = kc - fc4 * cKHW(); ` +
          `let fky = divKW(ft); let fkx = ft - fky * cKW(); ` +
          `let aDX = quadX(${W_TA}u, fc4) + ft; let aDY = quadY(${W_TA}u, fc4);`,
      load: (i) => `textureLoad(TA, vec2<u32>(aDX, aY${i} + aDY), 0)`,
    },
    loadB: {
      // Column n = (b, oy, ox): the window corner in the framed image, once per thread.
      vec: "k",
      setup: (j) =>
        `let bb${j} = divOHW(n0 + ${j}u); let br${j} = n0 + ${j}u - bb${j} * cOHW(); ` +
        `let boy${j} = divOW(br${j}); let box${j} = br${j} - boy${j} * cOW(); ` +
        `let bX${j} = box${j} * cSX(); let bY${j} = (bb${j} * U(${W_G}u) + z) * U(${
          W_TB + 3
        }u) + boy${j} * cSY();`,
      perK: (q) =>
        q !== 0 ? "" : `let bDX = quadX(${W_TB}u, fc4) + fkx; let bDY = quadY(${W_TB}u, fc4) + fky;`,
      load: (j) => `textureLoad(TB, vec2<u32>(bX${j} + bDX, bY${j} + bDY), 0)`,
    },
    store: (_i, j) =>
      `${
        epilogueCode(epi, W_ALPHA, "z * cCoutG() + m")
      } Y[(bb${j} * cCout() + z * cCoutG() + m) * cOHW() + br${j}] = OutT(o);`,
    m,
    n,
    k,
    batch: p.groups,
    fmaOrder: "q-inner",
  });
  release(tw, tx);
  return true;
}

/**
 * Input grad on textures, one GEMM per stride phase; K = (output-channel quad, u, v) x 4 output
 * channels. A reads the forward weight pack, 4 input channels (rows) per texel.
 */
function inputGradLayouts(
  p: Conv2dParams,
): { lw: ImageLayout; ldy: ImageLayout; pt: number; pl: number; phases: InputGradPhase[] } | null {
  const cinG = p.cin / p.groups, coutG = p.cout / p.groups;
  const phases = inputGradPhases(p);
  // dy rows t + cy - u and columns s + cx - v of every phase must land inside the frame.
  let pt = 0, pl = 0;
  for (const ph of phases) [pt, pl] = [Math.max(pt, ph.uy - 1 - ph.cy), Math.max(pl, ph.ux - 1 - ph.cx)];
  let hp = pt + p.outH, wp = pl + p.outW;
  for (const ph of phases) [hp, wp] = [Math.max(hp, pt + ph.ht + ph.cy), Math.max(wp, pl + ph.wt + ph.cx)];
  const lw = imageLayout(p.cout, cinG, 1, p.kh * p.kw), ldy = imageLayout(p.batch * p.groups, coutG, hp, wp);
  return lw && ldy ? { lw, ldy, pt, pl, phases } : null;
}

function inputGradTexture(dy: PackSource, w: PackSource, dx: GPUBuffer, p: Conv2dParams): boolean {
  const cinG = p.cin / p.groups, coutG = p.cout / p.groups;
  const layouts = inputGradLayouts(p);
  if (!layouts) return false;
  const { lw, ldy, pt, pl, phases } = layouts;
  const rt = gpu();
  const tw = packW(w, p, lw), tdy = packDy(dy, p, ldy, pt, pl);
  // Output channels past coutG in the last quad would read the next group's weights: masked.
  const mask = coutG % 4 !== 0;
  for (const ph of phases) {
    const m = cinG, n = p.batch * ph.ht * ph.wt, k = ldy.c4 * ph.uy * ph.ux * 4;
    gemm({
      key: `conv_dx|tex|mask${mask ? 1 : 0}`,
      tile: gemmTile(m, n, k, p.groups, "texture"),
      bindings: [
        { texture: rt.view(tw.texture), name: "TA" },
        { texture: rt.view(tdy.texture), name: "TB" },
        { buffer: dx, name: "DX", write: true, f16: p.outF16 },
      ],
      uniform: [
        ...uniformWords(p),
        ...phaseWords(ph),
        ...imageWords(lw),
        ...imageWords(ldy),
        p.groups,
        pt,
        pl,
      ],
      helpers: SHAPE_CORE_WGSL + PHASE_WGSL + TEX_WGSL,
      loadA: {
        // Rows 4g..4g+3 are one quad of input channels; k = (o, u, v) reads weight block
        // g*coutG + o at tap (py + u*sy, px + v*sx).
        vec: "fixed",
        setup: (g) =>
          `let aQ${g} = m0 / 4u + ${g}u; let aX${g} = quadX(${W_TA}u, aQ${g}); ` +
          `let aY${g} = quadY(${W_TA}u, aQ${g}) + z * cCoutG();`,
        perK: (q, kk) =>
          q !== 0 ? "" : `let kc = ${kk} / 4u; let fc4 = fdiv(kc, cUYUX(), F(${W_R_UYUX}u)); ` +
            `let ft = kc - fc4 * cUYUX(); let fu = fdiv(ft, cUX(), F(${W_R_UX}u)); let fv = ft - fu * cUX(); ` +
            `let aT = (U(${W_PY}u) + fu * cSY()) * cKW() + U(${W_PX}u) + fv * cSX(); let aO = 4u * fc4;`,
        load: (g, _k, q) => {
          const load = `textureLoad(TA, vec2<u32>(aX${g} + aT, aY${g} + aO + ${q}u), 0)`;
          return mask ? `select(vec4<f32>(0.0), ${load}, aO + ${q}u < cCoutG())` : load;
        },
      },
      loadB: {
        // Column n = (b, t, s) reads dy[b, g*coutG + o, t + cy - u, s + cx - v] inside the frame.
        vec: "k",
        setup: (j) =>
          `let bb${j} = fdiv(n0 + ${j}u, cHTWT(), F(${W_R_HTWT}u)); let br${j} = n0 + ${j}u - bb${j} * cHTWT(); ` +
          `let bt${j} = fdiv(br${j}, cWT(), F(${W_R_WT}u)); let bs${j} = br${j} - bt${j} * cWT(); ` +
          `let bX${j} = i32(bs${j} + U(${W_CX}u) + U(${W_DYPL}u)); ` +
          `let bY${j} = i32((bb${j} * U(${W_G}u) + z) * U(${
            W_TB + 3
          }u) + bt${j} + U(${W_CY}u) + U(${W_DYPT}u));`,
        perK: (q) =>
          q !== 0
            ? ""
            : `let bDX = i32(quadX(${W_TB}u, fc4)) - i32(fv); let bDY = i32(quadY(${W_TB}u, fc4)) - i32(fu);`,
        load: (j) => `textureLoad(TB, vec2<i32>(bX${j} + bDX, bY${j} + bDY), 0)`,
      },
      store: (_i, j) =>
        `DX[((bb${j} * cCin() + z * cCinG() + m) * cH() + U(${W_RY}u) + bt${j} * cSY()) * cW() + ` +
        `U(${W_RX}u) + bs${j} * cSX()] = OutT(v);`,
      m,
      n,
      k,
      batch: p.groups,
      fmaOrder: "q-inner",
    });
  }
  release(tw, tdy);
  return true;
}

/**
 * Weight grad on textures: K = pixels (b, oy, ox); A reads 4 output channels of dy per texel, B 4
 * input channels of x, so N runs over (ky, kx, channel quad) x 4 and padded channels are not stored.
 * dy is read in the input gradient's framed layout (at its border pt, pl) where that fits, so inside
 * sharePacks the two gradients of one conv share one pack of dy.
 */
function weightGradLayouts(
  p: Conv2dParams,
): { lx: ImageLayout; ldy: ImageLayout; pt: number; pl: number } | null {
  const cinG = p.cin / p.groups, coutG = p.cout / p.groups, f = xFrame(p);
  const lx = imageLayout(p.batch * p.groups, cinG, f.hp, f.wp);
  const framed = inputGradLayouts(p);
  if (framed) return lx && { lx, ldy: framed.ldy, pt: framed.pt, pl: framed.pl };
  const ldy = imageLayout(p.batch * p.groups, coutG, p.outH, p.outW);
  return lx && ldy ? { lx, ldy, pt: 0, pl: 0 } : null;
}

function weightGradTexture(x: PackSource, dy: PackSource, dw: GPUBuffer, p: Conv2dParams): boolean {
  const cinG = p.cin / p.groups, coutG = p.cout / p.groups;
  const layouts = weightGradLayouts(p);
  if (!layouts) return false;
  const { lx, ldy, pt, pl } = layouts;
  const rt = gpu();
  const m = coutG, n = p.kh * p.kw * lx.c4 * 4, k = p.batch * p.outH * p.outW;
  const tile = gemmTile(m, n, k, p.groups, "texture");
  const splits = kSplits(tileCount(m, n, p.groups, tile), k);
  const total = p.groups * coutG * cinG * p.kh * p.kw;
  const tdy = packDy(dy, p, ldy, pt, pl), tx = packX(x, p, lx);
  // Chunks of 4 pixels never straddle K (nor a split, kPer being a multiple of 4) when K % 4 == 0.
  const mask = k % 4 !== 0, row4 = p.outW % 4 === 0;
  const masked = (load: string, q: number) => mask ? `select(vec4<f32>(0.0), ${load}, kOk${q})` : load;
  intoSplits(dw, splits, total, (target) => {
    gemm({
      key: `conv_dw|tex|split${splits > 1 ? 1 : 0}|mask${mask ? 1 : 0}|row${row4 ? 4 : 1}`,
      tile,
      bindings: [
        { texture: rt.view(tdy.texture), name: "TA" },
        { texture: rt.view(tx.texture), name: "TB" },
        { buffer: target, name: "DW", write: true },
      ],
      uniform: [
        ...uniformWords(p),
        ...NO_PHASE,
        ...imageWords(ldy),
        ...imageWords(lx),
        p.groups,
        pt,
        pl,
        lx.c4,
        f32Bits(1 / lx.c4),
        total,
      ],
      helpers: SHAPE_CORE_WGSL + TEX_WGSL,
      loadA: {
        // Rows 4g..4g+3 are one quad of output channels; row k = pixel (b, oy, ox), masked past K.
        vec: "fixed",
        setup: (g) =>
          `let aO${g} = m0 / 4u + ${g}u; let aX${g} = quadX(${W_TA}u, aO${g}) + U(${W_DYPL}u); ` +
          `let aY${g} = quadY(${W_TA}u, aO${g}) + z * U(${W_TA + 3}u) + U(${W_DYPT}u);`,
        // With outW % 4 == 0 a chunk's 4 pixels share a row: one decomposition per chunk.
        perK: (q, kk) =>
          row4 && q > 0
            ? `let koy${q} = koy0; let kox${q} = kox0 + ${q}u; let kbG${q} = kbG0;`
            : `let kb${q} = divOHW(${kk}); let kr${q} = ${kk} - kb${q} * cOHW(); let koy${q} = divOW(kr${q}); ` +
              `let kox${q} = kr${q} - koy${q} * cOW(); let kbG${q} = kb${q} * U(${W_G}u);`,
        load: (g, _k, q) =>
          masked(
            `textureLoad(TA, vec2<u32>(aX${g} + kox${q}, aY${g} + kbG${q} * U(${W_TA + 3}u) + koy${q}), 0)`,
            q,
          ),
      },
      loadB: {
        // Columns 4g..4g+3 are one quad of input channels at tap (ky, kx).
        vec: "fixed",
        setup: (g) =>
          `let bN${g} = n0 / 4u + ${g}u; let bT${g} = fdiv(bN${g}, U(${W_C4}u), F(${W_R_C4}u)); ` +
          `let bC${g} = bN${g} - bT${g} * U(${W_C4}u); let bKy${g} = divKW(bT${g}); let bKx${g} = bT${g} - bKy${g} * cKW(); ` +
          `let bX${g} = quadX(${W_TB}u, bC${g}) + bKx${g}; ` +
          `let bY${g} = quadY(${W_TB}u, bC${g}) + z * U(${W_TB + 3}u) + bKy${g};`,
        perK: (q) =>
          `let bKY${q} = kbG${q} * U(${W_TB + 3}u) + koy${q} * cSY(); let bKX${q} = kox${q} * cSX();`,
        load: (g, _k, q) => masked(`textureLoad(TB, vec2<u32>(bX${g} + bKX${q}, bY${g} + bKY${q}), 0)`, q),
      },
      store: () =>
        `let sN = n / 4u; let sT = fdiv(sN, U(${W_C4}u), F(${W_R_C4}u)); ` +
        `let sC = (sN - sT * U(${W_C4}u)) * 4u + n % 4u; ` +
        `if (sC < cCinG()) { DW[s * U(${W_TOTAL}u) + ((z * M + m) * cCinG() + sC) * cKHW() + sT] = v; }`,
      m,
      n,
      k,
      batch: p.groups,
      splits,
      fmaOrder: "q-inner",
    });
    release(tdy, tx);
  });
  return true;
}
