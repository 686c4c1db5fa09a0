// The Deno side of GC_GEMM_PATH: kernels/ reads no environment (the browser page imports it), so Deno
// entry points (cli.ts, the test harness, bench) read the variable here and hand it to kernels/gemm.ts.

import { setGemmPathSetting } from "../kernels/gemm.ts";

/** Reads GC_GEMM_PATH (unset, or no env permission: the adapter decides) into the GEMM path setting. */
export function applyGemmPathEnv(): void {
  let v: string | undefined;
  try {
    if (Deno.permissions.querySync({ name: "env", variable: "GC_GEMM_PATH" }).state === "granted") {
      v = Deno.env.get("GC_GEMM_PATH");
    }
  } catch {
    v = undefined;
  }
  setGemmPathSetting(v);
}
