// The comparison report's header says what each class is, the budget, seed, adapter, feature network and
// samples per class; the HTML table carries per-class FID, fidelity and digit-set share, KID with its scale.

import { classLine, headerLines, writeReport } from "../gan/cocktail/report.ts";

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
