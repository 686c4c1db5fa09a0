// The metrics' nn-level ops (nn/poly_kernel.ts, nn/covariance.ts, nn/sqrtm.ts, nn/knn.ts) called
// directly: values against float64 brute force, inputs left as they were, clear errors on bad shapes, and
// every temporary freed. (tests/metrics_test.ts covers them end to end through FID, KID and P/R.)
import * as assert from "node:assert/strict";
import { assertClose, gpuTest, randArray } from "./harness.ts";
import { gpu } from "../kernels/runtime.ts";
import { kthNearestSqDist as kthKernel, uploadFeatures } from "../kernels/knn.ts";
import { scatterMatrix } from "../nn/covariance.ts";
import { featureSet, kthNearestSqDist, manifoldMembership } from "../nn/knn.ts";
import { polyKernelBlockSums } from "../nn/poly_kernel.ts";
import { traceSqrtProduct } from "../nn/sqrtm.ts";
import { fromHost, type Tensor } from "../nn/tensor.ts";

/** Runs fn and asserts it leaves no GPU buffer allocated beyond the tensors alive before it. */
async function noLeak<T>(fn: () => Promise<T>): Promise<T> {
  const rt = gpu(), before = rt.liveBuffers;
  const out = await fn();
  assert.equal(rt.liveBuffers, before, "live GPU buffers after the op");
  return out;
}

async function rejects(p: () => Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(p, pattern);
}

gpuTest("polyKernelBlockSums: float64 block sums of (x.y/d + 1)^3, diagonal left out", async () => {
  const m = 37, d = 5, z = randArray(2 * m * d, 11);
  const k = (i: number, j: number) => {
    let s = 0;
    for (let l = 0; l < d; l++) s += z[i * d + l] * z[j * d + l];
    return (s / d + 1) ** 3;
  };
  let xx = 0, yy = 0, xy = 0;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < m; j++) {
      if (i !== j) {
        xx += k(i, j);
        yy += k(m + i, m + j);
      }
      xy += k(i, m + j);
    }
  }
  const zt = fromHost(z, [2 * m, d], "f32");
  try {
    const got = await noLeak(() => polyKernelBlockSums(zt));
    assertClose([got.xx, got.yy, got.xy], [xx, yy, xy], { rtol: 1e-5, what: "block sums" });
    const odd = fromHost(z.subarray(0, 3 * d), [3, d], "f32");
    try {
      await rejects(() => polyKernelBlockSums(odd), /2m rows with m >= 2, got 3/);
    } finally {
      odd.dispose();
    }
  } finally {
    zt.dispose();
  }
});

gpuTest("scatterMatrix: several chunks, a float64 mean, against the float64 scatter", async () => {
  const n = 53, d = 6, x = randArray(n * d, 5, -2, 3);
  const mu = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mu[j] += x[i * d + j] / n;
  const ref = new Float64Array(d * d);
  for (let i = 0; i < n; i++) {
    for (let a = 0; a < d; a++) {
      for (let b = 0; b < d; b++) ref[a * d + b] += (x[i * d + a] - mu[a]) * (x[i * d + b] - mu[b]);
    }
  }
  const got = await noLeak(() => scatterMatrix(x, n, d, mu, 10)); // 6 chunks, the last of 3 rows
  assertClose(got, ref, { rtol: 1e-5, atol: 1e-5, what: "scatter" });
  await rejects(() => scatterMatrix(x, n, d + 1, mu), /expected 53x7/);
});

/** A d x d PSD matrix of rank r (r random directions with scales), as f32 host data. */
function psd(d: number, r: number, seed: number): Float32Array {
  const v = randArray(d * r, seed), s = new Float32Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) {
      let t = 0;
      for (let k = 0; k < r; k++) t += v[i * r + k] * v[j * r + k] * (k + 1);
      s[i * d + j] = t;
    }
  }
  return s;
}

gpuTest("traceSqrtProduct: known answers on tensors, inputs unchanged, bad shapes rejected", async () => {
  // Diagonal covariances: tr sqrtm(D1 D2) = sum sqrt(d1_i d2_i); one entry of D2 is 0 (rank d - 1).
  const d = 45, a = new Float32Array(d * d), b = new Float32Array(d * d);
  let expected = 0;
  for (let i = 0; i < d; i++) {
    a[i * d + i] = 0.5 + i;
    b[i * d + i] = i === 7 ? 0 : 2 + 0.25 * i;
    expected += Math.sqrt(a[i * d + i] * b[i * d + i]);
  }
  const s1 = fromHost(a, [d, d], "f32"), s2 = fromHost(b, [d, d], "f32");
  const ts: Tensor[] = [s1, s2];
  try {
    const r = await noLeak(() => traceSqrtProduct(s1, s2));
    assert.equal(r.converged, true);
    assert.equal(r.rank1, d);
    assert.equal(r.rank2, d - 1);
    assertClose([r.traceSqrt], [expected], { rtol: 1e-5, what: "tr sqrtm" });
    // The factorisation works on copies: the tensors still hold their values.
    assert.deepEqual(await s1.data(), a);
    assert.deepEqual(await s2.data(), b);
    // Low rank on both sides, with caps: the ranks are found and the cap holds.
    const p = fromHost(psd(d, 4, 1), [d, d], "f32"), q = fromHost(psd(d, 6, 2), [d, d], "f32");
    ts.push(p, q);
    const low = await noLeak(() => traceSqrtProduct(p, q, { maxRank2: 5 }));
    assert.equal(low.rank1, 4);
    assert.equal(low.rank2, 5);
    const sq = fromHost(new Float32Array(6), [2, 3], "f32");
    ts.push(sq);
    await rejects(() => traceSqrtProduct(sq, s2), /S1 must be a square f32 matrix/);
    await rejects(() => traceSqrtProduct(s1, p.view([d * d])), /S2 must be a square/);
    const small = fromHost(new Float32Array(4), [2, 2], "f32");
    ts.push(small);
    await rejects(() => traceSqrtProduct(s1, small), /S1 is 45x45 but S2 is 2x2/);
  } finally {
    for (const t of ts) t.dispose();
  }
});

gpuTest("featureSet: tensor chunks give the kernels' radii bit for bit; dispose frees them", async () => {
  const n = 71, d = 9, k = 3, x = randArray(n * d, 8);
  const rt = gpu(), before = rt.liveBuffers;
  const set = featureSet(x, n, d, 20);
  assert.deepEqual(set.chunks.map((c) => [c.start, c.rows, ...c.x.shape]), [
    [0, 20, 20, d],
    [20, 20, 20, d],
    [40, 20, 20, d],
    [60, 11, 11, d],
  ]);
  const raw = uploadFeatures(x, n, d, 20);
  try {
    const got = await kthNearestSqDist(set, k), want = await kthKernel(raw, k);
    assert.deepEqual(got, want);
    // Against its own set every point is inside (its own ball, at distance 0).
    const m = await manifoldMembership(set, set, got);
    assert.equal(m.inside.reduce((a, v) => a + v, 0), n);
  } finally {
    raw.dispose();
    set.dispose();
  }
  assert.equal(rt.liveBuffers, before, "live GPU buffers after dispose");
  assert.throws(() => featureSet(x, n, d + 1), /expected 71x10/);
});
