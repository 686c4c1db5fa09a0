// Semantic editing with a direction learned on one class (InterFaceGAN's recipe, as GAN Cocktail uses
// it): label latents of the training class by an attribute (the top and bottom shares of its scores),
// fit a linear SVM on their w, and move the ws of any class along the SVM's unit normal. The walk's
// attribute per step, per class, is the measured claim of a shared latent space. No Deno API.

import { mulberry32 } from "../../nn/host_random.ts";
import { Generator as Rng, randn, tensor } from "../../nn/creation.ts";
import { add, mul } from "../../nn/ops.ts";
import { concat, narrow, reshape } from "../../nn/shape.ts";
import { scope, type Tensor } from "../../nn/tensor.ts";
import type { Generator } from "../stylegan2/generator.ts";
import { pearson } from "../toy2d/measures.ts";
import type { Attribute } from "./attributes.ts";
import { classWs, type LatentOptions, synthesize } from "./latents.ts";
import { fitLinearSvm, kktViolation, svmDecision, unitNormal } from "./svm.ts";

export interface DirectionOptions extends LatentOptions {
  /** Latents of the training class to score (default 400). */
  samples?: number;
  /** Share labelled positive (top scores) and, separately, negative (bottom scores) (default 0.3). */
  fraction?: number;
  /** Share of the labelled latents held out to measure the SVM's accuracy (default 0.2). */
  heldOut?: number;
  /** SVM cost (default 1). */
  C?: number;
  seed?: number;
  /** Images generated per pass (default 100). */
  batchSize?: number;
  /** Called after each pass with the latents scored so far. */
  onProgress?: (done: number, total: number) => void;
}

export interface LearnedDirection {
  /** Unit normal in W (length wDim), pointing to higher attribute scores. */
  normal: number[];
  attribute: string;
  trainClass: number;
  samples: number;
  /** Scores at or below `low` are labelled -1, at or above `high` +1. */
  low: number;
  high: number;
  labelled: number;
  /** Mean and standard deviation of the attribute over all the training class's samples. */
  scoreMean: number;
  scoreStd: number;
  /** Standard deviation of w . normal over the training class's samples: the unit of the walk's steps. */
  projectionStd: number;
  /** Pearson correlation of w . normal with the attribute over all samples (held-out ones included). */
  correlation: number;
  svm: {
    C: number;
    sweeps: number;
    converged: boolean;
    kktViolation: number;
    trainAccuracy: number;
    heldOutAccuracy: number;
    trainCount: number;
    heldOutCount: number;
  };
}

const meanOf = (xs: ArrayLike<number>) => Array.from(xs).reduce((a, b) => a + b, 0) / xs.length;
const stdOf = (xs: ArrayLike<number>) => {
  const m = meanOf(xs);
  return Math.sqrt(Array.from(xs).reduce((a, b) => a + (b - m) ** 2, 0) / xs.length);
};

/** w [n, wDim] (host, float64) and attribute scores of n class-k latents drawn from one seed. */
async function scoredLatents(
  G: Generator,
  attribute: Attribute,
  k: number,
  n: number,
  seed: number,
  o: DirectionOptions,
): Promise<{ w: Float64Array; scores: Float64Array }> {
  const bs = o.batchSize ?? 100, rng = new Rng(seed);
  const w = new Float64Array(n * G.wDim), scores = new Float64Array(n);
  for (let start = 0; start < n; start += bs) {
    const m = Math.min(bs, n - start);
    const { wFirst, images } = scope(() => {
      const ws = classWs(G, randn([m, G.zDim], { generator: rng }), k, o);
      return { wFirst: reshape(narrow(ws, 1, 0, 1), [m, G.wDim]), images: synthesize(G, ws, o) };
    });
    try {
      w.set(await wFirst.data(), start * G.wDim);
      scores.set(await attribute.score(images), start);
    } finally {
      wFirst.dispose();
      images.dispose();
    }
    o.onProgress?.(start + m, n);
  }
  for (let i = 0; i < scores.length; i++) {
    if (!Number.isFinite(scores[i])) {
      throw new Error(`attribute ${attribute.name}: sample ${i} scored ${scores[i]}`);
    }
  }
  return { w, scores };
}

/** Labels class-k latents by the attribute and fits the SVM; returns its unit normal and how well it fits. */
export async function learnDirection(
  G: Generator,
  attribute: Attribute,
  k: number,
  o: DirectionOptions = {},
): Promise<LearnedDirection> {
  const n = o.samples ?? 400, fraction = o.fraction ?? 0.3, heldOut = o.heldOut ?? 0.2, seed = o.seed ?? 0;
  if (!Number.isInteger(n) || n < 10) {
    throw new Error(`direction: samples must be an integer >= 10, got ${n}`);
  }
  if (!(fraction > 0 && fraction <= 0.5)) {
    throw new Error(`direction: fraction must be in (0, 0.5], got ${fraction}`);
  }
  if (!(heldOut >= 0 && heldOut < 1)) throw new Error(`direction: heldOut must be in [0, 1), got ${heldOut}`);
  const d = G.wDim;
  const { w, scores } = await scoredLatents(G, attribute, k, n, seed, o);
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a] - scores[b]);
  const per = Math.max(1, Math.floor(n * fraction));
  const negative = order.slice(0, per), positive = order.slice(n - per);
  const low = scores[negative[per - 1]], high = scores[positive[0]];
  if (!(high > low)) {
    throw new Error(
      `direction: attribute ${attribute.name} does not separate class ${k}'s samples (top and bottom ` +
        `${fraction} share one score, ${low}); try another attribute or more samples`,
    );
  }
  // Held-out split per label, seeded, so both sides keep their share.
  const rand = mulberry32(seed + 0x5eed);
  const shuffle = (xs: number[]) => {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [xs[i], xs[j]] = [xs[j], xs[i]];
    }
    return xs;
  };
  const hold = Math.floor(per * heldOut);
  const [pos, neg] = [shuffle([...positive]), shuffle([...negative])];
  const train = [...pos.slice(hold), ...neg.slice(hold)],
    test = [...pos.slice(0, hold), ...neg.slice(0, hold)];
  const label = (i: number) => (scores[i] >= high ? 1 : -1);
  // Centre on the training latents' mean: the bias is regularised like the weights (svm.ts), and w sits
  // far from the origin (near w_avg); centring leaves the normal's meaning unchanged.
  const centre = new Float64Array(d);
  for (const i of train) for (let c = 0; c < d; c++) centre[c] += w[i * d + c] / train.length;
  const rows = (idx: number[]) => {
    const x = new Float64Array(idx.length * d);
    idx.forEach((i, r) => {
      for (let c = 0; c < d; c++) x[r * d + c] = w[i * d + c] - centre[c];
    });
    return x;
  };
  const xTrain = rows(train), yTrain = train.map(label);
  const svm = fitLinearSvm(xTrain, yTrain, d, { C: o.C ?? 1, seed });
  const accuracy = (idx: number[]) => {
    if (!idx.length) return NaN;
    const f = svmDecision(svm, rows(idx), d);
    return idx.filter((i, r) => label(i) * f[r] > 0).length / idx.length;
  };
  const normal = unitNormal(svm);
  const proj = Float64Array.from({ length: n }, (_, i) => {
    let s = 0;
    for (let c = 0; c < d; c++) s += w[i * d + c] * normal[c];
    return s;
  });
  return {
    normal: Array.from(normal),
    attribute: attribute.name,
    trainClass: k,
    samples: n,
    low,
    high,
    labelled: 2 * per,
    scoreMean: meanOf(scores),
    scoreStd: stdOf(scores),
    projectionStd: stdOf(proj),
    correlation: pearson(proj, scores) || 0,
    svm: {
      C: svm.C,
      sweeps: svm.sweeps,
      converged: svm.converged,
      kktViolation: kktViolation(svm, xTrain, yTrain, d),
      trainAccuracy: accuracy(train),
      heldOutAccuracy: accuracy(test),
      trainCount: train.length,
      heldOutCount: test.length,
    },
  };
}

/** A learned direction as the page uses it: the unit normal in W and the walk's step unit. */
export interface SavedDirection {
  normal: number[];
  projectionStd: number;
  attribute: string;
  trainClass: number;
}

/**
 * The direction in a JSON written by `cli.ts edit direction` (its "direction" field), checked against the
 * generator's w width. `name` names the file in errors.
 */
export function directionFromJson(text: string, name: string, wDim: number): SavedDirection {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new Error(`${name}: not JSON (${(e as Error).message})`);
  }
  const d = (doc as { direction?: Partial<LearnedDirection> } | null)?.direction;
  if (!d || typeof d !== "object") {
    throw new Error(`${name}: no "direction" field: expected the JSON that \`cli.ts edit direction\` writes`);
  }
  const normal = d.normal;
  if (!Array.isArray(normal) || !normal.every((v) => typeof v === "number" && Number.isFinite(v))) {
    throw new Error(`${name}: direction.normal must be an array of finite numbers`);
  }
  if (normal.length !== wDim) {
    throw new Error(`${name}: the direction has ${normal.length} dims, this generator's w has ${wDim}`);
  }
  const std = d.projectionStd;
  if (typeof std !== "number" || !(std > 0) || !Number.isFinite(std)) {
    throw new Error(`${name}: direction.projectionStd must be a positive number, got ${std}`);
  }
  return {
    normal,
    projectionStd: std,
    attribute: String(d.attribute ?? "?"),
    trainClass: Number(d.trainClass ?? -1),
  };
}

/** ws + steps * projectionStd * normal (every w moves; the walk of walkDirection and the page's slider). */
export function moveAlong(
  ws: Tensor,
  dir: Pick<SavedDirection, "normal" | "projectionStd">,
  steps: number,
): Tensor {
  const normal = tensor(Float32Array.from(dir.normal), [1, 1, dir.normal.length]);
  return add(ws, mul(normal, steps * dir.projectionStd));
}

/** How an attribute changes over the steps of a walk, from scores [sample][step]. */
export interface WalkMeasures {
  /** Mean over samples at each step. */
  meanByStep: number[];
  /** meanByStep's last minus its first. */
  change: number;
  /** Share of neighbouring steps where the mean rises (1: monotonically increasing). */
  risingSteps: number;
  /** Spearman rank correlation between step and mean score (1: monotone increasing). */
  spearmanOfMean: number;
  /** Mean over samples of each sample's Spearman correlation between step and its score. */
  spearmanPerSample: number;
  /** Share of samples whose score never falls from one step to the next. */
  monotoneSamples: number;
}

/** Average ranks (ties share their mean rank), 0-based. */
function ranks(xs: readonly number[]): number[] {
  const idx = xs.map((_, i) => i).sort((a, b) => xs[a] - xs[b]);
  const r = new Array(xs.length).fill(0);
  for (let i = 0; i < idx.length;) {
    let j = i;
    while (j + 1 < idx.length && xs[idx[j + 1]] === xs[idx[i]]) j++;
    for (let t = i; t <= j; t++) r[idx[t]] = (i + j) / 2;
    i = j + 1;
  }
  return r;
}

/** Spearman rank correlation; 0 when either series is constant (no trend to rank). */
export function spearman(a: readonly number[], b: readonly number[]): number {
  const r = pearson(ranks(a), ranks(b));
  return Number.isNaN(r) ? 0 : r;
}

export function walkMeasures(scores: readonly (readonly number[])[]): WalkMeasures {
  if (!scores.length || scores[0].length < 2) throw new Error("walkMeasures: needs samples with >= 2 steps");
  const steps = scores[0].length, stepIdx = Array.from({ length: steps }, (_, s) => s);
  const meanByStep = stepIdx.map((s) => meanOf(scores.map((row) => row[s])));
  let rising = 0;
  for (let s = 1; s < steps; s++) if (meanByStep[s] > meanByStep[s - 1]) rising++;
  return {
    meanByStep,
    change: meanByStep[steps - 1] - meanByStep[0],
    risingSteps: rising / (steps - 1),
    spearmanOfMean: spearman(stepIdx, meanByStep),
    spearmanPerSample: meanOf(scores.map((row) => spearman(stepIdx, [...row]))),
    monotoneSamples: scores.filter((row) => row.every((v, s) => s === 0 || v >= row[s - 1])).length /
      scores.length,
  };
}

export interface ClassWalk extends WalkMeasures {
  classIndex: number;
  /** Attribute scores [sample][step]. */
  scores: number[][];
}

export interface DirectionWalk {
  /** [classes * n * steps, C, R, R] row-major: per class, per latent, one row over the steps. */
  images: Tensor;
  /** Offsets along the normal in W, in units of the training class's projection std. */
  steps: number[];
  walks: ClassWalk[];
}

/** Moves the ws of z (as each listed class) along the normal by steps * projectionStd and scores them. */
export async function walkDirection(
  G: Generator,
  dir: Pick<LearnedDirection, "normal" | "projectionStd">,
  attribute: Attribute,
  z: Tensor,
  classes: readonly number[],
  steps: readonly number[],
  o: LatentOptions = {},
): Promise<DirectionWalk> {
  if (dir.normal.length !== G.wDim) {
    throw new Error(
      `walkDirection: the direction has ${dir.normal.length} dims, the generator's w ${G.wDim}`,
    );
  }
  if (steps.length < 2) throw new Error("walkDirection: needs at least 2 steps");
  const n = z.shape[0], parts: Tensor[] = [], walks: ClassWalk[] = [];
  try {
    for (const k of classes) {
      const imgs = scope(() => {
        const ws = classWs(G, z, k, o);
        const moved = steps.map((s) => synthesize(G, moveAlong(ws, dir, s), o));
        const rows: Tensor[] = [];
        for (let i = 0; i < n; i++) rows.push(...moved.map((img) => narrow(img, 0, i, 1)));
        return concat(rows, 0);
      });
      parts.push(imgs);
      const flat = await attribute.score(imgs);
      const scores = Array.from(
        { length: n },
        (_, i) => Array.from(flat.subarray(i * steps.length, (i + 1) * steps.length)),
      );
      walks.push({ classIndex: k, scores, ...walkMeasures(scores) });
    }
  } catch (e) {
    for (const p of parts) p.dispose();
    throw e;
  }
  if (parts.length === 1) return { images: parts[0], steps: [...steps], walks };
  const images = scope(() => concat(parts, 0));
  for (const p of parts) p.dispose();
  return { images, steps: [...steps], walks };
}
