// A linear support vector machine in float64 on the host: dual coordinate descent on the hinge loss
// (Hsieh et al. 2008, the L1-loss solver of liblinear). The semantic direction of `edit direction` is the
// unit normal of the hyperplane it finds (InterFaceGAN's recipe). Plain arrays, no Deno API, so the web
// page can fit the same direction.
//
// Problem: min_w 1/2 |w|^2 + C sum_i max(0, 1 - y_i (w . x_i + b)), with the bias b learned as the weight
// of a constant feature of value `biasScale` (liblinear's convention: the bias is regularised too; this
// keeps the dual a box-constrained QP, 0 <= alpha_i <= C, which coordinate descent solves exactly).

import { mulberry32 } from "../../nn/host_random.ts";

export interface SvmOptions {
  /** Cost of a margin violation (default 1). */
  C?: number;
  /** Value of the constant feature that carries the bias (default 1). */
  biasScale?: number;
  /** Stop when the projected gradient's spread (max - min over a sweep) is below this (default 1e-10). */
  tolerance?: number;
  /** Sweeps over the data at most (default 100000). */
  maxSweeps?: number;
  /** Seed of the coordinate order (default 0). */
  seed?: number;
}

export interface LinearSvm {
  /** Normal of the hyperplane (length d, not normalised). */
  w: Float64Array;
  b: number;
  /** Dual variables, one per sample, in [0, C]. */
  alpha: Float64Array;
  C: number;
  sweeps: number;
  converged: boolean;
  /** Primal objective 1/2 |w~|^2 + C sum hinge (w~ includes the bias weight). */
  primal: number;
  /** Dual objective sum alpha - 1/2 |w~|^2; primal - dual >= 0 is the duality gap, 0 at the optimum. */
  dual: number;
}

function checkData(x: Float64Array, y: ArrayLike<number>, d: number): number {
  if (!Number.isInteger(d) || d < 1) throw new Error(`fitLinearSvm: dimension must be >= 1, got ${d}`);
  const n = y.length;
  if (x.length !== n * d) throw new Error(`fitLinearSvm: x has ${x.length} values, expected ${n} x ${d}`);
  let pos = 0;
  for (let i = 0; i < n; i++) {
    if (y[i] !== 1 && y[i] !== -1) throw new Error(`fitLinearSvm: label ${i} is ${y[i]}, not +1 or -1`);
    if (y[i] === 1) pos++;
  }
  if (pos === 0 || pos === n) throw new Error(`fitLinearSvm: needs both labels, got ${pos} of ${n} positive`);
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i])) throw new Error(`fitLinearSvm: x[${i}] is ${x[i]}`);
  }
  return n;
}

/** Fits the SVM to n samples x [n, d] (row-major) with labels y in {-1, +1}. */
export function fitLinearSvm(
  x: Float64Array,
  y: ArrayLike<number>,
  d: number,
  o: SvmOptions = {},
): LinearSvm {
  const n = checkData(x, y, d);
  const C = o.C ?? 1, B = o.biasScale ?? 1, tol = o.tolerance ?? 1e-10, maxSweeps = o.maxSweeps ?? 100000;
  if (!(C > 0)) throw new Error(`fitLinearSvm: C must be > 0, got ${C}`);
  if (!(B > 0)) throw new Error(`fitLinearSvm: biasScale must be > 0, got ${B}`);
  const w = new Float64Array(d + 1); // the last weight multiplies the constant feature B
  const alpha = new Float64Array(n);
  const qii = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = B * B;
    for (let k = 0; k < d; k++) s += x[i * d + k] ** 2;
    qii[i] = s;
  }
  const dot = (i: number) => {
    let s = w[d] * B;
    for (let k = 0; k < d; k++) s += w[k] * x[i * d + k];
    return s;
  };
  const order = Array.from({ length: n }, (_, i) => i);
  const rand = mulberry32(o.seed ?? 0);
  let sweeps = 0, converged = false;
  while (sweeps < maxSweeps) {
    sweeps++;
    for (let i = n - 1; i > 0; i--) { // a fresh random order per sweep, as liblinear does
      const j = Math.floor(rand() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    let pgMax = -Infinity, pgMin = Infinity;
    for (const i of order) {
      if (qii[i] === 0) continue;
      const g = y[i] * dot(i) - 1; // gradient of the dual objective in alpha_i
      const pg = alpha[i] === 0 ? Math.min(g, 0) : alpha[i] === C ? Math.max(g, 0) : g;
      pgMax = Math.max(pgMax, pg);
      pgMin = Math.min(pgMin, pg);
      if (pg === 0) continue;
      const old = alpha[i];
      alpha[i] = Math.min(Math.max(old - g / qii[i], 0), C);
      const step = (alpha[i] - old) * y[i];
      for (let k = 0; k < d; k++) w[k] += step * x[i * d + k];
      w[d] += step * B;
    }
    if (pgMax - pgMin < tol) {
      converged = true;
      break;
    }
  }
  let norm2 = 0, hinge = 0, sumAlpha = 0;
  for (let k = 0; k <= d; k++) norm2 += w[k] * w[k];
  for (let i = 0; i < n; i++) {
    hinge += Math.max(0, 1 - y[i] * dot(i));
    sumAlpha += alpha[i];
  }
  return {
    w: w.slice(0, d),
    b: w[d] * B,
    alpha,
    C,
    sweeps,
    converged,
    primal: 0.5 * norm2 + C * hinge,
    dual: sumAlpha - 0.5 * norm2,
  };
}

/**
 * Largest violation of the optimality (KKT) conditions of a fit: with margins m_i = y_i (w . x_i + b),
 * alpha_i = 0 needs m_i >= 1, 0 < alpha_i < C needs m_i = 1, alpha_i = C needs m_i <= 1; and w must equal
 * sum_i alpha_i y_i x_i (and the bias weight sum_i alpha_i y_i B).
 */
export function kktViolation(
  svm: LinearSvm,
  x: Float64Array,
  y: ArrayLike<number>,
  d: number,
  biasScale = 1,
) {
  const n = checkData(x, y, d);
  let worst = 0;
  const w = new Float64Array(d + 1);
  for (let i = 0; i < n; i++) {
    let m = svm.b;
    for (let k = 0; k < d; k++) m += svm.w[k] * x[i * d + k];
    m *= y[i];
    const a = svm.alpha[i];
    const v = a <= 0 ? Math.max(0, 1 - m) : a >= svm.C ? Math.max(0, m - 1) : Math.abs(m - 1);
    worst = Math.max(worst, v, -a, a - svm.C);
    for (let k = 0; k < d; k++) w[k] += a * y[i] * x[i * d + k];
    w[d] += a * y[i] * biasScale;
  }
  for (let k = 0; k < d; k++) worst = Math.max(worst, Math.abs(w[k] - svm.w[k]));
  return Math.max(worst, Math.abs(w[d] * biasScale - svm.b));
}

/** Decision values w . x_i + b of n samples. */
export function svmDecision(svm: LinearSvm, x: Float64Array, d: number): Float64Array {
  const n = x.length / d;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = svm.b;
    for (let k = 0; k < d; k++) s += svm.w[k] * x[i * d + k];
    out[i] = s;
  }
  return out;
}

/** The hyperplane's unit normal (pointing to the +1 side). */
export function unitNormal(svm: LinearSvm): Float64Array {
  const norm = Math.hypot(...svm.w);
  if (!(norm > 0)) {
    throw new Error("unitNormal: the SVM's normal is zero (the labels are not separable at all)");
  }
  return svm.w.map((v) => v / norm);
}
