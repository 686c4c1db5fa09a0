// The comparison report: report.json (every number, the feature network and the covariance
// normalisation named) and index.html with sample grids per class (PNG) and an interpolation strip
// between classes (a fixed z while c moves linearly from one class's one-hot vector to the next one's).

import { noGrad } from "../../nn/autograd.ts";
import { Generator as Rng, randn } from "../../nn/creation.ts";
import { clamp, lerp } from "../../nn/ops.ts";
import { oneHot } from "../../nn/layers.ts";
import { concat } from "../../nn/shape.ts";
import { scope } from "../../nn/tensor.ts";
import { tensor } from "../../nn/creation.ts";
import { floatToUint8, imageGrid, saveImageGrid, writePng } from "../../data/image_io.ts";
import { writeFileAtomic } from "../../nn/checkpoint.ts";
import type { Generator } from "../stylegan2/generator.ts";
import type { ModelScores } from "./evaluate.ts";
import { type ImageSource, sampleAt } from "./sources.ts";

/** Per-class sample grids of a conditional generator: one PNG per class; returns the file names. */
export async function classGrids(
  G: Generator,
  dir: string,
  prefix: string,
  perClass = 16,
  seed = 0,
): Promise<string[]> {
  const names: string[] = [];
  for (let c = 0; c < G.cDim; c++) {
    const name = `${prefix}_class${c}.png`;
    const imgs = G.sample(perClass, c, { noiseMode: "const", generator: new Rng(seed * 31 + 17) });
    try {
      await saveImageGrid(`${dir}/${name}`, imgs, { pad: 1 });
    } finally {
      imgs.dispose();
    }
    names.push(name);
  }
  return names;
}

/** A grid of a source's samples at the merged resolution. */
export async function sourceGrid(
  src: ImageSource,
  dir: string,
  name: string,
  resolution: number,
  channels: number,
  count = 16,
  seed = 0,
): Promise<string> {
  const imgs = sampleAt(src, count, resolution, channels, new Rng(seed * 31 + 19));
  try {
    await saveImageGrid(`${dir}/${name}`, imgs, { pad: 1 });
  } finally {
    imgs.dispose();
  }
  return name;
}

/**
 * Interpolation strip: `rows` fixed latents; columns walk c from class 0 to class 1, ..., to class N-1
 * in `steps` steps per pair (linear in the one-hot space), noise fixed. Writes a PNG.
 */
export async function interpolationStrip(
  G: Generator,
  path: string,
  o: { rows?: number; steps?: number; seed?: number } = {},
): Promise<void> {
  const rows = o.rows ?? 4, steps = o.steps ?? 6;
  if (G.cDim < 2) throw new Error("interpolationStrip: needs a generator with at least 2 classes");
  const ts: [number, number, number][] = [];
  for (let a = 0; a + 1 < G.cDim; a++) {
    for (let s = 0; s < steps; s++) ts.push([a, a + 1, s / steps]);
  }
  ts.push([G.cDim - 1, G.cDim - 1, 0]);
  const cols = ts.length;
  const img = scope(() =>
    noGrad(() => {
      const z = randn([rows, G.zDim], { generator: new Rng((o.seed ?? 0) * 31 + 23) });
      const columns = ts.map(([a, b, t]) => {
        const ea = oneHot(tensor(new Int32Array(rows).fill(a), [rows], "i32"), G.cDim);
        const eb = oneHot(tensor(new Int32Array(rows).fill(b), [rows], "i32"), G.cDim);
        return clamp(G.forward(z, lerp(ea, eb, t), { noiseMode: "const", truncationPsi: 1 }), -1, 1);
      });
      return concat(columns, 0); // column-major: [cols * rows, C, H, W]
    })
  );
  try {
    const [, c, h, w] = img.shape;
    const px = floatToUint8(await img.data());
    const per = c * h * w;
    const rowMajor = new Uint8Array(px.length);
    for (let col = 0; col < cols; col++) {
      for (let r = 0; r < rows; r++) {
        rowMajor.set(px.subarray((col * rows + r) * per, (col * rows + r + 1) * per), (r * cols + col) * per);
      }
    }
    await writePng(path, imageGrid(rowMajor, [rows * cols, c, h, w], { cols, pad: 1 }));
  } finally {
    img.dispose();
  }
}

export interface MethodReport {
  unionFid: number;
  perClass: ModelScores["perClass"];
  union: ModelScores["union"];
  real?: ModelScores["real"];
  snapshot: string;
  stages: { name: string; kimg: number; seconds: number; resumed: boolean; stats?: Record<string, number> }[];
  trainSeconds: number;
  /** d(root source, this model's G) over the weights they share. */
  distanceFromRoot?: number;
  grids: string[];
  interpolation: string;
  evalSeconds?: number;
}

export interface CompareReport {
  methods: Record<string, MethodReport>;
  featureNetwork: string;
  covariance: string;
  /** Rows that are not methods: the sampling floor, the plain average before fine-tuning. */
  references?: Record<string, ModelScores>;
  [key: string]: unknown;
}

const fmt = (v: number | undefined | null, d = 2) =>
  v === undefined || v === null || !Number.isFinite(v)
    ? "–"
    : Math.abs(v) < 0.01 && v !== 0
    ? v.toExponential(2)
    : v.toFixed(d);

const STYLE = [
  "body{font:14px sans-serif;margin:2em}",
  "table{border-collapse:collapse}",
  "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}",
  "img{image-rendering:pixelated;width:160px}",
  "img.strip{width:auto;height:200px}",
  ".row{display:flex;gap:12px}",
  "figure{margin:0}",
].join("");

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** Writes report.json and index.html into `dir`; returns the path of report.json. */
export async function writeReport(dir: string, r: CompareReport): Promise<string> {
  const jsonPath = `${dir}/report.json`;
  await writeFileAtomic(jsonPath, JSON.stringify(r, null, 2) + "\n");
  await writeFileAtomic(`${dir}/index.html`, html(r));
  return jsonPath;
}

/**
 * KID is printed as is (MMD^2 in the feature network's units; with the bundled 128-d MNIST network the
 * values are of order 1-100, so the x1000 often quoted with Inception features would only add digits).
 */
export const KID_LABEL = "KID (unscaled)";

interface ClassInfo {
  class: number;
  source: string;
  digits?: number[] | null;
  real?: string | null;
}

/** "class 0 = source 0 (assets/demo_sources/mnist04) = MNIST digits 0-4". */
export function classLine(c: ClassInfo): string {
  const d = c.digits?.length
    ? ` = MNIST digits ${c.digits.length > 1 ? `${c.digits[0]}-${c.digits.at(-1)}` : c.digits[0]}`
    : "";
  return `class ${c.class} = source ${c.class} (${c.source})${d}`;
}

/** The report's opening: what each class is, budget, seed, adapter, networks, sample counts. */
export function headerLines(r: CompareReport): string[] {
  const b = r.budget as
    | { kimgPerStage?: number; rootKimg?: number; cocktail?: string; baselines?: string }
    | undefined;
  const perStage = b?.rootKimg === undefined || b.rootKimg === b.kimgPerStage
    ? `${b?.kimgPerStage} kimg per stage`
    : `${b.rootKimg} kimg per rooting run, ${b.kimgPerStage} kimg merging`;
  const f = r.classFidelity as { ceiling?: number; steps?: number; batch?: number } | null | undefined;
  return [
    ...((r.classes as ClassInfo[] | undefined) ?? []).map(classLine),
    `budget: ${perStage}; cocktail ${b?.cocktail}; baselines ${b?.baselines}`,
    `seed ${r.seed ?? 0}; adapter ${r.adapter ?? "not recorded"}`,
    `feature network for FID/KID/precision/recall: ${r.featureNetwork}; FID covariance ${r.covariance}`,
    `samples per class: ${r.samplesPerClass} (generated at psi 1 with random noise, quantised to uint8)`,
    ...(f
      ? [
        `class fidelity: a source classifier (${f.steps} Adam steps of ${f.batch} fresh source samples) ` +
        `reaches ${fmt(f.ceiling, 3)} held-out accuracy on the sources: the ceiling`,
      ]
      : []),
  ];
}

const COLUMNS = [
  "union FID: FID of all classes pooled (equal counts) against the sources' pooled samples; lower is better",
  `${KID_LABEL}: kernel inception distance of the union (polynomial kernel (x.y/d + 1)^3, unbiased MMD^2, ` +
  "mean over subsets), not multiplied by 1000; lower is better",
  "precision / recall: improved precision and recall of the union (k-NN manifolds)",
  "FID c: FID of class c against source c's samples",
  "fidelity c: share of class-c samples that the source classifier assigns to source c (1 = faithful, " +
  "1/N = chance; a model ignoring its class input scores 1 on one class and 0 on the others)",
  "digits c: share of class-c samples that the bundled MNIST digit classifier puts among source c's " +
  "digits (MNIST sources only; an independent view of fidelity)",
  "union FID vs real: the same union FID against real images of each class (evaluation only)",
  "train s: wall seconds of training; d(root, G): weight distance of the model's G_ema to the root source",
];

function html(r: CompareReport): string {
  const methods = Object.entries(r.methods);
  const classes = methods[0]?.[1].perClass.length ?? 0;
  const hasReal = methods.some(([, m]) => m.real);
  const all = [...methods.map(([, m]) => m as ModelScores), ...Object.values(r.references ?? {})];
  const hasFid = all.some((m) => m.perClass.some((p) => p.fidelity !== undefined));
  const hasDigits = all.some((m) => m.perClass.some((p) => p.digitSetShare !== undefined));
  const perClassHead = (c: number) =>
    [`FID ${c}`].concat(hasFid ? [`fidelity ${c}`] : []).concat(hasDigits ? [`digits ${c}`] : []);
  const head = ["method", "union FID", KID_LABEL, "precision", "recall"]
    .concat(Array.from({ length: classes }, (_, c) => perClassHead(c)).flat())
    .concat(hasReal ? ["union FID vs real"] : [])
    .concat(["train s", "d(root, G)"]);
  const row = (name: string, m: ModelScores, train?: number, dist?: number) =>
    [esc(name), fmt(m.unionFid), fmt(m.union.kid, 3), fmt(m.union.precision, 3)]
      .concat([fmt(m.union.recall, 3)])
      .concat(
        m.perClass.flatMap((p) =>
          [fmt(p.fid)].concat(hasFid ? [fmt(p.fidelity, 3)] : []).concat(
            hasDigits ? [fmt(p.digitSetShare, 3)] : [],
          )
        ),
      )
      .concat(hasReal ? [fmt(m.real?.unionFid)] : [])
      .concat([train === undefined ? "–" : String(Math.round(train)), fmt(dist, 3)]);
  const rows = methods.map(([name, m]) => row(name, m, m.trainSeconds, m.distanceFromRoot))
    .concat(Object.entries(r.references ?? {}).map(([name, m]) => row(name, m)));
  const table = `<table><tr>${head.map((h) => `<th>${h}</th>`).join("")}</tr>${
    rows.map((cells) => `<tr>${cells.map((c) => `<td>${c}</td>`).join("")}</tr>`).join("")
  }</table>`;
  const figureRow = (grids: string[]) =>
    `<div class="row">${
      grids.map((g, c) => `<figure><img src="${esc(g)}"><figcaption>class ${c}</figcaption></figure>`).join(
        "",
      )
    }</div>`;
  const grids = methods.map(([name, m]) =>
    `<h3>${esc(name)}</h3>${
      figureRow(m.grids)
    }<p>interpolation between classes (fixed z and noise, c moves ` +
    `linearly class 0 &rarr; ${classes - 1}):</p><img class="strip" src="${esc(m.interpolation)}">`
  ).join("\n");
  const refGrids = Object.entries((r.referenceGrids as Record<string, string[]> | undefined) ?? {})
    .map(([name, g]) => `<h3>${esc(name)}</h3>${figureRow(g)}`).join("\n");
  const sources = (r.sourceGrids as string[] | undefined ?? []).map((g, i) =>
    `<figure><img src="${esc(g)}"><figcaption>source ${i}</figcaption></figure>`
  ).join("");
  const notes = ((r.notes as string[] | undefined) ?? []).map((n) => `<li>${esc(n)}</li>`).join("");
  const extra = [distancesHtml(r.weightDistances), rootStudyHtml(r.rootStudy)].join("\n");
  const list = (xs: string[]) => `<ul>${xs.map((x) => `<li>${esc(x)}</li>`).join("")}</ul>`;
  return `<!doctype html><meta charset="utf-8"><title>GAN Cocktail comparison</title>
<style>${STYLE}</style>
<h1>GAN Cocktail: merge and baselines</h1>
${list(headerLines(r))}
<p>Scores against the sources' own samples. The "floor" row (if present) scores a second sample of each
source: no model can be expected to beat it (its fidelity is the classifier's ceiling).</p>
${table}
<h3>Columns</h3>${list(COLUMNS)}
<ul>${notes}</ul>
${extra}
<h2>Sources</h2><div class="row">${sources}</div>
<h2>Samples per class</h2>${grids}
${
    refGrids
      ? `<h2>Averages (Fig. 1 of the paper): without rooting, and of the rooted models</h2>${refGrids}`
      : ""
  }
<p>report.json holds every number.</p>`;
}

type Row = Record<string, unknown>;
const cell = (v: unknown) =>
  typeof v === "number" ? (Number.isInteger(v) ? String(v) : fmt(v, 3)) : esc(String(v ?? "–"));

function smallTable(head: string[], rows: unknown[][]): string {
  return `<table><tr>${head.map((h) => `<th>${esc(h)}</th>`).join("")}</tr>${
    rows.map((r) => `<tr>${r.map((c) => `<td>${cell(c)}</td>`).join("")}</tr>`).join("")
  }</table>`;
}

function distancesHtml(wd: unknown): string {
  const d = wd as { definition?: string; pairs?: Row[] } | undefined;
  if (!d?.pairs?.length) return "";
  return `<h2>Weight distances</h2><p>${esc(d.definition ?? "")}</p>` +
    smallTable(
      ["source B", "layers", "d(A, B)", "d(A, A->B)", "note"],
      d.pairs.map((p) => [p.source, p.layers, p.dRootSource, p.dRootRooted, p.note]),
    );
}

function rootStudyHtml(rs: unknown): string {
  const s = rs as
    | { rows?: Row[]; pickedByRecall?: number; bestByUnionFid?: number; caveat?: string }
    | undefined;
  if (!s?.rows?.length) return "";
  return `<h2>Which root?</h2><p>Recall of each candidate root's samples w.r.t. the other sources, and the ` +
    `union FID of cocktail from that root. Picked by recall: ${s.pickedByRecall}; best by FID: ` +
    `${s.bestByUnionFid}. ${esc(s.caveat ?? "")}</p>` +
    smallTable(
      ["root", "source", "recall", "union FID", "union FID vs real"],
      s.rows.map((x) => [x.root, x.source, x.recall, x.unionFid, x.realUnionFid]),
    );
}
