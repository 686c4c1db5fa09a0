// `deno run -A bench/merge_stage.ts [RUNS] [--time|--time-keys]`: images per second of a merge stage as the
// demo trains it (TransferGAN stage on the demo sources: 16x16, batch 16, images drawn from the sources each
// step), RUNS (default 2) timed runs of 256 images after a warm-up, with dispatches per iteration. With
// --time, one more run of 128 images with every dispatch timed (kernels/runtime.ts startTiming): GPU
// milliseconds by kernel family, or by pipeline key and grid (--time-keys, the 30 costliest).

import { applyGemmEnv } from "../cli/gemm_env.ts";
import { mergeSources } from "../gan/cocktail/merge.ts";
import { openSources } from "../gan/cocktail/sources.ts";
import { disposeNetworks } from "../gan/cocktail/stage.ts";
import { DEMO_SOURCES } from "../gan/cocktail/demo.ts";
import { gpu, initGPU } from "../kernels/runtime.ts";

const timed = Deno.args.includes("--time") || Deno.args.includes("--time-keys");
const byKey = Deno.args.includes("--time-keys");
const runs = Number(Deno.args.find((a) => !a.startsWith("--")) ?? 2);
applyGemmEnv();
await initGPU();
const rt = gpu();
const sources = await openSources(DEMO_SOURCES);
const out = Deno.makeTempDirSync({ prefix: "merge-stage-bench-" });
let kimg = 0.064;
// Each call resumes the same stage to a larger budget: only the new images are trained.
const trainTo = async (k: number) => {
  kimg = k;
  const r = await mergeSources({
    sources,
    method: "transfer",
    outDir: out,
    kimg,
    rootKimg: 0.016,
    root: 0,
    seed: 0,
    resume: true,
  });
  disposeNetworks(r);
};
try {
  console.log(`adapter: ${rt.info.description || rt.info.vendor}`);
  await trainTo(kimg);
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now(), d0 = rt.totalDispatches;
    await trainTo(kimg + 0.256);
    const s = (performance.now() - t0) / 1000;
    console.log(
      `256 images: ${s.toFixed(2)} s, ${(256 / s).toFixed(1)} img/s, ${(rt.totalDispatches - d0) / 16} ` +
        `dispatches per iteration (load ${Deno.loadavg()[0].toFixed(2)})`,
    );
  }
  if (timed) {
    rt.startTiming(byKey);
    await trainTo(kimg + 0.128);
    const rows = [...(await rt.stopTiming())].sort((a, b) => b[1].ms - a[1].ms);
    const total = rows.reduce((a, [, v]) => a + v.ms, 0);
    console.log(`timed run, 128 images: ${total.toFixed(0)} ms in kernels (one pass per dispatch)`);
    for (const [f, v] of byKey ? rows.slice(0, 30) : rows) {
      const name = f.replaceAll(/\s+/g, " ").slice(0, byKey ? 160 : 24);
      console.log(
        `  ${name.padEnd(24)} ${String(v.dispatches).padStart(5)} dispatches ${
          v.ms.toFixed(1).padStart(8)
        } ms ` +
          `${(100 * v.ms / total).toFixed(1).padStart(5)}%`,
      );
    }
  }
} finally {
  for (const s of sources) s.dispose();
  Deno.removeSync(out, { recursive: true });
}
