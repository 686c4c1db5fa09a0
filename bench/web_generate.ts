// Generation throughput of a snapshot in Deno with the page's own code (web/render.ts benchGenerate), at
// batch 1 and 16: `deno run -A bench/web_generate.ts SNAPSHOT [REPS]`. The browser test prints the same
// numbers for Chromium on the same machine.

import { initGPU } from "../kernels/runtime.ts";
import { applyGemmPathEnv } from "../cli/gemm_env.ts";
import { generatorFromSnapshotBytes } from "../gan/train/snapshot_bytes.ts";
import { benchGenerate } from "../web/render.ts";

const [path, repsArg] = Deno.args;
if (!path) throw new Error("usage: bench/web_generate.ts SNAPSHOT [REPS]");
const reps = Number(repsArg ?? 3);
applyGemmPathEnv();
const rt = await initGPU();
const { G } = generatorFromSnapshotBytes(await Deno.readFile(path), path);
for (const batch of [1, 16]) {
  const ips = await benchGenerate(G, batch, reps);
  console.log(
    `${rt.info.description || rt.info.vendor}: ${G.imgResolution}px, batch ${batch}: ${
      ips.toFixed(1)
    } images/s`,
  );
}
G.dispose();
