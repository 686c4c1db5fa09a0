// The benchmark's common ground: what a case is, seeded inputs, one timing rule for every engine on
// this process (tinybench over "record N runs, then wait once"), and the accuracy check between engines.

import { Bench } from "tinybench";
import type { Array as JaxArray } from "@jax-js/jax";

/** Work units a case can report: compute rate, memory rate, or latency per operation. */
export type Unit = "GFLOP/s" | "GB/s" | "us";

/** Our side of a case after setup: `run` records one run; nothing may wait on the GPU inside it. */
export interface OursRun {
  run(): void;
  /** Where the first run leaves its result (default: the output buffer the harness allocated). */
  output?: GPUBuffer;
  dispose?(): void;
}

/** jax-js peer: a function of the inputs (owned jax-js arrays, in case order) to one output array. */
export interface JaxPeer {
  kind: "jax-js";
  fn: (...inputs: JaxArray[]) => JaxArray;
  /** Wrap `fn` in jax-js's `jit` (kernel fusion, dead-code elimination). */
  jit?: boolean;
  /** Each run feeds its output back as the first input (a dependent chain, like y = f(y)). */
  chain?: boolean;
}

/** PyTorch-on-CPU peer: a Python lambda over torch tensors (inputs in case order); see torch_cpu.py. */
export interface TorchPeer {
  kind: "torch";
  expr: string;
  chain?: boolean;
}

export type PeerSpec = JaxPeer | TorchPeer;

export interface Case {
  /** Row name, e.g. "matmul 512"; --filter matches it. */
  name: string;
  group: string;
  unit: Unit;
  /** Per run: FLOPs (GFLOP/s), bytes (GB/s) or operations (us = microseconds per operation). */
  work: number;
  /** Input shapes; each input is filled with seeded uniform numbers in [-1, 1). */
  inputs: number[][];
  output: number[];
  /** Sets up our kernels on uploaded inputs and a fresh output buffer; returns one run. */
  ours: (inputs: GPUBuffer[], output: GPUBuffer) => OursRun | (() => void);
  /** Peers by column name (e.g. "jax-js", "torch"). */
  peers?: Record<string, PeerSpec>;
  /** GPU-sized: run only with --heavy (minutes on a CPU adapter). */
  heavy?: boolean;
}

/** Shorthands for case tables. */
export const jaxPeer = (fn: JaxPeer["fn"], opts: { jit?: boolean; chain?: boolean } = {}): JaxPeer => ({
  kind: "jax-js",
  fn,
  ...opts,
});
export const torchPeer = (expr: string, opts: { chain?: boolean } = {}): TorchPeer => ({
  kind: "torch",
  expr,
  ...opts,
});

export const numel = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

/** Input `index` of a case: seeded (case name + index) uniform numbers in [-1, 1). */
export function caseInput(c: Case, index: number): Float32Array {
  let seed = 0x9e3779b9 ^ index;
  for (const ch of c.name) seed = Math.imul(seed ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  return seededUniform(numel(c.inputs[index]), seed);
}

/** n numbers in [-1, 1) from a counter-based hash (splitmix-like), reproducible across runs. */
export function seededUniform(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let t = (seed + Math.imul(i + 1, 0x6d2b79f5)) >>> 0;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((t ^ (t >>> 14)) >>> 0) / 2147483648 - 1;
  }
  return out;
}

/** An engine as the timer sees it: record one run; wait until everything recorded has finished. */
export interface Timed {
  run(): void;
  sync(): Promise<void>;
}

export interface TimingOptions {
  quick: boolean;
}

export interface Timing {
  /** Median seconds per run. */
  seconds: number;
  /** Timed samples (each = `runsPerSample` runs and one wait). */
  samples: number;
  runsPerSample: number;
}

/** Sample length the batch size N aims for, N's cap, and when a single run counts as slow (ms). */
const TARGET_MS = { quick: 100, full: 250 };
const MAX_RUNS = { quick: 2000, full: 5000 };
const SLOW_MS = 3000;

async function timeBatch(e: Timed, n: number): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) e.run();
  await e.sync();
  return performance.now() - t0;
}

/**
 * Times an engine that has already run once (the checked run: pipelines compiled, inputs resident),
 * which took `firstMs`. Untimed calibration batches grow N until "N runs, then one wait" lasts about
 * the target (so the fixed cost of a wait, ~10 ms on lavapipe, is amortised); tinybench then times
 * such samples and we report the median sample / N. A first run longer than 4x the target already
 * gives N = 1 and needs no calibration; very slow runs get fewer samples. torch_cpu.py mirrors this.
 */
export async function timeEngine(e: Timed, opts: TimingOptions, firstMs: number): Promise<Timing> {
  const mode = opts.quick ? "quick" : "full";
  const target = TARGET_MS[mode], maxN = MAX_RUNS[mode];
  let n = 1, single = firstMs;
  if (firstMs < 4 * target) {
    for (;;) {
      const t = await timeBatch(e, n);
      single = t / n;
      if (t >= target || n >= maxN) break;
      n = Math.min(maxN, n * Math.min(16, Math.max(2, Math.ceil(target / Math.max(t, 0.01)))));
    }
  }
  const iterations = opts.quick ? (single > 1000 ? 1 : 3) : single > SLOW_MS ? 2 : 5;
  const bench = new Bench({
    iterations,
    time: opts.quick || single > SLOW_MS ? 0 : 1500,
    warmup: false,
    throws: true,
  });
  bench.add("sample", () => timeBatch(e, n));
  await bench.run();
  const r = bench.tasks[0].result as unknown as {
    state?: string;
    error?: unknown;
    latency?: { p50: number; samplesCount: number };
  };
  if (!r?.latency) throw new Error(`tinybench gave no latency (${r?.state ?? "no result"}): ${r?.error}`);
  return { seconds: r.latency.p50 / n / 1000, samples: r.latency.samplesCount, runsPerSample: n };
}

/** Throughput in the case's unit from seconds per run. */
export function rate(c: Case, seconds: number): number {
  if (c.unit === "us") return (seconds / c.work) * 1e6;
  return c.work / seconds / 1e9;
}

/** Our speed relative to a peer's (>1: we are faster), whatever the unit. */
export function speedRatio(unit: Unit, ours: number, peer: number): number {
  return unit === "us" ? peer / ours : ours / peer;
}

/** Errors above this are flagged in the table: the kernels disagree, so the speed means nothing. */
export const MISMATCH = 1e-3;

/** Formats a number with about three significant digits. */
export function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  return x.toPrecision(3);
}
