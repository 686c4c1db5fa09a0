// Applications of the shared latent space (gan/edit): the linear SVM against an independent float64
// solver (tests/golden/make_svm_golden.py) and its optimality conditions; interpolation, style mixing
// and the semantic direction on a tiny generator, checked against the generator's own samples.

import { classifierLogit, inkMass, meanBrightness } from "../gan/edit/attributes.ts";
import { learnDirection, spearman, walkDirection, walkMeasures } from "../gan/edit/direction.ts";
import { interpolateClasses } from "../gan/edit/interpolate.ts";
import { classWs, latentsFromSeeds, meanAbsDiff } from "../gan/edit/latents.ts";
import { mixWs, styleMix, wsResolutions } from "../gan/edit/mix.ts";
import { fitLinearSvm, kktViolation, svmDecision, unitNormal } from "../gan/edit/svm.ts";
import { tinyStyleGAN2 } from "./tiny_stylegan2.ts";
import { Generator } from "../gan/stylegan2/generator.ts";
import { Discriminator } from "../gan/stylegan2/discriminator.ts";
import { saveSnapshot, untrainedState } from "../gan/train/snapshot.ts";
import { decodeImage, floatToUint8 } from "../data/image_io.ts";
import { interpolationStrip } from "../gan/cocktail/report.ts";
import { editCommand } from "../cli/edit.ts";
import { Generator as Rng, manualSeed, randn, tensor } from "../nn/creation.ts";
import { neg } from "../nn/ops.ts";
import { sum } from "../nn/reduce.ts";
import { concat, reshape } from "../nn/shape.ts";
import type { Tensor } from "../nn/tensor.ts";
import { assertClose, gpuTest } from "./harness.ts";

function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
}

interface SvmCase {
  name: string;
  n: number;
  d: number;
  C: number;
  x: number[];
  y: number[];
  w: number[];
  b: number;
  primal: number;
  separable: boolean;
}

const svmGolden = JSON.parse(
  await Deno.readTextFile(new URL("./golden/edit/svm.json", import.meta.url)),
) as { cases: SvmCase[] };

for (const c of svmGolden.cases) {
  Deno.test(`edit svm: dual coordinate descent matches the float64 reference (${c.name}, C=${c.C})`, () => {
    const x = Float64Array.from(c.x);
    const svm = fitLinearSvm(x, c.y, c.d, { C: c.C });
    assert(svm.converged, `${c.name}: not converged after ${svm.sweeps} sweeps`);
    assertClose(svm.w, c.w, { rtol: 1e-7, atol: 1e-8, what: `${c.name} w` });
    assertClose([svm.b], [c.b], { rtol: 1e-7, atol: 1e-8, what: `${c.name} b` });
    assertClose([svm.primal], [c.primal], { rtol: 1e-9, what: `${c.name} primal objective` });
    const gap = svm.primal - svm.dual;
    assert(gap >= -1e-9 && gap < 1e-8 * Math.max(1, svm.primal), `${c.name}: duality gap ${gap}`);
    const kkt = kktViolation(svm, x, c.y, c.d);
    assert(kkt < 1e-8, `${c.name}: KKT violation ${kkt}`);
    const f = svmDecision(svm, x, c.d);
    const wrong = c.y.filter((y, i) => y * f[i] <= 0).length;
    if (c.separable) assert(wrong === 0, `${c.name}: ${wrong} training points misclassified`);
    else assert(wrong > 0, `${c.name}: the overlapping case should misclassify some points`);
    assertClose([Math.hypot(...unitNormal(svm))], [1], { what: "unit normal length" });
  });
}

Deno.test("edit svm: a perturbed solution violates KKT; bad input is named", () => {
  const c = svmGolden.cases[1];
  const x = Float64Array.from(c.x);
  const svm = fitLinearSvm(x, c.y, c.d, { C: c.C });
  const off = { ...svm, w: svm.w.map((v, k) => v + (k === 0 ? 1e-3 : 0)) };
  assert(kktViolation(off, x, c.y, c.d) > 1e-4, "a moved w should break the KKT conditions");
  const threw = (f: () => unknown, re: RegExp) => {
    try {
      f();
    } catch (e) {
      assert(re.test((e as Error).message), `message '${(e as Error).message}' does not match ${re}`);
      return;
    }
    throw new Error(`expected an error matching ${re}`);
  };
  threw(() => fitLinearSvm(x, c.y.map(() => 1), c.d), /both labels/);
  threw(() => fitLinearSvm(x, c.y.map((v, i) => (i === 3 ? 0 : v)), c.d), /label 3 is 0/);
  threw(() => fitLinearSvm(x.slice(1), c.y, c.d), /expected/);
  threw(() => fitLinearSvm(x, c.y, c.d, { C: 0 }), /C must be > 0/);
});

// ---- the generator-side applications on a tiny conditional StyleGAN2 (random weights, 8x8, 3 classes) ----

const tinyArch = () => tinyStyleGAN2({ cDim: 3 });

function tinyG(seed: number): Generator {
  manualSeed(seed);
  return Generator.fromConfig(tinyArch());
}

/** The image `generate --seeds s --class k --noise-mode const` writes, as floats. */
async function sampleOf(G: Generator, seed: number, k: number): Promise<Float32Array> {
  const t = G.sample(1, k, { generator: new Rng(seed), noiseMode: "const" });
  try {
    return await t.data();
  } finally {
    t.dispose();
  }
}

gpuTest(
  "edit interpolate: both paths start at the class-A sample and end at the class-B sample",
  async () => {
    const G = tinyG(5);
    const seeds = [3, 11], steps = 5;
    const z = latentsFromSeeds(G, seeds);
    const r = await interpolateClasses(G, z, 0, 2, steps);
    try {
      const px = await r.images.data();
      const per = px.length / (2 * seeds.length * steps);
      assert(per === 64, `8x8 gray images expected, got ${per} values each`);
      const cell = (i: number, path: number, s: number) =>
        px.subarray(((2 * i + path) * steps + s) * per, ((2 * i + path) * steps + s + 1) * per);
      for (const [i, seed] of seeds.entries()) {
        const a = await sampleOf(G, seed, 0), b = await sampleOf(G, seed, 2);
        for (const path of [0, 1]) {
          assertClose(cell(i, path, 0), a, { atol: 1e-5, what: `seed ${seed} path ${path} start` });
          assertClose(cell(i, path, steps - 1), b, { atol: 1e-5, what: `seed ${seed} path ${path} end` });
        }
        // The paths differ inside (c is blended before the nonlinear mapping; w after it).
        let d = 0;
        for (let s = 1; s < steps - 1; s++) d += meanAbsDiff(cell(i, 0, s), cell(i, 1, s));
        assert(d > 1e-4, `seed ${seed}: the c and w paths should differ between the ends (${d})`);
      }
      assertClose(r.ts, [0, 0.25, 0.5, 0.75, 1], { what: "steps" });
      for (const m of [r.cSpace, r.wSpace]) {
        assert(m.stepChange.length === steps - 1 && m.stepChange.every((v) => v > 0), "one change per gap");
        assert(m.jumpRatio >= 1, `jump ratio ${m.jumpRatio}`);
      }
      // Triangle inequality: the walked steps are at least the endpoints' distance.
      let ends = 0;
      for (const seed of seeds) ends += meanAbsDiff(await sampleOf(G, seed, 0), await sampleOf(G, seed, 2));
      ends = (ends / seeds.length) * 127.5;
      const walked = r.wSpace.stepChange.reduce((x, y) => x + y, 0);
      assert(walked >= ends - 1e-3, `w path walks ${walked} < endpoint distance ${ends}`);
    } finally {
      r.images.dispose();
      z.dispose();
      G.dispose();
    }
  },
);

gpuTest(
  "edit mix: cutoff 0 gives the fine class, cutoff num_ws the coarse class; ws split at the cutoff",
  async () => {
    const G = tinyG(6);
    assert(G.numWs === 4, `tiny 8x8 generator has 4 ws, got ${G.numWs}`);
    assert(wsResolutions(G).join() === "4,8,8,8", `ws resolutions ${wsResolutions(G)}`);
    const coarseSeeds = [1, 2], fineSeeds = [7, 8, 9];
    const zc = latentsFromSeeds(G, coarseSeeds), zf = latentsFromSeeds(G, fineSeeds);
    try {
      const coarse = await Promise.all(coarseSeeds.map((s) => sampleOf(G, s, 1)));
      const fine = await Promise.all(fineSeeds.map((s) => sampleOf(G, s, 2)));
      for (const cutoff of [0, G.numWs, 2]) {
        const r = await styleMix(G, zc, 1, zf, 2, cutoff);
        try {
          assert(r.rows === 3 && r.cols === 4, `grid ${r.rows}x${r.cols}`);
          const px = await r.images.data();
          const cell = (row: number, col: number) =>
            px.subarray((row * 4 + col) * 64, (row * 4 + col + 1) * 64);
          assert(cell(0, 0).every((v) => v === -1), "the corner is blank (black)");
          for (const [j] of fineSeeds.entries()) {
            assertClose(cell(0, j + 1), fine[j], {
              atol: 1e-5,
              what: "top row",
            });
          }
          for (const [i] of coarseSeeds.entries()) {
            assertClose(cell(i + 1, 0), coarse[i], { atol: 1e-5, what: "left column" });
            for (const [j] of fineSeeds.entries()) {
              if (cutoff === 0) {
                assertClose(cell(i + 1, j + 1), fine[j], {
                  atol: 1e-5,
                  what: `cutoff 0 cell ${i},${j}`,
                });
              }
              if (cutoff === G.numWs) {
                assertClose(cell(i + 1, j + 1), coarse[i], {
                  atol: 1e-5,
                  what: `cutoff num_ws cell ${i},${j}`,
                });
              }
            }
          }
          if (cutoff === 0) {
            assert(
              r.toFine < 1e-3 && r.toCoarse > 0.1,
              `cutoff 0: ${r.toFine}, ${r.toCoarse}`,
            );
          }
          if (cutoff === G.numWs) assert(r.toCoarse < 1e-3 && r.toFine > 0.1, `cutoff 4: ${r.toCoarse}`);
          if (cutoff === 2) {
            assert(r.toCoarse > 0.01 && r.toFine > 0.01, `cutoff 2 mixes both: ${r.toCoarse}, ${r.toFine}`);
            assert(r.coarseResolutions.join() === "4,8" && r.fineResolutions.join() === "8", "resolutions");
          }
        } finally {
          r.images.dispose();
        }
      }
      // The ws themselves: row i*m+j holds coarse i's first `cutoff` ws and fine j's others.
      const wc = classWs(G, zc, 1), wf = classWs(G, zf, 2), mixed = mixWs(wc, wf, 1);
      const [hc, hf, hm] = [await wc.data(), await wf.data(), await mixed.data()];
      const row = 4 * 16;
      for (let i = 0; i < 2; i++) {
        for (let j = 0; j < 3; j++) {
          const got = hm.subarray((i * 3 + j) * row, (i * 3 + j + 1) * row);
          const want = [...hc.subarray(i * row, i * row + 16), ...hf.subarray(j * row + 16, (j + 1) * row)];
          assertClose(got, want, { rtol: 0, atol: 0, what: `mixed ws ${i},${j}` });
        }
      }
      for (const t of [wc, wf, mixed]) t.dispose();
      let threw = false;
      try {
        mixWs(zc, zc, 0);
      } catch {
        threw = true;
      }
      assert(threw, "mixWs must reject mismatched shapes");
    } finally {
      zc.dispose();
      zf.dispose();
      G.dispose();
    }
  },
);

Deno.test("edit direction: walk measures on constructed scores (exact values)", () => {
  const up = walkMeasures([[0, 1, 2, 3], [1, 1, 2, 5]]);
  assertClose(up.meanByStep, [0.5, 1, 2, 4], { what: "mean by step" });
  assertClose([up.change, up.risingSteps, up.spearmanOfMean, up.monotoneSamples], [3.5, 1, 1, 1], {
    what: "rising walk",
  });
  // Sample 2's ranks with a tie: [0.5, 0.5, 2, 3] against [0, 1, 2, 3]: Pearson = 0.9487 (by hand).
  assertClose([up.spearmanPerSample], [(1 + 3 / Math.sqrt(10)) / 2], { what: "Spearman with ties" });
  const mixed = walkMeasures([[3, 1, 2, 0]]);
  assertClose([mixed.change, mixed.risingSteps, mixed.monotoneSamples], [-3, 1 / 3, 0], {
    what: "mixed walk",
  });
  assertClose([spearman([0, 1, 2, 3], [3, 1, 2, 0])], [-0.8], { what: "Spearman" });
});

gpuTest(
  "edit direction: the learned normal raises brightness monotonically; scores are the images' own",
  async () => {
    const G = tinyG(7);
    const dir = await learnDirection(G, meanBrightness, 0, { samples: 150, seed: 3 });
    assert(dir.svm.converged && dir.svm.kktViolation < 1e-8, `SVM: ${JSON.stringify(dir.svm)}`);
    assert(dir.labelled === 90 && dir.svm.trainCount === 72 && dir.svm.heldOutCount === 18, "label counts");
    assert(dir.low < dir.high, `thresholds ${dir.low} ${dir.high}`);
    assert(dir.svm.heldOutAccuracy >= 0.9, `held-out accuracy ${dir.svm.heldOutAccuracy}`);
    assert(dir.correlation > 0.5, `w . normal should track brightness: correlation ${dir.correlation}`);
    assertClose([Math.hypot(...dir.normal)], [1], { what: "unit normal" });
    const seeds = [0, 1, 2], steps = [-2, -1, 0, 1, 2];
    const z = latentsFromSeeds(G, seeds);
    const walk = await walkDirection(G, dir, meanBrightness, z, [0, 1, 2], steps);
    try {
      const px = await walk.images.data();
      const per = 64;
      assert(px.length === 3 * seeds.length * steps.length * per, `walk images ${px.length}`);
      for (const [c, w] of walk.walks.entries()) {
        assert(w.classIndex === c, "classes in order");
        for (const [i, seed] of seeds.entries()) {
          // Step 0 is the class sample itself; every score is the brightness of its image, recomputed here.
          const cell = (s: number) =>
            px.subarray(((c * seeds.length + i) * steps.length + s) * per).subarray(0, per);
          assertClose(cell(2), await sampleOf(G, seed, c), {
            atol: 1e-5,
            what: `class ${c} seed ${seed} step 0`,
          });
          const host = steps.map((_, s) =>
            cell(s).reduce((a, v) => a + (Math.min(Math.max(v, -1), 1) + 1) / 2, 0) / per
          );
          assertClose(w.scores[i], host, { rtol: 1e-6, atol: 1e-9, what: `class ${c} seed ${seed} scores` });
        }
        assert(w.change > 0, `class ${c}: brightness should rise along the direction, change ${w.change}`);
      }
      const a = walk.walks[0];
      assert(a.risingSteps === 1 && a.spearmanOfMean === 1, `class 0 walk not monotone: ${a.meanByStep}`);
    } finally {
      walk.images.dispose();
      z.dispose();
      G.dispose();
    }
  },
);

gpuTest(
  "edit cli: each subcommand writes its PNG grid and a JSON of config and measures; bad input is named",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "edit_cli_" });
    try {
      manualSeed(8);
      const arch = tinyArch();
      const G = Generator.fromConfig(arch), D = Discriminator.fromConfig(arch);
      const snap = `${dir}/tiny.safetensors`;
      await saveSnapshot(snap, { G, D, Gema: G }, {
        ...untrainedState(8),
        classNames: ["zero", "one", "two"],
      });
      G.dispose();
      D.dispose();
      const png = async (path: string) => decodeImage(await Deno.readFile(path), path);
      const json = async (path: string) => JSON.parse(await Deno.readTextFile(path));

      await editCommand([
        "interpolate",
        "--snapshot",
        snap,
        "--from-class",
        "zero",
        "--to-class",
        "2",
        "--seeds",
        "0-1",
        "--steps",
        "5",
        "--out",
        `${dir}/i.png`,
      ]);
      const ip = await png(`${dir}/i.png`), ij = await json(`${dir}/i.json`);
      assert(ip.width === 5 * 8 + 6 && ip.height === 4 * 8 + 5, `interpolate grid ${ip.width}x${ip.height}`);
      assert(
        ij.fromClass === 0 && ij.toClass === 2 && ij.rows.length === 4 && ij.ts.length === 5,
        "interpolate json",
      );
      assert(
        ij.cSpace.stepChange.length === 4 && ij.generator.classNames[1] === "one",
        "interpolate measures",
      );
      assert(ij.options.seeds === "0-1" && typeof ij.adapter === "string", "the config is recorded");

      await editCommand([
        "mix",
        "--snapshot",
        snap,
        "--coarse-class",
        "1",
        "--fine-class",
        "two",
        "--cutoff",
        "0",
        "--coarse-seeds",
        "0-1",
        "--fine-seeds",
        "5-7",
        "--out",
        `${dir}/m.png`,
      ]);
      const mp = await png(`${dir}/m.png`), mj = await json(`${dir}/m.json`);
      assert(mp.width === 4 * 8 + 5 && mp.height === 3 * 8 + 4, `mix grid ${mp.width}x${mp.height}`);
      assert(
        mj.cutoff === 0 && mj.numWs === 4 && mj.toFine < 1e-3 && mj.toCoarse > 0,
        `mix json ${mj.toFine}`,
      );

      await editCommand([
        "direction",
        "--snapshot",
        snap,
        "--train-class",
        "0",
        "--attribute",
        "brightness",
        "--apply-classes",
        "two",
        "--samples",
        "40",
        "--seeds",
        "0-1",
        "--step-count",
        "3",
        "--range",
        "1",
        "--out",
        `${dir}/d.png`,
      ]);
      const dp = await png(`${dir}/d.png`), dj = await json(`${dir}/d.json`);
      assert(dp.width === 3 * 8 + 4 && dp.height === 4 * 8 + 5, `direction grid ${dp.width}x${dp.height}`);
      assert(dj.classes.join() === "0,2" && dj.steps.join() === "-1,0,1", `direction classes ${dj.classes}`);
      assert(dj.direction.normal.length === 16 && dj.direction.svm.converged, "direction json");
      assert(dj.walks[1].scores.length === 2 && dj.walks[1].meanByStep.length === 3, "walk scores");

      const fails = async (args: string[], re: RegExp) => {
        try {
          await editCommand(args);
        } catch (e) {
          assert(re.test((e as Error).message), `'${(e as Error).message}' does not match ${re}`);
          return;
        }
        throw new Error(`expected ${args.join(" ")} to fail with ${re}`);
      };
      const base = ["--snapshot", snap, "--out", `${dir}/x.png`];
      await fails(
        ["mix", ...base, "--coarse-class", "0", "--fine-class", "1", "--cutoff", "9"],
        /\[0, 4\].*num_ws/,
      );
      await fails(["interpolate", ...base, "--from-class", "nine", "--to-class", "1"], /zero, one, two/);
      await fails(
        ["direction", ...base, "--train-class", "0", "--attribute", "shininess"],
        /brightness, ink/,
      );
      await fails(["warp", ...base], /unknown subcommand 'warp'/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test("edit: gan/edit uses no Deno API and imports nothing from kernels/ (the web page reuses it)", async () => {
  const dir = new URL("../gan/edit/", import.meta.url);
  for await (const e of Deno.readDir(dir)) {
    if (!e.name.endsWith(".ts")) continue;
    const code = (await Deno.readTextFile(new URL(e.name, dir))).split("\n").filter((l) =>
      !/^\s*\/\//.test(l)
    )
      .join("\n");
    assert(!/\bDeno\./.test(code), `gan/edit/${e.name} uses the Deno API`);
    assert(!/from "\.\.\/\.\.\/kernels\//.test(code), `gan/edit/${e.name} imports from kernels/`);
  }
});

gpuTest("edit attributes: ink mass, brightness and a classifier's logit on constructed images", async () => {
  // Two 1x2x2 images in [-1, 1]: intensities (x + 1) / 2 = [0, 0.25, 0.75, 1] and [0.5, 0.5, 0.5, 0.6].
  const img = tensor(Float32Array.from([-1, -0.5, 0.5, 1, 0, 0, 0, 0.2]), [2, 1, 2, 2]);
  try {
    assertClose(await meanBrightness.score(img), [0.5, 0.525], { rtol: 1e-6, what: "brightness" });
    assertClose(await inkMass.score(img), [0.5, 0.25], { what: "ink: share above mid-grey" });
    // A stand-in classifier of 0..255 images: logits [sum of pixels, minus it]. Pixel sums in 0..255:
    // image 0: 127.5 * (0 + 0.5 + 1.5 + 2) = 510; image 1: 127.5 * (1 + 1 + 1 + 1.2) = 535.5.
    const total = (x: Tensor) => reshape(sum(x, [1, 2, 3]), [2, 1]);
    const logit = (k: number) =>
      classifierLogit("fake", "test", (x) => concat([total(x), neg(total(x))], 1), k);
    assertClose(await logit(0).score(img), [510, 535.5], { rtol: 1e-6, what: "logit 0" });
    assertClose(await logit(1).score(img), [-510, -535.5], { rtol: 1e-6, what: "logit 1" });
    let threw = false;
    try {
      await logit(2).score(img);
    } catch (e) {
      threw = /no logit 2/.test((e as Error).message);
    }
    assert(threw, "a logit the classifier lacks is named");
  } finally {
    img.dispose();
  }
});

gpuTest("edit interpolate: its c path is the comparison report's interpolation strip (same z)", async () => {
  const G = tinyG(9);
  const dir = await Deno.makeTempDir({ prefix: "edit_strip_" });
  const seed = 2, rows = 4, steps = 6;
  try {
    await interpolationStrip(G, `${dir}/strip.png`, { rows, steps, seed });
    const strip = decodeImage(await Deno.readFile(`${dir}/strip.png`), "strip.png");
    const z = randn([rows, G.zDim], { generator: new Rng(seed * 31 + 23) }); // the strip's z
    const r = await interpolateClasses(G, z, 0, 1, steps + 1);
    const px = floatToUint8(await r.images.data());
    r.images.dispose();
    z.dispose();
    let worst = 0;
    for (let i = 0; i < rows; i++) {
      for (let s = 0; s <= steps; s++) { // strip columns 0..6: class 0 -> 1 in 6 steps, then class 1
        const cell = px.subarray(((2 * i) * (steps + 1) + s) * 64);
        for (let y = 0; y < 8; y++) {
          for (let x = 0; x < 8; x++) {
            const v = strip.data[(1 + i * 9 + y) * strip.width + 1 + s * 9 + x];
            worst = Math.max(worst, Math.abs(v - cell[y * 8 + x]));
          }
        }
      }
    }
    assert(worst <= 1, `edit's c path and the report strip differ by ${worst} levels`);
  } finally {
    await Deno.remove(dir, { recursive: true });
    G.dispose();
  }
});
