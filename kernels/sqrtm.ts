// tr sqrtm(S1 S2) for PSD S1, S2 on the GPU in float32, robust to rank deficiency: the kernels here,
// composed into the op by nn/sqrtm.ts traceSqrtProduct.
//
// Newton-Schulz square roots of S1 S2 (or of sqrt(S1) S2 sqrt(S1)) diverge or lose accuracy when the
// covariances are singular: zero eigenvalues sit on the boundary of the iteration's convergence region,
// and f32 noise in a null space turns into sqrt(noise) errors. Instead, with factors S1 = L1 L1^T and
// S2 = L2 L2^T, the eigenvalues of S1 S2 are the squared singular values of C = L2^T L1, so
// tr sqrtm(S1 S2) = ||C||_* (nuclear norm) = tr(C^T U) with U the polar factor of C.
//  1. Factors come from pivoted Cholesky in f32. Its pivot sequence reveals the numerical rank: after the
//     last true pivot the remaining Schur complement is f32 noise, which is dropped, so null spaces stay
//     exactly null.
//  2. U comes from the (scaled) Newton-Schulz polar iteration X <- X (3I - X^T X) / 2, which needs no
//     inverse and converges for every nonzero singular value; directions that are still converging only
//     lose sigma_i (1 - u_i), negligible for the tiny singular values that converge slowly.
// Unlike the plain sum of square-rooted eigenvalues, this keeps f32 noise in the null spaces out of the
// result; measured against the float64 reference the FID agrees to ~1e-7..1e-5 relative (see the tests).
// Products are summed per row in f32 with compensation and finished in float64 on the host.

import { elementwise } from "./elementwise.ts";
import { checkBuffer, checkCounts, matmul } from "./matmul.ts";
import { gpu } from "./runtime.ts";

const WG = 256;
const F32_EPS = 2 ** -23;
const PANEL = 32; // Cholesky steps between GEMM updates

/** Numerical rank from a pivoted-Cholesky pivot sequence (pivot values, in pivot order). */
export function choleskyRank(pivots: ArrayLike<number>): number {
  const n = pivots.length;
  if (n === 0 || !(pivots[0] > 0)) return 0;
  const v0 = pivots[0];
  const floor = 4 * F32_EPS * v0; // below this a pivot is round-off whatever the spectrum
  // Suffix maxima: a cut at k is a rank gap only if every later pivot is far below every earlier one.
  const sufMax = new Float64Array(n + 1);
  for (let k = n - 1; k >= 0; k--) sufMax[k] = Math.max(sufMax[k + 1], pivots[k] > 0 ? pivots[k] : 0);
  let preMin = Infinity;
  for (let k = 0; k < n; k++) {
    if (sufMax[k] <= floor) return k;
    if (k > 0 && sufMax[k] <= 1e-3 * v0 && sufMax[k] <= 1e-3 * preMin) return k;
    preMin = Math.min(preMin, pivots[k]);
  }
  return n;
}

/** Factor rows of a pivoted Cholesky: rows 0..rank-1 of `lt` (d x d, f32) give S ~= Lt^T Lt. */
export interface GpuCholesky {
  lt: GPUBuffer;
  rank: number;
  pivots: Float32Array;
}

/**
 * Blocked pivoted Cholesky of the d x d PSD matrix in `s` (f32 on the GPU; read, never written: the
 * factorisation works on a copy). Row k of `lt` is the k-th pivot column of L. Within a panel of PANEL
 * steps each column is S's updated column minus the panel's earlier rows (left-looking, O(d * PANEL) per
 * step); after a panel its rank-PANEL update of S is one matmul, so the O(d^3) work runs as GEMM. The
 * remaining diagonal is kept current for pivot search. Stops early once the pivots have fallen below the
 * rank cut.
 */
export async function pivotedCholesky(s: GPUBuffer, d: number, maxRank = d): Promise<GpuCholesky> {
  checkCounts("pivotedCholesky", { d, maxRank });
  checkBuffer("pivotedCholesky: S", s, d * d);
  const rt = gpu();
  const a = rt.alloc(d * d * 4), lt = rt.alloc(d * d * 4);
  const panel = rt.alloc(PANEL * d * 4), upd = rt.alloc(d * d * 4);
  const diag = rt.alloc(d * 4), flags = rt.alloc(d * 4), info = rt.alloc(16), piv = rt.alloc(d * 4);
  try {
    // The working copy of S and its diagonal (exact copies by the strided elementwise kernel).
    const f32 = (buffer: GPUBuffer, strides: number[]) => ({
      buffer,
      dtype: "f32" as const,
      strides,
      offset: 0,
    });
    elementwise({ name: "chol_copy", expr: "in0", inputs: [f32(s, [1])], out: f32(a, [1]), shape: [d * d] });
    elementwise({
      name: "chol_diag",
      expr: "in0",
      inputs: [f32(s, [d + 1])],
      out: f32(diag, [1]),
      shape: [d],
    });
    rt.upload(flags, new Uint32Array(d));
    rt.upload(piv, new Float32Array(d));
    let steps = Math.min(d, maxRank + 1); // one pivot past the cap is only for the record
    const check = Math.max(16, Math.ceil(d / 8));
    for (let k = 0; k < steps; k++) {
      const p0 = k - (k % PANEL);
      choosePivot(diag, flags, info, piv, d, k);
      pivotColumn(a, info, flags, lt, diag, d, p0, k);
      if ((k + 1) % PANEL === 0 && k + 1 < steps) {
        // S <- S - Lp^T Lp for the panel's rows (copied out: matmul operands start at offset 0).
        rt.copy(lt, p0 * d * 4, panel, 0, PANEL * d * 4);
        matmul(panel, panel, upd, { batch: 1, m: d, n: d, k: PANEL, transA: true });
        subtractInPlace(a, upd, d * d);
      }
      if ((k + 1) % check === 0 && k + 1 < steps) {
        const p = new Float32Array(await rt.read(piv, (k + 1) * 4));
        if (choleskyRank(p) < k + 1 - 4) {
          steps = k + 1;
          break;
        }
      }
    }
    const pivots = new Float32Array(await rt.read(piv, steps * 4));
    return { lt, rank: Math.min(choleskyRank(pivots), maxRank), pivots };
  } catch (e) {
    rt.release(lt);
    throw e;
  } finally {
    for (const b of [a, panel, upd, diag, flags, info, piv]) rt.release(b);
  }
}

// One workgroup: argmax of the remaining diagonal (ties to the lower index); marks it pivoted and records
// its value. A non-positive maximum means nothing is left: info[0] = d makes the next kernels write zeros.
function choosePivot(
  diag: GPUBuffer,
  flags: GPUBuffer,
  info: GPUBuffer,
  piv: GPUBuffer,
  d: number,
  k: number,
) {
  gpu().dispatch(
    "metric_chol_pivot",
    () => `
@group(0) @binding(0) var<storage, read_write> diag: array<f32>;
@group(0) @binding(1) var<storage, read_write> flags: array<u32>;
@group(0) @binding(2) var<storage, read_write> info: array<u32>;
@group(0) @binding(3) var<storage, read_write> piv: array<f32>;
struct P { n: u32, k: u32, pad0: u32, pad1: u32 }
@group(0) @binding(4) var<uniform> p: P;
var<workgroup> bv: array<f32, ${WG}>;
var<workgroup> bi: array<u32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32) {
  var v = -3.0e38;
  var idx = p.n;
  for (var i = lid; i < p.n; i = i + ${WG}u) {
    if (flags[i] == 0u && diag[i] > v) { v = diag[i]; idx = i; }
  }
  bv[lid] = v;
  bi[lid] = idx;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) {
      let ov = bv[lid + s];
      let oi = bi[lid + s];
      if (ov > bv[lid] || (ov == bv[lid] && oi < bi[lid])) { bv[lid] = ov; bi[lid] = oi; }
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    if (bv[0] > 0.0 && bi[0] < p.n) {
      info[0] = bi[0];
      flags[bi[0]] = 1u;
      piv[p.k] = bv[0];
    } else {
      info[0] = p.n;
      piv[p.k] = 0.0;
    }
  }
}`,
    [{ buffer: diag, write: true }, { buffer: flags, write: true }, { buffer: info, write: true }, {
      buffer: piv,
      write: true,
    }],
    new Uint32Array([d, k, 0, 0]),
    [1, 1, 1],
  );
}

// lt[k, i] = (A[i, p] - sum_{p0<=r<k} lt[r, i] lt[r, p]) / sqrt(diag[p]) for rows not yet pivoted,
// sqrt(diag[p]) at p, 0 elsewhere (A = S updated by the panels before p0); then diag[i] -= lt[k, i]^2.
// A workgroup covers 64 rows, its 4 thread rows split the sum over r (coalesced reads of lt rows).
function pivotColumn(
  a: GPUBuffer,
  info: GPUBuffer,
  flags: GPUBuffer,
  lt: GPUBuffer,
  diag: GPUBuffer,
  d: number,
  p0: number,
  k: number,
) {
  const rt = gpu();
  rt.dispatch(
    "metric_chol_column",
    () => `
@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> info: array<u32>;
@group(0) @binding(2) var<storage, read> flags: array<u32>;
@group(0) @binding(3) var<storage, read_write> lt: array<f32>;
@group(0) @binding(4) var<storage, read_write> diag: array<f32>;
struct P { n: u32, k: u32, p0: u32, pad1: u32 }
@group(0) @binding(5) var<uniform> p: P;
var<workgroup> part: array<f32, 256>;
@compute @workgroup_size(64, 4)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>,
        @builtin(local_invocation_id) loc: vec3<u32>) {
  let i = (wid.x + wid.y * nw.x) * 64u + loc.x;
  let piv = info[0];
  var acc = 0.0;
  if (piv < p.n && i < p.n) {
    for (var r = p.p0 + loc.y; r < p.k; r = r + 4u) { acc = acc + lt[r * p.n + i] * lt[r * p.n + piv]; }
  }
  part[loc.y * 64u + loc.x] = acc;
  workgroupBarrier();
  if (loc.y == 0u && i < p.n) {
    var v = 0.0;
    if (piv < p.n) {
      let s = (part[loc.x] + part[64u + loc.x]) + (part[128u + loc.x] + part[192u + loc.x]);
      let root = sqrt(diag[piv]);
      if (i == piv) { v = root; } else if (flags[i] == 0u) { v = (a[i * p.n + piv] - s) / root; }
    }
    lt[p.k * p.n + i] = v;
    if (flags[i] == 0u) { diag[i] = diag[i] - v * v; }
  }
}`,
    [{ buffer: a }, { buffer: info }, { buffer: flags }, { buffer: lt, write: true }, {
      buffer: diag,
      write: true,
    }],
    new Uint32Array([d, k, p0, 0]),
    rt.grid(Math.ceil(d / 64)),
  );
}

// a -= t elementwise (the panel's rank-PANEL update).
function subtractInPlace(a: GPUBuffer, t: GPUBuffer, count: number): void {
  const rt = gpu();
  rt.dispatch(
    "metric_chol_sub",
    () => `
@group(0) @binding(0) var<storage, read_write> a: array<f32>;
@group(0) @binding(1) var<storage, read> t: array<f32>;
struct P { n: u32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(2) var<uniform> p: P;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let e = gid.x + gid.y * nw.x * ${WG}u;
  if (e < p.n) { a[e] = a[e] - t[e]; }
}`,
    [{ buffer: a, write: true }, { buffer: t }],
    new Uint32Array([count, 0, 0, 0]),
    rt.grid(Math.ceil(count / WG)),
  );
}

/** out[i] = sum_j x[i,j] * y[i,j] over a rows x cols matrix (workgroup per row, compensated f32). */
function rowDots(x: GPUBuffer, y: GPUBuffer, out: GPUBuffer, rows: number, cols: number): void {
  const rt = gpu();
  rt.dispatch(
    "metric_sqrtm_rowdot",
    () => `
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
struct P { rows: u32, cols: u32, pad0: u32, pad1: u32 }
@group(0) @binding(3) var<uniform> p: P;
var<workgroup> part: array<f32, 64>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r = wid.x + wid.y * nw.x;
  if (r >= p.rows) { return; }
  var acc = 0.0;
  var comp = 0.0;
  for (var j = lid; j < p.cols; j = j + 64u) {
    let t = x[r * p.cols + j] * y[r * p.cols + j] - comp;
    let s = acc + t;
    comp = (s - acc) - t;
    acc = s;
  }
  part[lid] = acc;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s = s >> 1u) {
    if (lid < s) { part[lid] = part[lid] + part[lid + s]; }
    workgroupBarrier();
  }
  if (lid == 0u) { out[r] = part[0]; }
}`,
    [{ buffer: x }, { buffer: y }, { buffer: out, write: true }],
    new Uint32Array([rows, cols, 0, 0]),
    rt.grid(rows),
  );
}

/** out = alpha * x + beta * I for an n x n matrix (beta only on the diagonal). */
function scaleAddIdentity(
  x: GPUBuffer,
  out: GPUBuffer,
  rows: number,
  cols: number,
  alpha: number,
  beta: number,
) {
  const rt = gpu();
  const u = new Uint32Array(4);
  u[0] = rows;
  u[1] = cols;
  const f = new Float32Array(u.buffer);
  f[2] = alpha;
  f[3] = beta;
  rt.dispatch(
    "metric_sqrtm_axpyi",
    () => `
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
struct P { rows: u32, cols: u32, alpha: f32, beta: f32 }
@group(0) @binding(2) var<uniform> p: P;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let e = gid.x + gid.y * nw.x * ${WG}u;
  if (e >= p.rows * p.cols) { return; }
  var v = p.alpha * x[e];
  if (e / p.cols == e % p.cols) { v = v + p.beta; }
  out[e] = v;
}`,
    [{ buffer: x }, { buffer: out, write: true }],
    u,
    rt.grid(Math.ceil((rows * cols) / WG)),
  );
}

async function sumRowDots(
  x: GPUBuffer,
  y: GPUBuffer,
  tmp: GPUBuffer,
  rows: number,
  cols: number,
): Promise<number> {
  rowDots(x, y, tmp, rows, cols);
  const v = new Float32Array(await gpu().read(tmp, rows * 4));
  let s = 0;
  for (const t of v) s += t;
  return s;
}

export interface NuclearNormResult {
  value: number;
  iterations: number;
  /** false when the iteration stopped at maxIterations without meeting tol. */
  converged: boolean;
}

/**
 * ||C||_* = tr(C^T U) for C (rows x cols, f32 on the GPU) with U from the Newton-Schulz polar iteration.
 * `lowerBound` is the assumed smallest relevant singular value of C / ||C||_F (default 1e-3). Stops when tr(C^T X_k) changes by less than `tol` (relative) between checks, or at `maxIterations`.
 */
export async function nuclearNorm(
  c: GPUBuffer,
  rows: number,
  cols: number,
  opts: { maxIterations?: number; tol?: number; checkEvery?: number; lowerBound?: number } = {},
): Promise<NuclearNormResult> {
  const maxIt = opts.maxIterations ?? 100, tol = opts.tol ?? 1e-7, every = opts.checkEvery ?? 2;
  if (rows === 0 || cols === 0) return { value: 0, iterations: 0, converged: true };
  const rt = gpu();
  const small = Math.min(rows, cols); // Gram on the smaller side
  let x = rt.alloc(rows * cols * 4), y = rt.alloc(rows * cols * 4);
  const g = rt.alloc(small * small * 4), h = rt.alloc(small * small * 4), tmp = rt.alloc(rows * 4);
  try {
    const fro2 = await sumRowDots(c, c, tmp, rows, cols);
    if (!(fro2 > 0)) return { value: 0, iterations: 0, converged: true };
    scaleAddIdentity(c, x, rows, cols, 1 / Math.sqrt(fro2), 0); // rectangular: the identity term is 0
    let prev = -Infinity, it = 0;
    // Scaled Newton-Schulz (Chen & Chow 2014): for singular values in [l, 1] the step
    // X <- (alpha/2) X (3I - alpha^2 X^T X), alpha = sqrt(3 / (1 + l + l^2)), maps [l, 1] into [l', 1] with
    // l' = (alpha/2) l (3 - alpha^2 l^2), growing small values ~2.6x per step instead of 1.5x. Values below
    // the assumed l still grow monotonically; once l reaches 1 the step is the plain iteration.
    let l = opts.lowerBound ?? 1e-3;
    while (it < maxIt) {
      const alpha = l >= 1 - 1e-7 ? 1 : Math.sqrt(3 / (1 + l + l * l));
      l = Math.min(1, 0.5 * alpha * l * (3 - alpha * alpha * l * l));
      const a = -0.5 * alpha ** 3, b = 1.5 * alpha;
      if (cols <= rows) {
        matmul(x, x, g, { batch: 1, m: cols, n: cols, k: rows, transA: true }); // X^T X
        scaleAddIdentity(g, h, cols, cols, a, b);
        matmul(x, h, y, { batch: 1, m: rows, n: cols, k: cols }); // X (b I + a X^T X)
      } else {
        matmul(x, x, g, { batch: 1, m: rows, n: rows, k: cols, transB: true }); // X X^T
        scaleAddIdentity(g, h, rows, rows, a, b);
        matmul(h, x, y, { batch: 1, m: rows, n: cols, k: rows }); // (b I + a X X^T) X
      }
      [x, y] = [y, x];
      it++;
      if (it % every === 0 || it === maxIt) {
        const t = await sumRowDots(c, x, tmp, rows, cols);
        if (Math.abs(t - prev) <= tol * Math.abs(t)) return { value: t, iterations: it, converged: true };
        prev = t;
      }
    }
    return { value: prev, iterations: it, converged: false };
  } finally {
    for (const b of [x, y, g, h, tmp]) rt.release(b);
  }
}
