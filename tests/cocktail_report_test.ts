// The comparison report's header says what each class is, the budget, seed, adapter, feature network and
// samples per class; the HTML table carries per-class FID, fidelity and digit-set share, KID with its scale;
// evaluation quantises images to uint8 with the metric commands' conversion.

import { classLine, headerLines, writeReport } from "../gan/cocktail/report.ts";
import { featuresOf, pixelFeatureNetwork } from "../gan/cocktail/evaluate.ts";
import { fromHost } from "../nn/tensor.ts";
import { assertClose, gpuTest } from "./harness.ts";

function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
}

const scores = (fid: number, fidelity: number[]) => ({
  unionFid: fid,
  union: { fid, kid: 0.0123, kidStd: 0.001, precision: 0.5, recall: 0.25 },
  perClass: fidelity.map((f, c) => ({
    class: c,
    source: `s${c}`,
    fid: fid + c,
    kid: 0,
    kidStd: 0,
    precision: 0,
    recall: 0,
    fidelity: f,
    digitSetShare: f / 2,
  })),
});

Deno.test("cocktail report: header lines and the HTML table's columns", async () => {
  assert(
    classLine({ class: 0, source: "mnist04", digits: [0, 1, 2, 3, 4] }) ===
      "class 0 = source 0 (mnist04) = MNIST digits 0-4",
    "class line with a digit set",
  );
  assert(
    classLine({ class: 1, source: "emoji" }) === "class 1 = source 1 (emoji)",
    "class line without digits",
  );
  const report = {
    methods: {
      cocktail: {
        ...scores(12.5, [0.95, 0.9]),
        snapshot: "x",
        stages: [],
        trainSeconds: 301.7,
        grids: ["a.png", "b.png"],
        interpolation: "i.png",
      },
    },
    featureNetwork: "mnist-cnn-128",
    covariance: "divided by N-1 (ddof 1)",
    samplesPerClass: 500,
    seed: 3,
    adapter: "llvmpipe",
    budget: { kimgPerStage: 2, cocktail: "2 + 2", baselines: "4 kimg each" },
    classes: [{ class: 0, source: "a", digits: [0, 1, 2, 3, 4] }, {
      class: 1,
      source: "b",
      digits: [5, 6, 7, 8, 9],
    }],
    classFidelity: { ceiling: 0.998, steps: 200, batch: 32 },
    references: { floor: scores(1.5, [1, 1]) },
  };
  const lines = headerLines(report);
  const uneven = headerLines({ ...report, budget: { ...report.budget as object, rootKimg: 6 } });
  assert(
    uneven.some((l) => l.includes("6 kimg per rooting run, 2 kimg merging")),
    `a rooting budget of its own should be named: ${uneven.join(" | ")}`,
  );
  for (const want of ["MNIST digits 5-9", "2 kimg per stage", "seed 3", "llvmpipe", "mnist-cnn-128", "500"]) {
    assert(lines.some((l) => l.includes(want)), `the header should say '${want}': ${lines.join(" | ")}`);
  }
  const dir = await Deno.makeTempDir({ prefix: "cocktail_report_" });
  try {
    await writeReport(dir, report);
    const html = await Deno.readTextFile(`${dir}/index.html`);
    for (
      const want of [
        "fidelity 1",
        "digits 0",
        "KID (unscaled)",
        "<td>0.012</td>",
        "<td>302</td>",
        "<td>0.950</td>",
      ]
    ) {
      assert(html.includes(want), `index.html should contain ${want}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

gpuTest(
  "cocktail evaluation: images reach the feature network quantised to uint8, as in the metric commands",
  async () => {
    // Two batches that differ by less than one grey level inside each uint8 bin give the same features.
    const levels = Float32Array.from({ length: 2 * 16 }, (_, i) => (i * 7) % 256);
    const toUnit = (v: number) => v / 127.5 - 1; // x*127.5+128 = v+0.5: the middle of level v's bin
    const a = fromHost(levels.map((v) => toUnit(v) - 0.3 / 127.5), [2, 1, 4, 4], "f32");
    const b = fromHost(levels.map((v) => toUnit(v) + 0.3 / 127.5), [2, 1, 4, 4], "f32");
    const net = pixelFeatureNetwork(4);
    const fa = await featuresOf(net, a), fb = await featuresOf(net, b);
    const want = levels.map((v) => v / 127.5 - 1); // the pixel network of the integer levels
    assertClose(fa.data, want, { atol: 1e-6, what: "features of the lower half-bin" });
    assertClose(fb.data, want, { atol: 1e-6, what: "features of the upper half-bin" });
    a.dispose();
    b.dispose();
  },
);
