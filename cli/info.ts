// `info`: the adapter and its limits, so a user can see what the engine runs on.

import { currentGpuTiles, GEMM_KINDS } from "../kernels/gemm.ts";
import { initGPU, onCpuAdapter } from "../kernels/runtime.ts";
import { tileName } from "./gemm_tiles.ts";
import { parse } from "./args.ts";

export async function info(args: string[]): Promise<void> {
  const { values } = parse(args, "usage: cli.ts info [--json]", {
    json: { type: "boolean", help: "print JSON" },
  });
  const rt = await initGPU();
  const f16 = await rt.probeShaderF16();
  if (values.json) console.log(JSON.stringify({ ...rt.info, shaderF16: f16 }));
  else {
    const i = rt.info;
    console.log(
      `adapter: ${i.description || "(no description)"} vendor ${i.vendor}${
        i.isFallbackAdapter ? " (CPU fallback)" : ""
      }`,
    );
    console.log(
      `max storage binding: ${(i.limits.maxStorageBufferBindingSize / 2 ** 20).toFixed(0)} MiB, ` +
        `workgroup storage ${i.limits.maxComputeWorkgroupStorageSize} B, invocations ${i.limits.maxComputeInvocationsPerWorkgroup}`,
    );
    console.log(`features: ${i.features.join(", ")}`);
    console.log(`shader-f16: ${f16.ok ? "usable" : "not usable"} (${f16.detail})`);
    const t = currentGpuTiles();
    console.log(
      onCpuAdapter()
        ? "gemm tiles: modelled per GEMM (CPU adapter)"
        : "gemm tiles (big/small; tm x tn per thread @ wx x wy threads): " +
          GEMM_KINDS.map((k) => `${k} ${tileName(t[k].big)}/${tileName(t[k].small)}`).join(", "),
    );
  }
}
