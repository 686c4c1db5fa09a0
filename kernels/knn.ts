// k-nearest-neighbour radii and manifold membership for improved precision/recall, in blocks so that
// no N x N distance matrix exists: features live on the GPU in row chunks (uploaded once), each chunk
// pair gets its squared distances |a|^2 + |b|^2 - 2 a.b from one matmul (alpha -2, |b|^2 as bias,
// |a|^2 added and the result clamped at 0 by the consumer), and a per-row kernel folds that block into
// running per-row state: the k smallest distances, or (inside-any-ball, max realism).

import { elementwise } from "./elementwise.ts";
import { matmul } from "./matmul.ts";
import { gpu } from "./runtime.ts";

const WG = 64;
export const MAX_K = 64;
const BIG = 3.0e38;

/** One resident chunk of feature rows: rows start..start+rows-1 and their squared norms. */
export interface FeatureChunk {
  rows: number;
  start: number;
  x: GPUBuffer;
  norms: GPUBuffer;
}

/** Features resident on the GPU as row chunks, with their float64-accurate squared norms. */
export interface FeatureChunks {
  n: number;
  d: number;
  chunkRows: number;
  chunks: FeatureChunk[];
}

/** Feature chunks whose buffers this object owns (uploadFeatures). */
export interface GpuFeatureSet extends FeatureChunks {
  dispose(): void;
}

/** Rows per chunk for n x d features: at most `chunkRows` (default 4096), within the binding limits. */
export function featureChunkRows(n: number, d: number, chunkRows?: number): number {
  if (!Number.isInteger(n) || n < 1 || !Number.isInteger(d) || d < 1) {
    throw new Error(`uploadFeatures: bad sizes n=${n}, d=${d}`);
  }
  const maxBind = gpu().device.limits.maxStorageBufferBindingSize;
  // A chunk of features and a chunk x chunk distance block must both fit one binding (<= 64 MiB here).
  const fit = Math.floor(Math.min(maxBind, 1 << 26) / (4 * d));
  const rows = Math.min(n, chunkRows ?? 4096, fit, 4096);
  if (rows < 1) {
    throw new Error(`uploadFeatures: one feature row (${d} floats) exceeds the binding size limit`);
  }
  return rows;
}

/** Squared norms of the rows of `part` (rows x d), summed in float64; `start` names rows in errors. */
export function rowSqNorms(part: Float32Array, rows: number, d: number, start = 0): Float32Array {
  const norms = new Float32Array(rows);
  for (let i = 0; i < rows; i++) {
    let s = 0;
    for (let j = 0; j < d; j++) {
      const v = part[i * d + j];
      if (!Number.isFinite(v)) {
        throw new Error(`uploadFeatures: feature ${j} of row ${start + i} is not finite`);
      }
      s += v * v;
    }
    norms[i] = s;
  }
  return norms;
}

/** Uploads n x d features (row-major) in chunks of at most `chunkRows` rows (default: fits the limits). */
export function uploadFeatures(x: Float32Array, n: number, d: number, chunkRows?: number): GpuFeatureSet {
  const rows = featureChunkRows(n, d, chunkRows);
  if (x.length !== n * d) throw new Error(`uploadFeatures: got ${x.length} values, expected ${n}x${d}`);
  const rt = gpu();
  const chunks: FeatureChunk[] = [];
  for (let start = 0; start < n; start += rows) {
    const r = Math.min(rows, n - start);
    const part = x.subarray(start * d, (start + r) * d);
    const norms = rowSqNorms(part, r, d, start);
    const xb = rt.alloc(part.byteLength), nb = rt.alloc(r * 4);
    rt.upload(xb, part);
    rt.upload(nb, norms);
    chunks.push({ rows: r, start, x: xb, norms: nb });
  }
  return {
    n,
    d,
    chunkRows: rows,
    chunks,
    dispose() {
      for (const c of chunks) {
        rt.release(c.x);
        rt.release(c.norms);
      }
      chunks.length = 0;
    },
  };
}

/** dist2 block [a.rows x b.rows] = -2 A B^T + |b|^2 (the consumer adds |a|^2 and clamps at 0). */
function partialSqDist(
  a: FeatureChunk,
  b: FeatureChunk,
  d: number,
  out: GPUBuffer,
) {
  matmul(a.x, b.x, out, { batch: 1, m: a.rows, n: b.rows, k: d, transB: true }, {
    alpha: -2,
    bias: b.norms,
    biasAlong: "n",
  });
}

/**
 * Squared distance from every point of `set` to its k-th nearest OTHER point of `set` (self is excluded
 * by index, so an exact duplicate counts as a neighbour at distance 0).
 */
export async function kthNearestSqDist(set: FeatureChunks, k: number): Promise<Float32Array> {
  if (!Number.isInteger(k) || k < 1 || k > MAX_K) {
    throw new Error(`kthNearestSqDist: k must be in 1..${MAX_K}, got ${k}`);
  }
  if (k > set.n - 1) throw new Error(`kthNearestSqDist: k=${k} needs at least ${k + 1} points, got ${set.n}`);
  const rt = gpu();
  const best = rt.alloc(set.chunkRows * k * 4), block = rt.alloc(set.chunkRows * set.chunkRows * 4);
  const out = new Float32Array(set.n);
  try {
    for (const a of set.chunks) {
      fill(best, a.rows * k, BIG);
      for (const b of set.chunks) {
        partialSqDist(a, b, set.d, block);
        topkMerge(block, a.norms, best, a.rows, b.rows, a.start, b.start, k);
      }
      const kth = new Float32Array(await rt.read(best, a.rows * k * 4));
      for (let i = 0; i < a.rows; i++) out[a.start + i] = kth[i * k + k - 1];
    }
  } finally {
    rt.release(best);
    rt.release(block);
  }
  return out;
}

/**
 * For every probe: whether it lies within some reference point's ball (dist^2 <= refKthSq_j) and its
 * realism score max_j sqrt(refKthSq_j) / (dist_j + 1e-5).
 */
export async function manifoldMembership(
  probes: FeatureChunks,
  refs: FeatureChunks,
  refKthSq: Float32Array,
): Promise<{ inside: Uint8Array; realism: Float32Array }> {
  if (probes.d !== refs.d) {
    throw new Error(`manifoldMembership: probe dim ${probes.d} != reference dim ${refs.d}`);
  }
  if (refKthSq.length !== refs.n) {
    throw new Error(`manifoldMembership: ${refKthSq.length} radii for ${refs.n} reference points`);
  }
  const rt = gpu();
  const radii = refs.chunks.map((c) => {
    const b = rt.alloc(c.rows * 4);
    rt.upload(b, refKthSq.subarray(c.start, c.start + c.rows));
    return b;
  });
  const state = rt.alloc(probes.chunkRows * 2 * 4), block = rt.alloc(probes.chunkRows * refs.chunkRows * 4);
  const inside = new Uint8Array(probes.n), realism = new Float32Array(probes.n);
  try {
    for (const p of probes.chunks) {
      fill(state, p.rows * 2, 0);
      refs.chunks.forEach((r, ri) => {
        partialSqDist(p, r, probes.d, block);
        membershipMerge(block, p.norms, radii[ri], state, p.rows, r.rows);
      });
      const s = new Float32Array(await rt.read(state, p.rows * 2 * 4));
      for (let i = 0; i < p.rows; i++) {
        inside[p.start + i] = s[2 * i] > 0 ? 1 : 0;
        realism[p.start + i] = s[2 * i + 1];
      }
    }
  } finally {
    for (const b of radii) rt.release(b);
    rt.release(state);
    rt.release(block);
  }
  return { inside, realism };
}

// buf[0..count) = value.
function fill(buf: GPUBuffer, count: number, value: number): void {
  const out = { buffer: buf, dtype: "f32" as const, strides: [1], offset: 0 };
  elementwise({ name: "knn_fill", expr: "p0", inputs: [], out, shape: [count], scalars: [value] });
}

// One workgroup per row: each thread keeps a sorted k-list of its strided columns, thread 0 merges the
// 64 lists into the row's running list (ascending; entry k-1 is the k-th smallest so far).
function topkMerge(
  block: GPUBuffer,
  rowNorms: GPUBuffer,
  best: GPUBuffer,
  rows: number,
  cols: number,
  rowStart: number,
  colStart: number,
  k: number,
): void {
  const rt = gpu();
  const code = () => `
@group(0) @binding(0) var<storage, read> dist: array<f32>;
@group(0) @binding(1) var<storage, read> rowNorm: array<f32>;
@group(0) @binding(2) var<storage, read_write> best: array<f32>;
struct P { rows: u32, cols: u32, rowStart: u32, colStart: u32 }
@group(0) @binding(3) var<uniform> p: P;
const K = ${k}u;
var<workgroup> cand: array<f32, ${WG * k}>;
fn insert(l: ptr<function, array<f32, ${k}>>, v: f32) {
  if (v >= (*l)[K - 1u]) { return; }
  var j = K - 1u;
  loop {
    if (j == 0u || (*l)[j - 1u] <= v) { break; }
    (*l)[j] = (*l)[j - 1u];
    j = j - 1u;
  }
  (*l)[j] = v;
}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r = wid.x + wid.y * nw.x;
  if (r >= p.rows) { return; }
  var l: array<f32, ${k}>;
  for (var t = 0u; t < K; t = t + 1u) { l[t] = ${BIG}; }
  let me = p.rowStart + r;
  let na = rowNorm[r];
  for (var j = lid; j < p.cols; j = j + ${WG}u) {
    if (p.colStart + j != me) { insert(&l, max(dist[r * p.cols + j] + na, 0.0)); }
  }
  for (var t = 0u; t < K; t = t + 1u) { cand[lid * K + t] = l[t]; }
  workgroupBarrier();
  if (lid == 0u) {
    var m: array<f32, ${k}>;
    for (var t = 0u; t < K; t = t + 1u) { m[t] = best[r * K + t]; }
    for (var c = 0u; c < ${WG}u * K; c = c + 1u) { insert(&m, cand[c]); }
    for (var t = 0u; t < K; t = t + 1u) { best[r * K + t] = m[t]; }
  }
}`;
  rt.dispatch(
    `metric_knn_topk|${k}`,
    code,
    [{ buffer: block }, { buffer: rowNorms }, { buffer: best, write: true }],
    new Uint32Array([rows, cols, rowStart, colStart]),
    rt.grid(rows),
  );
}

// One workgroup per probe row: OR of (dist^2 <= r_j^2) and max of r_j / (dist_j + 1e-5) over the block,
// folded into state[2r] (inside flag) and state[2r+1] (realism).
function membershipMerge(
  block: GPUBuffer,
  rowNorms: GPUBuffer,
  refKthSq: GPUBuffer,
  state: GPUBuffer,
  rows: number,
  cols: number,
): void {
  const rt = gpu();
  const code = () => `
@group(0) @binding(0) var<storage, read> dist: array<f32>;
@group(0) @binding(1) var<storage, read> rowNorm: array<f32>;
@group(0) @binding(2) var<storage, read> kthSq: array<f32>;
@group(0) @binding(3) var<storage, read_write> state: array<f32>;
struct P { rows: u32, cols: u32, pad0: u32, pad1: u32 }
@group(0) @binding(4) var<uniform> p: P;
var<workgroup> part: array<vec2<f32>, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r = wid.x + wid.y * nw.x;
  if (r >= p.rows) { return; }
  let na = rowNorm[r];
  var acc = vec2<f32>(0.0, 0.0);
  for (var j = lid; j < p.cols; j = j + ${WG}u) {
    let d2 = max(dist[r * p.cols + j] + na, 0.0);
    let r2 = kthSq[j];
    if (d2 <= r2) { acc.x = 1.0; }
    acc.y = max(acc.y, sqrt(r2) / (sqrt(d2) + 1e-5));
  }
  part[lid] = acc;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) { part[lid] = max(part[lid], part[lid + s]); }
    workgroupBarrier();
  }
  if (lid == 0u) {
    state[2u * r] = max(state[2u * r], part[0].x);
    state[2u * r + 1u] = max(state[2u * r + 1u], part[0].y);
  }
}`;
  rt.dispatch(
    "metric_knn_member",
    code,
    [{ buffer: block }, { buffer: rowNorms }, { buffer: refKthSq }, { buffer: state, write: true }],
    new Uint32Array([rows, cols, 0, 0]),
    rt.grid(rows),
  );
}
