// Metric commands: fid, kid, pr (precision/recall) and metrics (all of them for a generator against data).
// Inputs are opened and checked first (cli/inputs.ts), image inputs meet at one resolution, and only then
// are features extracted. Every report names the feature network, the FID mode, the resolution and the
// covariance normalisation.

import { initGPU } from "../kernels/runtime.ts";
import { type FeatureNetwork, loadFeatureNetwork } from "../metrics/features/index.ts";
import { type FidMode, parseFidMode } from "../metrics/features/resize.ts";
import { fidFromStats, type FidResult, type FidStats, statsFromFeatures } from "../metrics/fid.ts";
import { kid, kidReport } from "../metrics/kid.ts";
import { precisionRecall } from "../metrics/precision_recall.ts";
import { extractFeatures, sourceStats } from "../metrics/sources.ts";
import { num, parse, report } from "./args.ts";
import {
  commonResolution,
  disposeInputs,
  type ImagesInput,
  type MetricInput,
  openInputs,
  positiveCount,
} from "./inputs.ts";
import { Progress } from "./progress.ts";

export interface Features {
  data: Float32Array;
  n: number;
  d: number;
  what: string;
}

/** What the commands share once the inputs are open: the network, the resolution and the settings. */
export interface MetricPlan {
  inputs: MetricInput[];
  /** Loaded only when an input is images. */
  net: FeatureNetwork | null;
  resolution: number | null;
  resolutionNote: string;
  fidMode: FidMode;
  n: number;
  seed: number;
}

/**
 * Opens every input, loads the feature network when images need it, and checks what can be checked before
 * any extraction: counts, feature dimensions, FID modes of statistics, one resolution.
 */
export async function planMetrics(
  specs: string[],
  o: { features: string; fidMode: FidMode; n: number; seed: number; need: "stats" | "features" },
): Promise<MetricPlan> {
  positiveCount(o.n, "n", o.need === "features" ? 2 : 1);
  const inputs = await openInputs(specs);
  try {
    if (o.need === "features") {
      const s = inputs.find((i) => i.kind === "stats");
      if (s) {
        throw new Error(`${s.spec}: KID and precision/recall need features (.npy) or images, not statistics`);
      }
    }
    for (const i of inputs) {
      if (i.kind === "stats" && i.stats.fidMode && i.stats.fidMode !== o.fidMode) {
        if (inputs.some((j) => j.kind === "images")) {
          throw new Error(
            `${i.spec} was made in FID mode ${i.stats.fidMode}, this run extracts in mode ${o.fidMode}: ` +
              `pass --fid-mode ${i.stats.fidMode} or remake the statistics`,
          );
        }
      }
    }
    const { resolution, note } = commonResolution(inputs);
    const net = inputs.some((i) => i.kind === "images")
      ? await loadFeatureNetwork(o.features, { fidMode: o.fidMode })
      : null;
    const dims = inputs.map((i) => i.kind === "images" ? net!.dim : i.d);
    const who = inputs.map((i) => i.kind === "images" ? `${i.spec} (through ${net!.name})` : i.spec);
    for (let k = 1; k < dims.length; k++) {
      if (dims[k] !== dims[0]) {
        net?.dispose();
        throw new Error(`feature dimensions differ: ${who[0]} has ${dims[0]}, ${who[k]} has ${dims[k]}`);
      }
    }
    return { inputs, net, resolution, resolutionNote: note, fidMode: o.fidMode, n: o.n, seed: o.seed };
  } catch (e) {
    disposeInputs(inputs);
    throw e;
  }
}

export function disposePlan(p: MetricPlan): void {
  disposeInputs(p.inputs);
  p.net?.dispose();
}

/** The FID mode as reports give it. */
export function fidModeText(p: MetricPlan): string {
  if (!p.net) return "as the inputs were made";
  if (p.net.fidMode === undefined) return `n/a (${p.net.name} has its own preprocessing)`;
  return p.net.fidMode === "tf"
    ? "tf (TF1 resize, (x-128)/128; as SGA)"
    : "pytorch-fid (half-pixel resize, x/127.5-1)";
}

async function sha256(text: string): Promise<string> {
  const h = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  return Array.from(h.slice(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Cache file of a dataset's statistics, named by everything they depend on (content included). */
export async function statsCachePath(
  dir: string,
  input: ImagesInput,
  net: FeatureNetwork,
  o: { resolution: number; ddof: 0 | 1; n: number; seed: number },
): Promise<string | null> {
  const fingerprint = await input.fingerprint();
  if (fingerprint === null) return null;
  const key = JSON.stringify({
    fingerprint,
    network: net.name,
    fidMode: net.fidMode ?? "tf",
    resolution: o.resolution,
    ddof: o.ddof,
    n: o.n,
    // Which images: a seeded subset when n < size, all of them otherwise.
    subset: o.n < input.max ? `seed ${o.seed}` : "all",
  });
  return `${dir}/${input.spec.replace(/[^A-Za-z0-9._-]+/g, "_").slice(0, 60)}__${await sha256(key)}.npz`;
}

function drawCount(p: MetricPlan, input: ImagesInput): number {
  return Math.min(p.n, input.max);
}

/** Statistics of one input (a file's as read; images' through the network, cached for datasets). */
export async function statsOfInput(
  p: MetricPlan,
  input: MetricInput,
  o: { ddof: 0 | 1; seed: number; cacheDir: string | null },
): Promise<{ stats: FidStats; what: string }> {
  if (input.kind === "stats") {
    const s = input.stats;
    return {
      stats: s,
      what: `statistics ${input.spec}${s.n ? ` (n ${s.n})` : ""}${
        s.fidMode ? `, mode ${s.fidMode}` : ", mode unknown"
      }${s.resolution ? `, ${s.resolution}px` : ", resolution unknown"}`,
    };
  }
  if (input.kind === "features") {
    return {
      stats: await statsFromFeatures(input.data, input.n, input.d, { ddof: o.ddof }),
      what: `features ${input.spec} (${input.n})`,
    };
  }
  const net = p.net!, res = p.resolution!, count = drawCount(p, input);
  const cachePath = o.cacheDir
    ? await statsCachePath(o.cacheDir, input, net, { resolution: res, ddof: o.ddof, n: count, seed: o.seed })
    : null;
  if (cachePath) await Deno.mkdir(o.cacheDir!, { recursive: true });
  const bar = new Progress(`features ${input.spec}`.slice(0, 30), count, "img");
  const stats = await sourceStats(await input.sampler(res, o.seed), count, net, {
    ddof: o.ddof,
    cachePath: cachePath ?? undefined,
    resolution: res,
    onProgress: (k) => bar.update(k),
  });
  bar.done();
  return {
    stats,
    what: `${input.describe(res)}, ${count} images${stats.cached ? " (cached statistics)" : ""}`,
  };
}

/** Features of one input (a .npy's as read; images' through the network). */
export async function featuresOfInput(p: MetricPlan, input: MetricInput, seed: number): Promise<Features> {
  if (input.kind === "features") return { ...input, what: `features ${input.spec} (${input.n})` };
  if (input.kind === "stats") throw new Error(`${input.spec}: statistics have no per-sample features`);
  const net = p.net!, res = p.resolution!, count = drawCount(p, input);
  const bar = new Progress(`features ${input.spec}`.slice(0, 30), count, "img");
  const data = await extractFeatures(await input.sampler(res, seed), count, net, {
    onProgress: (k) => bar.update(k),
  });
  bar.done();
  return { data, n: count, d: net.dim, what: `${input.describe(res)}, ${count} images` };
}

export function ddofOption(v: unknown): 0 | 1 {
  const ddof = num(v as string, "ddof");
  if (ddof !== 0 && ddof !== 1) throw new Error(`--ddof must be 0 or 1, got ${ddof}`);
  return ddof;
}

export function ddofText(r: FidResult): string {
  return r.ddof === "unknown" ? "unknown (the statistics do not say)" : r.ddof === 1 ? "N-1" : "N";
}

/** One line on how FID's square root was taken (and a fallback, when there was one). */
export function sqrtmText(r: FidResult): string {
  return r.fallback ? `sqrtm ${r.method}: ${r.fallback}` : `sqrtm ${r.method}`;
}

const INPUTS = "A and B are .npz statistics (mu, sigma), .npy features [n, d], generators (a snapshot\n" +
  ".safetensors, a run directory = its latest snapshot, an SGA .pkl, a DCGAN snapshot, PATH#CLASS) or dataset\n" +
  "specs (mnist, mnist:0-4, emoji:google, folder:PATH, zip:PATH). Image inputs are compared at one resolution\n" +
  "(a statistics file's, else the smallest input's), and the report says which.";

export const COMMON = {
  features: {
    type: "string" as const,
    help: "feature network: mnist | inception:PATH | vgg16:PATH | PATH",
    default: "mnist",
  },
  "fid-mode": {
    type: "string" as const,
    help:
      "FID preprocessing (Inception): tf (TF1 resize, (x-128)/128; SGA) | pytorch-fid (half-pixel, x/127.5-1)",
    default: "tf",
  },
  n: { type: "string" as const, help: "images per generator/dataset", default: "10000" },
  seed: { type: "string" as const, help: "seed for generator samples", default: "0" },
  json: { type: "boolean" as const, help: "print one JSON object as the last line" },
};

export const DDOF_OPTION = {
  type: "string" as const,
  help: "covariance normalisation: 1 divides by N-1, 0 by N (as SGA)",
  default: "1",
};

function planOptions(values: Record<string, string | boolean | undefined>, need: "stats" | "features") {
  return {
    features: String(values.features),
    fidMode: parseFidMode(values["fid-mode"]),
    n: num(values.n, "n"),
    seed: num(values.seed, "seed"),
    need,
  };
}

export async function fidCommand(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, `usage: cli.ts fid A B [options]\n\n${INPUTS}`, {
    ...COMMON,
    ddof: DDOF_OPTION,
    "host64": { type: "boolean", help: "compute the matrix square root in float64 on the host" },
    cache: {
      type: "string",
      help: "directory caching datasets' statistics, keyed by content ('none' disables)",
      default: "runs/stats-cache",
    },
  });
  if (positionals.length !== 2) throw new Error("fid needs two inputs (see --help)");
  const ddof = ddofOption(values.ddof);
  const o = planOptions(values, "stats");
  await initGPU();
  const p = await planMetrics(positionals, o);
  try {
    const cacheDir = values.cache === "none" ? null : String(values.cache);
    const a = await statsOfInput(p, p.inputs[0], { ddof, seed: o.seed, cacheDir });
    const b = await statsOfInput(p, p.inputs[1], { ddof, seed: o.seed + 1, cacheDir });
    const d = a.stats.mu.length;
    const r = await fidFromStats(a.stats, b.stats, d, { method: values.host64 ? "host64" : "gpu" });
    const net = p.net?.name ?? "none (inputs were features or statistics)";
    report(
      {
        fid: r.fid,
        featureNetwork: net,
        fidMode: p.net?.fidMode ?? null,
        resolution: p.resolution,
        covariance: ddofText(r),
        a: a.what,
        b: b.what,
        details: r,
      },
      !!values.json,
      `FID ${r.fid.toFixed(4)}\n  A: ${a.what}\n  B: ${b.what}\n  feature network: ${net}; FID mode ${
        fidModeText(p)
      }; resolution ${p.resolutionNote}; covariance divided by ${ddofText(r)}; ${sqrtmText(r)}`,
    );
  } finally {
    disposePlan(p);
  }
}

export async function kidCommand(args: string[]): Promise<void> {
  const { values, positionals } = parse(
    args,
    `usage: cli.ts kid A B [options]\n\n${INPUTS.replace(".npz statistics (mu, sigma), ", "")}`,
    {
      ...COMMON,
      subsets: { type: "string", help: "number of subsets", default: "100" },
      "subset-size": {
        type: "string",
        help: "samples per subset (all when larger than the data)",
        default: "1000",
      },
    },
  );
  if (positionals.length !== 2) throw new Error("kid needs two inputs (see --help)");
  const subsets = positiveCount(num(values.subsets, "subsets"), "subsets");
  const subsetSize = positiveCount(num(values["subset-size"], "subset-size"), "subset-size", 2);
  const o = planOptions(values, "features");
  await initGPU();
  const p = await planMetrics(positionals, o);
  try {
    const a = await featuresOfInput(p, p.inputs[0], o.seed);
    const b = await featuresOfInput(p, p.inputs[1], o.seed + 1);
    const r = kidReport(
      await kid(a.data, a.n, b.data, b.n, a.d, { subsets, maxSubsetSize: subsetSize, seed: o.seed }),
    );
    const net = p.net?.name ?? "features as given";
    report(
      { ...r, featureNetwork: net, fidMode: p.net?.fidMode ?? null, resolution: p.resolution },
      !!values.json,
      `${r.text}\n  A: ${a.what}\n  B: ${b.what}\n  feature network: ${net}; mode ${
        fidModeText(p)
      }; resolution ${p.resolutionNote}`,
    );
  } finally {
    disposePlan(p);
  }
}

export async function prCommand(args: string[]): Promise<void> {
  const { values, positionals } = parse(
    args,
    `usage: cli.ts pr REAL FAKE [options]\n\nImproved precision and recall (Kynkaanniemi et al. 2019).\n${
      INPUTS.replace(".npz statistics (mu, sigma), ", "")
    }`,
    {
      ...COMMON,
      k: {
        type: "string",
        help: "k-th nearest neighbour for the radii (SGA 3; the pretrained-GAN study 5)",
        default: "3",
      },
    },
  );
  if (positionals.length !== 2) throw new Error("pr needs REAL and FAKE inputs (see --help)");
  const k = positiveCount(num(values.k, "k"), "k");
  const o = planOptions(values, "features");
  await initGPU();
  const p = await planMetrics(positionals, o);
  try {
    const real = await featuresOfInput(p, p.inputs[0], o.seed);
    const fake = await featuresOfInput(p, p.inputs[1], o.seed + 1);
    const r = await precisionRecall(real.data, real.n, fake.data, fake.n, real.d, { k });
    const net = p.net?.name ?? "features as given";
    report(
      { precision: r.precision, recall: r.recall, k, featureNetwork: net, resolution: p.resolution },
      !!values.json,
      `precision ${r.precision.toFixed(4)}  recall ${
        r.recall.toFixed(4)
      }  (k ${k}; ${net}; resolution ${p.resolutionNote})`,
    );
  } finally {
    disposePlan(p);
  }
}

export async function metricsCommand(args: string[]): Promise<void> {
  const { values, positionals } = parse(
    args,
    "usage: cli.ts metrics GENERATOR DATASET [options]\n\nFID, KID, precision and recall of a generator's images " +
      "against a dataset, at one resolution\n(the smaller of the two; the report says which).",
    {
      ...COMMON,
      ddof: DDOF_OPTION,
      k: { type: "string", help: "k for precision/recall", default: "3" },
      subsets: { type: "string", help: "KID subsets", default: "100" },
    },
  );
  if (positionals.length !== 2) throw new Error("metrics needs GENERATOR and DATASET (see --help)");
  const ddof = ddofOption(values.ddof);
  const k = positiveCount(num(values.k, "k"), "k");
  const subsets = positiveCount(num(values.subsets, "subsets"), "subsets");
  const o = planOptions(values, "features");
  await initGPU();
  const p = await planMetrics([positionals[1], positionals[0]], o);
  try {
    const real = await featuresOfInput(p, p.inputs[0], o.seed);
    const fake = await featuresOfInput(p, p.inputs[1], o.seed + 1);
    const sr = await statsFromFeatures(real.data, real.n, real.d, { ddof });
    const sf = await statsFromFeatures(fake.data, fake.n, fake.d, { ddof });
    const f = await fidFromStats(sr, sf, real.d);
    const kd = kidReport(await kid(real.data, real.n, fake.data, fake.n, real.d, { subsets, seed: o.seed }));
    const pr = await precisionRecall(real.data, real.n, fake.data, fake.n, real.d, { k });
    const net = p.net?.name ?? "features as given";
    const result = {
      fid: f.fid,
      kid: kd.kid,
      kidStd: kd.std,
      kidSubsets: kd.subsets,
      kidSubsetSize: kd.subsetSize,
      precision: pr.precision,
      recall: pr.recall,
      k,
      nReal: real.n,
      nFake: fake.n,
      featureNetwork: net,
      fidMode: p.net?.fidMode ?? null,
      resolution: p.resolution,
      covariance: ddofText(f),
      sqrtm: sqrtmText(f),
    };
    report(
      result,
      !!values.json,
      `FID ${f.fid.toFixed(3)}  ${kd.text}\nprecision ${pr.precision.toFixed(3)}  recall ${
        pr.recall.toFixed(3)
      }\n` +
        `  generated: ${fake.what}\n  real: ${real.what}\n  feature network ${net}; FID mode ${
          fidModeText(p)
        }; ` +
        `resolution ${p.resolutionNote}; covariance divided by ${ddofText(f)}; ${sqrtmText(f)}; k ${k}`,
    );
  } finally {
    disposePlan(p);
  }
}
