// WGSL for the fused small-MLP GAN step (gan/toy2d/fast_gan.ts). Why not the engine's matmul: on the CPU adapter
// (lavapipe) every per-invocation storage load is a scalarised gather (~20 cycles), while a uniform-buffer
// load at a workgroup-uniform index is one broadcast. So each kernel keeps the weights (or the gradient
// rows) in a uniform buffer, puts batch rows (or input features) on the invocations, and reads the other
// operand once per lane: a 64x128x128 product takes ~0.4 ms instead of ~6.7 ms with the tiled GEMM, and a
// whole layer (bias, BatchNorm transform of its input, ReLU, loss head) is one dispatch.
// Limits (checked): weights and gradient rows must fit a 64 KiB uniform binding (128x128 floats).
// Layouts: activations row-major [rows, features]; weights [out, in] (PyTorch); BatchNorm state
// [mean | invstd | scale | shift] per layer, so that the consumer applies x*scale+shift, ReLU on the fly.

export type BindKind = "read" | "write" | "uniform";

export interface KernelSpec {
  /** Pipeline cache key: identifies the WGSL uniquely. */
  key: string;
  code: () => string;
  /** Binding kinds in binding order. */
  kinds: BindKind[];
  workgroups: number;
  /**
   * Sizes read at run time (struct Dims { rows, inRow, outRow, extra }), bound after the other
   * bindings: kernels that differ only in batch size or row offsets share one compiled pipeline.
   */
  dims?: [number, number, number, number];
}

const DIMS = "struct Dims { rows: u32, inRow: u32, outRow: u32, extra: u32 }";

export type InputMode = "raw" | "relu" | "bnrelu";

const UBO_LIMIT_FLOATS = 16384;

function need(cond: boolean, msg: string): void {
  if (!cond) throw new Error(`fast toy-GAN kernel: ${msg}`);
}

/** A JS number as a WGSL f32 literal. */
function fl(x: number): string {
  if (!Number.isFinite(x)) throw new Error(`fast toy-GAN kernel: non-finite constant ${x}`);
  const s = String(x);
  return /[.eE]/.test(s) ? s : `${s}.0`;
}

/**
 * Outputs per invocation. Each lane re-reads its input once per block, so wider blocks read less; but
 * they unroll more code. On lavapipe 64 took ~15% less CPU per G step than 32 and about twice the
 * (one-time, disk-cached by Mesa) LLVM compile time. Tunable for benchmarks.
 */
export const BLOCK = { fwd: 64, dx: 64, dw: 64 };

function blockOf(n: number, max: number): number {
  return n >= max ? max : n;
}

function decls(kinds: BindKind[], names: string[], types: string[]): string {
  return kinds.map((k, i) => {
    const space = k === "uniform" ? "uniform" : k === "write" ? "storage, read_write" : "storage, read";
    return `@group(0) @binding(${i}) var<${space}> ${names[i]}: ${types[i]};`;
  }).join("\n");
}

/** A uniform struct type holding `floats` floats as vec4s. */
function uboStruct(name: string, floats: number): string {
  return `struct ${name} { d: array<vec4<f32>, ${Math.max(1, Math.ceil(floats / 4))}> }`;
}

const MATH = `
fn softplus_(x: f32) -> f32 { return max(x, 0.0) + log(1.0 + exp(-abs(x))); }
fn sigm(x: f32) -> f32 { let e = exp(-abs(x)); return select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0); }`;

const RANDOM = `
fn pcg(v: u32) -> u32 {
  let s = v * 747796405u + 2891336453u;
  let w = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
  return (w >> 22u) ^ w;
}
fn rnd(k0: u32, k1: u32, i: u32) -> u32 { return pcg(pcg(pcg(i ^ k0) + k1) ^ (i * 0x9E3779B9u)); }
// 24 random bits -> (0, 1]: never 0, so log() is finite.
fn unit(k0: u32, k1: u32, i: u32) -> f32 { return (f32(rnd(k0, k1, i) >> 8u) + 1.0) * (1.0 / 16777216.0); }`;

/**
 * The optimiser epilogue shared by the weight-gradient and BatchNorm-backward kernels: each invocation
 * that produces a gradient applies PyTorch's Adam update to that parameter right away (and the EMA of
 * the generator), so no separate pass reads the gradients, parameters and moments again. The gradient
 * is still stored (GR) for tests and diagnostics. Bindings: GR, P, M, V, [E], st (step uniform).
 */
export interface Update {
  /** EMA of the updated parameters with this beta (generator steps), or none. */
  emaBeta?: number;
}

function updateFn(u: Update): string {
  const ema = u.emaBeta === undefined ? "" : `E[i] = ${fl(u.emaBeta)} * E[i] + ${fl(1 - u.emaBeta)} * p;`;
  return `fn update(i: u32, g: f32) {
  GR[i] = g;
  let m = st.b1 * M[i] + (1.0 - st.b1) * g;
  let v = st.b2 * V[i] + (1.0 - st.b2) * g * g;
  M[i] = m;
  V[i] = v;
  let p = P[i] - st.lr * (m / st.bc1) / (sqrt(v / st.bc2) + st.eps);
  P[i] = p;
  ${ema}
}`;
}

function updateBindings(u: Update): { kinds: BindKind[]; names: string[]; types: string[] } {
  const names = ["GR", "P", "M", "V", ...(u.emaBeta === undefined ? [] : ["E"]), "st"];
  return {
    names,
    kinds: names.map((n) => (n === "st" ? "uniform" : "write")),
    types: names.map((n) => (n === "st" ? "Step" : "array<f32>")),
  };
}

function updateKey(u: Update): string {
  return u.emaBeta === undefined ? "adam" : `adam+ema${u.emaBeta}`;
}

/** Per-step scalars: sampling keys and the Adam step of the network updated in that step. */
export const STEP_STRUCT = `struct Step { k0: u32, k1: u32, p0: u32, p1: u32,
  lr: f32, b1: f32, b2: f32, eps: f32, bc1: f32, bc2: f32, p2: f32, p3: f32 }`;
export const STEP_BYTES = 48;
/** Floats per packed mixture component (two vec4s). */
export const MIX_COMPONENT_FLOATS = 8;
export const MAX_MIX_COMPONENTS = 64;

/**
 * Latents z[nz] ~ N(0, 1) and, when nReal > 0, nReal points of the mixture in the uniform table written
 * as rows realRow.. of X ([rows, 2]). Bindings: Z, [X, mixture], step.
 */
export function sampleKernel(nz: number, nReal: number, realRow: number, nComp: number): KernelSpec {
  need(nz % 2 === 0 && nz > 0, `latent count ${nz} must be even`);
  need(nComp >= 1 && nComp <= MAX_MIX_COMPONENTS, `mixture must have 1..${MAX_MIX_COMPONENTS} components`);
  const WG = 64, pairs = nz / 2, total = pairs + nReal;
  const kinds: BindKind[] = nReal > 0
    ? ["write", "write", "uniform", "uniform", "uniform"]
    : ["write", "uniform", "uniform"];
  const names = nReal > 0 ? ["Z", "X", "mix", "st", "dims"] : ["Z", "st", "dims"];
  const types = nReal > 0
    ? ["array<f32>", "array<f32>", "Mix", "Step", "Dims"]
    : ["array<f32>", "Step", "Dims"];
  const real = nReal === 0 ? "" : `
  let r = i - dims.rows;
  let base = 4u * dims.rows + 4u * r;
  let u = unit(st.k0, st.k1, base);
  var j = 0u;
  loop { if (j + 1u >= ${nComp}u || u < mix.d[2u * j].x) { break; } j = j + 1u; }
  let A = mix.d[2u * j]; let Bv = mix.d[2u * j + 1u];
  let v = unit(st.k0, st.k1, base + 1u);
  let kind = u32(A.y + 0.5);
  var p = vec2<f32>(A.z, A.w);
  if (kind == 1u) { let t = 6.283185307179586 * v; p = p + Bv.y * vec2<f32>(cos(t), sin(t)); }
  if (kind == 2u) { let t = 6.283185307179586 * A.z * v; let rr = A.w + (Bv.y - A.w) * v; p = rr * vec2<f32>(cos(t), sin(t)); }
  let rad = sqrt(-2.0 * log(unit(st.k0, st.k1, base + 2u)));
  let ang = 6.283185307179586 * unit(st.k0, st.k1, base + 3u);
  // Wide ring: radius Bv.y plus radial noise Bv.z * N(0, 1) (one normal of the Box-Muller pair).
  if (kind == 3u) { let t = 6.283185307179586 * v; p = p + (Bv.y + Bv.z * rad * sin(ang)) * vec2<f32>(cos(t), sin(t)); }
  p = p + Bv.x * rad * vec2<f32>(cos(ang), sin(ang));
  X[(dims.outRow + r) * 2u] = p.x;
  X[(dims.outRow + r) * 2u + 1u] = p.y;`;
  return {
    key: `t2_sample|${nReal > 0 ? "data" : "latent"}|${nComp}`,
    kinds,
    workgroups: Math.ceil(total / WG),
    dims: [pairs, realRow, realRow, nReal],
    code: () =>
      `${decls(kinds, names, types)}
${STEP_STRUCT}
${uboStruct("Mix", nComp * MIX_COMPONENT_FLOATS)}
${DIMS}
${RANDOM}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= dims.rows + dims.extra) { return; }
  if (i < dims.rows) {
    // Box-Muller: one pair of uniforms gives two normals.
    let rad = sqrt(-2.0 * log(unit(st.k0, st.k1, 2u * i)));
    let ang = 6.283185307179586 * unit(st.k0, st.k1, 2u * i + 1u);
    Z[2u * i] = rad * cos(ang);
    Z[2u * i + 1u] = rad * sin(ang);
    return;
  }${real}
}`,
  };
}

export interface LinFwdParams {
  rows: number;
  inF: number;
  outF: number;
  input: InputMode;
  /** First row read from the input buffer / written to the output buffer. */
  inRow?: number;
  outRow?: number;
  /** Loss head on a one-logit output: "d" (rows < realRows are real), "g" (non-saturating G loss). */
  head?: { mode: "d" | "g"; realRows: number };
}

/**
 * a[m, n] = sum_k h[m, k] W[n, k] + b[n], h = input transform of u (identity, ReLU, or BatchNorm
 * scale/shift then ReLU). Bindings: U, out, W (uniform), b (uniform), [stats (uniform)], [gOut, loss].
 */
export function linFwdKernel(p: LinFwdParams): KernelSpec {
  const { rows: B, inF: K, outF: N, input } = p;
  const inRow = p.inRow ?? 0, outRow = p.outRow ?? 0;
  need(N * K <= UBO_LIMIT_FLOATS, `weights ${N}x${K} exceed a 64 KiB uniform binding`);
  need(K % 4 === 0 || (K === 2 && input === "raw"), `input width ${K} must be a multiple of 4 (or 2, raw)`);
  need(!p.head || N === 1, "a loss head needs a single output");
  const NB = blockOf(N, BLOCK.fwd), nBlocks = N / NB, WG = 32;
  need(Number.isInteger(nBlocks), `output width ${N} is not a multiple of ${NB}`);
  const K4 = K / 4;
  const kinds: BindKind[] = ["read", "write", "uniform", "uniform"];
  const names = ["U", "O", "w", "b"],
    types = [K % 4 === 0 ? "array<vec4<f32>>" : "array<f32>", "array<f32>", "UW", "UB"];
  if (input === "bnrelu") kinds.push("uniform"), names.push("st"), types.push("US");
  if (p.head) kinds.push("write", "write"), names.push("GO", "LOSS"), types.push("array<f32>", "array<f32>");
  kinds.push("uniform"), names.push("dims"), types.push("Dims");
  const body: string[] = [];
  if (K % 4 === 0) {
    for (let j = 0; j < NB; j++) body.push(`var c${j} = vec4<f32>(0.0);`);
    const tf = input === "relu"
      ? "x = max(x, vec4<f32>(0.0));"
      : input === "bnrelu"
      ? `x = max(x * st.d[${K / 2}u + k] + st.d[${(3 * K) / 4}u + k], vec4<f32>(0.0));`
      : "";
    const fmas = Array.from(
      { length: NB },
      (_, j) => `c${j} = fma(x, w.d[(n0 + ${j}u) * ${K4}u + k], c${j});`,
    );
    body.push(`let ub = (dims.inRow + m) * ${K4}u;
  for (var k = 0u; k < ${K4}u; k = k + 1u) {
    var x = U[ub + k];
    ${tf}
    ${fmas.join("\n    ")}
  }`);
    for (let j = 0; j < NB; j++) body.push(`let v${j} = dot(c${j}, vec4<f32>(1.0)) + bf(n0 + ${j}u);`);
  } else {
    body.push(`let x0 = U[(dims.inRow + m) * 2u]; let x1 = U[(dims.inRow + m) * 2u + 1u];`);
    for (let j = 0; j < NB; j++) {
      body.push(`let v${j} = x0 * wf((n0 + ${j}u) * 2u) + x1 * wf((n0 + ${j}u) * 2u + 1u) + bf(n0 + ${j}u);`);
    }
  }
  for (let j = 0; j < NB; j++) body.push(`O[(dims.outRow + m) * ${N}u + n0 + ${j}u] = v${j};`);
  if (p.head?.mode === "d") {
    body.push(`let real = m < dims.extra;
  LOSS[m] = select(softplus_(v0), softplus_(-v0), real);
  GO[m] = select(sigm(v0), -sigm(-v0), real) / f32(dims.extra);`);
  } else if (p.head?.mode === "g") {
    body.push(`LOSS[m] = softplus_(-v0);
  GO[m] = -sigm(-v0) / f32(dims.rows);`);
  }
  return {
    key: `t2_linfwd|nb${NB}|${K}|${N}|${input}|${p.head?.mode ?? ""}`,
    kinds,
    workgroups: Math.ceil(B / WG) * nBlocks,
    dims: [B, inRow, outRow, p.head?.realRows ?? 0],
    code: () =>
      `${decls(kinds, names, types)}
${DIMS}
${uboStruct("UW", N * K)}
${uboStruct("UB", N)}
${uboStruct("US", 4 * K)}
${MATH}
fn wf(i: u32) -> f32 { return w.d[i >> 2u][i & 3u]; }
fn bf(i: u32) -> f32 { return b.d[i >> 2u][i & 3u]; }
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let n0 = (wid.x % ${nBlocks}u) * ${NB}u;
  let m = (wid.x / ${nBlocks}u) * ${WG}u + lid;
  if (m >= dims.rows) { return; }
  ${body.join("\n  ")}
}`,
  };
}

/**
 * BatchNorm batch statistics of a [rows, N] pre-activation: writes [mean | invstd | scale | shift] with
 * scale = gamma * invstd, shift = beta - mean * scale; in training mode also the running statistics
 * (PyTorch: momentum-weighted, unbiased variance). With `useRunning` (eval mode) the running statistics
 * replace the batch's. Bindings: A, stats, params, [running].
 */
export function bnStatsKernel(p: {
  rows: number;
  features: number;
  train: boolean;
  useRunning?: boolean;
  momentum: number;
  eps: number;
  gamma: number;
  beta: number;
  runMean: number;
  runVar: number;
}): KernelSpec {
  const { rows: B, features: N } = p;
  need(B > 1, "BatchNorm needs more than one row");
  const WG = 32;
  const run = !p.train && !!p.useRunning;
  need(!(p.train && p.useRunning), "BatchNorm cannot train on running statistics");
  const kinds: BindKind[] = p.train
    ? ["read", "write", "read", "write", "uniform"]
    : run
    ? ["read", "write", "read", "read", "uniform"]
    : ["read", "write", "read", "uniform"];
  const names = p.train || run ? ["A", "ST", "P", "R", "dims"] : ["A", "ST", "P", "dims"];
  const types = names.map((n) => (n === "dims" ? "Dims" : "array<f32>"));
  const running = p.train
    ? `R[${p.runMean}u + n] = ${fl(1 - p.momentum)} * R[${p.runMean}u + n] + ${fl(p.momentum)} * mean;
  R[${p.runVar}u + n] = ${fl(1 - p.momentum)} * R[${p.runVar}u + n] + ${
      fl(p.momentum)
    } * v * Bf / (Bf - 1.0);`
    : "";
  return {
    key:
      `t2_bnstats|${N}|${p.train}|${run}|${p.momentum}|${p.eps}|${p.gamma}|${p.beta}|${p.runMean}|${p.runVar}`,
    kinds,
    workgroups: Math.ceil(N / WG),
    dims: [B, 0, 0, 0],
    code: () =>
      `${decls(kinds, names, types)}
${DIMS}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n = gid.x;
  if (n >= ${N}u) { return; }
  let Bf = f32(dims.rows);
${
        run
          ? `  let mean = R[${p.runMean}u + n];
  let v = R[${p.runVar}u + n];`
          : `  var s = 0.0;
  for (var m = 0u; m < dims.rows; m = m + 1u) { s = s + A[m * ${N}u + n]; }
  let mean = s / Bf;
  var q = 0.0;
  for (var m = 0u; m < dims.rows; m = m + 1u) { let d = A[m * ${N}u + n] - mean; q = q + d * d; }
  let v = q / Bf;`
      }
  let r = inverseSqrt(v + ${fl(p.eps)});
  let sc = P[${p.gamma}u + n] * r;
  ST[n] = mean;
  ST[${N}u + n] = r;
  ST[${2 * N}u + n] = sc;
  ST[${3 * N}u + n] = P[${p.beta}u + n] - mean * sc;
  ${running}
}`,
  };
}

/**
 * Input gradient out[m, k] = sum_n g[m, n] W[n, k], optionally times the ReLU mask of the previous
 * layer's pre-activation (a[m, k] > 0). Bindings: G, W (uniform), out, [A].
 */
export function linDxKernel(p: { rows: number; inF: number; outF: number; mask: boolean }): KernelSpec {
  const { rows: B, inF: K, outF: N, mask } = p;
  need(N * K <= UBO_LIMIT_FLOATS, `weights ${N}x${K} exceed a 64 KiB uniform binding`);
  need(K % 4 === 0 || (K === 2 && !mask), `input width ${K} must be a multiple of 4 (or 2, unmasked)`);
  const KB = blockOf(K, BLOCK.dx), nKB = K / KB, WG = 32, vec = K % 4 === 0;
  need(Number.isInteger(nKB), `input width ${K} is not a multiple of ${KB}`);
  const kinds: BindKind[] = mask
    ? ["read", "uniform", "write", "read", "uniform"]
    : ["read", "uniform", "write", "uniform"];
  const vt = vec ? "array<vec4<f32>>" : "array<f32>";
  const names = mask ? ["G", "w", "O", "A", "dims"] : ["G", "w", "O", "dims"];
  const types = mask ? ["array<f32>", "UW", vt, vt, "Dims"] : ["array<f32>", "UW", vt, "Dims"];
  const lines: string[] = [];
  if (vec) {
    const KB4 = KB / 4, K4 = K / 4;
    for (let j = 0; j < KB4; j++) lines.push(`var c${j} = vec4<f32>(0.0);`);
    const fmas = Array.from(
      { length: KB4 },
      (_, j) => `c${j} = fma(gv, w.d[n * ${K4}u + k0 + ${j}u], c${j});`,
    );
    lines.push(`let k0 = kb * ${KB4}u;
  for (var n = 0u; n < ${N}u; n = n + 1u) {
    let gv = vec4<f32>(G[m * ${N}u + n]);
    ${fmas.join("\n    ")}
  }`);
    for (let j = 0; j < KB4; j++) {
      const idx = `m * ${K4}u + k0 + ${j}u`;
      lines.push(
        mask
          ? `O[${idx}] = select(vec4<f32>(0.0), c${j}, A[${idx}] > vec4<f32>(0.0));`
          : `O[${idx}] = c${j};`,
      );
    }
  } else {
    lines.push(`var c0 = 0.0; var c1 = 0.0;
  for (var n = 0u; n < ${N}u; n = n + 1u) {
    let gv = G[m * ${N}u + n];
    c0 = c0 + gv * wf(n * 2u); c1 = c1 + gv * wf(n * 2u + 1u);
  }
  O[m * 2u] = c0; O[m * 2u + 1u] = c1;`);
  }
  return {
    key: `t2_lindx|kb${KB}|${K}|${N}|${mask}`,
    kinds,
    workgroups: Math.ceil(B / WG) * nKB,
    dims: [B, 0, 0, 0],
    code: () =>
      `${decls(kinds, names, types)}
${DIMS}
${uboStruct("UW", N * K)}
fn wf(i: u32) -> f32 { return w.d[i >> 2u][i & 3u]; }
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let kb = wid.x % ${nKB}u;
  let m = (wid.x / ${nKB}u) * ${WG}u + lid;
  if (m >= dims.rows) { return; }
  ${lines.join("\n  ")}
}`,
  };
}

/**
 * Weight and bias gradients dW[n, k] = sum_m g[m, n] h[m, k], db[n] = sum_m g[m, n] (or exactly 0 when
 * a BatchNorm follows the layer, which makes the bias gradient vanish), written into the flat gradient
 * buffer at float offsets offW / offB. Invocation k = inF computes the bias. Bindings: G (uniform), U,
 * [stats], grads.
 */
export function linDwKernel(p: {
  rows: number;
  inF: number;
  outF: number;
  input: InputMode;
  inRow?: number;
  offW: number;
  offB: number;
  zeroBias: boolean;
  update: Update;
}): KernelSpec {
  const { rows: B, inF: K, outF: N, input } = p;
  const inRow = p.inRow ?? 0;
  need(
    B * N <= UBO_LIMIT_FLOATS,
    `gradient rows ${B}x${N} exceed a 64 KiB uniform binding (batch too large)`,
  );
  need((B * N) % 4 === 0, `gradient rows ${B}x${N} must hold a multiple of 4 floats`);
  const NB = blockOf(N, BLOCK.dw), nNB = N / NB, WG = 32, vec = N % 4 === 0;
  need(Number.isInteger(nNB), `output width ${N} is not a multiple of ${NB}`);
  const nKB = Math.ceil((K + 1) / WG);
  const up = updateBindings(p.update), bn = input === "bnrelu";
  const kinds: BindKind[] = [
    ...(bn ? ["uniform", "read", "read"] : ["uniform", "read"]) as BindKind[],
    ...up.kinds,
  ];
  const names = [...(bn ? ["g", "U", "S"] : ["g", "U"]), ...up.names];
  const types = [...(bn ? ["UG", "array<f32>", "array<f32>"] : ["UG", "array<f32>"]), ...up.types];
  const NB4 = NB / 4, N4 = N / 4;
  const acc = vec
    ? Array.from({ length: NB4 }, (_, j) => `var c${j} = vec4<f32>(0.0);`)
    : Array.from({ length: NB }, (_, j) => `var c${j} = 0.0;`);
  const fmas = vec
    ? Array.from(
      { length: NB4 },
      (_, j) => `c${j} = fma(vec4<f32>(h), g.d[m * ${N4}u + nb * ${NB4}u + ${j}u], c${j});`,
    )
    : Array.from({ length: NB }, (_, j) => `c${j} = c${j} + h * gf(m * ${N}u + ${j}u);`);
  const val = (j: number) => (vec ? `c${j >> 2}[${j & 3}]` : `c${j}`);
  // Gradients are stored unrolled, then one loop applies the optimiser: inlining the update for every
  // output made LLVM take 20-50 s to compile one kernel on lavapipe.
  const writeW = Array.from(
    { length: NB },
    (_, j) => `GR[${p.offW}u + (n0 + ${j}u) * ${K}u + k] = ${val(j)};`,
  );
  const writeB = Array.from({ length: NB }, (_, j) => `GR[${p.offB}u + n0 + ${j}u] = ${val(j)};`);
  const tf = input === "relu" ? "h = max(h, 0.0);" : input === "bnrelu" ? "h = max(h * sc + sh, 0.0);" : "";
  return {
    key: `t2_lindw|nb${NB}|${B}|${K}|${N}|${input}|${inRow}|${p.offW}|${p.offB}|${p.zeroBias}|${
      updateKey(p.update)
    }`,
    kinds,
    workgroups: nKB * nNB,
    code: () =>
      `${decls(kinds, names, types)}
${uboStruct("UG", B * N)}
${STEP_STRUCT}
${updateFn(p.update)}
fn gf(i: u32) -> f32 { return g.d[i >> 2u][i & 3u]; }
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let nb = wid.x % ${nNB}u;
  let k = (wid.x / ${nNB}u) * ${WG}u + lid;
  if (k > ${K}u) { return; }
  let n0 = nb * ${NB}u;
  let isBias = k == ${K}u;
  ${
        p.zeroBias
          ? `if (isBias) { for (var j = 0u; j < ${NB}u; j = j + 1u) { update(${p.offB}u + n0 + j, 0.0); } return; }`
          : ""
      }
  let kk = min(k, ${K - 1}u);
  ${input === "bnrelu" ? `let sc = S[${2 * K}u + kk]; let sh = S[${3 * K}u + kk];` : ""}
  ${acc.join("\n  ")}
  for (var m = 0u; m < ${B}u; m = m + 1u) {
    var h = U[(${inRow}u + m) * ${K}u + kk];
    ${tf}
    h = select(h, 1.0, isBias);
    ${fmas.join("\n    ")}
  }
  if (isBias) {
    ${writeB.join("\n    ")}
    for (var j = 0u; j < ${NB}u; j = j + 1u) { let i = ${p.offB}u + n0 + j; update(i, GR[i]); }
  } else {
    ${writeW.join("\n    ")}
    for (var j = 0u; j < ${NB}u; j = j + 1u) { let i = ${p.offW}u + (n0 + j) * ${K}u + k; update(i, GR[i]); }
  }
}`,
  };
}

/**
 * BatchNorm (training mode) + ReLU backward for one layer: from dh (gradient after the ReLU) and the
 * pre-activation a, the gradient da of the pre-activation; dgamma and dbeta go to the optimiser
 * epilogue. Bindings: DH, A, stats, DA, then the update bindings.
 */
export function bnBwdKernel(p: {
  rows: number;
  features: number;
  gamma: number;
  beta: number;
  update: Update;
}): KernelSpec {
  const { rows: B, features: N } = p;
  const WG = 32;
  const up = updateBindings(p.update);
  const kinds: BindKind[] = ["read", "read", "read", "write", ...up.kinds];
  const names = ["DH", "A", "ST", "DA", ...up.names];
  const types = ["array<f32>", "array<f32>", "array<f32>", "array<f32>", ...up.types];
  return {
    key: `t2_bnbwd|${B}|${N}|${p.gamma}|${p.beta}|${updateKey(p.update)}`,
    kinds,
    workgroups: Math.ceil(N / WG),
    code: () =>
      `${decls(kinds, names, types)}
${STEP_STRUCT}
${updateFn(p.update)}
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n = gid.x;
  if (n >= ${N}u) { return; }
  let mean = ST[n]; let r = ST[${N}u + n]; let sc = ST[${2 * N}u + n]; let sh = ST[${3 * N}u + n];
  var sd = 0.0; var sds = 0.0;
  for (var m = 0u; m < ${B}u; m = m + 1u) {
    let a = A[m * ${N}u + n];
    let ds = select(0.0, DH[m * ${N}u + n], a * sc + sh > 0.0);
    sd = sd + ds;
    sds = sds + ds * (a - mean) * r;
  }
  let f = P[${p.gamma}u + n] * r / ${B}.0;
  for (var m = 0u; m < ${B}u; m = m + 1u) {
    let a = A[m * ${N}u + n];
    let ds = select(0.0, DH[m * ${N}u + n], a * sc + sh > 0.0);
    DA[m * ${N}u + n] = f * (${B}.0 * ds - sd - (a - mean) * r * sds);
  }
  update(${p.gamma}u + n, sds);
  update(${p.beta}u + n, sd);
}`,
  };
}

/**
 * EMA of a flat f32 buffer: E[i] = beta E[i] + (1 - beta) X[i] (the generator EMA over the BatchNorm
 * running statistics, which no gradient kernel touches). Bindings: X, E.
 */
export function emaKernel(n: number, beta: number): KernelSpec {
  need(n > 0, "EMA of an empty buffer");
  const WG = 64;
  return {
    key: `t2_ema|${n}|${beta}`,
    kinds: ["read", "write"],
    workgroups: Math.ceil(n / WG),
    code: () =>
      `@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read_write> E: array<f32>;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= ${n}u) { return; }
  E[i] = ${fl(beta)} * E[i] + ${fl(1 - beta)} * X[i];
}`,
  };
}
