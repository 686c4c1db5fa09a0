// The StyleGAN2 half of the leak test (tests/nn_test.ts has the MLP half): tiny16 training with lazy R1
// and path-length regularisation, LEAK_STEPS iterations (300 by default), keeps the GPU's live buffers and
// bytes flat: sampled after a sync at every tick, they must repeat exactly once the run is warm. Then a
// GAN Cocktail merge through mergeSources (the `merge` command's path: rooting, averaging, the merge
// fine-tune with R1 and path length on a two-class conditional model), LEAK_MERGE_STEPS iterations per
// stage (60 by default): live buffers, bytes and the pipeline cache flat per tick. Buffers ever created are
// printed, not asserted: at 2026-12-02 they still grew by a few per tick in the rooting stage (1856 -> 1917
// over 9 warm ticks of 10 iterations) while live buffers stayed flat: pool churn, not a leak (open).

import { gpu } from "../kernels/runtime.ts";
import { ArrayDataset } from "../data/dataset.ts";
import { presetConfig } from "../gan/stylegan2/config.ts";
import { train } from "../gan/train/loop.ts";
import { gpuTest } from "./harness.ts";
import { Discriminator } from "../gan/stylegan2/discriminator.ts";
import { Generator } from "../gan/stylegan2/generator.ts";
import { saveSnapshot, untrainedState } from "../gan/train/snapshot.ts";
import { manualSeed } from "../nn/creation.ts";
import { openSources } from "../gan/cocktail/sources.ts";
import { mergeSources } from "../gan/cocktail/merge.ts";
import { disposeNetworks } from "../gan/cocktail/stage.ts";
import { tinyStyleGAN2 } from "./tiny_stylegan2.ts";

const STEPS = Number(Deno.env.get("LEAK_STEPS") ?? 300);
const MERGE_STEPS = Number(Deno.env.get("LEAK_MERGE_STEPS") ?? 60);
const RES = 16, BATCH = 4, STEPS_PER_TICK = 10;

// R1 and path length every 2 steps, ticks of STEPS_PER_TICK: both tests sample memory at every tick.
const RECIPE = {
  batch: BATCH,
  tickKimg: (STEPS_PER_TICK * BATCH) / 1000,
  snapshotTicks: 1000,
  r1Gamma: 1,
  r1Interval: 2,
  plWeight: 2,
  plInterval: 2,
  styleMixingProb: 0.5,
};

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
      recipe: RECIPE,
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

gpuTest(
  `leak test: a cocktail merge (${MERGE_STEPS} tiny16 iterations per stage, R1 and path length) keeps live ` +
    "buffers, bytes and the pipeline cache flat",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "leak_merge_" });
    const rt = gpu();
    const arch = tinyStyleGAN2({ resolution: RES, imgChannels: 3 });
    const paths: string[] = [];
    for (const [i, name] of ["a", "b"].entries()) {
      manualSeed(40 + i);
      const G = Generator.fromConfig(arch), D = Discriminator.fromConfig(arch);
      paths.push(`${dir}/${name}.safetensors`);
      await saveSnapshot(paths[i], { G, D, Gema: G }, untrainedState(40 + i));
      G.dispose();
      D.dispose();
    }
    await rt.sync();
    const before = rt.liveBuffers;
    const sources = await openSources(paths);
    const pipelines = () => (rt as unknown as { pipelines: Map<string, unknown> }).pipelines.size;
    const samples = new Map<string, number[][]>();
    const r = await mergeSources({
      sources,
      method: "cocktail",
      outDir: `${dir}/merge`,
      kimg: (MERGE_STEPS * BATCH) / 1000,
      root: 0,
      preset: "tiny16",
      recipe: RECIPE,
      seed: 3,
      observer: {
        start() {},
        step() {},
        end() {},
        tick: async (stage) => {
          await rt.sync();
          if (!samples.has(stage)) samples.set(stage, []);
          samples.get(stage)!.push([rt.liveBuffers, rt.liveBytes, rt.createdBuffers, pipelines()]);
        },
      },
    });
    disposeNetworks(r);
    for (const s of sources) s.dispose();
    await rt.sync();
    await Deno.remove(dir, { recursive: true });
    const merge = samples.get("merge") ?? [];
    if (merge.length !== MERGE_STEPS / STEPS_PER_TICK) {
      throw new Error(`merge stage: ${merge.length} ticks, expected ${MERGE_STEPS / STEPS_PER_TICK}`);
    }
    // Each stage's first tick allocates its optimiser state and compiles its kernels; then nothing grows.
    for (const [stage, ticks] of samples) {
      console.log(
        `${stage}: [live buffers, bytes, created buffers, pipelines] per tick ${JSON.stringify(ticks)}`,
      );
      const flat = ticks.slice(1).map(([live, bytes, _created, pipes]) => [live, bytes, pipes].join());
      if (flat.length < 1 || flat.some((t) => t !== flat[0])) {
        throw new Error(
          `${stage}: [live buffers, bytes, pipelines] per tick changed: ${JSON.stringify(ticks)}`,
        );
      }
    }
    if (rt.liveBuffers !== before) {
      throw new Error(
        `the merge left ${rt.liveBuffers - before} live buffers (${before} -> ${rt.liveBuffers})`,
      );
    }
  },
);
