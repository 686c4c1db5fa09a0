// upfirdn2d: per plane, upsample by zero insertion, pad (negative crops), FIR-filter, keep every down-th
// pixel. Entry points: a direct 2-D filter, and a separable one run as an x pass then a y pass. Both
// use a tiled kernel generated per (up, down, taps, pad phase, flip) whenever each axis only upsamples
// or only downsamples (all StyleGAN2 cases); anything else falls back to generic kernels with loops.
// Sizes, paddings and the taps' layout travel in the uniform.

import { gpu } from "./runtime.ts";

/** One axis of the resampling: in/out lengths, factors and the leading pad (signed, on the upsampled grid). */
export interface ResampleAxis {
  inLen: number;
  outLen: number;
  up: number;
  down: number;
  pad0: number;
  /** Filter taps along this axis. */
  taps: number;
}

export interface Upfirdn2dParams {
  /** N * C independent planes. */
  planes: number;
  x: ResampleAxis;
  y: ResampleAxis;
  /** true: correlate with the filter as stored; false: a true convolution (the filter flipped). */
  flip: boolean;
  gain: number;
  /** x is f16 (loaded into f32; the filter sums run in f32). */
  xF16?: boolean;
  /** out is f16 (each f32 sum is rounded once, at the store). */
  outF16?: boolean;
}

/** Storage types of a pass's input and output (the filter is always f32). */
interface Io {
  x16: boolean;
  o16: boolean;
}

function ioDecls(io: Io): string {
  return `@group(0) @binding(0) var<storage, read> xs: array<${io.x16 ? "f16" : "f32"}>;
@group(0) @binding(1) var<storage, read> fs: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<${io.o16 ? "f16" : "f32"}>;
alias OutT = ${io.o16 ? "f16" : "f32"};
fn ldx(i: i32) -> f32 { return f32(xs[i]); }`;
}

function ioKey(io: Io): string {
  return `${io.x16 ? "x16" : "x32"}${io.o16 ? "o16" : "o32"}`;
}

/**
 * Where a separable filter's 1-D taps sit in its buffer: tap k of an axis is
 * f[base + k * stride], and the y taps are divided by f[normIdx] (when >= 0) so that the product of the
 * two 1-D filters reproduces the 2-D one (for f2 = outer(a, b): row r gives b*a[r], column c gives a*b[c]).
 */
export interface SeparableLayout {
  xBase: number;
  xStride: number;
  yBase: number;
  yStride: number;
  normIdx: number;
}

const WG = 256;

/** Output length of one axis: (in*up + p0 + p1 - taps) // down + 1. */
export function resampledLength(
  inLen: number,
  up: number,
  down: number,
  p0: number,
  p1: number,
  taps: number,
) {
  return Math.floor((inLen * up + p0 + p1 - taps) / down) + 1;
}

// Shared WGSL: the range of taps k (stepping by up) whose source j = t + k lands on a real input sample
// 0 <= j/up < inLen with j % up == 0, where t = o*down - pad0.
const TAP_RANGE = /* wgsl */ `
fn first_tap(t: i32, up: i32) -> i32 {
  let lo = max(0, -t);
  let r = ((t + lo) % up + up) % up;
  return lo + select(up - r, 0, r == 0);
}
fn last_tap(t: i32, up: i32, in_len: i32, taps: i32) -> i32 {
  return min(taps - 1, (in_len - 1) * up - t);
}`;

function checkParams(p: Upfirdn2dParams): void {
  for (const [name, a] of [["x", p.x], ["y", p.y]] as const) {
    if (a.up < 1 || a.down < 1 || a.taps < 1 || a.inLen < 1 || a.outLen < 1) {
      throw new Error(`upfirdn2d: invalid ${name} axis ${JSON.stringify(a)}`);
    }
  }
}

/** out[plane, oy, ox] with a 2-D filter f[fh, fw] (row-major, fh = y.taps, fw = x.taps). */
export function upfirdn2dDirect(x: GPUBuffer, f: GPUBuffer, out: GPUBuffer, p: Upfirdn2dParams): void {
  checkParams(p);
  const taps = { base: 0, strideY: p.x.taps, strideX: 1, normIdx: -1 };
  const io = { x16: !!p.xF16, o16: !!p.outF16 };
  if (!tiled(x, f, out, p.planes, p.x, p.y, taps, p.flip, p.gain, io)) generic2d(x, f, out, p, io);
}

/** The same result as upfirdn2dDirect for a separable filter, as an x pass then a y pass. */
export function upfirdn2dSeparable(
  x: GPUBuffer,
  f: GPUBuffer,
  out: GPUBuffer,
  p: Upfirdn2dParams,
  layout: SeparableLayout,
): void {
  checkParams(p);
  const rt = gpu();
  // [planes * inH, inW] -> [planes * inH, outW], then [planes, inH, outW] -> [planes, outH, outW].
  const mid = rt.alloc(Math.max(4, p.planes * p.y.inLen * p.x.outLen * 4));
  const rows = p.planes * p.y.inLen;
  const tx = { base: layout.xBase, strideY: 0, strideX: layout.xStride, normIdx: -1 };
  // The intermediate is f32: x's storage type in, out's out.
  const io1 = { x16: !!p.xF16, o16: false }, io2 = { x16: false, o16: !!p.outF16 };
  if (!tiled(x, f, mid, 1, p.x, identityAxis(rows), tx, p.flip, p.gain, io1)) {
    generic1d(x, f, mid, rows, 1, p.x, layout.xBase, layout.xStride, -1, p.flip, p.gain, io1);
  }
  const ty = { base: layout.yBase, strideY: layout.yStride, strideX: 0, normIdx: layout.normIdx };
  if (!tiled(mid, f, out, p.planes, identityAxis(p.x.outLen), p.y, ty, p.flip, 1, io2)) {
    generic1d(
      mid,
      f,
      out,
      p.planes,
      p.x.outLen,
      p.y,
      layout.yBase,
      layout.yStride,
      layout.normIdx,
      p.flip,
      1,
      io2,
    );
  }
  rt.release(mid);
}

function identityAxis(len: number): ResampleAxis {
  return { inLen: len, outLen: len, up: 1, down: 1, pad0: 0, taps: 1 };
}

// ---- the tiled kernel: generated per (up, down, taps, pad phase, flip) ----

// Along one axis a thread computes `outs` consecutive outputs from a window of inputs starting at
// input index in0 = stride * g - shift + wMin (g: the thread's index along the axis). With up > 1 the
// outputs are the up phases of one input position, so every tap that meets a zero is skipped at compile
// time; with up == 1 neighbouring outputs share their window.
interface AxisPlan {
  outs: number;
  stride: number;
  /** Runtime part of the input offset (in the uniform). */
  shift: number;
  /** Per output: [window offset, filter tap index] pairs. */
  taps: [number, number][][];
  wMin: number;
  wMax: number;
  key: string;
}

const MAX_WINDOW = 10;

// Units per thread along each axis: input positions when up > 1 (up outputs each), outputs otherwise.
// Measured on lavapipe: 2 x 2 beats 1 x 1 by 3-4x and 4 x 1 / 4 x 2 by a little.
const UNITS = 2;

function planAxis(a: ResampleAxis, flip: boolean, units: number): AxisPlan | null {
  const K = a.taps;
  const tapIndex = (k: number) => (flip ? k : K - 1 - k);
  if (a.up > 1 && a.down > 1) return null;
  let stride: number, shift: number, phase = 0;
  const taps: [number, number][][] = [];
  if (a.up > 1) {
    const U = a.up;
    phase = ((a.pad0 % U) + U) % U;
    shift = (a.pad0 - phase) / U;
    stride = units;
    for (let g = 0; g < units; g++) {
      for (let r = 0; r < U; r++) {
        const k0 = (((phase - r) % U) + U) % U;
        const s = (r + k0 - phase) / U;
        const list: [number, number][] = [];
        for (let k = k0, m = 0; k < K; k += U, m++) list.push([g + s + m, tapIndex(k)]);
        taps.push(list);
      }
    }
  } else {
    const D = a.down;
    stride = units * D;
    shift = a.pad0;
    for (let j = 0; j < units; j++) taps.push(Array.from({ length: K }, (_, k) => [j * D + k, tapIndex(k)]));
  }
  const outs = taps.length;
  const offs = taps.flat().map(([o]) => o);
  const wMin = Math.min(...offs), wMax = Math.max(...offs);
  if (wMax - wMin + 1 > MAX_WINDOW) return units > 1 ? planAxis(a, flip, units - 1) : null;
  const key = `${a.up}.${a.down}.${K}.${phase}.${outs}`;
  return { outs, stride, shift, taps, wMin, wMax, key };
}

interface TapLayout {
  base: number;
  strideY: number;
  strideX: number;
  normIdx: number;
}

/** Records the tiled kernel if this geometry suits it; false when the generic kernel must run. */
function tiled(
  x: GPUBuffer,
  f: GPUBuffer,
  out: GPUBuffer,
  planes: number,
  ax: ResampleAxis,
  ay: ResampleAxis,
  t: TapLayout,
  flip: boolean,
  gain: number,
  io: Io,
): boolean {
  const px = planAxis(ax, flip, ax.outLen > 1 ? UNITS : 1),
    py = planAxis(ay, flip, ay.outLen > 1 ? UNITS : 1);
  if (!px || !py) return false;
  const rt = gpu();
  const gx = Math.ceil(ax.outLen / px.outs), gy = Math.ceil(ay.outLen / py.outs);
  const total = gx * gy * planes;
  if (total === 0) return true;
  const u = new Int32Array(16);
  u.set([ax.inLen, ay.inLen, ax.outLen, ay.outLen, px.shift, py.shift, gx, gy, total]);
  u.set([t.base, t.strideY, t.strideX, t.normIdx], 9);
  new Float32Array(u.buffer)[13] = gain;
  const key = `upfirdn2d_tiled|${px.key}|${py.key}|${flip}|${ioKey(io)}`;
  const bindings = [{ buffer: x }, { buffer: f }, { buffer: out, write: true }];
  rt.dispatch(key, () => tiledCode(px, py, io), bindings, u, rt.grid(Math.ceil(total / WG)));
  return true;
}

function tiledCode(px: AxisPlan, py: AxisPlan, io: Io): string {
  const lines: string[] = [];
  const nx = px.wMax - px.wMin + 1, ny = py.wMax - py.wMin + 1;
  for (let i = 0; i < nx; i++) {
    lines.push(
      `let ix${i} = bx + ${i}; let vx${i} = (ix${i} >= 0) & (ix${i} < u.in_w); let cx${i} = clamp(ix${i}, 0, u.in_w - 1);`,
    );
  }
  for (let j = 0; j < ny; j++) {
    lines.push(
      `let iy${j} = by + ${j}; let vy${j} = (iy${j} >= 0) & (iy${j} < u.in_h); let ry${j} = plane_in + clamp(iy${j}, 0, u.in_h - 1) * u.in_w;`,
    );
  }
  for (let j = 0; j < ny; j++) {
    for (let i = 0; i < nx; i++) {
      lines.push(`let v${j}_${i} = select(0.0, ldx(ry${j} + cx${i}), vy${j} & vx${i});`);
    }
  }
  const usedTaps = new Set<string>();
  const stores: string[] = [];
  for (let oy = 0; oy < py.outs; oy++) {
    for (let ox = 0; ox < px.outs; ox++) {
      const terms: string[] = [];
      for (const [wy, ky] of py.taps[oy]) {
        for (const [wx, kx] of px.taps[ox]) {
          usedTaps.add(`${ky}_${kx}`);
          terms.push(`f${ky}_${kx} * v${wy - py.wMin}_${wx - px.wMin}`);
        }
      }
      stores.push(`{
    let oy = gy * ${py.outs} + ${oy}; let ox = gx * ${px.outs} + ${ox};
    if (oy < u.out_h && ox < u.out_w) { out[plane_out + oy * u.out_w + ox] = OutT(scale * (${
        terms.join(" + ") || "0.0"
      })); }
  }`);
    }
  }
  const tapLoads = [...usedTaps].map((s) => {
    const [ky, kx] = s.split("_");
    return `let f${s} = fs[u.tap_base + ${ky} * u.tap_sy + ${kx} * u.tap_sx];`;
  });
  return `
${ioDecls(io)}
struct P { in_w: i32, in_h: i32, out_w: i32, out_h: i32, shift_x: i32, shift_y: i32, gx: i32, gy: i32, total: i32,
  tap_base: i32, tap_sy: i32, tap_sx: i32, norm_idx: i32, gain: f32, _a: i32, _b: i32 }
@group(0) @binding(3) var<uniform> u: P;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = i32(gid.x + gid.y * nw.x * ${WG}u);
  if (i >= u.total) { return; }
  let gx = i % u.gx;
  let r = i / u.gx;
  let gy = r % u.gy;
  let plane = r / u.gy;
  var scale = u.gain;
  if (u.norm_idx >= 0) { scale = scale / fs[u.norm_idx]; }
  ${tapLoads.join("\n  ")}
  let plane_in = plane * u.in_h * u.in_w;
  let plane_out = plane * u.out_h * u.out_w;
  let bx = gx * ${px.stride} - u.shift_x + ${px.wMin};
  let by = gy * ${py.stride} - u.shift_y + ${py.wMin};
  ${lines.join("\n  ")}
  ${stores.join("\n  ")}
}`;
}

// ---- generic kernels: any up/down/padding/filter size ----

function generic2d(x: GPUBuffer, f: GPUBuffer, out: GPUBuffer, p: Upfirdn2dParams, io: Io): void {
  const rt = gpu();
  const n = p.planes * p.y.outLen * p.x.outLen;
  if (n === 0) return;
  const u = new Int32Array(16);
  u.set([
    n,
    p.x.inLen,
    p.y.inLen,
    p.x.outLen,
    p.y.outLen,
    p.x.up,
    p.y.up,
    p.x.down,
    p.y.down,
    p.x.pad0,
    p.y.pad0,
    p.x.taps,
    p.y.taps,
    p.flip ? 1 : 0,
  ]);
  new Float32Array(u.buffer)[14] = p.gain;
  const code = () => `
${ioDecls(io)}
struct P { n: i32, in_w: i32, in_h: i32, out_w: i32, out_h: i32, up_x: i32, up_y: i32, down_x: i32, down_y: i32,
  pad_x: i32, pad_y: i32, fw: i32, fh: i32, flip: i32, gain: f32, _p: i32 }
@group(0) @binding(3) var<uniform> u: P;
${TAP_RANGE}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = i32(gid.x + gid.y * nw.x * ${WG}u);
  if (i >= u.n) { return; }
  let ox = i % u.out_w;
  let r = i / u.out_w;
  let oy = r % u.out_h;
  let plane = r / u.out_h;
  let tx = ox * u.down_x - u.pad_x;
  let ty = oy * u.down_y - u.pad_y;
  let kx0 = first_tap(tx, u.up_x);
  let kx1 = last_tap(tx, u.up_x, u.in_w, u.fw);
  let ky0 = first_tap(ty, u.up_y);
  let ky1 = last_tap(ty, u.up_y, u.in_h, u.fh);
  let base = plane * u.in_h * u.in_w;
  var acc = 0.0;
  for (var ky = ky0; ky <= ky1; ky += u.up_y) {
    let row = base + ((ty + ky) / u.up_y) * u.in_w;
    let fy = select(u.fh - 1 - ky, ky, u.flip != 0);
    for (var kx = kx0; kx <= kx1; kx += u.up_x) {
      let fx = select(u.fw - 1 - kx, kx, u.flip != 0);
      acc += ldx(row + (tx + kx) / u.up_x) * fs[fy * u.fw + fx];
    }
  }
  out[i] = OutT(acc * u.gain);
}`;
  rt.dispatch(
    `upfirdn2d_generic|${ioKey(io)}`,
    code,
    [{ buffer: x }, { buffer: f }, { buffer: out, write: true }],
    u,
    rt.grid(Math.ceil(n / WG)),
  );
}

/** One 1-D resampling pass over the middle axis of [outer, len, inner]. */
function generic1d(
  x: GPUBuffer,
  f: GPUBuffer,
  out: GPUBuffer,
  outer: number,
  inner: number,
  a: ResampleAxis,
  tapBase: number,
  tapStride: number,
  normIdx: number,
  flip: boolean,
  gain: number,
  io: Io,
): void {
  const rt = gpu();
  const n = outer * a.outLen * inner;
  if (n === 0) return;
  const u = new Int32Array(16);
  u.set([
    n,
    a.inLen,
    a.outLen,
    inner,
    a.up,
    a.down,
    a.pad0,
    a.taps,
    tapBase,
    tapStride,
    normIdx,
    flip ? 1 : 0,
  ]);
  new Float32Array(u.buffer)[12] = gain;
  const code = () => `
${ioDecls(io)}
struct P { n: i32, in_len: i32, out_len: i32, inner: i32, up: i32, down: i32, pad0: i32, taps: i32,
  tap_base: i32, tap_stride: i32, norm_idx: i32, flip: i32, gain: f32, _a: i32, _b: i32, _c: i32 }
@group(0) @binding(3) var<uniform> u: P;
${TAP_RANGE}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = i32(gid.x + gid.y * nw.x * ${WG}u);
  if (i >= u.n) { return; }
  let c = i % u.inner;
  let r = i / u.inner;
  let o = r % u.out_len;
  let line = r / u.out_len;
  let t = o * u.down - u.pad0;
  let k0 = first_tap(t, u.up);
  let k1 = last_tap(t, u.up, u.in_len, u.taps);
  let base = line * u.in_len * u.inner + c;
  var acc = 0.0;
  for (var k = k0; k <= k1; k += u.up) {
    let fk = select(u.taps - 1 - k, k, u.flip != 0);
    acc += ldx(base + ((t + k) / u.up) * u.inner) * fs[u.tap_base + fk * u.tap_stride];
  }
  var scale = u.gain;
  if (u.norm_idx >= 0) { scale = scale / fs[u.norm_idx]; }
  out[i] = OutT(acc * scale);
}`;
  rt.dispatch(
    `upfirdn2d_generic1d|${ioKey(io)}`,
    code,
    [{ buffer: x }, { buffer: f }, { buffer: out, write: true }],
    u,
    rt.grid(Math.ceil(n / WG)),
  );
}

/** Multiply-adds of the two variants (taps that meet real samples), for choosing one and for benchmarks. */
export function upfirdn2dMacs(p: Upfirdn2dParams): { direct: number; separable: number } {
  const tx = Math.ceil(p.x.taps / p.x.up), ty = Math.ceil(p.y.taps / p.y.up);
  const outPix = p.planes * p.x.outLen * p.y.outLen;
  return {
    direct: outPix * tx * ty,
    separable: p.planes * p.y.inLen * p.x.outLen * tx + outPix * ty,
  };
}

/** Bytes a variant must at least move (input read once, output written once, plus the intermediate). */
export function upfirdn2dBytes(p: Upfirdn2dParams, separable: boolean): number {
  const inPix = p.planes * p.x.inLen * p.y.inLen, outPix = p.planes * p.x.outLen * p.y.outLen;
  const mid = separable ? 2 * p.planes * p.y.inLen * p.x.outLen : 0;
  return 4 * (inPix + outPix + mid);
}
