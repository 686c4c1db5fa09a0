// Float64 host linear algebra for the metrics' references: symmetric eigendecomposition (Householder
// tridiagonalisation, then implicit QL with Wilkinson-style shifts), mean/covariance, and a reference
// FID. Matrices are dense row-major Float64Array. O(n^3); meant for checks and small dimensions.

export type Vec = Float64Array | Float32Array;

function checkSquare(name: string, a: ArrayLike<number>, n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name}: bad dimension ${n}`);
  if (a.length !== n * n) throw new Error(`${name}: matrix has ${a.length} entries, expected ${n}x${n}`);
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i])) throw new Error(`${name}: entry ${i} is not finite (${a[i]})`);
  }
}

/** C = A B for n x n row-major matrices. */
export function matmul64(a: Vec, b: Vec, n: number): Float64Array {
  const c = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const ci = i * n;
    for (let k = 0; k < n; k++) {
      const aik = a[ci + k];
      if (aik === 0) continue;
      const bk = k * n;
      for (let j = 0; j < n; j++) c[ci + j] += aik * b[bk + j];
    }
  }
  return c;
}

/**
 * Householder reduction of symmetric A to tridiagonal T = Q^T A Q. Returns the diagonal, the
 * sub-diagonal (e[i] couples i and i+1; e[n-1] = 0) and, if asked, Q^T row-major (rows are Q's columns).
 */
function tridiagonalise(a0: Vec, n: number, wantQ: boolean) {
  const a = Float64Array.from(a0);
  const vs: Float64Array[] = []; // Householder vectors, v_k acting on indices k+1..n-1
  const p = new Float64Array(n);
  for (let k = 0; k < n - 2; k++) {
    const m = n - k - 1; // length of the column below the diagonal
    let norm2 = 0;
    for (let i = k + 1; i < n; i++) norm2 += a[i * n + k] * a[i * n + k];
    const x0 = a[(k + 1) * n + k];
    const alpha = -(x0 >= 0 ? 1 : -1) * Math.sqrt(norm2);
    const v = new Float64Array(m);
    for (let i = 0; i < m; i++) v[i] = a[(k + 1 + i) * n + k];
    v[0] -= alpha;
    let vn = 0;
    for (let i = 0; i < m; i++) vn += v[i] * v[i];
    vs.push(v);
    if (vn === 0) continue; // column already zero below the sub-diagonal
    const s = 1 / Math.sqrt(vn);
    for (let i = 0; i < m; i++) v[i] *= s;
    // Trailing block B <- H B H with H = I - 2vv^T: B - 2 v w^T - 2 w v^T, w = Bv - (v^T B v) v.
    let vbv = 0;
    for (let i = 0; i < m; i++) {
      const row = (k + 1 + i) * n + k + 1;
      let acc = 0;
      for (let j = 0; j < m; j++) acc += a[row + j] * v[j];
      p[i] = acc;
      vbv += acc * v[i];
    }
    for (let i = 0; i < m; i++) p[i] -= vbv * v[i];
    for (let i = 0; i < m; i++) {
      const row = (k + 1 + i) * n + k + 1;
      const vi = 2 * v[i], pi = 2 * p[i];
      for (let j = 0; j < m; j++) a[row + j] -= vi * p[j] + pi * v[j];
    }
    a[(k + 1) * n + k] = a[k * n + k + 1] = alpha;
    for (let i = k + 2; i < n; i++) a[i * n + k] = a[k * n + i] = 0;
  }
  const d = new Float64Array(n), e = new Float64Array(n);
  for (let i = 0; i < n; i++) d[i] = a[i * n + i];
  for (let i = 0; i + 1 < n; i++) e[i] = a[(i + 1) * n + i];
  if (!wantQ) return { d, e, qt: null };
  // Q = H_0 H_1 ... H_{n-3}, built right to left so each step touches only its trailing block.
  const q = new Float64Array(n * n);
  for (let i = 0; i < n; i++) q[i * n + i] = 1;
  const w = new Float64Array(n);
  for (let k = vs.length - 1; k >= 0; k--) {
    const v = vs[k], o = k + 1, m = n - o;
    w.fill(0, 0, m);
    for (let i = 0; i < m; i++) {
      const vi = v[i], row = (o + i) * n + o;
      if (vi === 0) continue;
      for (let j = 0; j < m; j++) w[j] += vi * q[row + j];
    }
    for (let i = 0; i < m; i++) {
      const vi = 2 * v[i], row = (o + i) * n + o;
      if (vi === 0) continue;
      for (let j = 0; j < m; j++) q[row + j] -= vi * w[j];
    }
  }
  // Q's columns become rows: the QL rotations then combine two contiguous rows.
  const qt = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) qt[j * n + i] = q[i * n + j];
  return { d, e, qt };
}

/** Implicit QL on a symmetric tridiagonal (d, e); rotations are applied to the rows of zt if given. */
function tridiagonalQL(d: Float64Array, e: Float64Array, n: number, zt: Float64Array | null): void {
  // An off-diagonal is negligible next to its neighbours or to the whole matrix (as EISPACK's tql2): the
  // global test lets clusters of (near-)zero eigenvalues, as in rank-deficient covariances, converge.
  let norm = 0;
  for (let i = 0; i < n; i++) norm = Math.max(norm, Math.abs(d[i]) + Math.abs(e[i]));
  for (let l = 0; l < n; l++) {
    let iter = 0;
    for (;;) {
      let m = l;
      for (; m < n - 1; m++) {
        const dd = Math.abs(d[m]) + Math.abs(d[m + 1]);
        if (Math.abs(e[m]) <= Number.EPSILON * Math.max(dd, norm)) break;
      }
      if (m === l) break;
      if (++iter > 100) throw new Error(`symmetric eigensolver: no convergence at index ${l}`);
      // Shift from the leading 2x2 block's eigenvalue nearer d[l].
      let g = (d[l + 1] - d[l]) / (2 * e[l]);
      let r = Math.hypot(g, 1);
      g = d[m] - d[l] + e[l] / (g + (g >= 0 ? r : -r));
      let s = 1, c = 1, p = 0;
      let i = m - 1;
      let underflow = false;
      for (; i >= l; i--) {
        const f = s * e[i], b = c * e[i];
        r = Math.hypot(f, g);
        e[i + 1] = r;
        if (r === 0) {
          d[i + 1] -= p;
          e[m] = 0;
          underflow = true;
          break;
        }
        s = f / r;
        c = g / r;
        g = d[i + 1] - p;
        r = (d[i] - g) * s + 2 * c * b;
        p = s * r;
        d[i + 1] = g + p;
        g = c * r - b;
        if (zt) {
          const ri = i * n, rj = (i + 1) * n;
          for (let k = 0; k < n; k++) {
            const zj = zt[rj + k], zi = zt[ri + k];
            zt[rj + k] = s * zi + c * zj;
            zt[ri + k] = c * zi - s * zj;
          }
        }
      }
      if (underflow) continue;
      d[l] -= p;
      e[l] = g;
      e[m] = 0;
    }
  }
}

/** Eigenvalues (ascending) of symmetric A; only the lower triangle's symmetry is assumed, not checked. */
export function symEigvals(a: Vec, n: number): Float64Array {
  checkSquare("symEigvals", a, n);
  const { d, e } = tridiagonalise(a, n, false);
  tridiagonalQL(d, e, n, null);
  return d.sort();
}

/** Eigen-decomposition of symmetric A: ascending values, vectors as ROWS of `vectors` (A = V^T diag V). */
export function symEig(a: Vec, n: number): { values: Float64Array; vectors: Float64Array } {
  checkSquare("symEig", a, n);
  const { d, e, qt } = tridiagonalise(a, n, true);
  tridiagonalQL(d, e, n, qt);
  const order = [...d.keys()].sort((i, j) => d[i] - d[j]);
  const values = new Float64Array(n), vectors = new Float64Array(n * n);
  order.forEach((src, dst) => {
    values[dst] = d[src];
    vectors.set(qt!.subarray(src * n, src * n + n), dst * n);
  });
  return { values, vectors };
}

/** Symmetric PSD square root: V^T diag(sqrt(max(w,0))) V (negative round-off eigenvalues clamp to 0). */
export function sqrtmPsd(a: Vec, n: number): Float64Array {
  const { values, vectors } = symEig(a, n);
  const out = new Float64Array(n * n);
  for (let k = 0; k < n; k++) {
    const s = Math.sqrt(Math.max(values[k], 0));
    if (s === 0) continue;
    const vk = vectors.subarray(k * n, k * n + n);
    for (let i = 0; i < n; i++) {
      const f = s * vk[i];
      if (f === 0) continue;
      const row = i * n;
      for (let j = 0; j < n; j++) out[row + j] += f * vk[j];
    }
  }
  return out;
}

/** Mean and covariance of n samples of dimension d (row-major), dividing by n - ddof; float64. */
export function meanCov(
  x: Vec,
  n: number,
  d: number,
  ddof: 0 | 1 = 1,
): { mu: Float64Array; sigma: Float64Array } {
  if (!Number.isInteger(n) || !Number.isInteger(d) || n < 1 || d < 1) {
    throw new Error(`meanCov: bad sizes n=${n}, d=${d}`);
  }
  if (x.length !== n * d) throw new Error(`meanCov: got ${x.length} values, expected n*d = ${n * d}`);
  if (ddof !== 0 && ddof !== 1) throw new Error(`meanCov: ddof must be 0 or 1, got ${ddof}`);
  if (n - ddof < 1) throw new Error(`meanCov: need more than ${ddof} samples, got ${n}`);
  const mu = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) {
      const v = x[i * d + j];
      if (!Number.isFinite(v)) throw new Error(`meanCov: sample ${i}, feature ${j} is not finite`);
      mu[j] += v;
    }
  }
  for (let j = 0; j < d; j++) mu[j] /= n;
  const sigma = new Float64Array(d * d);
  const c = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) c[j] = x[i * d + j] - mu[j];
    for (let j = 0; j < d; j++) {
      const cj = c[j], row = j * d;
      for (let k = j; k < d; k++) sigma[row + k] += cj * c[k];
    }
  }
  const inv = 1 / (n - ddof);
  for (let j = 0; j < d; j++) {
    for (let k = j; k < d; k++) sigma[k * d + j] = sigma[j * d + k] *= inv;
  }
  return { mu, sigma };
}

export interface FidParts {
  fid: number;
  /** |mu1 - mu2|^2 */
  meanTerm: number;
  trace1: number;
  trace2: number;
  /** tr sqrtm(S1 S2) */
  traceSqrt: number;
}

/** Float64 reference FID; tr sqrtm(S1 S2) = sum sqrt(eig(sqrt(S1) S2 sqrt(S1))), negatives clamped. */
export function fidRef(mu1: Vec, s1: Vec, mu2: Vec, s2: Vec, d: number): FidParts {
  if (mu1.length !== d || mu2.length !== d) {
    throw new Error(`fidRef: means have ${mu1.length} and ${mu2.length} entries, expected ${d}`);
  }
  checkSquare("fidRef (sigma1)", s1, d);
  checkSquare("fidRef (sigma2)", s2, d);
  let meanTerm = 0, trace1 = 0, trace2 = 0;
  for (let i = 0; i < d; i++) {
    const dm = mu1[i] - mu2[i];
    if (!Number.isFinite(dm)) throw new Error(`fidRef: mean entry ${i} is not finite`);
    meanTerm += dm * dm;
    trace1 += s1[i * d + i];
    trace2 += s2[i * d + i];
  }
  const r = sqrtmPsd(s1, d);
  const m = matmul64(matmul64(r, s2, d), r, d);
  for (let i = 0; i < d; i++) {
    for (let j = i + 1; j < d; j++) m[i * d + j] = m[j * d + i] = 0.5 * (m[i * d + j] + m[j * d + i]);
  }
  const ev = symEigvals(m, d);
  let traceSqrt = 0;
  for (const v of ev) traceSqrt += Math.sqrt(Math.max(v, 0));
  return { fid: meanTerm + trace1 + trace2 - 2 * traceSqrt, meanTerm, trace1, trace2, traceSqrt };
}
