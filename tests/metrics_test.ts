// Metrics: exact W1, float64 linear algebra and reference FID, KID, precision/recall, GPU FID.
// Goldens come from numpy/scipy (tests/golden/make_metrics_golden.py); inputs are regenerated here
// bit-identically from the same seeded generator, so the golden files stay small.
import { assertClose, gpuTest, rng } from "./harness.ts";
import { linearSumAssignment, w1 } from "../metrics/w1.ts";
import { fidRef, matmul64, meanCov, sqrtmPsd, symEig, symEigvals } from "../metrics/linalg64.ts";
import { kid, kidRef, kidReport, kidSubsets } from "../metrics/kid.ts";
import {
  kthNearestSqDistRef,
  manifoldMembershipRef,
  precisionRecall,
  precisionRecallRef,
} from "../metrics/precision_recall.ts";
import { kthNearestSqDist, manifoldMembership, uploadFeatures } from "../kernels/knn.ts";
import { fidFromStats, statsFromFeatures } from "../metrics/fid.ts";
import { choleskyRank } from "../kernels/sqrtm.ts";

const GOLDEN = new URL("./golden/metrics/", import.meta.url);
function golden(name: string): { cases: any[] } {
  return JSON.parse(Deno.readTextFileSync(new URL(`${name}.json`, GOLDEN)));
}

/** Mirror of gen_features in make_metrics_golden.py: uniform noise + a rank-1 latent + a mean shift. */
export function genFeatures(
  seed: number,
  n: number,
  d: number,
  scale: number,
  shift: number,
  latent: number,
): Float32Array {
  const r = rng(seed);
  const c = new Float64Array(d);
  for (let j = 0; j < d; j++) c[j] = r() - 0.5;
  const x = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    const w = r() - 0.5;
    for (let j = 0; j < d; j++) x[i * d + j] = scale * (r() - 0.5) + latent * w * c[j] + shift * c[j];
  }
  return x;
}

function genPoints(seed: number, n: number, shift: number): Float64Array {
  const r = rng(seed);
  const p = new Float64Array(2 * n);
  for (let i = 0; i < n; i++) {
    p[2 * i] = r() + shift;
    p[2 * i + 1] = r();
  }
  return p;
}

function assertThrows(fn: () => unknown, pattern: RegExp): void {
  try {
    fn();
  } catch (e) {
    if (!pattern.test(String((e as Error).message))) throw new Error(`wrong error: ${(e as Error).message}`);
    return;
  }
  throw new Error(`expected an error matching ${pattern}`);
}

// ---------------------------------------------------------------- W1

function bruteForceW1(a: Float64Array, b: Float64Array, n: number): number {
  const perm = [...Array(n).keys()];
  let best = Infinity;
  const visit = (k: number) => {
    if (k === n) {
      let s = 0;
      for (let i = 0; i < n; i++) {
        s += Math.hypot(a[2 * i] - b[2 * perm[i]], a[2 * i + 1] - b[2 * perm[i] + 1]);
      }
      best = Math.min(best, s);
      return;
    }
    for (let i = k; i < n; i++) {
      [perm[k], perm[i]] = [perm[i], perm[k]];
      visit(k + 1);
      [perm[k], perm[i]] = [perm[i], perm[k]];
    }
  };
  visit(0);
  return best / n;
}

Deno.test("w1 matches brute force over all permutations for n <= 7", () => {
  for (let n = 1; n <= 7; n++) {
    for (let trial = 0; trial < 6; trial++) {
      const seed = 100 * n + trial;
      const a = genPoints(seed, n, 0), b = genPoints(seed + 50, n, trial * 0.2);
      if (trial === 5) { for (let i = 0; i < 2 * n; i++) b[i] = Math.round(b[i] * 2) / 2; // ties, duplicates
       }
      assertClose([w1(a, b, n)], [bruteForceW1(a, b, n)], {
        rtol: 1e-12,
        atol: 1e-14,
        what: `n=${n} t=${trial}`,
      });
    }
  }
});

Deno.test("w1 matches scipy linear_sum_assignment (n=300, 37)", () => {
  for (const c of golden("w1").cases) {
    const a = genPoints(c.seedA, c.n, 0), b = genPoints(c.seedB, c.n, c.shift);
    assertClose([w1(a, b, c.n)], [c.w1], { rtol: 1e-12, atol: 0, what: `w1 ${c.name}` });
  }
});

// Textbook O(n^3) Hungarian method with potentials (1-based), an independent optimum for comparison.
function hungarianCost(c: Float64Array, n: number): number {
  const u = new Float64Array(n + 1),
    v = new Float64Array(n + 1),
    p = new Int32Array(n + 1),
    way = new Int32Array(n + 1);
  for (let i = 1; i <= n; i++) {
    p[0] = i;
    let j0 = 0;
    const minv = new Float64Array(n + 1).fill(Infinity), used = new Uint8Array(n + 1);
    do {
      used[j0] = 1;
      const i0 = p[j0];
      let delta = Infinity, j1 = 0;
      for (let j = 1; j <= n; j++) {
        if (used[j]) continue;
        const cur = c[(i0 - 1) * n + j - 1] - u[i0] - v[j];
        if (cur < minv[j]) {
          minv[j] = cur;
          way[j] = j0;
        }
        if (minv[j] < delta) {
          delta = minv[j];
          j1 = j;
        }
      }
      for (let j = 0; j <= n; j++) {
        if (used[j]) {
          u[p[j]] += delta;
          v[j] -= delta;
        } else minv[j] -= delta;
      }
      j0 = j1;
    } while (p[j0] !== 0);
    do {
      const j1 = way[j0];
      p[j0] = p[j1];
      j0 = j1;
    } while (j0);
  }
  let s = 0;
  for (let j = 1; j <= n; j++) s += c[(p[j] - 1) * n + j - 1];
  return s;
}

Deno.test("linearSumAssignment matches a textbook Hungarian on tie-heavy and wide-range costs", () => {
  for (let t = 0; t < 60; t++) {
    const r = rng(1000 + t), n = 1 + Math.floor(r() * 40), kind = t % 4;
    const c = new Float64Array(n * n).map(() =>
      kind === 0 ? Math.floor(r() * 3) : kind === 1 ? r() - 0.5 : kind === 2 ? 5 : Math.floor(r() * 100) * 1e6
    );
    const m = linearSumAssignment(c, n);
    if (new Set(m).size !== n || m.some((j) => j < 0 || j >= n)) {
      throw new Error(`trial ${t}: not a permutation`);
    }
    let s = 0;
    for (let i = 0; i < n; i++) s += c[i * n + m[i]];
    const h = hungarianCost(c, n);
    assertClose([s], [h], { rtol: 1e-12, atol: 1e-12, what: `trial ${t} (n=${n}, kind ${kind})` });
  }
});

Deno.test("w1 edge cases and input checks", () => {
  const a = new Float64Array([0, 0, 1, 0]);
  assertClose([w1(a, a, 2)], [0], { what: "identical sets" });
  assertClose([w1(new Float32Array([0, 0]), new Float32Array([3, 4]), 1)], [5], { what: "single point" });
  // All points coincide: every assignment is optimal.
  assertClose([w1(new Float64Array(10), new Float64Array(10).fill(1), 5)], [Math.SQRT2], {
    what: "degenerate",
  });
  assertThrows(() => w1(a, new Float64Array(3), 2), /expected 4 coordinates/);
  assertThrows(() => w1(new Float64Array([0, NaN]), new Float64Array(2), 1), /not finite/);
  const match = linearSumAssignment(new Float64Array([4, 1, 3, 2, 0, 5, 3, 2, 2]), 3);
  assertClose(Array.from(match), [1, 0, 2], { what: "scipy doc example" });
});

// ---------------------------------------------------------------- float64 linear algebra

function randomSymmetric(n: number, seed: number): Float64Array {
  const r = rng(seed);
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) a[i * n + j] = a[j * n + i] = r() - 0.5;
  return a;
}

Deno.test("symEig: A v = lambda v, orthonormal vectors, ascending values", () => {
  for (const n of [1, 2, 3, 5, 17, 64]) {
    const a = randomSymmetric(n, n);
    const { values, vectors } = symEig(a, n);
    for (let k = 0; k < n; k++) {
      if (k > 0 && values[k] < values[k - 1]) throw new Error("eigenvalues not ascending");
      const v = vectors.subarray(k * n, k * n + n);
      const av = new Float64Array(n);
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) av[i] += a[i * n + j] * v[j];
      assertClose(av, v.map((x) => x * values[k]), { rtol: 0, atol: 1e-12, what: `A v (n=${n}, k=${k})` });
      for (let l = 0; l <= k; l++) {
        let dot = 0;
        for (let j = 0; j < n; j++) dot += v[j] * vectors[l * n + j];
        assertClose([dot], [k === l ? 1 : 0], { rtol: 0, atol: 1e-12, what: "orthonormality" });
      }
    }
    assertClose(symEigvals(a, n), values, { rtol: 0, atol: 1e-12, what: "values-only path" });
  }
  // Repeated eigenvalues and an already-diagonal matrix.
  const diag = new Float64Array(16);
  [3, 1, 3, 0].forEach((v, i) => diag[i * 5] = v);
  assertClose(symEigvals(diag, 4), [0, 1, 3, 3], { what: "diagonal" });
  assertThrows(() => symEig(new Float64Array(3), 2), /expected 2x2/);
});

Deno.test("sqrtmPsd of a singular PSD matrix squares back to it", () => {
  const n = 20, k = 7, r = rng(5);
  const b = new Float64Array(n * k).map(() => r() - 0.5);
  const a = new Float64Array(n * n); // B B^T, rank 7
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) for (let l = 0; l < k; l++) a[i * n + j] += b[i * k + l] * b[j * k + l];
  }
  const s = sqrtmPsd(a, n);
  assertClose(matmul64(s, s, n), a, { rtol: 0, atol: 1e-12, what: "sqrt^2" });
});

Deno.test("meanCov matches a direct computation for ddof 0 and 1", () => {
  const n = 9, d = 4, x = genFeatures(3, n, d, 1, 0.5, 1);
  for (const ddof of [0, 1] as const) {
    const { mu, sigma } = meanCov(x, n, d, ddof);
    for (let j = 0; j < d; j++) {
      let m = 0;
      for (let i = 0; i < n; i++) m += x[i * d + j];
      assertClose([mu[j]], [m / n], { rtol: 1e-14, what: "mean" });
      for (let l = 0; l < d; l++) {
        let c = 0;
        for (let i = 0; i < n; i++) c += (x[i * d + j] - m / n) * (x[i * d + l] - mu[l]);
        assertClose([sigma[j * d + l]], [c / (n - ddof)], { rtol: 1e-12, atol: 1e-15, what: "cov" });
      }
    }
  }
  assertThrows(() => meanCov(new Float32Array(4), 1, 4, 1), /more than 1 samples/);
  assertThrows(() => meanCov(new Float32Array([1, NaN]), 2, 1, 0), /not finite/);
});

Deno.test("fidRef matches scipy.linalg.sqrtm goldens, rank-deficient included", () => {
  for (const c of golden("fid").cases) {
    const xa = genFeatures(c.a[0], c.a[1], c.d, c.a[2], c.a[3], c.a[4]);
    const xb = genFeatures(c.b[0], c.b[1], c.d, c.b[2], c.b[3], c.b[4]);
    for (const ddof of [0, 1] as const) {
      const sa = meanCov(xa, c.a[1], c.d, ddof), sb = meanCov(xb, c.b[1], c.d, ddof);
      const ref = fidRef(sa.mu, sa.sigma, sb.mu, sb.sigma, c.d);
      const what = `${c.name} ddof=${ddof}`;
      assertClose([ref.trace1, ref.trace2], [c[`trace1_ddof${ddof}`], c[`trace2_ddof${ddof}`]], {
        rtol: 1e-12,
        what,
      });
      // sqrt amplifies round-off near zero eigenvalues (sqrt(1e-14) = 1e-7), so singular cases agree
      // to about 1e-8 relative only, between numpy's eigh, scipy's sqrtm and this code alike.
      const rtol = c.a[1] < c.d || c.b[1] < c.d ? 1e-8 : 1e-11;
      assertClose([ref.fid], [c[`fid_eigh_ddof${ddof}`]], { rtol, what: `${what} vs eigh` });
      assertClose([ref.fid], [c[`fid_scipy_ddof${ddof}`]], { rtol: rtol * 10, what: `${what} vs sqrtm` });
    }
  }
});

// ---------------------------------------------------------------- KID

gpuTest("kid on all samples matches the numpy golden (GPU and float64 reference)", async () => {
  for (const c of golden("kid").cases) {
    const xa = genFeatures(c.a[0], c.a[1], c.d, c.a[2], c.a[3], c.a[4]);
    const xb = genFeatures(c.b[0], c.b[1], c.d, c.b[2], c.b[3], c.b[4]);
    const ref = kidRef(xa, c.a[1], xb, c.b[1], c.d, { subsets: 3 });
    assertClose([ref.kid, ref.std], [c.kid, 0], { rtol: 1e-10, atol: 1e-15, what: `kidRef ${c.name}` });
    const got = await kid(xa, c.a[1], xb, c.b[1], c.d, { subsets: 3 });
    assertClose([got.kid], [c.kid], { rtol: 1e-4, atol: 2e-6, what: `kid ${c.name}` });
    if (got.subsetSize !== c.a[1] || got.perSubset.length !== 3) throw new Error("subset bookkeeping");
  }
});

gpuTest("kid with random subsets matches the float64 reference on awkward sizes", async () => {
  const d = 19, nx = 70, ny = 53;
  const x = genFeatures(1, nx, d, 1, 0, 1), y = genFeatures(2, ny, d, 1.3, 0.4, 1);
  const opts = { subsets: 5, maxSubsetSize: 37, seed: 9 };
  const ref = kidRef(x, nx, y, ny, d, opts), got = await kid(x, nx, y, ny, d, opts);
  if (ref.subsetSize !== 37) throw new Error(`subset size ${ref.subsetSize}`);
  assertClose(got.perSubset, ref.perSubset, { rtol: 1e-4, atol: 1e-6, what: "per-subset MMD" });
  assertClose([got.kid, got.std], [ref.kid, ref.std], { rtol: 1e-4, atol: 1e-6, what: "kid, std" });
  if (!(ref.std > 0)) throw new Error("subsets should differ");
  // Subset size capped by the smaller set: Y (53) is used whole, X is subsampled.
  const capped = kidRef(x, nx, y, ny, d, { subsets: 2, maxSubsetSize: 1000, seed: 1 });
  if (capped.subsetSize !== 53) throw new Error(`capped subset size ${capped.subsetSize}`);
});

gpuTest("kid report: a spread only when subsets differ, always with their size and count", async () => {
  const d = 7, x = genFeatures(3, 30, d, 1, 0, 1), y = genFeatures(4, 25, d, 1.2, 0.3, 1);
  // Subsets of min(30, 25, 1000) = 25 do not cover X (30): they differ, and the spread is reported.
  const sub = kidReport(await kid(x, 30, y, 25, d, { subsets: 4, seed: 2 }));
  if (sub.std === null || !(sub.std > 0) || sub.subsets !== 4 || sub.subsetSize !== 25) {
    throw new Error(`differing subsets: ${JSON.stringify(sub)}`);
  }
  if (!/std over 4 subsets of 25/.test(sub.text)) throw new Error(sub.text);
  // Every subset the whole sets: one evaluation; before, "+- 0.00e+0 (100 subsets of 25)" was printed.
  const whole = await kid(x.subarray(0, 25 * d), 25, y, 25, d, { subsets: 100 });
  const r = kidReport(whole);
  if (!whole.wholeSets || r.std !== null || r.subsets !== 1 || r.subsetSize !== 25) {
    throw new Error(`whole sets: ${JSON.stringify(r)}`);
  }
  if (/\+-/.test(r.text) || !/whole sets of 25: no spread/.test(r.text)) throw new Error(r.text);
});

gpuTest("fidFromStats at the iteration limit: falls back to float64 and says so, or fails", async () => {
  const d = 40, n = 60;
  const fa = genFeatures(5, n, d, 1, 0, 1), fb = genFeatures(6, n, d, 1.4, 0.2, 1);
  const a = await statsFromFeatures(fa, n, d), b = await statsFromFeatures(fb, n, d);
  const ref = fidRef(a.mu, a.sigma, b.mu, b.sigma, d).fid;
  const capped = await fidFromStats(a, b, d, { maxIterations: 2 });
  if (
    capped.method !== "host-f64" || !/unconverged at its limit of 2 iterations/.test(capped.fallback ?? "")
  ) {
    throw new Error(`no fallback reported: ${capped.method} ${capped.fallback}`);
  }
  assertClose([capped.fid], [ref], { rtol: 1e-9, what: "fallback value" });
  let threw = "";
  try {
    await fidFromStats(a, b, d, { maxIterations: 2, onUnconverged: "fail" });
  } catch (e) {
    threw = (e as Error).message;
  }
  if (!/unconverged/.test(threw)) throw new Error(`expected a failure, got '${threw}'`);
  const ok = await fidFromStats(a, b, d);
  if (ok.method !== "gpu-f32" || ok.fallback !== null) {
    throw new Error("default run should converge on the GPU");
  }
  assertClose([ok.fid], [ref], { rtol: 1e-4, what: "converged value" });
});

Deno.test("kid subsets: seeded, distinct indices, inputs checked", () => {
  const a = kidSubsets(50, 40, 30, 3, 7), b = kidSubsets(50, 40, 30, 3, 7), c = kidSubsets(50, 40, 30, 3, 8);
  assertClose(a[2][0], b[2][0], { what: "same seed" });
  if (a[0][0].every((v, i) => v === c[0][0][i])) throw new Error("different seeds gave the same subset");
  for (const [ix, iy] of a) {
    if (new Set(ix).size !== 30 || new Set(iy).size !== 30) throw new Error("repeated index in a subset");
    if (Math.max(...ix) >= 50 || Math.max(...iy) >= 40 || Math.min(...ix, ...iy) < 0) {
      throw new Error("range");
    }
  }
  const x = new Float32Array(12);
  assertThrows(() => kidRef(x, 4, x, 4, 4), /expected 4x4/);
  assertThrows(() => kidRef(x, 1, x, 1, 12), /at least 2 samples/);
  assertThrows(() => kidRef(x.map((_, i) => i === 5 ? Infinity : 0), 3, x, 3, 4), /non-finite/);
  assertThrows(() => kidRef(x, 3, x, 3, 4, { subsets: 0 }), /subsets must be/);
});

// ---------------------------------------------------------------- precision / recall

gpuTest("k-th nearest radii match float64 brute force across chunk boundaries", async () => {
  const n = 75, d = 23, x = genFeatures(5, n, d, 1, 0, 2);
  for (const [k, chunkRows] of [[1, 17], [3, 32], [5, 75], [7, 1000]]) {
    const set = uploadFeatures(x, n, d, chunkRows);
    try {
      const got = await kthNearestSqDist(set, k), ref = kthNearestSqDistRef(x, n, d, k);
      assertClose(got, ref, { rtol: 2e-5, atol: 1e-5, what: `k=${k} chunk=${chunkRows}` });
    } finally {
      set.dispose();
    }
  }
});

gpuTest("manifold membership and realism match float64 brute force (blocked, awkward sizes)", async () => {
  const d = 11, nr = 61, np = 43;
  const refs = genFeatures(6, nr, d, 1, 0, 1), probes = genFeatures(7, np, d, 1.4, 0.5, 1);
  const kth = kthNearestSqDistRef(refs, nr, d, 4);
  const ref = manifoldMembershipRef(probes, np, refs, nr, d, kth);
  const ps = uploadFeatures(probes, np, d, 10), rs = uploadFeatures(refs, nr, d, 13);
  try {
    const got = await manifoldMembership(ps, rs, Float32Array.from(kth));
    assertClose(got.realism, ref.realism, { rtol: 1e-4, what: "realism" });
    // A membership decision may flip only for a probe whose nearest ball boundary is within round-off.
    for (let i = 0; i < np; i++) {
      if (got.inside[i] === ref.inside[i]) continue;
      let margin = Infinity;
      for (let j = 0; j < nr; j++) {
        let d2 = 0;
        for (let l = 0; l < d; l++) d2 += (probes[i * d + l] - refs[j * d + l]) ** 2;
        margin = Math.min(margin, Math.abs(d2 - kth[j]) / kth[j]);
      }
      if (margin > 1e-5) {
        throw new Error(`probe ${i}: inside ${got.inside[i]} vs ${ref.inside[i]}, margin ${margin}`);
      }
    }
    const inside = ref.inside.reduce((a, b) => a + b, 0);
    if (inside === 0 || inside === np) throw new Error(`uninformative case: ${inside} of ${np} inside`);
  } finally {
    ps.dispose();
    rs.dispose();
  }
});

gpuTest("precision/recall on a constructed case with known answers", async () => {
  // Reals on a line at x = 0..9 (d=5); k=2: radius 1 inside the line, 2 at both ends.
  const d = 5, nr = 10;
  const real = new Float32Array(nr * d);
  for (let i = 0; i < nr; i++) real[i * d] = i;
  const probe = (x: number, y: number) => [x, y, 0, 0, 0];
  // inside: at the end ball boundary (-2), 1.5 above the end point, on a point; outside: between balls.
  const fakes = [probe(-2, 0), probe(0, 1.5), probe(4, 0), probe(4.5, 0.9), probe(20, 0), probe(9, 2.5)];
  const fake = Float32Array.from(fakes.flat());
  for (const run of [precisionRecallRef, precisionRecall]) {
    const r = await run(real, nr, fake, fakes.length, d, { k: 2 });
    assertClose([r.precision], [3 / 6], { what: `${run.name} precision` });
    assertClose([r.realism[0], r.realism[2], r.realism[4]], [2 / (2 + 1e-5), 1 / 1e-5, 2 / (11 + 1e-5)], {
      rtol: 1e-5,
      what: `${run.name} realism`,
    });
    // Fake radii (k=2): each fake's 2nd nearest other fake; reals 0 and 4 are within such balls.
    const fr = kthNearestSqDistRef(fake, fakes.length, d, 2);
    const inside = [...Array(nr).keys()].filter((i) =>
      fakes.some((f, j) => (f[0] - i) ** 2 + f[1] ** 2 <= fr[j])
    ).length;
    assertClose([r.recall], [inside / nr], { what: `${run.name} recall` });
  }
  // Identical sets cover each other.
  const same = await precisionRecall(real, nr, real, nr, d, { k: 1 });
  assertClose([same.precision, same.recall], [1, 1], { what: "identical sets" });
});

gpuTest("precision/recall match the numpy golden; inputs checked", async () => {
  for (const c of golden("pr").cases) {
    const real = genFeatures(c.real[0], c.real[1], c.d, c.real[2], c.real[3], c.real[4]);
    const fake = genFeatures(c.fake[0], c.fake[1], c.d, c.fake[2], c.fake[3], c.fake[4]);
    const ref = precisionRecallRef(real, c.real[1], fake, c.fake[1], c.d, { k: c.k });
    assertClose([ref.precision, ref.recall], [c.precision, c.recall], { what: `ref ${c.name}` });
    assertClose(ref.realism, c.realism, { rtol: 1e-12, what: `ref realism ${c.name}` });
    const got = await precisionRecall(real, c.real[1], fake, c.fake[1], c.d, { k: c.k, chunkRows: 50 });
    assertClose([got.precision, got.recall], [c.precision, c.recall], { what: `gpu ${c.name}` });
    assertClose(got.realism, c.realism, { rtol: 1e-4, what: `gpu realism ${c.name}` });
  }
  const x = new Float32Array(12);
  assertThrows(() => precisionRecallRef(x, 3, x, 3, 4, { k: 3 }), /more than k=3/);
  assertThrows(() => precisionRecallRef(x, 4, x, 3, 4, { k: 1 }), /expected 4x4/);
  assertThrows(() => precisionRecallRef(x, 3, x, 3, 4, { k: 0 }), /k must be/);
});

// ---------------------------------------------------------------- GPU FID

gpuTest(
  "fidFromStats (GPU f32) matches scipy/numpy goldens at FID 5..350, rank-deficient included",
  async () => {
    for (const c of golden("fid").cases) {
      const xa = genFeatures(c.a[0], c.a[1], c.d, c.a[2], c.a[3], c.a[4]);
      const xb = genFeatures(c.b[0], c.b[1], c.d, c.b[2], c.b[3], c.b[4]);
      for (const ddof of [0, 1] as const) {
        const sa = meanCov(xa, c.a[1], c.d, ddof), sb = meanCov(xb, c.b[1], c.d, ddof);
        const got = await fidFromStats({ ...sa, ddof }, { ...sb, ddof }, c.d);
        const what = `${c.name} ddof=${ddof}`;
        assertClose([got.fid], [c[`fid_eigh_ddof${ddof}`]], { rtol: 1e-5, atol: 0, what });
        assertClose([got.fid], [c[`fid_scipy_ddof${ddof}`]], {
          rtol: 1e-5,
          atol: 0,
          what: `${what} vs sqrtm`,
        });
        if (got.ddof !== ddof || got.method !== "gpu-f32") {
          throw new Error(`${what}: ddof/method not recorded`);
        }
        if (c.d <= 64) {
          const host = await fidFromStats({ ...sa, ddof }, { ...sb, ddof }, c.d, { method: "host64" });
          assertClose([host.fid], [c[`fid_eigh_ddof${ddof}`]], { rtol: 1e-8, what: `${what} host64` });
          if (host.method !== "host-f64" || host.ddof !== ddof) throw new Error(`${what}: host bookkeeping`);
        }
        const expectRank = (n: number) => Math.min(n - 1, c.d);
        if (got.rank1 !== expectRank(c.a[1]) || got.rank2 !== expectRank(c.b[1])) {
          throw new Error(`${what}: ranks ${got.rank1}, ${got.rank2}`);
        }
      }
    }
  },
);

gpuTest("fidFromStats: known answers (diagonal, identical, zero and rank-1 covariances)", async () => {
  const d = 7, r = rng(3);
  const a = new Float64Array(d).map(() => r() * 4), b = new Float64Array(d).map(() => r() * 4);
  b[2] = 0; // a zero variance: rank 6
  const diag = (v: Float64Array) => {
    const m = new Float64Array(d * d);
    v.forEach((x, i) => m[i * d + i] = x);
    return m;
  };
  const mu1 = new Float64Array(d).fill(1), mu2 = new Float64Array(d);
  let expected = d; // |mu1 - mu2|^2
  for (let i = 0; i < d; i++) expected += a[i] + b[i] - 2 * Math.sqrt(a[i] * b[i]);
  const got = await fidFromStats({ mu: mu1, sigma: diag(a) }, { mu: mu2, sigma: diag(b) }, d);
  assertClose([got.fid], [expected], { rtol: 1e-5, what: "diagonal" });
  if (got.ddof !== "unknown" || got.rank2 !== d - 1) throw new Error(`bookkeeping ${got.ddof} ${got.rank2}`);
  // Identical statistics: FID 0 up to f32 round-off relative to the traces.
  const x = genFeatures(8, 40, 24, 2, 0, 3), s = meanCov(x, 40, 24, 1);
  const same = await fidFromStats(s, s, 24);
  assertClose([same.fid], [0], { rtol: 0, atol: 1e-5 * same.trace1, what: "identical" });
  // A zero covariance (rank 0) and a rank-1 covariance u u^T: tr sqrtm(S1 S2) = 0.
  const u = new Float64Array(d).map(() => r() - 0.5);
  const uu = new Float64Array(d * d).map((_, k) => u[Math.floor(k / d)] * u[k % d]);
  const zero = await fidFromStats({ mu: mu2, sigma: uu }, { mu: mu2, sigma: new Float64Array(d * d) }, d);
  assertClose([zero.fid], [u.reduce((t, v) => t + v * v, 0)], { what: "zero" });
  if (zero.rank1 !== 1 || zero.rank2 !== 0) throw new Error(`zero/rank-1 ranks ${zero.rank1}, ${zero.rank2}`);
});

gpuTest(
  "fidFromStats vs fidRef on steep spectra and mismatched null spaces (constructed covariances)",
  async () => {
    const d = 80;
    const basis = (seed: number) => symEig(randomSymmetric(d, seed), d).vectors; // rows: orthonormal
    const cov = (q: Float64Array, lam: (k: number) => number) => {
      const s = new Float64Array(d * d);
      for (let k = 0; k < d; k++) {
        for (let i = 0; i < d; i++) {
          const f = lam(k) * q[k * d + i];
          for (let j = 0; j < d; j++) s[i * d + j] += f * q[k * d + j];
        }
      }
      for (let i = 0; i < d; i++) for (let j = 0; j < i; j++) s[i * d + j] = s[j * d + i];
      return s;
    };
    const q1 = basis(21), q2 = basis(22), mu = new Float64Array(d), mu2 = new Float64Array(d).fill(0.3);
    const cases: [string, Float64Array, Float64Array, number, number][] = [
      ["condition 1e-6", cov(q1, (k) => 3 / (k + 1) ** 3.2), cov(q2, (k) => 3 / (k + 1) ** 3.2), d, d],
      ["ranks 20 / 50", cov(q1, (k) => (k < 20 ? 2 : 0)), cov(q2, (k) => (k < 50 ? 1 + k / 50 : 0)), 20, 50],
      [
        "ranks 30 / 30 steep",
        cov(q1, (k) => (k < 30 ? 1 / (k + 1) ** 2 : 0)),
        cov(q1, (k) => (k < 30 ? 3 / (k + 1) : 0)),
        30,
        30,
      ],
    ];
    for (const [name, s1, s2, r1, r2] of cases) {
      const ref = fidRef(mu, s1, mu2, s2, d);
      const got = await fidFromStats({ mu, sigma: s1 }, { mu: mu2, sigma: s2 }, d);
      if (ref.fid < 5) throw new Error(`${name}: case meant for FID >= 5, got ${ref.fid}`);
      assertClose([got.fid], [ref.fid], { rtol: 1e-5, what: name });
      if (got.rank1 !== r1 || got.rank2 !== r2) throw new Error(`${name}: ranks ${got.rank1}, ${got.rank2}`);
    }
  },
);

gpuTest("fidFromStats rejects bad inputs with clear errors", async () => {
  const d = 3, mu = new Float64Array(d), sigma = new Float64Array(d * d);
  const rejects = async (p: Promise<unknown>, pattern: RegExp) => {
    try {
      await p;
    } catch (e) {
      if (!pattern.test((e as Error).message)) throw new Error(`wrong error: ${(e as Error).message}`);
      return;
    }
    throw new Error(`expected an error matching ${pattern}`);
  };
  await rejects(fidFromStats({ mu, sigma }, { mu: new Float64Array(4), sigma }, d), /mu has 4 entries/);
  await rejects(fidFromStats({ mu, sigma }, { mu, sigma: new Float64Array(8) }, d), /expected 3x3/);
  await rejects(fidFromStats({ mu: Float64Array.of(0, NaN, 0), sigma }, { mu, sigma }, d), /not finite/);
  const asym = Float64Array.of(1, 0.5, 0, 0, 1, 0, 0, 0, 1);
  await rejects(fidFromStats({ mu, sigma: asym }, { mu, sigma }, d), /not symmetric/);
  const neg = Float64Array.of(-1, 0, 0, 0, 1, 0, 0, 0, 1);
  await rejects(fidFromStats({ mu, sigma: neg }, { mu, sigma }, d), /not a variance/);
  await rejects(fidFromStats({ mu, sigma, ddof: 0 }, { mu, sigma, ddof: 1 }, d), /different covariance/);
  await rejects(statsFromFeatures(new Float32Array(5), 2, 3), /expected 2x3/);
  await rejects(statsFromFeatures(new Float32Array(3), 1, 3, { ddof: 1 }), /more than 1 samples/);
});

gpuTest("statsFromFeatures matches the float64 mean/covariance for ddof 0 and 1", async () => {
  const n = 1100, d = 21, x = genFeatures(12, n, d, 3, 5, 2); // more rows than one chunk, offset mean
  for (const ddof of [0, 1] as const) {
    const got = await statsFromFeatures(x, n, d, { ddof }), ref = meanCov(x, n, d, ddof);
    assertClose(got.mu, ref.mu, { rtol: 1e-12, what: "mean" });
    let scale = 0;
    for (let i = 0; i < d; i++) scale = Math.max(scale, ref.sigma[i * d + i]);
    assertClose(got.sigma, ref.sigma, { rtol: 0, atol: 2e-6 * scale, what: `cov ddof=${ddof}` });
    if (got.ddof !== ddof || got.n !== n) throw new Error("bookkeeping");
  }
});

Deno.test("choleskyRank: gaps, noise floor and smooth decay", () => {
  const check = (p: number[], r: number) => {
    const got = choleskyRank(Float32Array.from(p));
    if (got !== r) throw new Error(`rank of [${p}] = ${got}, expected ${r}`);
  };
  check([], 0);
  check([0, 0], 0);
  check([4, 2, 1, 0.5], 4);
  check([4, 2, 1e-4, 1e-5], 2); // gap: the rest is round-off
  check([4, 2, 1e-2, 1e-3, 5e-4, 1e-4], 6); // smooth decay: no gap
  check([4, 1e-7, 1e-7], 1); // below the f32 noise floor
  check([4, 2, 3e-3, 1e-6, 5e-3], 5); // a later pivot above the cut: no gap
});
