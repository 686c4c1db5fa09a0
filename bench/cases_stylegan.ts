// Benchmark cases for the StyleGAN2 operators (nn level: upfirdn2d, biasAct, modulatedConv2d,
// minibatchStd) and for one whole training iteration of the small StyleGAN2 configurations, with
// PyTorch-CPU peers from bench/peers/stylegan_ref.py (the golden script's independent networks).
//
// The nn ops take Tensors, so each case makes its own input tensors from the very numbers the harness
// uploads (caseInput) and hands the harness the output of a setup run as the result to compare.

import { presetConfig, type StyleGAN2Config } from "../gan/stylegan2/config.ts";
import { Discriminator } from "../gan/stylegan2/discriminator.ts";
import { Generator } from "../gan/stylegan2/generator.ts";
import { BatchSource } from "../gan/train/batches.ts";
import { discriminatorLoss, generatorLoss, lazyRegAdam } from "../gan/train/loss.ts";
import { trainingRecipe } from "../gan/train/presets.ts";
import { sgaIteration } from "../gan/train/step.ts";
import { gpu } from "../kernels/runtime.ts";
import { grad, noGrad } from "../nn/autograd.ts";
import { biasAct } from "../nn/bias_act.ts";
import { manualSeed, randn } from "../nn/creation.ts";
import { minibatchStd } from "../nn/mbstd.ts";
import { modulatedConv2d } from "../nn/modulated_conv.ts";
import { Adam } from "../nn/optim.ts";
import { fromHost, scope, type Tensor } from "../nn/tensor.ts";
import { tensor } from "../nn/creation.ts";
import { setupFilter, upfirdn2d } from "../nn/upfirdn2d.ts";
import { type Case, caseInput, numel, type OursRun, torchPeer } from "./harness.ts";

/** torch_cpu.py runs from bench/peers, so the peer module imports by name. */
const REF = `__import__("stylegan_ref")`;
const refPeer = (call: string) => ({ "torch": torchPeer(`(lambda m: ${call})(${REF})`) });

/**
 * Our side of an nn-level case: input tensors from the case's inputs, one setup run whose result is the
 * compared output, then runs that each record the op and free its result.
 */
function tensorRun(c: Omit<Case, "ours">, op: (xs: Tensor[]) => Tensor): Case {
  const full: Case = {
    ...c,
    ours: () => {
      const xs = c.inputs.map((shape, i) => fromHost(caseInput(full, i), shape, "f32"));
      const first = op(xs);
      if (numel(first.shape) !== numel(c.output)) {
        throw new Error(`${c.name}: the op gave [${first.shape}], the case expects [${c.output}]`);
      }
      const run: OursRun = {
        run: () => scope(() => void op(xs)),
        output: first.buffer,
        dispose: () => {
          first.dispose();
          for (const x of xs) x.dispose();
        },
      };
      return run;
    },
  };
  return full;
}

const N = 8, C = 128;
let sgaFilter: Tensor | null = null;
/** SGA's [1,3,3,1] resample filter, made on first use (the GPU is not up when this module loads; the first
 * use is a setup run outside any scope) and kept for the process, like a layer's buffer. */
const filter = (): Tensor => sgaFilter ??= setupFilter([1, 3, 3, 1]);
/** Bytes an elementwise-like op must at least move: every input read once, the output written once. */
const bytes = (...shapes: number[][]) => 4 * shapes.reduce((s, sh) => s + numel(sh), 0);

function upfirdnCases(): Case[] {
  const x = [N, C, 32, 32], up = [N, C, 64, 64], down = [N, C, 16, 16];
  return [
    tensorRun({
      name: `upfirdn2d up2 [1,3,3,1] b${N} c${C} 32x32`,
      group: "stylegan",
      unit: "GB/s",
      work: bytes(x, up),
      inputs: [x],
      output: up,
      peers: refPeer("lambda x: m.up2(x)"),
    }, ([t]) => upfirdn2d(t, filter(), { up: 2, padding: [2, 1, 2, 1], gain: 4 })),
    tensorRun({
      name: `upfirdn2d down2 [1,3,3,1] b${N} c${C} 32x32`,
      group: "stylegan",
      unit: "GB/s",
      work: bytes(x, down),
      inputs: [x],
      output: down,
      peers: refPeer("lambda x: m.down2(x)"),
    }, ([t]) => upfirdn2d(t, filter(), { down: 2, padding: 1 })),
  ];
}

function biasActCase(): Case {
  const x = [N, C, 32, 32];
  // Clamp 1 (SGA uses 256): inputs in [-1, 1) would never reach 256, and the check should cover the clamp.
  return tensorRun({
    name: `biasAct lrelu clamp b${N} c${C} 32x32`,
    group: "stylegan",
    unit: "GB/s",
    work: bytes(x, [C], x),
    inputs: [x, [C]],
    output: x,
    peers: refPeer("lambda x, b: m.bias_act(x, b, 1.0)"),
  }, ([t, b]) => biasAct(t, b, { act: "lrelu", clamp: 1 }));
}

/** Modulated 3x3 conv, 128 -> 128 at 16x16 (up = 2: to 32x32); FLOPs of a direct 3x3 conv at the output size. */
function modConvCase(up: 1 | 2, fused: boolean): Case {
  const h = 16, out = h * up;
  return tensorRun(
    {
      name: `modulatedConv2d 3x3${up > 1 ? " up2" : ""} ${
        fused ? "fused" : "non-fused"
      } b${N} c${C} ${h}x${h}`,
      group: "stylegan",
      unit: "GFLOP/s",
      work: 2 * N * C * C * 9 * out * out,
      inputs: [[N, C, h, h], [C, C, 3, 3], [N, C]],
      output: [N, C, out, out],
      peers: refPeer(`lambda x, w, s: m.mod_conv(x, w, s, up=${up}, fused=${fused ? "True" : "False"})`),
    },
    ([x, w, s]) =>
      modulatedConv2d(x, w, s, { padding: 1, up, resampleFilter: filter(), flipWeight: up === 1, fused }),
  );
}

function mbstdCase(): Case {
  return tensorRun({
    name: "minibatchStd b8 c256 4x4",
    group: "stylegan",
    unit: "us",
    work: 1,
    inputs: [[8, 256, 4, 4]],
    output: [8, 257, 4, 4],
    peers: refPeer("lambda x: m.mbstd(x, 4, 1)"),
  }, ([x]) => minibatchStd(x, { groupSize: 4, numChannels: 1 }));
}

/**
 * One training iteration (G step, then D step, each one Adam update; SGA's non-saturating logistic losses,
 * no R1/path-length/EMA, constant noise) of G and D from `cfg` on a batch of `batch` real images.
 * Unit "us" per iteration: the harness has no img/s unit (img/s = batch / seconds).
 *
 * The harness compares outputs whenever both sides give one and has no switch to skip it; this case's
 * output is a constant zero on both sides, so its err column is a placeholder, not a check.
 */
function trainCase(label: string, cfg: StyleGAN2Config, batch: number): Case {
  const res = cfg.resolution;
  const c: Case = {
    name: `stylegan2 train iter ${label} ${res}x${res} b${batch}`,
    group: "stylegan-train",
    unit: "us",
    work: 1,
    inputs: [[batch, 3, res, res]],
    output: [1],
    ours: (_inputs, out) => {
      const rt = gpu();
      rt.upload(out, new Float32Array(1));
      manualSeed(0);
      const G = Generator.fromConfig(cfg), D = Discriminator.fromConfig(cfg);
      const gParams = G.parameters(), dParams = D.parameters();
      const adam = { lr: 0.0025, betas: [0, 0.99] as [number, number], eps: 1e-8 };
      const optG = new Adam(gParams, adam), optD = new Adam(dParams, adam);
      const real = fromHost(caseInput(c, 0), [batch, 3, res, res], "f32");
      const requireGrad = (ps: Tensor[], on: boolean) => ps.forEach((p) => p.requiresGrad = on);
      const synth = (z: Tensor) => G.forward(z, null, { noiseMode: "const" });
      return {
        run: () => {
          scope(() => {
            requireGrad(dParams, false);
            requireGrad(gParams, true);
            const gLoss = generatorLoss(D.forward(synth(randn([batch, cfg.zDim])), null));
            optG.update(grad(gLoss, gParams));
            requireGrad(gParams, false);
            requireGrad(dParams, true);
            const fake = noGrad(() => synth(randn([batch, cfg.zDim])));
            const dLoss = discriminatorLoss(D.forward(fake, null), D.forward(real, null));
            optD.update(grad(dLoss, dParams));
            requireGrad(gParams, true);
          });
          rt.flush();
        },
        dispose: () => {
          real.dispose();
          for (const t of [...optG.m, ...optG.v, ...optD.m, ...optD.v]) t.dispose();
          G.dispose();
          D.dispose();
        },
      };
    },
    peers: refPeer(
      `m.training_step(${res}, ${cfg.channelBase}, cmax=${cfg.channelMax}, batch=${batch}, ` +
        `z_dim=${cfg.zDim}, w_dim=${cfg.wDim})`,
    ),
  };
  return c;
}

/**
 * One iteration of the training loop's SGA recipe (gan/train/step.ts: Gmain, Greg path length, Dmain,
 * Dreg R1, G EMA) on preset `name` at batch `batch`, run as iteration 0 every time so that both lazy
 * regularisers fire in each run: the heaviest iteration of training, the one whose dispatch count the
 * fusion work is measured by. No peer (stylegan_ref.py has no regularisers).
 */
function sgaIterCase(name: string, batch: number): Case {
  const cfg = presetConfig(name);
  const res = cfg.resolution;
  const c: Case = {
    name: `stylegan2 SGA iter +R1+PL ${name} ${res}x${res} b${batch}`,
    group: "stylegan-train",
    unit: "us",
    work: 1,
    inputs: [[batch, 3, res, res]],
    output: [1],
    ours: (_inputs, out) => {
      gpu().upload(out, new Float32Array(1));
      manualSeed(0);
      const recipe = trainingRecipe(name, { batch });
      const G = Generator.fromConfig(cfg),
        D = Discriminator.fromConfig(cfg),
        Gema = Generator.fromConfig(cfg);
      const gParams = G.parameters(), dParams = D.parameters();
      const adamG = lazyRegAdam(recipe.gLr, recipe.betas, recipe.plInterval);
      const adamD = lazyRegAdam(recipe.dLr, recipe.betas, recipe.r1Interval);
      const optG = new Adam(gParams, { ...adamG, eps: recipe.eps });
      const optD = new Adam(dParams, { ...adamD, eps: recipe.eps });
      const real = fromHost(caseInput(c, 0), [batch, 3, res, res], "f32");
      const plMean = tensor([0]);
      const batches = new BatchSource({
        realBatch: () => ({ images: real, labels: null }),
        batch,
        seed: 0,
        resolution: res,
        channels: 3,
        cDim: cfg.cDim,
      });
      const parts = { G, D, Gema, optG, optD, gParams, dParams, recipe, plMean, seed: 0, batches };
      return {
        run: () => {
          scope(() => void sgaIteration(parts, 0, 0));
          gpu().flush();
        },
        dispose: () => {
          real.dispose();
          plMean.dispose();
          for (const t of [...optG.m, ...optG.v, ...optD.m, ...optD.v]) t.dispose();
          G.dispose();
          D.dispose();
          Gema.dispose();
        },
      };
    },
  };
  return c;
}

export const STYLEGAN_CASES: Case[] = [
  ...upfirdnCases(),
  biasActCase(),
  modConvCase(1, true),
  modConvCase(1, false),
  modConvCase(2, true),
  modConvCase(2, false),
  mbstdCase(),
  trainCase("tiny32", presetConfig("tiny32"), 8),
  sgaIterCase("tiny16", 8),
  sgaIterCase("tiny32", 8),
  // tiny32's channel counts one octave up: 64/64/64/32/16 at 4..64.
  trainCase("tiny64", presetConfig("tiny32", { resolution: 64, channelBase: 1024 }), 8),
  // REFERENCE's 256x256 StyleGAN2 (channels 512 up to 64x64, 256 at 128, 128 at 256): GPU-sized.
  { ...trainCase("paper256", presetConfig("paper256"), 8), heavy: true },
];
