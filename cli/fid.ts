// Metric commands: fid, kid, pr (precision/recall) and metrics (all of them for a generator against data).
// An input is a .npz of statistics, a .npy of features [n, d], a generator snapshot (.safetensors / .pkl)
// or a dataset spec (mnist, emoji:google, folder:PATH, zip:PATH, ...). Every report names the feature
// network and the covariance normalisation.

import { initGPU } from "../kernels/runtime.ts";
import { openDataset } from "../data/open.ts";
import { loadNetworks } from "../gan/train/networks.ts";
import { type FeatureNetwork, loadFeatureNetwork } from "../metrics/features/index.ts";
import { fidFromStats, type FidStats, statsFromFeatures } from "../metrics/fid.ts";
import { kid } from "../metrics/kid.ts";
import { precisionRecall } from "../metrics/precision_recall.ts";
import { extractFeatures, type ImageSource, readStatsNpz, sourceStats } from "../metrics/sources.ts";
import { parseNpy } from "../nn/io/npy.ts";
import { toFloat32 } from "../nn/io/host.ts";
import { Generator as Rng } from "../nn/creation.ts";
import { num, parse, report } from "./args.ts";
import { Progress } from "./progress.ts";

interface Features {
  data: Float32Array;
  n: number;
  d: number;
}

const isNpy = (p: string) => p.toLowerCase().endsWith(".npy");
const isNpz = (p: string) => p.toLowerCase().endsWith(".npz");
const isSnapshot = (p: string) => /\.(safetensors|pkl)$/i.test(p);

async function readFeaturesNpy(path: string): Promise<Features> {
  let a;
  try {
    a = parseNpy(await Deno.readFile(path));
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
  if (a.shape.length !== 2) throw new Error(`${path}: expected features [n, d], got shape [${a.shape}]`);
  const data = toFloat32(a);
  const bad = data.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new Error(`${path}: non-finite value at row ${Math.floor(bad / a.shape[1])}`);
  return { data, n: a.shape[0], d: a.shape[1] };
}

/** An image source for a snapshot or dataset spec, with a description for reports. */
async function imageSource(
  spec: string,
  seed: number,
): Promise<{ source: ImageSource; what: string; max: number }> {
  if (isSnapshot(spec)) {
    const nets = await loadNetworks(spec);
    const G = nets.Gema;
    const rng = new Rng(seed);
    const classes = G.cDim;
    let drawn = 0;
    return {
      what: `generator ${spec} (G_ema, psi 1${classes ? `, ${classes} classes uniform` : ""})`,
      max: Infinity,
      source: (n) => {
        const labels = classes ? Array.from({ length: n }, (_, i) => (drawn + i) % classes) : null;
        drawn += n;
        return G.sample(n, labels, { generator: rng });
      },
    };
  }
  const ds = await openDataset(spec);
  let next = 0;
  return {
    what: `dataset ${ds.name} (${ds.size} images, ${ds.resolution}px)`,
    max: ds.size,
    source: (n) => {
      const idx = Array.from({ length: n }, (_, i) => (next + i) % ds.size);
      next += n;
      const b = ds.batch(idx);
      b.labels?.dispose();
      return b.images;
    },
  };
}

async function statsOf(
  spec: string,
  net: () => Promise<FeatureNetwork>,
  n: number,
  ddof: 0 | 1,
  seed: number,
  cacheDir: string | null = null,
): Promise<{ stats: FidStats; what: string; d: number }> {
  if (isNpz(spec)) {
    const s = await readStatsNpz(spec);
    return { stats: s, what: `statistics ${spec}${s.n ? ` (n ${s.n})` : ""}`, d: s.mu.length };
  }
  if (isNpy(spec)) {
    const f = await readFeaturesNpy(spec);
    return { stats: await statsFromFeatures(f.data, f.n, f.d, { ddof }), what: `features ${spec}`, d: f.d };
  }
  const fn = await net();
  const src = await imageSource(spec, seed);
  const count = Math.min(n, src.max);
  // Real datasets are cached (pytorch-fid's npz plus n and ddof); generators are sampled anew.
  const cachePath = cacheDir && !isSnapshot(spec)
    ? `${cacheDir}/${spec.replace(/[^A-Za-z0-9._-]+/g, "_")}__${
      fn.name.replace(/[^A-Za-z0-9._-]+/g, "_")
    }__n${count}.npz`
    : undefined;
  if (cachePath) await Deno.mkdir(cacheDir!, { recursive: true });
  const bar = new Progress(`features ${spec}`.slice(0, 30), count, "img");
  const stats = await sourceStats(src.source, count, fn, {
    ddof,
    cachePath,
    onProgress: (k) => bar.update(k),
  });
  bar.done();
  return { stats, what: `${src.what}, ${count} images`, d: fn.dim };
}

export async function featuresOf(
  spec: string,
  net: () => Promise<FeatureNetwork>,
  n: number,
  seed: number,
): Promise<Features> {
  if (isNpy(spec)) return await readFeaturesNpy(spec);
  if (isNpz(spec)) {
    throw new Error(`${spec}: KID and precision/recall need features (.npy) or images, not statistics`);
  }
  const fn = await net();
  const src = await imageSource(spec, seed);
  const count = Math.min(n, src.max);
  const bar = new Progress(`features ${spec}`.slice(0, 30), count, "img");
  const data = await extractFeatures(src.source, count, fn, { onProgress: (k) => bar.update(k) });
  bar.done();
  return { data, n: count, d: fn.dim };
}

export function lazyNet(spec: string): { get: () => Promise<FeatureNetwork>; name: () => string } {
  let p: Promise<FeatureNetwork> | null = null;
  let name = "none (inputs were features or statistics)";
  return {
    get: () => (p ??= loadFeatureNetwork(spec).then((n) => ((name = n.name), n))),
    name: () => name,
  };
}

const INPUTS = "A and B are .npz statistics (mu, sigma), .npy features [n, d], generator snapshots\n" +
  "(.safetensors from `train`, or SGA .pkl) or dataset specs (mnist, mnist:0-4, emoji:google, folder:PATH, zip:PATH).";

const COMMON = {
  features: {
    type: "string" as const,
    help: "feature network: mnist | inception:PATH | vgg16:PATH | PATH",
    default: "mnist",
  },
  n: { type: "string" as const, help: "images per generator/dataset", default: "10000" },
  seed: { type: "string" as const, help: "seed for generator samples", default: "0" },
  json: { type: "boolean" as const, help: "print one JSON object as the last line" },
};

export async function fidCommand(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, `usage: cli.ts fid A B [options]\n\n${INPUTS}`, {
    ...COMMON,
    ddof: {
      type: "string",
      help: "covariance normalisation: 1 divides by N-1, 0 by N (as SGA)",
      default: "1",
    },
    "host64": { type: "boolean", help: "compute the matrix square root in float64 on the host" },
    cache: {
      type: "string",
      help: "directory caching real datasets' statistics ('none' disables)",
      default: "runs/stats-cache",
    },
  });
  if (positionals.length !== 2) throw new Error("fid needs two inputs (see --help)");
  const ddof = num(values.ddof, "ddof");
  if (ddof !== 0 && ddof !== 1) throw new Error("--ddof must be 0 or 1");
  await initGPU();
  const net = lazyNet(String(values.features));
  const n = num(values.n, "n"), seed = num(values.seed, "seed");
  const cache = values.cache === "none" ? null : String(values.cache);
  const a = await statsOf(positionals[0], net.get, n, ddof as 0 | 1, seed, cache);
  const b = await statsOf(positionals[1], net.get, n, ddof as 0 | 1, seed + 1, cache);
  if (a.d !== b.d) throw new Error(`feature dimensions differ: ${a.d} vs ${b.d}`);
  const r = await fidFromStats(a.stats, b.stats, a.d, { method: values.host64 ? "host64" : "gpu" });
  const ddofText = r.ddof === "unknown" ? "unknown (the statistics do not say)" : r.ddof === 1 ? "N-1" : "N";
  report(
    { fid: r.fid, featureNetwork: net.name(), covariance: ddofText, a: a.what, b: b.what, details: r },
    !!values.json,
    `FID ${
      r.fid.toFixed(4)
    }\n  A: ${a.what}\n  B: ${b.what}\n  feature network: ${net.name()}; covariance divided by ${ddofText}; sqrtm ${r.method}`,
  );
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
  await initGPU();
  const net = lazyNet(String(values.features));
  const n = num(values.n, "n"), seed = num(values.seed, "seed");
  const a = await featuresOf(positionals[0], net.get, n, seed);
  const b = await featuresOf(positionals[1], net.get, n, seed + 1);
  if (a.d !== b.d) throw new Error(`feature dimensions differ: ${a.d} vs ${b.d}`);
  const r = await kid(a.data, a.n, b.data, b.n, a.d, {
    subsets: num(values.subsets, "subsets"),
    maxSubsetSize: num(values["subset-size"], "subset-size"),
    seed,
  });
  report(
    { kid: r.kid, std: r.std, subsets: r.subsets, subsetSize: r.subsetSize, featureNetwork: net.name() },
    !!values.json,
    `KID ${r.kid.toExponential(4)} +- ${
      r.std.toExponential(2)
    } (${r.subsets} subsets of ${r.subsetSize}; ${net.name()})`,
  );
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
  await initGPU();
  const net = lazyNet(String(values.features));
  const n = num(values.n, "n"), seed = num(values.seed, "seed"), k = num(values.k, "k");
  const real = await featuresOf(positionals[0], net.get, n, seed);
  const fake = await featuresOf(positionals[1], net.get, n, seed + 1);
  if (real.d !== fake.d) throw new Error(`feature dimensions differ: ${real.d} vs ${fake.d}`);
  const r = await precisionRecall(real.data, real.n, fake.data, fake.n, real.d, { k });
  report(
    { precision: r.precision, recall: r.recall, k, featureNetwork: net.name() },
    !!values.json,
    `precision ${r.precision.toFixed(4)}  recall ${r.recall.toFixed(4)}  (k ${k}; ${net.name()})`,
  );
}

export async function metricsCommand(args: string[]): Promise<void> {
  const { values, positionals } = parse(
    args,
    "usage: cli.ts metrics SNAPSHOT DATASET [options]\n\nFID, KID, precision and recall of a generator's images against a dataset.",
    {
      ...COMMON,
      k: { type: "string", help: "k for precision/recall", default: "3" },
      subsets: { type: "string", help: "KID subsets", default: "100" },
    },
  );
  if (positionals.length !== 2) throw new Error("metrics needs SNAPSHOT and DATASET (see --help)");
  await initGPU();
  const net = lazyNet(String(values.features));
  const n = num(values.n, "n"), seed = num(values.seed, "seed"), k = num(values.k, "k");
  const real = await featuresOf(positionals[1], net.get, n, seed);
  const fake = await featuresOf(positionals[0], net.get, n, seed + 1);
  const [sr, sf] = await Promise.all([
    statsFromFeatures(real.data, real.n, real.d, { ddof: 1 }),
    statsFromFeatures(fake.data, fake.n, fake.d, { ddof: 1 }),
  ]);
  const f = await fidFromStats(sr, sf, real.d);
  const kd = await kid(real.data, real.n, fake.data, fake.n, real.d, {
    subsets: num(values.subsets, "subsets"),
    seed,
  });
  const pr = await precisionRecall(real.data, real.n, fake.data, fake.n, real.d, { k });
  const result = {
    fid: f.fid,
    kid: kd.kid,
    precision: pr.precision,
    recall: pr.recall,
    k,
    nReal: real.n,
    nFake: fake.n,
    featureNetwork: net.name(),
    covariance: "N-1",
  };
  report(
    result,
    !!values.json,
    `FID ${f.fid.toFixed(3)}  KID ${kd.kid.toExponential(3)}  precision ${pr.precision.toFixed(3)}  recall ${
      pr.recall.toFixed(3)
    }\n  ${fake.n} generated vs ${real.n} real; feature network ${net.name()}; covariance N-1; k ${k}`,
  );
}
