// Class fidelity on constructed cases: two sources that differ visibly (bright top half vs. bright bottom
// half, with noise); the classifier learns them to a held-out accuracy near 1; a model that copies source 0
// for every class scores 1 and 0, a faithful one 1 and 1, a swapped one 0 and 0, and a model drawing each
// class from both sources at random scores about 0.5.

import { Generator as Rng, rand, randn } from "../nn/creation.ts";
import { add, clamp, mul } from "../nn/ops.ts";
import { fromHost, scope, type Tensor } from "../nn/tensor.ts";
import { concat } from "../nn/shape.ts";
import { argmaxRows, classFidelity, trainSourceClassifier } from "../metrics/class_fidelity.ts";
import { mnistDigitSet } from "../gan/cocktail/fidelity.ts";
import { assertClose, gpuTest } from "./harness.ts";

const SIDE = 8;

function halfMask(top: boolean): Float32Array {
  return Float32Array.from(
    { length: SIDE * SIDE },
    (_, i) => (Math.floor(i / SIDE) < SIDE / 2) === top ? 1 : 0,
  );
}

/** n images of source c: the bright half at +0.6, the other at -0.6, plus noise of std 0.4. */
function source(c: number, n: number, gen: Rng): Tensor {
  return scope(() => {
    const mask = fromHost(halfMask(c === 0), [1, 1, SIDE, SIDE], "f32");
    const noise = mul(randn([n, 1, SIDE, SIDE], { generator: gen }), 0.4);
    return clamp(add(add(mul(mask, 1.2), -0.6), noise), -1, 1);
  });
}

function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
}

gpuTest(
  "class fidelity: constructed models score 1/0 (copies source 0), 1/1, 0/0, and about 0.5",
  async () => {
    const trained = await trainSourceClassifier(source, {
      numClasses: 2,
      channels: 1,
      steps: 40,
      batch: 16,
      lr: 5e-3,
      seed: 3,
      heldOutPerClass: 64,
    });
    const { classifier } = trained;
    try {
      assert(
        trained.ceiling > 0.97,
        `held-out accuracy ${trained.heldOut} should be near 1 on these sources`,
      );
      const score = (draw: (c: number, n: number, gen: Rng) => Tensor) =>
        classFidelity(classifier, draw, 64, new Rng(9));
      assertClose(await score((_c, n, g) => source(0, n, g)), [1, 0], {
        atol: 0.03,
        what: "copies source 0",
      });
      assertClose(await score(source), [1, 1], { atol: 0.03, what: "faithful" });
      assertClose(await score((c, n, g) => source(1 - c, n, g)), [0, 0], { atol: 0.03, what: "swapped" });
      // Half the samples of each class from either source: fidelity ~0.5 (binomial, 64 samples: sd 0.06).
      const mixed = (_c: number, n: number, g: Rng) =>
        scope(() => concat([source(0, n / 2, g), source(1, n / 2, g)], 0));
      const m = await score(mixed);
      assert(m.every((f) => Math.abs(f - 0.5) < 0.1), `a class-blind blend should score about 0.5, got ${m}`);
    } finally {
      classifier.dispose();
    }
  },
);

gpuTest("class fidelity: training is seeded (the same seed gives the same predictions)", async () => {
  const o = { numClasses: 2, channels: 1, steps: 5, batch: 8, seed: 11, heldOutPerClass: 8 };
  const a = await trainSourceClassifier(source, o), b = await trainSourceClassifier(source, o);
  try {
    const x = rand([6, 1, SIDE, SIDE], -1, 1, { generator: new Rng(2) });
    const la = await scope(() => a.classifier.forward(x)).data(),
      lb = await scope(() => b.classifier.forward(x)).data();
    assertClose(la, lb, { rtol: 0, atol: 0, what: "logits of two runs with one seed" });
    x.dispose();
  } finally {
    a.classifier.dispose();
    b.classifier.dispose();
  }
});

Deno.test("class fidelity: argmax rows and MNIST digit sets of dataset specs", () => {
  assertClose(argmaxRows([0, 2, 1, 5, 5, 1, -1, -2, -3], 3, 3), [1, 0, 0], {
    what: "argmax (first on ties)",
  });
  assertClose(mnistDigitSet("mnist:0-4")!, [0, 1, 2, 3, 4], { what: "mnist:0-4" });
  assertClose(mnistDigitSet("mnist:7")!, [7], { what: "mnist:7" });
  assertClose(mnistDigitSet("mnist")!, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], { what: "mnist" });
  assert(mnistDigitSet("emoji:google") === null, "emoji is not an MNIST digit set");
});
