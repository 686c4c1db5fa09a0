// 2-D max and average pooling over NCHW planes (forward only): one thread per output pixel. Taps that
// fall in the zero padding are skipped for max pooling (PyTorch pads with -inf) and, for average
// pooling, either counted (count_include_pad) or left out of the divisor (TensorFlow's "SAME" pools).
// Geometry travels in the uniform, so one compiled pipeline per mode serves every shape.

import { gpu } from "./runtime.ts";

export type PoolMode = "max" | "avg";

export interface Pool2dParams {
  /** N * C independent planes. */
  planes: number;
  h: number;
  w: number;
  kh: number;
  kw: number;
  strideY: number;
  strideX: number;
  padTop: number;
  padLeft: number;
  outH: number;
  outW: number;
  mode: PoolMode;
  /** Average pooling only: divide by kh*kw (true) or by the number of taps inside the image (false). */
  countIncludePad: boolean;
}

const WG = 256;

function checkParams(p: Pool2dParams): void {
  const ints = [p.planes, p.h, p.w, p.kh, p.kw, p.strideY, p.strideX, p.padTop, p.padLeft, p.outH, p.outW];
  if (ints.some((v) => !Number.isInteger(v) || v < 0)) {
    throw new Error(`pool2d: geometry must be non-negative integers, got ${JSON.stringify(p)}`);
  }
  if (p.kh < 1 || p.kw < 1 || p.strideY < 1 || p.strideX < 1) {
    throw new Error(`pool2d: kernel and stride must be >= 1, got ${JSON.stringify(p)}`);
  }
  if (p.mode !== "max" && p.mode !== "avg") throw new Error(`pool2d: unknown mode '${p.mode}'`);
}

function code(mode: PoolMode, includePad: boolean): string {
  const init = mode === "max" ? "-3.0e38" : "0.0";
  const acc = mode === "max" ? "acc = max(acc, v);" : "acc = acc + v;";
  const finish = mode === "max"
    ? "select(acc, 0.0, count == 0u)"
    : includePad
    ? "acc / f32(U(4u) * U(5u))"
    : "select(acc / f32(count), 0.0, count == 0u)";
  return /* wgsl */ `
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
struct Params { d: array<vec4<u32>, 3> }
@group(0) @binding(2) var<uniform> params: Params;
fn U(j: u32) -> u32 { return params.d[j / 4u][j % 4u]; }
// U: 0 n, 1 h, 2 w, 3 -, 4 kh, 5 kw, 6 sy, 7 sx, 8 padTop, 9 padLeft, 10 outH, 11 outW
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = gid.x + gid.y * nw.x * ${WG}u;
  if (i >= U(0u)) { return; }
  let h = i32(U(1u)); let w = i32(U(2u));
  let outW = U(11u); let outH = U(10u);
  let ox = i % outW;
  let oy = (i / outW) % outH;
  let plane = i / (outW * outH);
  let y0 = i32(oy * U(6u)) - i32(U(8u));
  let x0 = i32(ox * U(7u)) - i32(U(9u));
  let base = plane * U(1u) * U(2u);
  var acc = ${init};
  var count = 0u;
  for (var ky = 0; ky < i32(U(4u)); ky++) {
    let yy = y0 + ky;
    if (yy < 0 || yy >= h) { continue; }
    for (var kx = 0; kx < i32(U(5u)); kx++) {
      let xx = x0 + kx;
      if (xx < 0 || xx >= w) { continue; }
      let v = x[base + u32(yy * w + xx)];
      ${acc}
      count++;
    }
  }
  y[i] = ${finish};
}`;
}

/** Records y[plane, oy, ox] = pool of x over the window at (oy*sy - padTop, ox*sx - padLeft). */
export function pool2d(x: GPUBuffer, y: GPUBuffer, p: Pool2dParams): void {
  checkParams(p);
  const n = p.planes * p.outH * p.outW;
  if (n === 0) return;
  if (x.size < p.planes * p.h * p.w * 4) {
    throw new Error(`pool2d: input buffer too small for ${JSON.stringify(p)}`);
  }
  if (y.size < n * 4) throw new Error(`pool2d: output buffer too small for ${n} values`);
  const rt = gpu();
  const u = new Uint32Array(12);
  u.set([n, p.h, p.w, 0, p.kh, p.kw, p.strideY, p.strideX, p.padTop, p.padLeft, p.outH, p.outW]);
  const includePad = p.mode === "avg" && p.countIncludePad;
  rt.dispatch(
    `pool2d|${p.mode}|${includePad ? "incl" : "excl"}`,
    () => code(p.mode, includePad),
    [{ buffer: x }, { buffer: y, write: true }],
    u,
    rt.grid(Math.ceil(n / WG)),
  );
}

/** Floating-point operations of one pooling call (one per tap), for benchmarks. */
export function pool2dFlops(p: Pool2dParams): number {
  return p.planes * p.outH * p.outW * p.kh * p.kw;
}
