// StyleGAN2 networks against the golden data of tests/golden/make_stylegan2_golden.py (an independent
// float64 PyTorch implementation with SGA's state-dict names): names and shapes, mapping and truncation,
// images, logits, first-order gradients, and second-order ones (R1, path length).

import { grad } from "../nn/autograd.ts";
import { loadNpz } from "../nn/checkpoint.ts";
import { manualSeed, randn, tensor } from "../nn/creation.ts";
import { mul, neg, softplus, sqrt, square, sub } from "../nn/ops.ts";
import { mean, sum } from "../nn/reduce.ts";
import { scope, type Tensor } from "../nn/tensor.ts";
import { gpu } from "../kernels/runtime.ts";
import { Discriminator } from "../gan/stylegan2/discriminator.ts";
import { Generator } from "../gan/stylegan2/generator.ts";
import { generatorInitKwargs, presetConfig, PRESETS } from "../gan/stylegan2/config.ts";
import { gpuTest } from "./harness.ts";

const DIR = new URL("./golden/stylegan2/", import.meta.url).pathname;

interface Golden {
  config: {
    G_init_kwargs: Record<string, unknown>;
    D_init_kwargs: Record<string, unknown>;
    variants: Record<string, { init_kwargs: Record<string, unknown>; state: Record<string, number[]> }>;
  };
  gState: Map<string, Tensor>;
  dState: Map<string, Tensor>;
  io: Map<string, Tensor>;
}

let cached: Golden | null = null;
async function golden(): Promise<Golden> {
  if (!cached) {
    cached = {
      config: JSON.parse(await Deno.readTextFile(DIR + "config.json")),
      gState: await loadNpz(DIR + "G.npz"),
      dState: await loadNpz(DIR + "D.npz"),
      io: await loadNpz(DIR + "io.npz"),
    };
  }
  return cached;
}

async function networks(): Promise<{ g: Golden; G: Generator; D: Discriminator }> {
  const g = await golden();
  const G = Generator.fromInitKwargs(g.config.G_init_kwargs);
  const D = Discriminator.fromInitKwargs(g.config.D_init_kwargs);
  G.loadStateDict(g.gState, { strict: true });
  D.loadStateDict(g.dState, { strict: true });
  return { g, G, D };
}

function io(g: Golden, key: string): Tensor {
  const t = g.io.get(key);
  if (!t) throw new Error(`golden io.npz has no entry ${key}`);
  return t;
}

/**
 * max |a - b| <= rtol * max(max |b|, floor), shapes equal. `floor` is for gradients of a loss that are
 * structurally near zero (R1 w.r.t. biases of a piecewise-linear D): their error is measured against
 * the scale of the whole gradient instead.
 */
async function assertNear(
  actual: Tensor,
  expected: Tensor,
  what: string,
  rtol = 1e-4,
  floor = 0,
): Promise<number> {
  if (actual.shape.join() !== expected.shape.join()) {
    throw new Error(`${what}: shape [${actual.shape}] != expected [${expected.shape}]`);
  }
  const a = await actual.data(), b = await expected.data();
  let err = 0, scale = 0;
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i])) throw new Error(`${what}[${i}] is ${a[i]}`);
    err = Math.max(err, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  scale = Math.max(scale, floor);
  const rel = err / Math.max(scale, 1e-30);
  if (!(err <= rtol * scale + 1e-12)) {
    throw new Error(
      `${what}: max error ${err.toExponential(3)} vs scale ${scale.toExponential(3)} (rel ${
        rel.toExponential(3)
      } > ${rtol})`,
    );
  }
  return rel;
}

/** `frac` of the largest |value| among the golden entries with this prefix (a gradient's overall scale). */
async function gradFloor(g: Golden, prefix: string, frac = 1e-3): Promise<number> {
  let m = 0;
  for (const [k, t] of g.io) {
    if (k.startsWith(prefix)) { for (const v of await t.data()) m = Math.max(m, Math.abs(v)); }
  }
  return frac * m;
}

function namesShapes(m: { stateDict(): Map<string, Tensor> }): Record<string, string> {
  return Object.fromEntries([...m.stateDict()].map(([k, t]) => [k, t.shape.join("x")]));
}

function assertSameNames(
  actual: Record<string, string>,
  expected: Record<string, string>,
  what: string,
): void {
  const missing = Object.keys(expected).filter((k) => !(k in actual));
  const extra = Object.keys(actual).filter((k) => !(k in expected));
  const bad = Object.keys(expected).filter((k) => k in actual && actual[k] !== expected[k]);
  if (missing.length || extra.length || bad.length) {
    throw new Error(
      `${what}: missing [${missing}] unexpected [${extra}] shape mismatch [${
        bad.map((k) => `${k}: ${actual[k]} vs ${expected[k]}`)
      }]`,
    );
  }
}

gpuTest(
  "stylegan2: state-dict names and shapes equal SGA's (golden and variants), init kwargs round-trip",
  async () => {
    const g = await golden();
    manualSeed(0);
    const G = Generator.fromInitKwargs(g.config.G_init_kwargs);
    const D = Discriminator.fromInitKwargs(g.config.D_init_kwargs);
    const shapes = (m: Map<string, Tensor>) =>
      Object.fromEntries([...m].map(([k, t]) => [k, t.shape.join("x")]));
    assertSameNames(namesShapes(G), shapes(g.gState), "G");
    assertSameNames(namesShapes(D), shapes(g.dState), "D");
    // Parameters vs buffers as in SGA: filters, noise_const and w_avg are buffers.
    const gBuffers = G.namedBuffers().map(([k]) => k);
    if (!gBuffers.every((k) => /resample_filter$|noise_const$|w_avg$/.test(k))) {
      throw new Error(
        `G buffers: ${gBuffers}`,
      );
    }
    if (D.namedBuffers().some(([k]) => !k.endsWith("resample_filter"))) {
      throw new Error(
        "D has unexpected buffers",
      );
    }
    for (const [name, v] of Object.entries(g.config.variants)) {
      const m = name.startsWith("G")
        ? Generator.fromInitKwargs(v.init_kwargs)
        : Discriminator.fromInitKwargs(v.init_kwargs);
      const want = Object.fromEntries(Object.entries(v.state).map(([k, s]) => [k, s.join("x")]));
      assertSameNames(namesShapes(m), want, name);
      m.dispose();
    }
    // initKwargs -> fromInitKwargs rebuilds the same architecture.
    assertSameNames(
      namesShapes(Generator.fromInitKwargs({ ...G.initKwargs() })),
      namesShapes(G),
      "G round trip",
    );
    assertSameNames(
      namesShapes(Discriminator.fromInitKwargs({ ...D.initKwargs() })),
      namesShapes(D),
      "D round trip",
    );
    if (JSON.stringify(G.initKwargs()) !== JSON.stringify(g.config.G_init_kwargs)) {
      throw new Error(
        `G.initKwargs() ${JSON.stringify(G.initKwargs())} != ${JSON.stringify(g.config.G_init_kwargs)}`,
      );
    }
    if (G.numWs !== 6 || G.zDim !== 16 || G.cDim !== 3 || G.imgResolution !== 16) {
      throw new Error(
        "G attributes",
      );
    }
    // Unknown arguments are refused rather than silently ignored.
    let threw = false;
    try {
      Generator.fromInitKwargs({ ...g.config.G_init_kwargs, mystery: 1 });
    } catch (e) {
      threw = /mystery/.test((e as Error).message);
    }
    if (!threw) throw new Error("an unknown init kwarg was accepted");
    G.dispose();
    D.dispose();
  },
);

gpuTest(
  "stylegan2: mapping, truncation, w_avg tracking, images (fused and not) and logits match",
  async () => {
    const { g, G, D } = await networks();
    const z = io(g, "z"), c = io(g, "c");
    await assertNear(G.mapping.forward(z, c), io(g, "ws"), "ws");
    await assertNear(
      G.mapping.forward(z, c, { truncationPsi: 0.7, truncationCutoff: 3 }),
      io(g, "ws_trunc"),
      "ws_trunc",
    );
    await assertNear(G.mapping.forward(z, c, { truncationPsi: 0.5 }), io(g, "ws_trunc_all"), "ws_trunc_all");
    const wAvg = G.mapping.wAvg;
    G.mapping.forward(z, c, { updateEmas: true });
    if (G.mapping.wAvg !== wAvg) throw new Error("w_avg was replaced instead of updated in place");
    await assertNear(G.mapping.wAvg, io(g, "w_avg_updated"), "w_avg after update");
    G.loadStateDict(g.gState);

    const ws = io(g, "ws");
    for (const fused of [true, false]) {
      await assertNear(
        G.synthesis.forward(ws, { noiseMode: "const", fused }),
        io(g, "img"),
        `img (fused ${fused})`,
      );
    }
    await assertNear(G.forward(z, c, { noiseMode: "const" }), io(g, "img"), "G(z, c)");
    await assertNear(D.forward(io(g, "img"), c), io(g, "logits_fake"), "D(fake)");
    await assertNear(D.forward(io(g, "x_real"), c), io(g, "logits_real"), "D(real)");
    G.dispose();
    D.dispose();
  },
);

gpuTest("stylegan2: gradients of the G and D losses match", async () => {
  const { g, G, D } = await networks();
  const z = io(g, "z"), c = io(g, "c");
  const gParams = G.namedParameters();
  let worst = 0;
  const gFloor = await gradFloor(g, "gG/");
  for (const fused of [false, true]) {
    const lossG = sum(softplus(neg(D.forward(G.forward(z, c, { noiseMode: "const", fused }), c))));
    await assertNear(lossG, io(g, "loss_g"), "loss_g");
    const gg = grad(lossG, gParams.map(([, t]) => t));
    for (let i = 0; i < gParams.length; i++) {
      const name = gParams[i][0];
      worst = Math.max(
        worst,
        await assertNear(gg[i], io(g, `gG/${name}`), `dLossG/d${name} (fused ${fused})`, 1e-4, gFloor),
      );
    }
  }
  const fake = io(g, "img");
  const lossD = sum(softplus(D.forward(fake, c)));
  const lossD2 = sum(softplus(neg(D.forward(io(g, "x_real"), c))));
  const dNames = [...g.io.keys()].filter((k) => k.startsWith("gD/")).map((k) => k.slice(3));
  const dParams = new Map(D.namedParameters());
  const gd = grad([lossD, lossD2], dNames.map((k) => dParams.get(k)!));
  const dFloor = await gradFloor(g, "gD/");
  for (let i = 0; i < dNames.length; i++) {
    worst = Math.max(
      worst,
      await assertNear(gd[i], io(g, `gD/${dNames[i]}`), `dLossD/d${dNames[i]}`, 1e-4, dFloor),
    );
  }
  console.log(
    `  worst gradient error relative to max(tensor scale, 1e-3 gradient scale), first order: ${
      worst.toExponential(2)
    }`,
  );
  G.dispose();
  D.dispose();
});

gpuTest("stylegan2: R1 and path-length penalties and their (second-order) gradients match", async () => {
  const { g, G, D } = await networks();
  const c = io(g, "c");
  // R1 = sum over batch and CHW of (d sum D(x) / dx)^2.
  const x = io(g, "x_real");
  x.requiresGrad = true;
  const [gx] = grad(sum(D.forward(x, c)), [x], { createGraph: true });
  await assertNear(gx, io(g, "r1_grad_x"), "dD/dx");
  const r1 = sum(square(gx));
  await assertNear(r1, io(g, "r1"), "r1");
  const dParams = D.namedParameters();
  const gr = grad(r1, dParams.map(([, t]) => t));
  let worst = 0;
  // R1 w.r.t. biases flows only through mbstd's curvature (D is otherwise piecewise linear): those entries
  // are ~1e-3 of the gradient's scale and cancel heavily; PyTorch itself in float32 misses them by ~6e-4
  // of their own size (1.4e-6 of the gradient's scale). So they are judged against 5% of that scale.
  const r1Floor = await gradFloor(g, "gR1/", 5e-2);
  for (let i = 0; i < dParams.length; i++) {
    const name = dParams[i][0];
    worst = Math.max(worst, await assertNear(gr[i], io(g, `gR1/${name}`), `dR1/d${name}`, 1e-4, r1Floor));
  }
  x.requiresGrad = false;

  // Path length: g = d sum(img * y) / d ws; L = sqrt(mean_ws sum_w g^2); penalty = sum (L - 0.5)^2.
  const ws = G.mapping.forward(io(g, "z"), c);
  const img = G.synthesis.forward(ws, { noiseMode: "const", fused: false });
  const [gw] = grad(sum(mul(img, io(g, "pl_y"))), [ws], { createGraph: true });
  const lengths = sqrt(mean(sum(square(gw), 2), 1));
  await assertNear(lengths, io(g, "pl_lengths"), "path lengths");
  const pl = sum(square(sub(lengths, 0.5)));
  await assertNear(pl, io(g, "pl"), "pl");
  const names = [...g.io.keys()].filter((k) => k.startsWith("gPL/")).map((k) => k.slice(4));
  const gParams = new Map(G.namedParameters());
  const gp = grad(pl, names.map((k) => gParams.get(k)!));
  const plFloor = await gradFloor(g, "gPL/");
  for (let i = 0; i < names.length; i++) {
    worst = Math.max(
      worst,
      await assertNear(gp[i], io(g, `gPL/${names[i]}`), `dPL/d${names[i]}`, 1e-4, plFloor),
    );
  }
  console.log(
    `  worst gradient error relative to max(tensor scale, 5e-2 (R1) / 1e-3 (PL) gradient scale), second order: ${
      worst.toExponential(2)
    }`,
  );
  G.dispose();
  D.dispose();
});

gpuTest("stylegan2: noise modes, sample(), presets and Freeze-D", async () => {
  const { g, G, D } = await networks();
  const z = io(g, "z"), c = io(g, "c");
  const a = await G.forward(z, c, { noiseMode: "none" }).data();
  const b = await G.forward(z, c, { noiseMode: "random" }).data();
  const b2 = await G.forward(z, c, { noiseMode: "random" }).data();
  if (a.every((v, i) => v === b[i]) || b.every((v, i) => v === b2[i])) {
    throw new Error("random noise had no effect");
  }

  const imgs = G.sample(5, [0, 1, 2, 2, 1], { batchSize: 2, truncationPsi: 0.8 });
  if (imgs.shape.join() !== "5,3,16,16") throw new Error(`sample shape [${imgs.shape}]`);
  const px = await imgs.data();
  if (px.some((v) => !(v >= -1 && v <= 1))) throw new Error("sample() left [-1, 1]");
  if (imgs.requiresGrad) throw new Error("sample() kept a graph");
  let threw = 0;
  for (const bad of [() => G.sample(2, null), () => G.sample(2, [0, 3]), () => G.sample(2, [0])]) {
    try {
      bad();
    } catch {
      threw++;
    }
  }
  if (threw !== 3) throw new Error("bad class labels were accepted");

  // Presets build consistent architectures (the SGA ones are only checked as kwargs: too big to allocate here).
  for (const name of Object.keys(PRESETS)) {
    const cfg = presetConfig(name);
    const kw = generatorInitKwargs(cfg);
    if (kw.img_resolution !== cfg.resolution) throw new Error(name);
  }
  const small = { channelBase: 128, channelMax: 16, zDim: 16, wDim: 16 }; // tiny16, narrower: fast here
  const unc = presetConfig("tiny16", small);
  const Gu = Generator.fromConfig(unc), Du = Discriminator.fromConfig(unc);
  if (Du.forward(Gu.sample(2)).shape.join() !== "2,1") throw new Error("unconditional D output shape");
  if (Gu.mapping.embed || Du.mapping) throw new Error("unconditional networks must not embed c");
  // A training-like step (G loss, D loss with R1, w_avg tracking) inside scope() leaves no live buffers.
  const live: number[] = [];
  for (let step = 0; step < 3; step++) {
    scope(() => {
      const fake = Gu.forward(randn([4, unc.zDim]), null, { updateEmas: true });
      grad(sum(softplus(neg(Du.forward(fake, null)))), Gu.parameters());
      const x = randn([4, 3, 16, 16]);
      x.requiresGrad = true;
      const [gx] = grad(sum(Du.forward(x, null)), [x], { createGraph: true });
      grad(sum(square(gx)), Du.parameters());
    });
    await gpu().sync();
    live.push(gpu().liveBuffers);
  }
  if (live[1] !== live[0] || live[2] !== live[0]) throw new Error(`live buffers grew across steps: ${live}`);
  Gu.dispose();
  Du.dispose();
  const tiny = presetConfig("tiny16", { ...small, cDim: 2 });
  const Gt = Generator.fromConfig(tiny), Dt = Discriminator.fromConfig(tiny, { freezeLayers: 2 });
  const out = Dt.forward(Gt.sample(4, [0, 1, 0, 1]), tensor([[1, 0], [0, 1], [1, 0], [0, 1]]));
  if (out.shape.join() !== "4,1") throw new Error(`D output [${out.shape}]`);
  // Freeze-D: the first two layers (b16.fromrgb, b16.conv0) hold their weights as buffers, names unchanged.
  const frozen = Dt.namedBuffers().map(([k]) => k).filter((k) => !k.endsWith("resample_filter")).sort();
  const want = ["b16.conv0.bias", "b16.conv0.weight", "b16.fromrgb.bias", "b16.fromrgb.weight"];
  if (frozen.join() !== want.join()) throw new Error(`frozen: ${frozen}`);
  if (Dt.freezeOrder().slice(0, 5).join() !== "b16.fromrgb,b16.conv0,b16.conv1,b16.skip,b8.conv0") {
    throw new Error(`freeze order ${Dt.freezeOrder()}`);
  }
  for (const m of [G, D, Gt, Dt]) m.dispose();
});
