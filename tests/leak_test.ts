// The StyleGAN2 half of the leak test (tests/nn_test.ts has the MLP half): tiny16 training with lazy R1
// and path-length regularisation, LEAK_STEPS iterations (300 by default), keeps the GPU's live buffers and
// bytes flat: sampled after a sync at every tick, they must repeat exactly once the run is warm.

import { gpu } from "../kernels/runtime.ts";
import { ArrayDataset } from "../data/dataset.ts";
import { presetConfig } from "../gan/stylegan2/config.ts";
import { train } from "../gan/train/loop.ts";
import { gpuTest } from "./harness.ts";

const STEPS = Number(Deno.env.get("LEAK_STEPS") ?? 300);
const RES = 16, BATCH = 4, STEPS_PER_TICK = 10;

gpuTest(
  `leak test: ${STEPS} StyleGAN2 tiny16 iterations with R1 and path length keep live buffers and bytes flat`,
  async () => {
    const n = 16, per = 3 * RES * RES;
    const px = new Uint8Array(n * per);
    for (let i = 0; i < px.length; i++) px[i] = ((i * 2654435761) >>> 24) & 255;
    const data = new ArrayDataset("leak", RES, 3, px, null, []);
    const dir = await Deno.makeTempDir({ prefix: "leak_test_" });
    const rt = gpu();
    await rt.sync();
    const before = [rt.liveBuffers, rt.liveBytes];
    const samples: number[][] = [];
    const r = await train({
      outDir: dir,
      preset: "tiny16",
      arch: presetConfig("tiny16", {
        resolution: RES,
        channelBase: 64,
        channelMax: 16,
        zDim: 16,
        wDim: 16,
        mappingLayers: 2,
      }),
      data,
      totalKimg: (STEPS * BATCH) / 1000,
      seed: 5,
      gridSize: 0,
      recipe: {
        batch: BATCH,
        tickKimg: (STEPS_PER_TICK * BATCH) / 1000,
        snapshotTicks: 1000,
        r1Gamma: 1,
        r1Interval: 2,
        plWeight: 2,
        plInterval: 2,
        styleMixingProb: 0.5,
      },
      onTick: async () => {
        await rt.sync();
        samples.push([rt.liveBuffers, rt.liveBytes]);
      },
    });
    if (r.step !== STEPS) throw new Error(`ran ${r.step} steps, expected ${STEPS}`);
    for (const m of [r.G, r.D, r.Gema]) m.dispose();
    await rt.sync();
    await Deno.remove(dir, { recursive: true });
    // The first tick allocates the optimiser state and caches; from the second on nothing may grow.
    const warm = samples.slice(1);
    if (warm.length < 1 || warm.some((s) => s.join() !== warm[0].join())) {
      throw new Error(`live [buffers, bytes] per tick changed: ${JSON.stringify(samples)}`);
    }
    const after = [rt.liveBuffers, rt.liveBytes];
    if (after[0] !== before[0]) {
      throw new Error(`training left ${after[0] - before[0]} live buffers (${before} -> ${after})`);
    }
  },
);
