// Shared test helpers: GPU tests (the device outlives single tests, so Deno's op/resource sanitizers are
// off), seeded host random numbers, and float64 comparisons with clear messages.
import { initGPU, onCpuAdapter } from "../kernels/runtime.ts";
import { applyGemmEnv } from "../cli/gemm_env.ts";
import { mulberry32 } from "../nn/host_random.ts";

/** Registers a test that runs with the GPU runtime initialised. */
export function gpuTest(name: string, fn: () => Promise<void> | void): void {
  Deno.test({
    name,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      applyGemmEnv();
      await initGPU();
      await fn();
    },
  });
}

/** Mulberry32 (nn/host_random.ts). */
export const rng = mulberry32;

/** n uniform numbers in [lo, hi) from a seed. */
export function randArray(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * r();
  return out;
}

/**
 * Tolerance for two kernels that evaluate the same formula (a fused kernel against the composed ops, one
 * multi-tensor dispatch against per-tensor ones): bit-identical on the CPU adapter, within 8 ulp on a GPU,
 * whose shader compiler may contract a * b + c into an fma in one kernel and not the other (WGSL allows
 * it; seen on an H200, 1-3 ulp after a few Adam steps).
 */
export function sameFormulaTolerance(): { rtol: number; atol: number } {
  return onCpuAdapter() ? { rtol: 0, atol: 0 } : { rtol: 2 ** -20, atol: 1e-12 };
}

/** Asserts |a-b| <= atol + rtol*|b| elementwise, naming the first offending index. */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  { rtol = 1e-5, atol = 1e-6, what = "value" } = {},
): void {
  if (actual.length !== expected.length) {
    throw new Error(`${what}: length ${actual.length} != expected ${expected.length}`);
  }
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i], b = expected[i];
    if (!(Math.abs(a - b) <= atol + rtol * Math.abs(b))) {
      throw new Error(`${what}[${i}]: got ${a}, expected ${b} (rtol ${rtol}, atol ${atol})`);
    }
  }
}
