// Scatter matrix sum_i (x_i - mu)(x_i - mu)^T of n feature rows, as an nn-level op. The rows stay on the
// host until they are centred with the float64 mean (no cancellation against the mean later); each chunk
// then becomes a tensor, is multiplied as Xc^T Xc by matmul, and the product is added into a compensated
// (hi, lo) f32 accumulator (kernels/metric_cov.ts), so f32 rounding only acts within a chunk.

import { compensatedAccumulate } from "../kernels/metric_cov.ts";
import { gpu } from "../kernels/runtime.ts";
import { matmulT } from "./linalg.ts";
import { fromHost, scopeAsync } from "./tensor.ts";

/** The d x d scatter matrix (not yet divided by n - ddof) in float64; x is n x d, row-major. */
export async function scatterMatrix(
  x: Float32Array | Float64Array,
  n: number,
  d: number,
  mu: Float64Array,
  chunkRows = 1024,
): Promise<Float64Array> {
  if (!Number.isInteger(n) || !Number.isInteger(d) || n < 1 || d < 1) {
    throw new Error(`scatterMatrix: bad sizes n=${n}, d=${d}`);
  }
  if (x.length !== n * d) throw new Error(`scatterMatrix: got ${x.length} values, expected ${n}x${d}`);
  if (mu.length !== d) throw new Error(`scatterMatrix: mean has ${mu.length} entries, expected ${d}`);
  // A chunk of rows must fit one storage binding.
  const maxRows = Math.max(
    1,
    Math.min(chunkRows, Math.floor(gpu().device.limits.maxStorageBufferBindingSize / (4 * d))),
  );
  return await scopeAsync(async () => {
    const hi = fromHost(new Float32Array(d * d), [d, d], "f32");
    const lo = fromHost(new Float32Array(d * d), [d, d], "f32");
    const host = new Float32Array(maxRows * d);
    for (let start = 0; start < n; start += maxRows) {
      const rows = Math.min(maxRows, n - start);
      for (let i = 0; i < rows; i++) {
        for (let j = 0; j < d; j++) host[i * d + j] = x[(start + i) * d + j] - mu[j];
      }
      const chunk = fromHost(host.subarray(0, rows * d), [rows, d], "f32");
      const part = matmulT(chunk, chunk, true, false);
      compensatedAccumulate(part.buffer, hi.writableBuffer, lo.writableBuffer, d * d);
      chunk.dispose();
      part.dispose();
    }
    const h = await hi.data(), l = await lo.data();
    const out = new Float64Array(d * d);
    for (let i = 0; i < d * d; i++) out[i] = h[i] + l[i];
    return out;
  });
}
