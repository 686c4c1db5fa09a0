// The Deno side of the GEMM settings: kernels/ reads no environment or files (the browser page imports
// it), so Deno entry points (cli.ts, the test harness, bench) call applyGemmEnv() before initGPU(): it
// hands GC_GEMM_PATH to kernels/gemm.ts and, once the adapter is up, a GPU's tuned tiles
// (cli/gemm_tiles.ts: GC_GEMM_AUTOTUNE, GC_GEMM_TILE_CACHE).

import { setGemmPathSetting } from "../kernels/gemm.ts";
import { afterGpuInit } from "../kernels/runtime.ts";
import { envGet } from "./env.ts";
import { applyGemmTiles } from "./gemm_tiles.ts";

let hooked = false;

/** Reads GC_GEMM_PATH (unset, or no env permission: the adapter decides); applies the GPU tiles at init. */
export function applyGemmEnv(): void {
  setGemmPathSetting(envGet("GC_GEMM_PATH"));
  if (!hooked) {
    hooked = true;
    void afterGpuInit(async (rt) => void await applyGemmTiles(rt));
  }
}
