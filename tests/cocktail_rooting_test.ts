// A tiny rooting run moves toward its source: the root is a random 8x8 StyleGAN2, the other source draws
// constructed images (bright top half); the converted root's class 1 starts as the root's images (class
// fidelity near 0) and its fidelity rises over a few dozen steps of rooting on source 1 alone.

import { Generator as Rng, manualSeed, randn } from "../nn/creation.ts";
import { add, clamp, mul } from "../nn/ops.ts";
import { fromHost, scope, type Tensor } from "../nn/tensor.ts";
import { tinyStyleGAN2 } from "./tiny_stylegan2.ts";
import { Discriminator } from "../gan/stylegan2/discriminator.ts";
import { Generator } from "../gan/stylegan2/generator.ts";
import { trainingRecipe } from "../gan/train/presets.ts";
import { saveSnapshot, untrainedState } from "../gan/train/snapshot.ts";
import { classFidelity, trainSourceClassifier } from "../metrics/class_fidelity.ts";
import { conditionalRoot, rootModels } from "../gan/cocktail/rooting.ts";
import { type ImageSource, openSource, sampleAt } from "../gan/cocktail/sources.ts";
import { disposeNetworks } from "../gan/cocktail/stage.ts";
import { gpuTest } from "./harness.ts";

const SIDE = 8;

/** A constructed source: bright top half (+0.8), dark bottom half (-0.8), noise of std 0.2. */
function topHalfSource(): ImageSource {
  const mask = Float32Array.from({ length: SIDE * SIDE }, (_, i) => (i < SIDE * SIDE / 2 ? 1 : 0));
  return {
    name: "top-half",
    path: "(constructed)",
    kind: "dcgan",
    resolution: SIDE,
    channels: 1,
    classLabel: null,
    sample: (n: number, gen?: Rng): Tensor =>
      scope(() => {
        const m = fromHost(mask, [1, 1, SIDE, SIDE], "f32");
        const noise = mul(randn([n, 1, SIDE, SIDE], { generator: gen }), 0.2);
        return clamp(add(add(mul(m, 1.6), -0.8), noise), -1, 1);
      }),
    describe: () => ({ kind: "constructed" }),
    dispose() {},
  };
}

gpuTest(
  "cocktail rooting: the rooted model's class fidelity on its source rises over a few steps",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "cocktail_rooting_" });
    const arch = tinyStyleGAN2({ resolution: SIDE });
    manualSeed(41);
    const G = Generator.fromConfig(arch), D = Discriminator.fromConfig(arch);
    await saveSnapshot(`${dir}/root.safetensors`, { G, D, Gema: G }, untrainedState(41));
    G.dispose();
    D.dispose();
    const root = await openSource(`${dir}/root.safetensors`);
    const sources = [root, topHalfSource()];
    const draw = (c: number, n: number, gen: Rng) => sampleAt(sources[c], n, SIDE, 1, gen);
    const { classifier, ceiling } = await trainSourceClassifier(draw, {
      numClasses: 2,
      channels: 1,
      steps: 30,
      batch: 16,
      lr: 5e-3,
      seed: 2,
      heldOutPerClass: 32,
    });
    const fidelityOfClass1 = async (Gc: Generator) =>
      (await classFidelity(
        classifier,
        (c, n, gen) => Gc.sample(n, c, { truncationPsi: 1, noiseMode: "random", generator: gen }),
        64,
        new Rng(3),
      ))[1];
    try {
      if (!(ceiling > 0.95)) {
        throw new Error(
          `the classifier should tell the sources apart, ceiling ${ceiling}`,
        );
      }
      const start = await conditionalRoot(root, 2, 5, 0);
      const before = await fidelityOfClass1(start.Gema);
      disposeNetworks(start);
      // 60 steps of batch 8 on source 1 only; a short EMA so that G_ema follows G within the run.
      const recipe = trainingRecipe("tiny16", {
        batch: 8,
        lr: 0.01,
        emaKimg: 0.01,
        tickKimg: 0.24,
        snapshotTicks: 1,
      });
      const rooted = await rootModels({
        sources,
        root: 0,
        outDir: dir,
        kimg: 0.48,
        settings: { preset: "tiny16", recipe, seed: 5, resume: false, gridSize: 0 },
      });
      const r = rooted.get(1)!;
      const after = await fidelityOfClass1(r.Gema);
      disposeNetworks(r);
      if (!(before < 0.2)) {
        throw new Error(
          `the converted root's class 1 should look like the root, fidelity ${before}`,
        );
      }
      if (!(after > before + 0.5)) {
        throw new Error(`rooting should move class 1 toward its source: fidelity ${before} -> ${after}`);
      }
    } finally {
      classifier.dispose();
      root.dispose();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
