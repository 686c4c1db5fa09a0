// Exact Wasserstein-1 between two equal-size 2-D point sets with uniform weights. An optimal transport
// plan between uniform measures of equal size is a permutation (Birkhoff), so W1 is the mean Euclidean
// cost of the optimal assignment. The assignment is solved exactly in float64: an epsilon-scaling auction
// finds near-optimal column duals fast, then shortest augmenting paths (Dijkstra over dense reduced
// costs, Jonker-Volgenant dual updates) finish the matching from those duals to exact optimality.

/** Minimal-cost perfect matching of a dense n x n cost matrix (row-major); returns col4row. */
export function linearSumAssignment(cost: Float64Array, n: number): Int32Array {
  if (!Number.isInteger(n) || n < 0) throw new Error(`linearSumAssignment: bad size ${n}`);
  if (cost.length !== n * n) {
    throw new Error(`linearSumAssignment: cost has ${cost.length} entries, expected ${n}x${n}`);
  }
  for (let i = 0; i < cost.length; i++) {
    if (!Number.isFinite(cost[i])) throw new Error(`linearSumAssignment: cost[${i}] is not finite`);
  }
  const u = new Float64Array(n), v = new Float64Array(n);
  const col4row = new Int32Array(n).fill(-1), row4col = new Int32Array(n).fill(-1);
  // Any v is dual-feasible with u_i = min_j (c_ij - v_j); good v make the rows' argmins nearly distinct,
  // so most rows start matched on tight edges and the augmenting paths left to find are short.
  auctionDuals(cost, n, v);
  for (let i = 0; i < n; i++) {
    let m = Infinity, jm = 0;
    for (let k = 0; k < n; k++) {
      const h = cost[i * n + k] - v[k];
      if (h < m) {
        m = h;
        jm = k;
      }
    }
    u[i] = m;
    if (row4col[jm] < 0) {
      row4col[jm] = i;
      col4row[i] = jm;
    }
  }

  const spc = new Float64Array(n); // shortest path cost to each column
  const path = new Int32Array(n); // predecessor row of each column on the shortest path tree
  const remaining = new Int32Array(n);
  const rowSeen = new Uint8Array(n), colSeen = new Uint8Array(n);
  for (let cur = 0; cur < n; cur++) {
    if (col4row[cur] >= 0) continue;
    spc.fill(Infinity);
    rowSeen.fill(0);
    colSeen.fill(0);
    for (let j = 0; j < n; j++) remaining[j] = n - 1 - j;
    let nRem = n, minVal = 0, i = cur, sink = -1;
    while (sink < 0) {
      rowSeen[i] = 1;
      let lowest = Infinity, index = -1;
      const base = i * n, h = minVal - u[i];
      for (let it = 0; it < nRem; it++) {
        const j = remaining[it];
        let d = spc[j];
        const r = h + cost[base + j] - v[j];
        if (r < d) {
          d = r;
          spc[j] = r;
          path[j] = i;
        }
        // Ties prefer a free column: it ends the search sooner.
        if (d <= lowest && (d < lowest || row4col[j] < 0)) {
          lowest = d;
          index = it;
        }
      }
      minVal = lowest;
      const j = remaining[index];
      if (row4col[j] < 0) sink = j;
      else i = row4col[j];
      colSeen[j] = 1;
      remaining[index] = remaining[--nRem];
    }
    // Dual update keeps reduced costs >= 0 and the new path's edges tight.
    u[cur] += minVal;
    for (let r = 0; r < n; r++) if (rowSeen[r] && r !== cur) u[r] += minVal - spc[col4row[r]];
    for (let c = 0; c < n; c++) if (colSeen[c]) v[c] -= minVal - spc[c];
    // Augment along the path back to the current row.
    let j = sink;
    for (;;) {
      const r = path[j];
      row4col[j] = r;
      const prev = col4row[r];
      col4row[r] = j;
      if (r === cur) break;
      j = prev;
    }
  }
  return col4row;
}

// Forward auction (Bertsekas) with epsilon scaling, on minimisation form: a free row bids for its best
// column, lowering that column's dual by (second best - best + eps) and evicting the owner. Each phase
// ends with an eps-optimal matching; only the duals are kept. Bids lower v by >= eps, so it terminates.
function auctionDuals(cost: Float64Array, n: number, v: Float64Array): void {
  let maxC = 0;
  for (let i = 0; i < n * n; i++) maxC = Math.max(maxC, Math.abs(cost[i]));
  if (maxC === 0 || n < 2) return;
  const epsEnd = maxC * 1e-3 / n;
  const col4row = new Int32Array(n), row4col = new Int32Array(n);
  const free = new Int32Array(n);
  for (let eps = maxC / 8;; eps = Math.max(eps / 5, epsEnd)) {
    col4row.fill(-1);
    row4col.fill(-1);
    for (let i = 0; i < n; i++) free[i] = n - 1 - i;
    let nFree = n;
    while (nFree > 0) {
      const i = free[--nFree];
      let u1 = Infinity, u2 = Infinity, j1 = 0;
      const base = i * n;
      for (let j = 0; j < n; j++) {
        const h = cost[base + j] - v[j];
        if (h < u2) {
          if (h < u1) {
            u2 = u1;
            u1 = h;
            j1 = j;
          } else u2 = h;
        }
      }
      v[j1] -= u2 - u1 + eps;
      const i0 = row4col[j1];
      row4col[j1] = i;
      col4row[i] = j1;
      if (i0 >= 0) {
        col4row[i0] = -1;
        free[nFree++] = i0;
      }
    }
    if (eps <= epsEnd) break;
  }
}

/** Exact W1 between point sets a and b of n 2-D points each (x,y interleaved), Euclidean ground cost. */
export function w1(a: Float64Array | Float32Array, b: Float64Array | Float32Array, n: number): number {
  if (!Number.isInteger(n) || n < 1) throw new Error(`w1: need a positive point count, got ${n}`);
  if (a.length !== 2 * n || b.length !== 2 * n) {
    throw new Error(
      `w1: expected ${2 * n} coordinates per set (n=${n}, x,y interleaved), got ${a.length} and ${b.length}`,
    );
  }
  const cost = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const ax = a[2 * i], ay = a[2 * i + 1];
    if (!Number.isFinite(ax) || !Number.isFinite(ay)) {
      throw new Error(`w1: point ${i} of the first set is not finite`);
    }
    for (let j = 0; j < n; j++) {
      const dx = ax - b[2 * j], dy = ay - b[2 * j + 1];
      cost[i * n + j] = Math.sqrt(dx * dx + dy * dy);
    }
  }
  for (let j = 0; j < 2 * n; j++) {
    if (!Number.isFinite(b[j])) throw new Error(`w1: point ${j >> 1} of the second set is not finite`);
  }
  const match = linearSumAssignment(cost, n);
  let sum = 0, comp = 0; // Kahan sum: n terms of similar size
  for (let i = 0; i < n; i++) {
    const y = cost[i * n + match[i]] - comp;
    const t = sum + y;
    comp = (t - sum) - y;
    sum = t;
  }
  return sum / n;
}
