// The benchmark cases. To add one (upfirdn2d, modulated conv, a training step, FID sqrtm, kNN, ...),
// append an object to CASES (or a function producing several, like convCases):
//
//   {
//     name: "upfirdn2d up2 b8 c256 32x32",   // row name; `deno task bench --filter up` selects it
//     group: "upfirdn2d",
//     unit: "GB/s",                          // "GFLOP/s" (work = FLOPs), "GB/s" (bytes), "us" (operations)
//     work: bytesMovedPerRun,                // per run; peers are scored on the same number
//     inputs: [[8, 256, 32, 32], [4]],       // shapes; the harness fills them with seeded uniform [-1, 1)
//     output: [8, 256, 64, 64],              // the harness allocates it and compares it across engines
//     ours: ([x, f], out) => () => upfirdn2d(x, f, out, params),   // setup once, return one run
//     peers: {                               // optional; columns by name
//       "jax-js": jaxPeer((x, f) => ..., { jit: true }),          // owned jax-js arrays in, one array out
//       "torch": torchPeer("lambda x, f: ..."),               // Python lambda, `torch` and `F` in scope
//     },
//   }
//
// `ours` may instead return { run, output?, dispose? } when it owns scratch buffers or its result lands
// elsewhere. A run must only record GPU work (the harness times "N runs, then one wait"). Inputs are
// uploaded before the clock starts; a case whose peers cannot do the work just leaves that peer out
// (the table says n/a).

import {
  conv2dFlops,
  conv2dForward,
  conv2dInputGrad,
  type Conv2dParams,
  conv2dWeightGrad,
} from "../kernels/conv2d.ts";
import { elementwise, elementwiseBytes } from "../kernels/elementwise.ts";
import { matmul, matmulFlops } from "../kernels/matmul.ts";
import { adamBytes } from "../kernels/adam.ts";
import { columnMoments } from "../kernels/reduce.ts";
import { gpu } from "../kernels/runtime.ts";
import { emaInto } from "../nn/module.ts";
import { Adam } from "../nn/optim.ts";
import { fromHost, type Tensor } from "../nn/tensor.ts";
import { discriminatorLayers } from "../gan/toy2d/models.ts";
import { lax, numpy as np, vjp } from "@jax-js/jax";
import { type Case, caseInput, jaxPeer, type PeerSpec, torchPeer } from "./harness.ts";
import { METRIC_CASES } from "./cases_metrics.ts";
import { STYLEGAN_CASES } from "./cases_stylegan.ts";

function matmulCase(size: number): Case {
  const p = { batch: 1, m: size, n: size, k: size };
  return {
    name: `matmul ${size}`,
    group: "matmul",
    unit: "GFLOP/s",
    work: matmulFlops(p),
    inputs: [[size, size], [size, size]],
    output: [size, size],
    ours: ([a, b], out) => () => matmul(a, b, out, p),
    peers: {
      "jax-js": jaxPeer((a, b) => np.matmul(a, b)),
      "torch": torchPeer("lambda a, b: a @ b"),
    },
  };
}

/** A stride-1 "same" k x k convolution with c channels in and out (StyleGAN2's common case). */
function sameConv(batch: number, c: number, hw: number, k: number): Conv2dParams {
  const pad = (k - 1) >> 1;
  return {
    batch,
    cin: c,
    cout: c,
    h: hw,
    w: hw,
    kh: k,
    kw: k,
    strideY: 1,
    strideX: 1,
    padTop: pad,
    padLeft: pad,
    groups: 1,
    outH: hw,
    outW: hw,
  };
}

/** Forward, input-gradient and weight-gradient cases for one convolution shape. */
function convCases(p: Conv2dParams): Case[] {
  const label = `b${p.batch} c${p.cin} ${p.h}x${p.w} k${p.kh}`;
  const xShape = [p.batch, p.cin, p.h, p.w];
  const wShape = [p.cout, p.cin / p.groups, p.kh, p.kw];
  const yShape = [p.batch, p.cout, p.outH, p.outW];
  const padBottom = (p.outH - 1) * p.strideY + p.kh - p.h - p.padTop;
  const padRight = (p.outW - 1) * p.strideX + p.kw - p.w - p.padLeft;
  const strides = [p.strideY, p.strideX];
  const pads: [number, number][] = [[p.padTop, padBottom], [p.padLeft, padRight]];
  const conv = (x: np.Array, w: np.Array) =>
    lax.convGeneralDilated(x, w, strides, pads, { featureGroupCount: p.groups });
  // torch pads symmetrically only; asymmetric shapes simply get no torch peer.
  const symmetric = padBottom === p.padTop && padRight === p.padLeft;
  const tArgs = `stride=(${strides}), padding=(${p.padTop}, ${p.padLeft}), groups=${p.groups}`;
  const torch = (expr: string): Record<string, PeerSpec> => symmetric ? { "torch": torchPeer(expr) } : {};
  const common = { group: "conv2d", unit: "GFLOP/s" as const, work: conv2dFlops(p) };
  return [
    {
      ...common,
      name: `conv2d fwd ${label}`,
      inputs: [xShape, wShape],
      output: yShape,
      ours: ([x, w], y) => () => conv2dForward(x, w, y, p),
      peers: {
        "jax-js": jaxPeer(conv, { jit: true }),
        ...torch(`lambda x, w: F.conv2d(x, w, ${tArgs})`),
      },
    },
    {
      ...common,
      name: `conv2d dx ${label}`,
      inputs: [yShape, wShape],
      output: xShape,
      ours: ([dy, w], dx) => () => conv2dInputGrad(dy, w, dx, p),
      peers: {
        // The primal x is irrelevant to a linear map's VJP; under jit the unused forward is dropped.
        "jax-js": jaxPeer((dy, w) => {
          const [y, back] = vjp((x: np.Array) => conv(x, w), [np.zeros(xShape)]);
          y.dispose();
          const [dx] = back(dy);
          back.dispose();
          return dx;
        }, { jit: true }),
        ...torch(`lambda dy, w: torch.nn.grad.conv2d_input(${JSON.stringify(xShape)}, w, dy, ${tArgs})`),
      },
    },
    {
      ...common,
      name: `conv2d dw ${label}`,
      inputs: [xShape, yShape],
      output: wShape,
      ours: ([x, dy], dw) => () => conv2dWeightGrad(x, dy, dw, p),
      peers: {
        "jax-js": jaxPeer((x, dy) => {
          const [y, back] = vjp((w: np.Array) => conv(x, w), [np.zeros(wShape)]);
          y.dispose();
          const [dw] = back(dy);
          back.dispose();
          return dw;
        }, { jit: true }),
        ...torch(`lambda x, dy: torch.nn.grad.conv2d_weight(x, ${JSON.stringify(wShape)}, dy, ${tArgs})`),
      },
    },
  ];
}

/** out = in0 `op` scalar (or a unary expression), contiguous 1-D. */
function ew(name: string, expr: string, src: GPUBuffer, dst: GPUBuffer, n: number, scalar = 0): void {
  elementwise({
    name,
    expr,
    inputs: [{ buffer: src, dtype: "f32", strides: [1], offset: 0 }],
    out: { buffer: dst, dtype: "f32", strides: [1], offset: 0 },
    shape: [n],
    scalars: [scalar],
  });
}

const [A, B, C] = [1.5, 0.25, 0.75];

/** y = tanh(x*a + b)*c over n elements: for us four separate dispatches; GB/s counts all their traffic. */
function elementwiseChainCase(n: number): Case {
  const chain = (x: np.Array) => np.tanh(x.mul(A).add(B)).mul(C);
  return {
    name: `ew chain tanh(x*a+b)*c ${n >> 20}M`,
    group: "elementwise",
    unit: "GB/s",
    work: 4 * elementwiseBytes(n, 1),
    inputs: [[n]],
    output: [n],
    ours: ([x], out) => {
      const rt = gpu();
      const t1 = rt.alloc(4 * n), t2 = rt.alloc(4 * n);
      return {
        run: () => {
          ew("mul_s", "in0 * p0", x, t1, n, A);
          ew("add_s", "in0 + p0", t1, t2, n, B);
          ew("tanh", "tanh(in0)", t2, t1, n);
          ew("mul_s", "in0 * p0", t1, out, n, C);
        },
        dispose: () => {
          rt.release(t1);
          rt.release(t2);
        },
      };
    },
    peers: {
      "jax-js": jaxPeer(chain, { jit: true }), // fused into one kernel by jit: a quarter of our traffic
      "jax-js eager": jaxPeer(chain), // one kernel per op, like ours
      "torch": torchPeer(`lambda x: torch.tanh(x * ${A} + ${B}) * ${C}`),
    },
  };
}

/** Latency of one tiny dependent op y = y + 1 (64 elements), in a chain of many. */
function tinyDispatchCase(): Case {
  const n = 64;
  return {
    name: "dispatch overhead (y=y+1, 64 elems)",
    group: "overhead",
    unit: "us",
    work: 1,
    inputs: [[n]],
    output: [n],
    ours: ([x], out) => {
      const rt = gpu();
      const tmp = rt.alloc(4 * n);
      let src = x, dst = out;
      return {
        run: () => {
          ew("add_s", "in0 + p0", src, dst, n, 1);
          src = dst;
          dst = dst === out ? tmp : out;
        },
        output: out,
        dispose: () => rt.release(tmp),
      };
    },
    peers: {
      "jax-js": jaxPeer((y) => y.add(1), { chain: true }),
      "torch": torchPeer("lambda y: y + 1.0", { chain: true }),
    },
  };
}

/** The first 16 parameter sizes of the 2-D study's generator (weights, biases, BatchNorm affine). */
const EMA_SIZES = [
  64 * 64,
  64,
  64,
  64,
  128 * 64,
  128,
  128,
  128,
  128 * 128,
  128,
  128,
  128,
  128 * 128,
  128,
  128,
  128,
];
const EMA_BETA = 0.9;

/**
 * An EMA of 16 tensors in place (dst_k <- beta dst_k + (1 - beta) src_k), the weight average every
 * training step ends with, through nn/module.ts emaInto (multi-tensor dispatches, grouped as the adapter
 * prefers: one on a GPU, large tensors apart on a CPU adapter); torch's peer is its multi-tensor
 * _foreach_mul_ and _foreach_add_ (torch 1.13 has no _foreach_lerp_).
 */
function emaMultiCase(): Case {
  const k = EMA_SIZES.length;
  const c: Case = {
    name: `ema multi-tensor ${k} (toy G sizes)`,
    group: "elementwise",
    unit: "GB/s",
    work: 3 * 4 * EMA_SIZES.reduce((a, b) => a + b, 0),
    inputs: [...EMA_SIZES, ...EMA_SIZES].map((n) => [n]),
    output: [EMA_SIZES[0]],
    ours: () => {
      const ts = caseTensors(c);
      const dsts = ts.slice(0, k), srcs = ts.slice(k);
      return {
        run: () => emaInto(dsts, srcs, EMA_BETA),
        output: dsts[0].buffer,
        dispose: () => {
          for (const t of ts) t.dispose();
        },
      };
    },
    peers: {
      "torch": torchPeer(
        `lambda *xs: (lambda d, s: (torch._foreach_mul_(d, ${EMA_BETA}), ` +
          `torch._foreach_add_(d, s, alpha=${1 - EMA_BETA}), d[0])[2])(list(xs[:${k}]), list(xs[${k}:]))`,
      ),
    },
  };
  return c;
}

/** The 2-D study's discriminator parameters in order (weight, bias per layer), from its model definition. */
const TOY_D_SHAPES = discriminatorLayers().flatMap((l) => [[l.outF, l.inF], [l.outF]]);

/** A case's inputs as tensors (the same seeded values the harness uploads), for cases that run nn/ code. */
function caseTensors(c: Case): Tensor[] {
  return c.inputs.map((shape, j) => fromHost(caseInput(c, j), shape, "f32"));
}

/**
 * One Adam update of the 2-D study's discriminator through nn/optim.ts (its multi-tensor grouping, which
 * on a CPU adapter keeps large parameters out of shared dispatches) against torch.optim.Adam with
 * foreach=True. GB/s counts adamBytes. The parameters drift over the runs on both sides, so the output
 * is a constant zero (its err column is a placeholder, not a check); Adam's values are tested in tests/.
 */
function adamToyDCase(): Case {
  const k = TOY_D_SHAPES.length, n = TOY_D_SHAPES.reduce((s, sh) => s + sh.reduce((a, b) => a * b, 1), 0);
  const c: Case = {
    name: `adam update toy D (${k} parameters, ${n} values)`,
    group: "elementwise",
    unit: "GB/s",
    work: adamBytes(n),
    inputs: [...TOY_D_SHAPES, ...TOY_D_SHAPES],
    output: [1],
    ours: (_xs, out) => {
      gpu().upload(out, new Float32Array(1));
      const ts = caseTensors(c);
      const params = ts.slice(0, k), grads = ts.slice(k);
      const opt = new Adam(params, { lr: 1e-3, betas: [0.5, 0.999] });
      return {
        run: () => opt.update(grads),
        dispose: () => {
          opt.dispose();
          for (const t of ts) t.dispose();
        },
      };
    },
    peers: {
      "torch": torchPeer(
        `lambda *xs, st={}: (st.setdefault("o", torch.optim.Adam(list(xs[:${k}]), lr=1e-3, ` +
          `betas=(0.5, 0.999), foreach=True)), [setattr(p, "grad", g) for p, g in zip(xs[:${k}], xs[${k}:])], ` +
          `st["o"].step(), torch.zeros(1))[3]`,
      ),
    },
  };
  return c;
}

/**
 * BatchNorm's batch statistics of x [n, c] (training forward): mean and biased variance per column in one
 * dispatch that reads x twice; GB/s counts those two reads. The output compared is the variance; torch's
 * peer is var_mean (one pass, Welford).
 */
function momentsCase(n: number, c: number): Case {
  return {
    name: `batch moments [${n}, ${c}]`,
    group: "reduce",
    unit: "GB/s",
    work: 2 * 4 * n * c,
    inputs: [[n, c]],
    output: [c],
    ours: ([x], out) => {
      const rt = gpu(), mu = rt.alloc(4 * c);
      return { run: () => columnMoments(x, mu, out, 1, n, c), dispose: () => rt.release(mu) };
    },
    peers: { "torch": torchPeer("lambda x: torch.var_mean(x, 0, unbiased=False)[0]") },
  };
}

const heavy = (c: Case): Case => ({ ...c, heavy: true });

export const CASES: Case[] = [
  ...[256, 512, 1024, 2048].map(matmulCase),
  ...[4096, 8192].map(matmulCase).map(heavy),
  ...[sameConv(8, 512, 4, 3), sameConv(8, 128, 16, 3), sameConv(16, 64, 32, 3), sameConv(16, 32, 64, 3)]
    .flatMap(convCases),
  // paper256's 32x32 and 128x128 layers at batch 32 (GPU-sized).
  ...[sameConv(32, 512, 32, 3), sameConv(32, 256, 128, 3)].flatMap(convCases).map(heavy),
  elementwiseChainCase(1 << 22),
  tinyDispatchCase(),
  emaMultiCase(),
  adamToyDCase(),
  momentsCase(128, 128),
  momentsCase(4096, 256),
  ...STYLEGAN_CASES,
  ...METRIC_CASES,
];
