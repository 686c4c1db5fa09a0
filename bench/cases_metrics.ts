// Benchmark rows for the GAN metrics: FID's tr sqrtm(S1 S2) against scipy.linalg.sqrtm, the k-NN radii of
// precision/recall against torch.cdist + kthvalue, and feature extraction (mnist-cnn-128; Inception-v3
// only when GC_INCEPTION names a weight file) against the same network in torch. Peers live in
// peers/metrics_peer.py. `--quick` (read from Deno.args, as main.ts parses it) drops the d = 2048 FID row.
//
// FID and k-NN read back from the GPU mid-run (pivot ranks, convergence checks, per-chunk results), while
// the harness times "record N runs, then rt.sync()". asyncRun() bridges the two: a run chains the async
// job onto a promise, and while the case is set up, gpu().sync and gpu().read of the case's output wait
// for that chain first. So a timed sample covers the whole job, read-backs included; dispose() restores
// the runtime's own methods. The first (checked, untimed) run also does one-off setup such as statistics.

import { kthNearestSqDist, uploadFeatures } from "../kernels/knn.ts";
import { gpu } from "../kernels/runtime.ts";
import { fidFromStats, type FidStats, statsFromFeatures } from "../metrics/fid.ts";
import { loadFeatureNetwork } from "../metrics/features/index.ts";
import { MNIST_ASSET, MnistNet } from "../metrics/features/mnist_net.ts";
import { noGrad } from "../nn/autograd.ts";
import { parseSafetensors } from "../nn/io/safetensors.ts";
import { fromHost, type Tensor } from "../nn/tensor.ts";
import { type Case, caseInput, type OursRun, torchPeer } from "./harness.ts";

const QUICK = Deno.args.includes("--quick");
const PEER = "__import__('metrics_peer')";

/** An OursRun whose runs are async jobs; gpu().sync / gpu().read(output) wait for them (see header). */
function asyncRun(job: () => Promise<void>, output: GPUBuffer, cleanup?: () => void): OursRun {
  const rt = gpu();
  const patched = rt as unknown as Record<string, unknown>;
  const { sync, read } = rt;
  let pending: Promise<void> = Promise.resolve();
  patched.sync = async () => {
    await pending;
    await sync.call(rt);
  };
  // Only reads of the case's output wait: the job's own read-backs must not wait for themselves.
  patched.read = async (src: GPUBuffer, bytes: number, offset?: number) => {
    if (src === output) await pending;
    return read.call(rt, src, bytes, offset);
  };
  return {
    run: () => {
      pending = pending.then(job);
    },
    output,
    dispose: () => {
      delete patched.sync; // back to the prototype's methods
      delete patched.read;
      cleanup?.();
    },
  };
}

/** The FID rows' second feature set: column j times 1 + (j % 4) / 2, plus 0.25 (metrics_peer.py does the same). */
function fidSecondFeatures(b: Float32Array, d: number): Float32Array {
  const out = new Float32Array(b.length);
  for (let i = 0; i < b.length; i++) out[i] = b[i] * (1 + (i % d % 4) * 0.5) + 0.25;
  return out;
}

/** FID from the statistics of two random n = 2d feature sets; the timed part is fidFromStats. */
function fidCase(d: number): Case {
  const n = 2 * d;
  const c: Case = {
    name: `fid sqrtm d${d} (per FID)`,
    group: "metrics",
    unit: "us",
    work: 1,
    inputs: [[n, d], [n, d]],
    output: [1],
    ours: (_inputs, out) => {
      let stats: [FidStats, FidStats] | null = null;
      let logged = false;
      return asyncRun(async () => {
        stats ??= [
          await statsFromFeatures(caseInput(c, 0), n, d),
          await statsFromFeatures(fidSecondFeatures(caseInput(c, 1), d), n, d),
        ];
        const r = await fidFromStats(stats[0], stats[1], d);
        if (!logged) {
          console.log(
            `    ${c.name}: FID ${r.fid.toPrecision(10)}, tr sqrtm ${r.traceSqrt.toPrecision(10)}, ` +
              `ranks ${r.rank1}/${r.rank2}, ${r.iterations} polar iterations`,
          );
          logged = true;
        }
        gpu().upload(out, new Float32Array([r.fid]));
      }, out);
    },
    peers: { "scipy-cpu": torchPeer(`lambda a, b: ${PEER}.fid_scipy(a, b)`) },
  };
  return c;
}

/** Squared distance to the 3rd nearest neighbour of every point, as improved precision/recall needs. */
function knnCase(n: number, d: number, k: number): Case {
  const c: Case = {
    name: `knn k${k} ${n}x${n} ${d}d (2n^2d flop)`,
    group: "metrics",
    unit: "GFLOP/s",
    work: 2 * n * n * d, // the distance GEMM; distances/s = GFLOP/s * 1e9 / (2d)
    inputs: [[n, d]],
    output: [n],
    ours: (_inputs, out) => {
      const set = uploadFeatures(caseInput(c, 0), n, d);
      return asyncRun(
        async () => {
          gpu().upload(out, await kthNearestSqDist(set, k));
        },
        out,
        () => set.dispose(),
      );
    },
    peers: { "torch": torchPeer(`lambda x: ${PEER}.knn_kth_sq(x, ${k})`) },
  };
  return c;
}

/** Uniform [-1, 1) case input as 0..255 images. */
function imagesFrom(u: Float32Array, shape: number[]): Tensor {
  return fromHost(u.map((v) => (v + 1) * 127.5), shape, "f32");
}

/** mnist-cnn-128 with the bundled weights on a batch of 32x32 gray images; us per image. */
function mnistFeaturesCase(batch: number): Case {
  const shape = [batch, 1, 32, 32];
  const c: Case = {
    name: `mnist-cnn-128 features b${batch} 32x32 (per image)`,
    group: "metrics",
    unit: "us",
    work: batch,
    inputs: [shape],
    output: [batch, 128],
    ours: (_inputs, out) => {
      const arrays = parseSafetensors(Deno.readFileSync(MNIST_ASSET)).tensors;
      const net = noGrad(() => MnistNet.fromArrays(arrays, "the bundled asset"));
      const images = imagesFrom(caseInput(c, 0), shape);
      return {
        run: () => {
          const f = net.extract(images, { batchSize: batch });
          gpu().copy(f.buffer, 0, out, 0, batch * 128 * 4);
          f.dispose();
        },
        dispose: () => {
          images.dispose();
          net.dispose();
        },
      };
    },
    peers: { "torch": torchPeer(`lambda x: ${PEER}.mnist_features(x)`) },
  };
  return c;
}

/** Inception-v3 pool3 features from a user-supplied weight file (GC_INCEPTION); no peer. */
function inceptionCase(path: string, batch: number): Case {
  const shape = [batch, 3, 299, 299];
  const c: Case = {
    name: `inception-v3 features b${batch} 299x299 (per image)`,
    group: "metrics",
    unit: "us",
    work: batch,
    inputs: [shape],
    output: [batch, 2048],
    ours: (_inputs, out) => {
      const images = imagesFrom(caseInput(c, 0), shape);
      let net: Awaited<ReturnType<typeof loadFeatureNetwork>> | null = null;
      return asyncRun(
        async () => {
          net ??= await loadFeatureNetwork(`inception:${path}`); // first (untimed) run only
          if (net.dim !== 2048) throw new Error(`inception: expected 2048-d features, got ${net.dim}`);
          const f = net.extract(images, { batchSize: batch });
          gpu().copy(f.buffer, 0, out, 0, batch * 2048 * 4);
          f.dispose();
        },
        out,
        () => {
          images.dispose();
          net?.dispose();
        },
      );
    },
  };
  return c;
}

const inceptionPath = Deno.env.get("GC_INCEPTION");

export const METRIC_CASES: Case[] = [
  ...(QUICK ? [512, 1024] : [512, 1024, 2048]).map(fidCase),
  knnCase(5000, 512, 3),
  mnistFeaturesCase(64),
  ...(inceptionPath ? [inceptionCase(inceptionPath, 4)] : []),
];
