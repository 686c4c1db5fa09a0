// Quick GEMM-class throughput on the current adapter, for tuning tiles and choosing the operand path:
// prints GFLOP/s (wall clock, rt.sync() around each of repeated runs after a warm-up run that also
// compiles; its time is printed as "first"). Other processes share the CPU adapter's cores, so the
// best run, the median and the work per CPU-second of this process (steadier under contention;
// lavapipe runs its threads inside the process) are printed. Each case runs on each path asked for
// (texture-path times include packing the operands).
//   deno run -A bench/gemm_quick.ts [matmul|small|conv|all] [storage|texture|both] [tile tm,tn,wx,wy]
import { gpu, initGPU } from "../kernels/runtime.ts";
import { matmul, matmulFlops, type MatmulParams } from "../kernels/matmul.ts";
import { type GemmPath, gemmTuning } from "../kernels/gemm.ts";
import {
  conv2dFlops,
  conv2dForward,
  conv2dInputGrad,
  type Conv2dParams,
  conv2dWeightGrad,
} from "../kernels/conv2d.ts";

await initGPU();
const rt = gpu();
const what = Deno.args[0] ?? "all";
const pathArg = Deno.args[1] ?? "both";
if (!["storage", "texture", "both"].includes(pathArg)) throw new Error(`unknown path ${pathArg}`);
const paths: GemmPath[] = pathArg === "both" ? ["storage", "texture"] : [pathArg as GemmPath];
if (Deno.args[2]) {
  const [tm, tn, wx, wy] = Deno.args[2].split(",").map(Number);
  gemmTuning.tile = { tm, tn, wx, wy };
}

/** CPU seconds used by this process (lavapipe's worker threads included), or NaN off Linux. */
function cpuSeconds(): number {
  try {
    const stat = Deno.readTextFileSync("/proc/self/stat");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return NaN;
  }
}

async function gflops(run: () => void, flops: number, minMs = 1500): Promise<string> {
  const t00 = performance.now();
  run();
  await rt.sync();
  const first = performance.now() - t00;
  const times: number[] = [];
  const t0 = performance.now(), c0 = cpuSeconds();
  while (performance.now() - t0 < minMs || times.length < 3) {
    const t = performance.now();
    run();
    await rt.sync();
    times.push(performance.now() - t);
  }
  const perCpu = (flops * times.length) / (cpuSeconds() - c0) / 1e9;
  times.sort((a, b) => a - b);
  const g = (ms: number) => (flops / ms / 1e6).toFixed(2);
  return `best ${g(times[0])} median ${g(times[times.length >> 1])} GFLOP/s, ` +
    `${perCpu.toFixed(2)} GFLOP per CPU-second (${times.length} runs, first ${first.toFixed(0)} ms)`;
}

/** Runs one case on every requested path. */
async function bothPaths(name: string, run: () => void, flops: number): Promise<void> {
  for (const path of paths) {
    gemmTuning.path = path;
    console.log(`${name} [${path}]: ${await gflops(run, flops)}`);
  }
  gemmTuning.path = null;
}

function randomBuffer(n: number): GPUBuffer {
  const b = rt.alloc(n * 4);
  rt.upload(b, new Float32Array(n).map(() => Math.random() - 0.5));
  return b;
}

const matmulSizes = what === "small"
  ? [32, 64, 96, 128, 192]
  : what === "matmul" || what === "all"
  ? [256, 512, 1024, 2048]
  : [];
for (const s of matmulSizes) {
  const p: MatmulParams = { batch: 1, m: s, n: s, k: s };
  const a = randomBuffer(s * s), b = randomBuffer(s * s), c = rt.alloc(s * s * 4);
  await bothPaths(`matmul ${s}`, () => matmul(a, b, c, p), matmulFlops(p));
  for (const buf of [a, b, c]) rt.release(buf);
}

function conv3x3(batch: number, cin: number, cout: number, size: number, groups = 1): Conv2dParams {
  return {
    batch,
    cin,
    cout,
    h: size,
    w: size,
    kh: 3,
    kw: 3,
    strideY: 1,
    strideX: 1,
    padTop: 1,
    padLeft: 1,
    groups,
    outH: size,
    outW: size,
  };
}

if (what === "conv" || what === "all") {
  const shapes: [string, Conv2dParams][] = [
    ["b8 128->128 16x16", conv3x3(8, 128, 128, 16)],
    ["b16 32->64 64x64", conv3x3(16, 32, 64, 64)],
    ["b8 512->512 4x4", conv3x3(8, 512, 512, 4)],
    ["modconv 8 samples 256->256 8x8 (groups 8)", conv3x3(1, 8 * 256, 8 * 256, 8, 8)],
  ];
  for (const [name, p] of shapes) {
    const x = randomBuffer(p.batch * p.cin * p.h * p.w), y = randomBuffer(p.batch * p.cout * p.outH * p.outW);
    const w = randomBuffer(p.cout * (p.cin / p.groups) * p.kh * p.kw);
    const out = rt.alloc(Math.max(x.size, y.size, w.size));
    const f = conv2dFlops(p);
    await bothPaths(`conv ${name} forward`, () => conv2dForward(x, w, out, p), f);
    await bothPaths(`conv ${name} input grad`, () => conv2dInputGrad(y, w, out, p), f);
    await bothPaths(`conv ${name} weight grad`, () => conv2dWeightGrad(x, y, out, p), f);
    for (const buf of [x, y, w, out]) rt.release(buf);
  }
}
