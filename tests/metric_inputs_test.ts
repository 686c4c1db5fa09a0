// The metric commands' inputs (cli/inputs.ts, cli/fid.ts, cli/select.ts, cli/generate.ts), run in-process:
// one resolution for both sides, checks before any extraction, the statistics cache keyed by content,
// --ddof and --fid-mode, and one generator resolver. Each test names the defect it guards against.

import { generateCommand } from "../cli/generate.ts";
import { fidCommand, kidCommand, metricsCommand } from "../cli/fid.ts";
import { selectCommand } from "../cli/select.ts";
import { writePng } from "../data/image_io.ts";
import { openDataset } from "../data/open.ts";
import { DcganGenerator } from "../gan/cocktail/dcgan.ts";
import { pixelFeatureNetwork } from "../gan/cocktail/evaluate.ts";
import { chooseRoot, ROOT_RECALL_K } from "../gan/cocktail/root.ts";
import { openSource } from "../gan/cocktail/sources.ts";
import { writeStatsNpz } from "../metrics/sources.ts";
import { encodeNpy } from "../nn/io/npy.ts";
import { gpuTest } from "./harness.ts";

const PKL = "tests/golden/import/network-snapshot.pkl"; // SGA pickle: 8px, RGB, 2 classes

/** Runs a command in-process; returns the JSON of its last stdout line. */
async function json(run: (a: string[]) => Promise<void>, ...args: string[]): Promise<Record<string, any>> {
  const lines: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => lines.push(a.map(String).join(" "));
  try {
    await run([...args, "--json"]);
  } finally {
    console.log = log;
  }
  return JSON.parse(lines[lines.length - 1]);
}

async function fails(p: Promise<unknown>, pattern: RegExp, what: string): Promise<void> {
  try {
    await p;
  } catch (e) {
    if (!pattern.test((e as Error).message)) throw new Error(`${what}: wrong error: ${(e as Error).message}`);
    return;
  }
  throw new Error(`${what}: expected an error matching ${pattern}`);
}

/** A folder of n RGB PNGs of side `size`; `salt` changes the content. */
async function imageFolder(dir: string, n: number, size: number, salt: number): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  for (let i = 0; i < n; i++) {
    const data = new Uint8Array(size * size * 3);
    for (let p = 0; p < data.length; p++) {
      const y = Math.floor(p / (3 * size)), x = Math.floor(p / 3) % size;
      data[p] = ((x * (i + 3) + y * (7 + salt) + (p % 3) * 50 + i * 31 * (salt + 1)) * 2654435761 >>> 24) &
        255;
    }
    await writePng(`${dir}/img${String(i).padStart(2, "0")}.png`, {
      width: size,
      height: size,
      channels: 3,
      data,
    });
  }
  return dir;
}

/** The same images as `src`, stored at `size` by the dataset loader's own resize. */
async function resizedCopy(src: string, dst: string, size: number): Promise<string> {
  const ds = await openDataset(`folder:${src}`, { resolution: size });
  await Deno.mkdir(dst, { recursive: true });
  for (let i = 0; i < ds.size; i++) {
    const chw = ds.image(i), hwc = new Uint8Array(chw.length), plane = size * size;
    for (let p = 0; p < plane; p++) for (let c = 0; c < 3; c++) hwc[p * 3 + c] = chw[c * plane + p];
    await writePng(`${dst}/img${String(i).padStart(2, "0")}.png`, {
      width: size,
      height: size,
      channels: 3,
      data: hwc,
    });
  }
  return dst;
}

gpuTest("metric inputs: two resolutions meet at the smaller one, and the report says which", async () => {
  const dir = await Deno.makeTempDir({ prefix: "metric_res_" });
  const big = await imageFolder(`${dir}/big`, 12, 16, 0);
  const small = await resizedCopy(big, `${dir}/small`, 8);
  // Before: the 16px side entered the network at 16px and the 8px side at 8px, so the same images had a
  // large FID. Now the 16px side is brought to 8px, as the 8px copy was: the sets coincide.
  const r = await json(fidCommand, `folder:${big}`, `folder:${small}`, "--n", "12", "--cache", "none");
  if (r.resolution !== 8) throw new Error(`resolution ${r.resolution}`);
  if (!(Math.abs(r.fid) < 1e-3)) throw new Error(`same images at one resolution: FID ${r.fid}`);
  if (!/brought to 8px/.test(r.a)) throw new Error(`report does not say: ${r.a}`);
  // A generator (8px) against 16px data: metrics at 8px.
  const m = await json(metricsCommand, PKL, `folder:${big}`, "--n", "12", "--subsets", "3");
  if (m.resolution !== 8 || !Number.isFinite(m.fid) || !(m.recall >= 0)) throw new Error(JSON.stringify(m));
  await Deno.remove(dir, { recursive: true });
});

gpuTest("metric inputs: every input is checked before any features are extracted", async () => {
  const dir = await Deno.makeTempDir({ prefix: "metric_check_" });
  const a = await imageFolder(`${dir}/a`, 6, 8, 0);
  const cache = `${dir}/cache`;
  const wrong = `${dir}/wrong.npy`;
  await Deno.writeFile(wrong, encodeNpy({ dtype: "f32", shape: [5, 7], data: new Float32Array(35) }));
  // Before: A's features were extracted (and cached) first, then B failed.
  await fails(fidCommand([`folder:${a}`, `${dir}/missing.npy`, "--cache", cache]), /missing\.npy/, "missing");
  await fails(
    fidCommand([`folder:${a}`, wrong, "--cache", cache]),
    /feature dimensions differ.*128.*7/,
    "dims",
  );
  await fails(fidCommand([`folder:${a}`, `folder:${a}`, "--n", "0"]), /--n must be an integer >= 1/, "n 0");
  await fails(kidCommand([`folder:${a}`, wrong, "--n", "1"]), /--n must be an integer >= 2/, "kid n 1");
  await fails(metricsCommand([PKL, `folder:${dir}/nope`]), /nope/, "missing dataset");
  const cached = await Array.fromAsync(Deno.readDir(cache)).catch(() => []);
  if (cached.length) {
    throw new Error(`features were extracted before the checks: ${cached.map((e) => e.name)}`);
  }
  await Deno.remove(dir, { recursive: true });
});

gpuTest("metric inputs: the statistics cache follows the images, not the spec", async () => {
  const dir = await Deno.makeTempDir({ prefix: "metric_cache_" });
  const a = await imageFolder(`${dir}/a`, 10, 8, 0);
  const b = await imageFolder(`${dir}/b`, 10, 8, 5);
  const cache = `${dir}/cache`;
  const args = [`folder:${a}`, `folder:${b}`, "--n", "10", "--cache", cache];
  const first = await json(fidCommand, ...args);
  const again = await json(fidCommand, ...args);
  if (again.fid !== first.fid || !/cached statistics/.test(again.a)) {
    throw new Error("second run should hit the cache");
  }
  // Replace A's images (same names): before, the old statistics came back.
  await Deno.remove(a, { recursive: true });
  await imageFolder(a, 10, 8, 9);
  const replaced = await json(fidCommand, ...args);
  const fresh = await json(fidCommand, `folder:${a}`, `folder:${b}`, "--n", "10", "--cache", "none");
  if (/cached statistics/.test(replaced.a)) throw new Error(`stale entry used: ${replaced.a}`);
  if (Math.abs(replaced.fid - fresh.fid) > 1e-6 * Math.abs(fresh.fid) || replaced.fid === first.fid) {
    throw new Error(`after replacing images: ${replaced.fid}, uncached ${fresh.fid}, before ${first.fid}`);
  }
  // ddof is part of the key: the N (ddof 0) statistics are not the N-1 ones.
  const d0 = await json(fidCommand, ...args, "--ddof", "0");
  if (/cached statistics/.test(d0.a) || d0.covariance !== "N") {
    throw new Error(`ddof 0: ${JSON.stringify(d0)}`);
  }
  await Deno.remove(dir, { recursive: true });
});

gpuTest("metric inputs: --ddof on metrics and select; FID modes never mix", async () => {
  const dir = await Deno.makeTempDir({ prefix: "metric_ddof_" });
  const a = await imageFolder(`${dir}/a`, 12, 8, 1);
  const m1 = await json(metricsCommand, PKL, `folder:${a}`, "--n", "12", "--subsets", "2");
  const m0 = await json(metricsCommand, PKL, `folder:${a}`, "--n", "12", "--subsets", "2", "--ddof", "0");
  if (m1.covariance !== "N-1" || m0.covariance !== "N" || !(m0.fid !== m1.fid)) {
    throw new Error(`metrics ddof: ${m1.covariance} ${m1.fid} / ${m0.covariance} ${m0.fid}`);
  }
  const s0 = await json(
    selectCommand,
    "--target",
    `folder:${a}`,
    "--candidates",
    PKL,
    "--n",
    "12",
    "--ddof",
    "0",
    "--seed", // metrics draws the generator with seed + 1, select with seed: the same images
    "1",
  );
  if (s0.covariance !== "N" || Math.abs(s0.ranking[0].fid - m0.fid) > 1e-3 * Math.abs(m0.fid)) {
    throw new Error(`select ddof 0: ${s0.covariance} ${s0.ranking[0].fid} vs metrics ${m0.fid}`);
  }
  // Statistics made in another mode are refused, naming it.
  const d = 128, mu = new Float64Array(d), sigma = new Float64Array(d * d);
  for (let i = 0; i < d; i++) sigma[i * d + i] = 1;
  const pt = `${dir}/pt.npz`, tf = `${dir}/tf.npz`;
  await writeStatsNpz(pt, { mu, sigma, n: 1000, ddof: 1, fidMode: "pytorch-fid" });
  await writeStatsNpz(tf, { mu, sigma, n: 1000, ddof: 1, fidMode: "tf" });
  await fails(fidCommand([pt, `folder:${a}`]), /made in FID mode pytorch-fid.*mode tf/, "stats vs images");
  await fails(fidCommand([pt, tf]), /different FID modes \(pytorch-fid vs tf\)/, "stats vs stats");
  await fails(
    fidCommand([`folder:${a}`, `folder:${a}`, "--fid-mode", "pytorch-fid"]),
    /Inception network only/,
    "mnist",
  );
  await Deno.remove(dir, { recursive: true });
});

gpuTest(
  "one generator resolver: run directories, DCGAN snapshots and PATH#CLASS in generate and select",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "metric_gen_" });
    const a = await imageFolder(`${dir}/a`, 8, 8, 2);
    // A run directory: before, select read it as a one-image folder dataset and generate refused it.
    const run = `${dir}/run`;
    await Deno.mkdir(run);
    const { importCommand } = await import("../cli/import.ts");
    const log = console.log;
    console.log = () => {};
    try {
      await importCommand([PKL, "--out", `${run}/snapshot-000000008.safetensors`]);
    } finally {
      console.log = log;
    }
    const g = await json(generateCommand, "--snapshot", run, "--out", `${dir}/g.png`, "--seeds", "0-1");
    if (!g.generator.endsWith("snapshot-000000008.safetensors") || g.resolution !== 8) {
      throw new Error(`generate from a run directory: ${JSON.stringify(g)}`);
    }
    const dc = new DcganGenerator({ resolution: 8, channels: 3, zDim: 8, baseChannels: 8, minChannels: 4 });
    await dc.save(`${dir}/dcgan.safetensors`);
    dc.dispose();
    const gd = await json(
      generateCommand,
      "--snapshot",
      `${dir}/dcgan.safetensors`,
      "--out",
      `${dir}/d.png`,
      "--seeds",
      "0-2",
    );
    if (gd.kind !== "dcgan" || gd.seeds !== 3) {
      throw new Error(
        `generate from a DCGAN snapshot: ${JSON.stringify(gd)}`,
      );
    }
    const s = await json(
      selectCommand,
      "--target",
      `folder:${a}`,
      "--candidates",
      run,
      `${PKL}#1`,
      `${dir}/dcgan.safetensors`,
      "--n",
      "8",
    );
    if (s.ranking.length !== 3 || s.resolution !== 8) throw new Error(`select: ${JSON.stringify(s)}`);
    await fails(
      selectCommand(["--target", `folder:${a}`, "--candidates", `folder:${a}`]),
      /not a generator/,
      "folder",
    );
    await Deno.remove(dir, { recursive: true });
  },
);

gpuTest("--root auto: recall with the pretrained-GAN study's k = 5 unless --k says otherwise", async () => {
  // Before: k was fixed at 3 (SGA's), not the study's 5.
  const sources = [await openSource(`${PKL}#0`), await openSource(`${PKL}#1`)];
  const net = pixelFeatureNetwork(4);
  try {
    const byDefault = await chooseRoot(sources, net, { samplesPerSource: 12 });
    if (byDefault.k !== 5 || ROOT_RECALL_K !== 5) throw new Error(`default k ${byDefault.k}`);
    const k3 = await chooseRoot(sources, net, { samplesPerSource: 12, k: 3 });
    if (k3.k !== 3) throw new Error(`k ${k3.k}`);
    // Smaller radii (k 3) can only shrink the manifolds: recall never grows.
    for (const i of [0, 1]) {
      if (k3.scores[i].recall! > byDefault.scores[i].recall!) {
        throw new Error(`recall grew with smaller k (${i})`);
      }
    }
  } finally {
    net.dispose();
    for (const s of sources) s.dispose();
  }
});

/** Runs a command in-process; returns every line it printed to stdout. */
async function text(run: (a: string[]) => Promise<void>, ...args: string[]): Promise<string[]> {
  const lines: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => lines.push(...a.map(String).join(" ").split("\n"));
  try {
    await run(args);
  } finally {
    console.log = log;
  }
  return lines;
}

// The headline case, with the real trained 16x16 generator of the demo (MNIST digits 0-4) against
// `mnist` (32x32): before, the two sides entered the feature network at different resolutions and gave
// FID 470-720 and recall 0 for every candidate, so `select` ranked at random.
gpuTest(
  "headline case: a trained 16px generator against mnist (32px) in fid, metrics and select",
  async () => {
    const g04 = "assets/demo_sources/mnist04", g59 = "assets/demo_sources/mnist59", n = "128";
    const out = await text(fidCommand, g04, "mnist", "--n", n, "--cache", "none");
    const fid = Number(/^FID ([0-9.]+)/.exec(out[0])?.[1]);
    const printed = out.join("\n");
    if (!/B: dataset mnist .*32px, brought to 16px/.test(printed)) throw new Error(`fid output:\n${printed}`);
    if (!/resolution 16px \(brought down to the smallest input: mnist 32px\)/.test(printed)) {
      throw new Error(`no resolution line:\n${printed}`);
    }
    // All ten digits against a generator of five: 89.8 at n 128 (2026-12-02; 73.7 against its own digits
    // 0-4); far below the mixed-resolution 470-720.
    if (!(fid > 0 && fid < 470)) throw new Error(`fid ${fid}\n${printed}`);
    // Against its own digits (same seeds, n and network) the generator is closer than against all ten.
    const own = await text(fidCommand, g04, "mnist:0-4", "--n", n, "--cache", "none");
    const fidOwn = Number(/^FID ([0-9.]+)/.exec(own[0])?.[1]);
    if (!(fidOwn > 0 && fidOwn < fid)) throw new Error(`fid vs mnist:0-4 ${fidOwn}, vs mnist ${fid}`);
    const m = await json(metricsCommand, g04, "mnist:0-4", "--n", n, "--subsets", "4");
    if (m.resolution !== 16 || !(m.fid > 0 && m.fid < 470) || !(m.recall > 0)) {
      throw new Error(`metrics against its own digits: ${JSON.stringify(m)}`);
    }
    // select at one resolution, on a seeded random subset of the target: the generator of digits 0-4 ranks
    // first for the target mnist:0-4. Before the subset was random, every dataset gave its first n images
    // (MNIST is stored in class order: all zeros), and select put mnist59 first here.
    const s = await json(selectCommand, "--target", "mnist:0-4", "--candidates", g59, g04, "--n", n);
    if (s.resolution !== 16 || s.ranking.length !== 2) throw new Error(`select: ${JSON.stringify(s)}`);
    for (const c of s.ranking) {
      if (!(c.fid > 0 && c.fid < 470 && c.recall > 0)) {
        throw new Error(`select: ${JSON.stringify(s.ranking)}`);
      }
    }
    const byName = (g: string) => s.ranking.find((c: { candidate: string }) => c.candidate === g);
    if (s.ranking[0].candidate !== g04 || !(byName(g04).fid < byName(g59).fid)) {
      throw new Error(`select should rank ${g04} first for mnist:0-4: ${JSON.stringify(s.ranking)}`);
    }
    const [best, other] = s.ranking;
    console.log(
      `headline case, n ${n}: fid(mnist04, mnist) ${fid.toFixed(1)}, vs mnist:0-4 ${
        fidOwn.toFixed(1)
      }; metrics vs mnist:0-4 FID ${m.fid.toFixed(1)} recall ${
        m.recall.toFixed(3)
      }; select ${best.candidate} FID ${best.fid.toFixed(1)} recall ${
        best.recall.toFixed(3)
      }, ${other.candidate} FID ${other.fid.toFixed(1)} recall ${other.recall.toFixed(3)}`,
    );
  },
);
