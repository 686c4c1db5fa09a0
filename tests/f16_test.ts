// The f16 path: f16 storage with f32 arithmetic inside every kernel the generator runs (elementwise
// chains, reductions, GEMM-class kernels on both operand paths, upfirdn2d, modulated conv), each against
// a float64 reference or the f32 kernel on the same (f16-rounded) values; then the demo sources'
// generators in f16 against f32 (pixel levels) and their GPU memory. Every test is skipped, with the
// probe's reason printed, where the adapter's shader-f16 is missing or fails its known-answer check.

import { gpuTest, randArray } from "./harness.ts";
import { gpu, type Runtime } from "../kernels/runtime.ts";
import { gemmTuning } from "../kernels/gemm.ts";
import { resolvePrecision } from "../cli/generate.ts";
import { floatToUint8 } from "../data/image_io.ts";
import { biasAct } from "../nn/bias_act.ts";
import { conv2d, conv2dTranspose } from "../nn/conv.ts";
import { Generator as Rng, manualSeed, tensor } from "../nn/creation.ts";
import { matmulT } from "../nn/linalg.ts";
import { modulatedConv2d } from "../nn/modulated_conv.ts";
import { cast } from "../nn/ops.ts";
import { peakGpuBytes, resetPeakGpuBytes } from "../nn/queue.ts";
import { sum } from "../nn/reduce.ts";
import { scope, type Tensor } from "../nn/tensor.ts";
import { setupFilter, upsample2d } from "../nn/upfirdn2d.ts";
import { generatorFromSnapshotBytes } from "../gan/train/snapshot_bytes.ts";
import { Generator } from "../gan/stylegan2/generator.ts";
import { presetConfig } from "../gan/stylegan2/config.ts";

const f16 = Math.f16round;

/** Whether f16 may run here; prints why not. */
async function f16Usable(what: string): Promise<boolean> {
  const probe = await gpu().probeShaderF16();
  if (!probe.ok) console.log(`skipped (${what}): shader-f16 is not usable here: ${probe.detail}`);
  return probe.ok;
}

/** The spacing of f16 values around v (subnormal spacing below 2^-14). */
function ulp16(v: number): number {
  const a = Math.abs(v);
  return a < 2 ** -14 ? 2 ** -24 : 2 ** (Math.floor(Math.log2(a)) - 10);
}

/**
 * Asserts |got - ref| <= ulps * ulp16(ref) + atol: an f16 store of an f32 result is within half an ulp of
 * the exact value, so one ulp leaves room for f32 arithmetic differing from float64. Returns the worst
 * error as a fraction of its tolerance.
 */
function assertF16(got: ArrayLike<number>, ref: ArrayLike<number>, what: string, ulps = 1, atol = 0): number {
  if (got.length !== ref.length) throw new Error(`${what}: ${got.length} values, expected ${ref.length}`);
  let worst = 0;
  for (let i = 0; i < ref.length; i++) {
    const err = Math.abs(got[i] - ref[i]);
    const tol = ulps * ulp16(ref[i]) + atol;
    if (!(err <= tol)) throw new Error(`${what}[${i}]: got ${got[i]}, expected ${ref[i]} (tolerance ${tol})`);
    worst = Math.max(worst, err / tol);
  }
  return worst;
}

/** f16-rounded random values (exactly what an f16 tensor of them holds). */
function rounded(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  return randArray(n, seed, lo, hi).map(f16);
}

async function read(t: Tensor, dtype: "f16" | "f32"): Promise<Float32Array> {
  if (t.dtype !== dtype) throw new Error(`expected an ${dtype} result, got ${t.dtype}`);
  return await t.data();
}

async function onBothPaths(fn: (path: string) => Promise<void>): Promise<void> {
  const before = gemmTuning.path;
  try {
    for (const path of ["texture", "storage"] as const) {
      gemmTuning.path = path;
      await fn(path);
    }
  } finally {
    gemmTuning.path = before;
  }
}

gpuTest("f16: casts and host uploads round to nearest even, and read back exactly", async () => {
  if (!(await f16Usable("casts"))) return;
  const data = Float32Array.from([...randArray(61, 1, -300, 300), 2049, 2051, 1 / 3, 65504, -0.1, 1e-3]);
  const want = data.map(f16);
  const t = tensor(data, [data.length]);
  const viaCast = cast(t, "f16");
  const viaHost = tensor(data, [data.length], "f16");
  const back = cast(viaCast, "f32");
  for (const [name, x] of [["cast", viaCast], ["upload", viaHost], ["cast back to f32", back]] as const) {
    const got = await x.data();
    const bad = got.findIndex((v, i) => v !== want[i]);
    if (bad >= 0) throw new Error(`${name}: [${bad}] ${data[bad]} -> ${got[bad]}, expected ${want[bad]}`);
  }
  if (viaCast.bytes !== 136 || t.bytes !== 268) {
    throw new Error(`67 f16 values should take 136 bytes (f32: 268), got ${viaCast.bytes} and ${t.bytes}`);
  }
  for (const x of [t, viaCast, viaHost, back]) x.dispose();
});

gpuTest(
  "f16: a fused chain (bias, lrelu, gain, clamp) stores f16 of its f32 value (float64 reference)",
  async () => {
    if (!(await f16Usable("elementwise"))) return;
    const [n, c, w] = [3, 5, 7];
    const xs = rounded(n * c * w, 2, -2, 2), bs = rounded(c, 3);
    const got = await scope(() => {
      const x = tensor(xs, [n, c, w], "f16"), b = tensor(bs, [c], "f16");
      return biasAct(x, b, { act: "lrelu", gain: Math.SQRT2, clamp: 1.5 });
    }).data();
    const ref = Array.from(xs, (v, i) => {
      const z = v + bs[Math.floor(i / w) % c];
      return Math.max(-1.5, Math.min(1.5, Math.SQRT2 * (z >= 0 ? z : 0.2 * z)));
    });
    const worst = assertF16(got, ref, "biasAct f16");
    console.log(`biasAct f16: worst error ${worst.toFixed(2)} of the tolerance (one f16 ulp)`);
  },
);

gpuTest("f16: sums accumulate in f32 and round once (float64 reference; rows and columns)", async () => {
  if (!(await f16Usable("reduce"))) return;
  for (const [outer, r, inner, seed] of [[3, 1000, 1, 4], [4, 333, 3, 5]]) {
    const xs = rounded(outer * r * inner, seed, 0, 1);
    const t = tensor(xs, [outer, r, inner], "f16");
    const s = sum(t, [1]);
    const got = await read(s, "f16");
    const ref: number[] = [];
    for (let o = 0; o < outer; o++) {
      for (let j = 0; j < inner; j++) {
        let acc = 0;
        for (let k = 0; k < r; k++) acc += xs[(o * r + k) * inner + j];
        ref.push(acc);
      }
    }
    // An f16 accumulator would be off by up to ~r/2 ulps of the sum here: the bound is one.
    assertF16(got, ref, `sum of ${r} f16 values`, 1);
    t.dispose();
    s.dispose();
  }
});

gpuTest("f16: matmul with f16 operands and output on both GEMM paths (float64 reference)", async () => {
  if (!(await f16Usable("matmul"))) return;
  const [batch, m, k, n] = [2, 13, 37, 9];
  const as = rounded(batch * m * k, 6), bs = rounded(n * k, 7);
  const ref: number[] = [];
  for (let z = 0; z < batch; z++) {
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let acc = 0;
        for (let q = 0; q < k; q++) acc += as[(z * m + i) * k + q] * bs[j * k + q];
        ref.push(acc);
      }
    }
  }
  await onBothPaths(async (path) => {
    const got = await scope(() =>
      matmulT(tensor(as, [batch, m, k], "f16"), tensor(bs, [n, k], "f16"), false, true)
    ).data();
    assertF16(got, ref, `matmul f16 (${path})`, 1, 1e-6);
  });
});

/** Runs `fn` on f16 tensors and on f32 tensors of the same values; asserts f16 of the f32 result, +-ulps. */
async function againstF32(
  what: string,
  inputs: [Float32Array, number[]][],
  fn: (ts: Tensor[]) => Tensor,
  ulps = 1,
  ulpsOfLargest = 0,
): Promise<void> {
  const run = (dtype: "f16" | "f32") =>
    scope(() => {
      const y = fn(inputs.map(([d, s]) => tensor(d, s, dtype)));
      if (y.dtype !== dtype) throw new Error(`${what}: ${dtype} inputs gave a ${y.dtype} result`);
      return y;
    });
  const y32 = run("f32"), y16 = run("f16");
  const ref = await y32.data(), got = await y16.data();
  const scale = ref.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
  const worst = assertF16(got, ref, what, ulps, 1e-6 * scale + ulpsOfLargest * ulp16(scale));
  console.log(`${what}: worst error ${worst.toFixed(2)} of the tolerance against the f32 kernel`);
  y32.dispose();
  y16.dispose();
}

gpuTest(
  "f16: conv2d forward and stride-2 transposed conv against the f32 kernel, both GEMM paths",
  async () => {
    if (!(await f16Usable("conv2d"))) return;
    const x: [Float32Array, number[]] = [rounded(2 * 5 * 9 * 7, 8), [2, 5, 9, 7]];
    const w: [Float32Array, number[]] = [rounded(6 * 5 * 3 * 3, 9), [6, 5, 3, 3]];
    const y: [Float32Array, number[]] = [rounded(2 * 6 * 5 * 4, 10), [2, 6, 5, 4]];
    // K = 64 * 9 = 576 over few output tiles: the storage path splits K; its sum pass stores the f16.
    const xk: [Float32Array, number[]] = [rounded(64 * 3 * 3, 16), [1, 64, 3, 3]];
    const wk: [Float32Array, number[]] = [rounded(4 * 64 * 3 * 3, 17), [4, 64, 3, 3]];
    await onBothPaths(async (path) => {
      await againstF32(`conv2d 3x3 pad 1 (${path})`, [x, w], ([a, b]) => conv2d(a, b, { padding: 1 }));
      await againstF32(`conv2d K=576 (${path})`, [xk, wk], ([a, b]) => conv2d(a, b, { padding: 1 }));
      await againstF32(
        `conv2dTranspose stride 2 (${path})`,
        [y, w],
        ([a, b]) => conv2dTranspose(a, b, [2, 5, 10, 8], { stride: 2, padding: 1 }),
      );
    });
  },
);

gpuTest("f16: upfirdn2d (upsample by 2, SGA's [1,3,3,1] filter in f32) against the f32 kernel", async () => {
  if (!(await f16Usable("upfirdn2d"))) return;
  const f = setupFilter([1, 3, 3, 1]);
  await againstF32("upsample2d", [[rounded(2 * 3 * 5 * 6, 11), [2, 3, 5, 6]]], ([a]) => upsample2d(a, f));
  f.dispose();
});

gpuTest("f16: modulated conv (up 2, demodulated, noise) against f32 within its f16 roundings", async () => {
  if (!(await f16Usable("modulatedConv2d"))) return;
  const f = setupFilter([1, 3, 3, 1]);
  // Stored roundings on the f16 path: the conv sums, the demodulation coefficients, the result (one ulp
  // each). The conv sums round at their own magnitude before the noise is added, so an output that the
  // noise cancels to near zero keeps their error: two ulps of the largest output on top.
  await againstF32(
    "modulatedConv2d up 2",
    [
      [rounded(2 * 6 * 4 * 4, 12), [2, 6, 4, 4]],
      [rounded(5 * 6 * 3 * 3, 13), [5, 6, 3, 3]],
      [rounded(2 * 6, 14, 0.5, 1.5), [2, 6]],
      [rounded(2 * 8 * 8, 15, -0.1, 0.1), [2, 1, 8, 8]],
    ],
    ([x, w, s, noise]) =>
      modulatedConv2d(x, w, s, { up: 2, padding: 1, resampleFilter: f, flipWeight: false, noise }),
    3,
    2,
  );
  f.dispose();
});

gpuTest("f16: --precision f16 falls back to f32 with the probe's reason where it fails", async () => {
  const fake = {
    probeShaderF16: () =>
      Promise.resolve({ offered: false, ok: false, detail: "the adapter does not offer it" }),
  } as unknown as Runtime;
  const r = await resolvePrecision("f16", fake);
  if (r.precision !== "f32" || !r.note?.includes("the adapter does not offer it")) {
    throw new Error(`expected f32 with the reason, got ${JSON.stringify(r)}`);
  }
  const here = await resolvePrecision("f16", gpu());
  const probe = await gpu().probeShaderF16();
  if (here.precision !== (probe.ok ? "f16" : "f32")) throw new Error(`this adapter: ${JSON.stringify(here)}`);
});

// ---- the demo sources' generators in f16 ----

// Both sources with constant noise; random noise and the memory footprint (the same architecture) on the
// first. 8 seeds each: every pipeline compiles twice (f32 and f16), minutes on a loaded CPU adapter.
const SOURCES = [
  { dir: "assets/demo_sources/mnist04", modes: ["const", "random"] as const, memory: true },
  { dir: "assets/demo_sources/mnist59", modes: ["const"] as const, memory: false },
];
const SEEDS = Array.from({ length: 8 }, (_, i) => i);

async function loadSource(dir: string): Promise<Generator> {
  const name = [...Deno.readDirSync(dir)].find((e) => e.name.endsWith(".safetensors"))!.name;
  return generatorFromSnapshotBytes(await Deno.readFile(`${dir}/${name}`), name).G;
}

/** One image per seed, as `generate` makes them (each keyed by its seed), as uint8 levels. */
async function levels(G: Generator, noiseMode: "const" | "random"): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for (const s of SEEDS) {
    const img = G.sample(1, null, { generator: new Rng(s), noiseMode });
    parts.push(floatToUint8(await img.data()));
    img.dispose();
  }
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Bytes of the generator's parameters and buffers, and the peak of live buffers over a batch-16 sample. */
async function footprint(G: Generator): Promise<{ weights: number; activations: number }> {
  const weights = [...G.stateDict().values()].reduce((a, t) => a + t.bytes, 0);
  await gpu().sync();
  resetPeakGpuBytes();
  const base = peakGpuBytes();
  const img = G.sample(16, null, { generator: new Rng(99), noiseMode: "random" });
  await img.data();
  const activations = peakGpuBytes() - base;
  img.dispose();
  return { weights, activations };
}

gpuTest(
  "f16: the demo sources' generators in f16 against f32 (pixel levels) and their GPU memory",
  async () => {
    if (!(await f16Usable("generator"))) return;
    for (const { dir, modes, memory } of SOURCES) {
      const G = await loadSource(dir);
      try {
        const ref = new Map<string, Uint8Array>(), got = new Map<string, Uint8Array>();
        for (const mode of modes) ref.set(mode, await levels(G, mode));
        const mem32 = memory ? await footprint(G) : null;
        G.toPrecision("f16");
        if (G.precision !== "f16" || G.synthesis.precision !== "f16") {
          throw new Error(
            "toPrecision did not take",
          );
        }
        for (const mode of modes) got.set(mode, await levels(G, mode));
        const mem16 = memory ? await footprint(G) : null;
        for (const mode of modes) {
          const [a, b] = [ref.get(mode)!, got.get(mode)!];
          let max = 0, total = 0;
          for (let i = 0; i < a.length; i++) {
            const d = Math.abs(a[i] - b[i]);
            max = Math.max(max, d);
            total += d;
          }
          const mean = total / a.length;
          console.log(
            `${dir} (${SEEDS.length} seeds, ${mode} noise): f16 vs f32 max ${max} levels, mean ${
              mean.toFixed(4)
            } levels of 255`,
          );
          // An f16 store is within 2^-12 relative; through ~10 stored layers that is a few 1e-3 of an
          // output in [-1, 1], i.e. under a level, plus one level where truncation to uint8 flips: bounds
          // of 3 levels (max) and 0.25 (mean) leave room without hiding a broken kernel (those give tens).
          if (max > 3 || mean > 0.25) {
            throw new Error(
              `${dir} ${mode}: f16 differs by max ${max}, mean ${mean}`,
            );
          }
        }
        if (!mem32 || !mem16) continue;
        const wr = mem16.weights / mem32.weights, ar = mem16.activations / mem32.activations;
        console.log(
          `${dir}: weights ${mem32.weights} -> ${mem16.weights} bytes (${wr.toFixed(3)}x); peak live ` +
            `buffers of a batch-16 sample ${mem32.activations} -> ${mem16.activations} bytes (${
              ar.toFixed(3)
            }x)`,
        );
        // Weights: every float tensor but the tiny FIR filters halves. Activations: f16 buffers, but the
        // demodulation sums stay f32 and buffer size classes round up (at most 25%), so about half.
        if (wr < 0.45 || wr > 0.55) throw new Error(`f16 weights should take about half: ${wr}`);
        if (ar < 0.4 || ar > 0.65) throw new Error(`f16 activations should take about half: ${ar}`);
      } finally {
        G.dispose();
      }
    }
  },
);

gpuTest(
  "f16: a conditional generator (class embedding, truncation) in f16 against f32 (pixel levels)",
  async () => {
    if (!(await f16Usable("conditional generator"))) return;
    manualSeed(11);
    const G = Generator.fromConfig(presetConfig("tiny16", { cDim: 3 })); // randomly initialised, 3 classes
    try {
      const draw = async () => {
        const out: number[] = [];
        for (const s of [0, 1, 2, 3, 4, 5]) {
          const img = G.sample(1, [s % 3], {
            generator: new Rng(s),
            truncationPsi: 0.7,
            noiseMode: "random",
          });
          out.push(...floatToUint8(await img.data()));
          img.dispose();
        }
        return out;
      };
      const ref = await draw();
      G.toPrecision("f16");
      const got = await draw();
      const d = ref.map((v, i) => Math.abs(v - got[i]));
      const max = Math.max(...d), mean = d.reduce((a, b) => a + b, 0) / d.length;
      console.log(
        `conditional tiny16 (6 seeds, psi 0.7): f16 vs f32 max ${max} levels, mean ${mean.toFixed(4)}`,
      );
      // The bounds of the demo-sources test, for the same reasons.
      if (max > 3 || mean > 0.25) throw new Error(`conditional: f16 differs by max ${max}, mean ${mean}`);
    } finally {
      G.dispose();
    }
  },
);
