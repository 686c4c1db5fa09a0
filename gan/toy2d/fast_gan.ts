// The fused trainer of the study's 2-D GAN: the whole protocol step (dSteps discriminator steps, one
// generator step, Adam for both, the generator EMA) as one submitted compute pass of 143 dispatches,
// with latents and real points sampled on the GPU and nothing read back inside a step.
// Semantics match the engine modules in models.ts trained with autograd (tests/toy2d_test.ts checks the
// gradients): non-saturating loss, BatchNorm in training mode (batch statistics, running statistics
// updated at every generator forward, as PyTorch does), PyTorch's Adam. One documented difference: the
// bias of a Linear followed by BatchNorm gets an exactly-zero gradient (BatchNorm cancels it; autograd
// gives round-off of ~1e-9, which Adam would amplify into noise updates). The EMA covers the running
// statistics too (one extra dispatch per step); evaluation samples use BatchNorm in eval mode.

import { tensor } from "../../nn/creation.ts";
import type { Tensor } from "../../nn/tensor.ts";
import { cumulativeWeights, type Mixture } from "./distributions.ts";
import {
  bnBwdKernel,
  bnStatsKernel,
  emaKernel,
  type InputMode,
  linDwKernel,
  linDxKernel,
  linFwdKernel,
  MAX_MIX_COMPONENTS,
  MIX_COMPONENT_FLOATS,
  sampleKernel,
  STEP_BYTES,
} from "../../kernels/mlp_small.ts";
import {
  type FlatLayout,
  packState,
  paramLayout,
  runningLayout,
  slot,
  unpackHost,
  unpackState,
} from "./fast_layout.ts";
import { type Bind, GpuProgram, type Op } from "../../kernels/program.ts";
import { discriminatorLayers, generatorLayers, LATENT, type LayerSpec } from "./models.ts";

export interface FastGanOptions {
  /** Real data distribution. */
  data: Mixture;
  seed: number;
  /** Batch size (real and fake each); at most 64 (uniform-buffer limit of the weight-gradient kernel). */
  batch?: number;
  dSteps?: number;
  lr?: number;
  betas?: [number, number];
  eps?: number;
  emaBeta?: number;
  bnMomentum?: number;
  bnEps?: number;
}

const STEP_SLOT = 256;

/** BatchNorm in a generator forward: training (batch statistics, running update), batch only, running. */
type BnMode = "train" | "batch" | "running";

/** Murmur3's 32-bit finaliser: decorrelates consecutive counters used as random keys. */
export function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** Packs a mixture into the sampler's uniform table: (cum, kind, p0, p1), (sigma, p2, p3, 0). */
export function packMixture(m: Mixture): Float32Array {
  const cum = cumulativeWeights(m);
  if (m.components.length > MAX_MIX_COMPONENTS) {
    throw new Error(`mixture ${m.name}: at most ${MAX_MIX_COMPONENTS} components on the GPU sampler`);
  }
  const t = new Float32Array(m.components.length * MIX_COMPONENT_FLOATS);
  m.components.forEach((c, j) => {
    const o = j * MIX_COMPONENT_FLOATS;
    t[o] = j === m.components.length - 1 ? 2 : cum[j]; // the last component takes every u
    t[o + 4] = c.sigma;
    if (c.kind === "gauss") t.set([0, c.cx, c.cy], o + 1);
    else if (c.kind === "circle") (t.set([1, c.cx, c.cy], o + 1), t[o + 5] = c.radius);
    else if (c.kind === "ring") (t.set([3, c.cx, c.cy], o + 1), t.set([c.radius, c.radialSigma], o + 5));
    else (t.set([2, c.turns, c.rMin], o + 1), t[o + 5] = c.rMax);
  });
  return t;
}

interface EvalProgram {
  ops: Op[];
  out: GPUBuffer;
}

export class FastToyGan {
  readonly batch: number;
  readonly dSteps: number;
  readonly lr: number;
  readonly betas: [number, number];
  readonly eps: number;
  readonly emaBeta: number;
  readonly seed: number;
  readonly gLayers: LayerSpec[] = generatorLayers();
  readonly dLayers: LayerSpec[] = discriminatorLayers();
  readonly gLayout: FlatLayout;
  readonly gRunLayout: FlatLayout;
  readonly dLayout: FlatLayout;
  /** Completed iterations (one iteration = dSteps D steps + 1 G step). */
  iteration = 0;
  /** BatchNorm batches seen (PyTorch's num_batches_tracked). */
  bnBatches = 0;
  /** Adam step counts. */
  adamStepsG = 0;
  adamStepsD = 0;
  readonly prog = new GpuProgram();
  private bnMomentum: number;
  private bnEps: number;
  private b: Record<string, GPUBuffer> = {};
  private act: {
    aG: GPUBuffer[];
    stG: GPUBuffer[];
    aD: GPUBuffer[];
    gDh: GPUBuffer[];
    dhG: GPUBuffer[];
    daG: GPUBuffer[];
  };
  private dStepOps: Op[][] = [];
  private gStepOps: Op[] = [];
  private evalPrograms = new Map<string, EvalProgram>();
  private dataPrograms = new Map<number, EvalProgram>();
  private evalBuffers = new Map<number, { z: GPUBuffer; a: GPUBuffer[]; st: GPUBuffer[]; out: GPUBuffer }>();
  private stepData = new Uint8Array(0);
  private mixComponents: number;

  constructor(opts: FastGanOptions) {
    this.batch = opts.batch ?? 64;
    this.dSteps = opts.dSteps ?? 4;
    this.lr = opts.lr ?? 2e-4;
    this.betas = opts.betas ?? [0.5, 0.999];
    this.eps = opts.eps ?? 1e-8;
    this.emaBeta = opts.emaBeta ?? 0.99;
    this.bnMomentum = opts.bnMomentum ?? 0.1;
    this.bnEps = opts.bnEps ?? 1e-5;
    this.seed = opts.seed >>> 0;
    const B = this.batch;
    if (!Number.isInteger(B) || B < 2 || B > 64 || B % 2 !== 0) {
      throw new Error(`FastToyGan: batch must be an even number in 2..64 (uniform-buffer limit), got ${B}`);
    }
    if (!Number.isInteger(this.dSteps) || this.dSteps < 1 || this.dSteps > 15) {
      throw new Error(`FastToyGan: dSteps must be in 1..15, got ${this.dSteps}`);
    }
    this.gLayout = paramLayout(this.gLayers);
    this.gRunLayout = runningLayout(this.gLayers);
    this.dLayout = paramLayout(this.dLayers);
    const p = this.prog, f4 = (n: number) => n * 4;
    const gF = f4(this.gLayout.floats), dF = f4(this.dLayout.floats);
    for (const n of ["pG", "gG", "mG", "vG", "eG"]) this.b[n] = p.buffer(gF, n);
    for (const n of ["pD", "gD", "mD", "vD"]) this.b[n] = p.buffer(dF, n);
    this.b.rG = p.buffer(f4(this.gRunLayout.floats), "rG");
    // The EMA generator's BatchNorm running statistics (REFERENCE.md 7: the EMA covers G's whole state).
    this.b.eRG = p.buffer(f4(this.gRunLayout.floats), "eRG");
    this.b.z = p.buffer(f4(B * LATENT), "z");
    this.b.xD = p.buffer(f4(2 * B * 2), "xD");
    this.b.o = p.buffer(f4(2 * B), "o");
    this.b.gO = p.buffer(f4(2 * B), "gO");
    this.b.lossD = p.buffer(f4(2 * B), "lossD");
    this.b.lossG = p.buffer(f4(B), "lossG");
    this.b.gx = p.buffer(f4(B * 2), "gx");
    this.b.step = p.buffer((this.dSteps + 1) * STEP_SLOT, "step");
    this.b.evalStep = p.buffer(STEP_SLOT, "evalStep");
    const mix = packMixture(opts.data);
    this.mixComponents = opts.data.components.length;
    this.b.mix = p.buffer(mix.byteLength, "mix");
    p.write(this.b.mix, mix);
    const gHidden = this.gLayers.slice(0, -1), dHidden = this.dLayers.slice(0, -1);
    this.act = {
      aG: gHidden.map((l, i) => p.buffer(f4(B * l.outF), `aG${i}`)),
      stG: gHidden.map((l, i) => p.buffer(f4(4 * l.outF), `stG${i}`)),
      dhG: gHidden.map((l, i) => p.buffer(f4(B * l.outF), `dhG${i}`)),
      daG: gHidden.map((l, i) => p.buffer(f4(B * l.outF), `daG${i}`)),
      aD: dHidden.map((l, i) => p.buffer(f4(2 * B * l.outF), `aD${i}`)),
      gDh: dHidden.map((l, i) => p.buffer(f4(2 * B * l.outF), `gDh${i}`)),
    };
    this.buildSteps();
  }

  // ---- bindings ----

  private whole(buf: GPUBuffer): Bind {
    return { buffer: buf };
  }

  private range(buf: GPUBuffer, layout: FlatLayout, name: string): Bind {
    const s = slot(layout, name);
    return { buffer: buf, offset: s.off * 4, size: Math.ceil(s.size / 4) * 16 };
  }

  private rows(buf: GPUBuffer, rows: number, width: number): Bind {
    return { buffer: buf, offset: 0, size: Math.ceil((rows * width) / 4) * 16 };
  }

  private stepSlot(i: number, buf = this.b.step): Bind {
    return { buffer: buf, offset: i * STEP_SLOT, size: STEP_BYTES };
  }

  // ---- the step program ----

  /** Generator forward ops on `rows` latents in zBuf; output written at row outRow of outBuf. */
  private gForward(
    rows: number,
    params: GPUBuffer,
    zBuf: GPUBuffer,
    a: GPUBuffer[],
    st: GPUBuffer[],
    outBuf: GPUBuffer,
    outRow: number,
    bn: BnMode,
    running: GPUBuffer = this.b.rG,
  ): Op[] {
    const train = bn === "train";
    const ops: Op[] = [];
    this.gLayers.forEach((l, i) => {
      const input: InputMode = i === 0 ? "raw" : "bnrelu";
      const last = i === this.gLayers.length - 1;
      const binds: Bind[] = [
        this.whole(i === 0 ? zBuf : a[i - 1]),
        this.whole(last ? outBuf : a[i]),
        this.range(params, this.gLayout, l.weight),
        this.range(params, this.gLayout, l.bias),
      ];
      if (input === "bnrelu") binds.push(this.whole(st[i - 1]));
      ops.push(
        this.prog.op(
          "gfwd",
          linFwdKernel({ rows, inF: l.inF, outF: l.outF, input, outRow: last ? outRow : 0 }),
          binds,
        ),
      );
      if (l.bn) {
        const spec = bnStatsKernel({
          rows,
          features: l.outF,
          train,
          useRunning: bn === "running",
          momentum: this.bnMomentum,
          eps: this.bnEps,
          gamma: slot(this.gLayout, `${l.bn}.weight`).off,
          beta: slot(this.gLayout, `${l.bn}.bias`).off,
          runMean: slot(this.gRunLayout, `${l.bn}.running_mean`).off,
          runVar: slot(this.gRunLayout, `${l.bn}.running_var`).off,
        });
        const sb = [this.whole(a[i]), this.whole(st[i]), this.whole(params)];
        if (bn !== "batch") sb.push(this.whole(running));
        ops.push(this.prog.op("gbn", spec, sb));
      }
    });
    return ops;
  }

  /** Discriminator forward on `rows` rows of xD from inRow, ending in the loss head. */
  private dForward(rows: number, inRow: number, head: "d" | "g"): Op[] {
    const B = this.batch;
    return this.dLayers.map((l, i) => {
      const last = i === this.dLayers.length - 1;
      const spec = linFwdKernel({
        rows,
        inF: l.inF,
        outF: l.outF,
        input: i === 0 ? "raw" : "relu",
        inRow: i === 0 ? inRow : 0,
        head: last ? { mode: head, realRows: B } : undefined,
      });
      const binds: Bind[] = [
        this.whole(i === 0 ? this.b.xD : this.act.aD[i - 1]),
        this.whole(last ? this.b.o : this.act.aD[i]),
        this.range(this.b.pD, this.dLayout, l.weight),
        this.range(this.b.pD, this.dLayout, l.bias),
      ];
      if (last) binds.push(this.whole(this.b.gO), this.whole(head === "d" ? this.b.lossD : this.b.lossG));
      return this.prog.op("dfwd", spec, binds);
    });
  }

  /** Gradient of the loss w.r.t. the discriminator's pre-activations, layer by layer from the head. */
  private dGrad(i: number): GPUBuffer {
    return i === this.dLayers.length - 1 ? this.b.gO : this.act.gDh[i];
  }

  /** Bindings of the fused optimiser epilogue: gradients, parameters, moments, [EMA], step scalars. */
  private updateBinds(net: "G" | "D", stepSlot: number): Bind[] {
    const b = this.b;
    const bufs = net === "G" ? [b.gG, b.pG, b.mG, b.vG, b.eG] : [b.gD, b.pD, b.mD, b.vD];
    return [...bufs.map((x) => this.whole(x)), this.stepSlot(stepSlot)];
  }

  /**
   * Discriminator backward with the Adam update fused into each weight-gradient kernel. Per layer the
   * input gradient (which reads the old weights) is computed before the update of those weights.
   */
  private dBackward(stepSlot: number): Op[] {
    const B = this.batch, p = this.prog, b = this.b, A = this.act, ops: Op[] = [];
    for (let i = this.dLayers.length - 1; i >= 0; i--) {
      const l = this.dLayers[i];
      if (i > 0) {
        ops.push(p.op("dbwd", linDxKernel({ rows: 2 * B, inF: l.inF, outF: l.outF, mask: true }), [
          this.whole(this.dGrad(i)),
          this.range(b.pD, this.dLayout, l.weight),
          this.whole(A.gDh[i - 1]),
          this.whole(A.aD[i - 1]),
        ]));
      }
      const spec = linDwKernel({
        rows: 2 * B,
        inF: l.inF,
        outF: l.outF,
        input: i === 0 ? "raw" : "relu",
        offW: slot(this.dLayout, l.weight).off,
        offB: slot(this.dLayout, l.bias).off,
        zeroBias: false,
        update: {},
      });
      ops.push(p.op("dbwd", spec, [
        this.rows(this.dGrad(i), 2 * B, l.outF),
        this.whole(i === 0 ? b.xD : A.aD[i - 1]),
        ...this.updateBinds("D", stepSlot),
      ]));
    }
    return ops;
  }

  /** Generator backward from dL/dx (gx) with Adam and the EMA fused into the gradient kernels. */
  private gBackward(stepSlot: number): Op[] {
    const B = this.batch, p = this.prog, b = this.b, A = this.act, ops: Op[] = [];
    const upd = { emaBeta: this.emaBeta };
    for (let i = this.gLayers.length - 1; i >= 0; i--) {
      const l = this.gLayers[i];
      // Gradient w.r.t. this layer's pre-activation: dL/dx for the last layer, BatchNorm backward otherwise.
      let g = b.gx;
      if (l.bn) {
        g = A.daG[i];
        const spec = bnBwdKernel({
          rows: B,
          features: l.outF,
          gamma: slot(this.gLayout, `${l.bn}.weight`).off,
          beta: slot(this.gLayout, `${l.bn}.bias`).off,
          update: upd,
        });
        ops.push(p.op("gbwd", spec, [
          ...[A.dhG[i], A.aG[i], A.stG[i], A.daG[i]].map((x) => this.whole(x)),
          ...this.updateBinds("G", stepSlot),
        ]));
      }
      if (i > 0) {
        ops.push(p.op("gbwd", linDxKernel({ rows: B, inF: l.inF, outF: l.outF, mask: false }), [
          this.whole(g),
          this.range(b.pG, this.gLayout, l.weight),
          this.whole(A.dhG[i - 1]),
        ]));
      }
      const input: InputMode = i === 0 ? "raw" : "bnrelu";
      const binds: Bind[] = [this.rows(g, B, l.outF), this.whole(i === 0 ? b.z : A.aG[i - 1])];
      if (input === "bnrelu") binds.push(this.whole(A.stG[i - 1]));
      const spec = linDwKernel({
        rows: B,
        inF: l.inF,
        outF: l.outF,
        input,
        offW: slot(this.gLayout, l.weight).off,
        offB: slot(this.gLayout, l.bias).off,
        zeroBias: !!l.bn,
        update: upd,
      });
      ops.push(p.op("gbwd", spec, [...binds, ...this.updateBinds("G", stepSlot)]));
    }
    return ops;
  }

  private buildSteps(): void {
    const B = this.batch, p = this.prog, b = this.b;
    const gFwd = this.gForward(B, b.pG, b.z, this.act.aG, this.act.stG, b.xD, B, "train");
    // Discriminator steps: real rows 0..B-1, fake rows B..2B-1 of xD.
    const dFwd = this.dForward(2 * B, 0, "d");
    for (let s = 0; s < this.dSteps; s++) {
      const sample = p.op("sample", sampleKernel(B * LATENT, B, 0, this.mixComponents), [
        this.whole(b.z),
        this.whole(b.xD),
        { buffer: b.mix, offset: 0, size: this.mixComponents * MIX_COMPONENT_FLOATS * 4 },
        this.stepSlot(s),
      ]);
      this.dStepOps.push([sample, ...gFwd, ...dFwd, ...this.dBackward(s)]);
    }
    // Generator step: D on the fake rows only, gradient to the samples (gx), then through G.
    const G = this.dSteps;
    const ops: Op[] = [
      p.op("sample", sampleKernel(B * LATENT, 0, 0, this.mixComponents), [this.whole(b.z), this.stepSlot(G)]),
      ...gFwd,
      ...this.dForward(B, B, "g"),
    ];
    for (let i = this.dLayers.length - 1; i >= 0; i--) {
      const l = this.dLayers[i];
      const binds = [
        this.whole(this.dGrad(i)),
        this.range(b.pD, this.dLayout, l.weight),
        this.whole(i > 0 ? this.act.gDh[i - 1] : b.gx),
      ];
      if (i > 0) binds.push(this.whole(this.act.aD[i - 1]));
      ops.push(p.op("gbwd_d", linDxKernel({ rows: B, inF: l.inF, outF: l.outF, mask: i > 0 }), binds));
    }
    // The EMA of the parameters is fused into the gradient kernels; that of the running statistics is this.
    const emaRunning = p.op("ema", emaKernel(this.gRunLayout.floats, this.emaBeta), [
      this.whole(b.rG),
      this.whole(b.eRG),
    ]);
    this.gStepOps = [...ops, ...this.gBackward(G), emaRunning];
    this.stepData = new Uint8Array((this.dSteps + 1) * STEP_SLOT);
  }

  /** Dispatches per iteration (dSteps D steps + 1 G step). */
  get dispatchesPerIteration(): number {
    return this.dStepOps.reduce((a, o) => a + o.length, 0) + this.gStepOps.length;
  }

  /** The ops of one iteration, for profiling. */
  iterationOps(): Op[] {
    return [...this.dStepOps.flat(), ...this.gStepOps];
  }

  private writeStepSlot(view: DataView, byte: number, k0: number, k1: number, t: number, lr: number): void {
    const [b1, b2] = this.betas;
    view.setUint32(byte, k0, true);
    view.setUint32(byte + 4, k1, true);
    const f = [lr, b1, b2, this.eps, 1 - b1 ** t, 1 - b2 ** t];
    f.forEach((v, i) => view.setFloat32(byte + 16 + 4 * i, v, true));
  }

  /** Records and submits `n` iterations; nothing is read back. */
  iterate(n = 1): void {
    const view = new DataView(this.stepData.buffer);
    for (let k = 0; k < n; k++) {
      const it = this.iteration;
      for (let s = 0; s < this.dSteps; s++) {
        this.writeStepSlot(
          view,
          s * STEP_SLOT,
          this.seed,
          mix32(it * 16 + s + 1),
          this.adamStepsD + s + 1,
          this.lr,
        );
      }
      this.writeStepSlot(
        view,
        this.dSteps * STEP_SLOT,
        this.seed,
        mix32(it * 16 + 15),
        this.adamStepsG + 1,
        this.lr,
      );
      this.prog.write(this.b.step, this.stepData);
      this.prog.run(this.iterationOps());
      this.iteration++;
      this.adamStepsD += this.dSteps;
      this.adamStepsG++;
      this.bnBatches += this.dSteps + 1;
    }
  }

  /** Mean losses of the last D step and G step (reads back: call between iterations, rarely). */
  async losses(): Promise<{ d: number; g: number }> {
    const B = this.batch;
    const ld = await this.prog.read(this.b.lossD, 2 * B), lg = await this.prog.read(this.b.lossG, B);
    const mean = (a: Float32Array, s: number, e: number) =>
      a.slice(s, e).reduce((x, y) => x + y, 0) / (e - s);
    return { d: mean(ld, 0, B) + mean(ld, B, 2 * B), g: mean(lg, 0, B) };
  }

  // ---- sampling and evaluation ----

  private evalProgram(n: number, which: "ema" | "live", bn: "batch" | "running"): EvalProgram {
    const key = `${n}|${which}|${bn}`;
    let e = this.evalPrograms.get(key);
    if (e) return e;
    const p = this.prog, f4 = (x: number) => x * 4, tag = `eval${n}`;
    // Activation buffers are shared by both parameter sets of a size (their programs never overlap).
    let bufs = this.evalBuffers.get(n);
    if (!bufs) {
      const hidden = this.gLayers.slice(0, -1);
      bufs = {
        z: p.buffer(f4(n * LATENT), `${tag}z`),
        a: hidden.map((l, i) => p.buffer(f4(n * l.outF), `${tag}a${i}`)),
        st: hidden.map((l, i) => p.buffer(f4(4 * l.outF), `${tag}st${i}`)),
        out: p.buffer(f4(n * 2), `${tag}out`),
      };
      this.evalBuffers.set(n, bufs);
    }
    const sample = p.op("eval", sampleKernel(n * LATENT, 0, 0, this.mixComponents), [
      this.whole(bufs.z),
      this.stepSlot(0, this.b.evalStep),
    ]);
    const fwd = this.gForward(
      n,
      which === "ema" ? this.b.eG : this.b.pG,
      bufs.z,
      bufs.a,
      bufs.st,
      bufs.out,
      0,
      bn,
      which === "ema" ? this.b.eRG : this.b.rG,
    );
    e = { ops: [sample, ...fwd], out: bufs.out };
    this.evalPrograms.set(key, e);
    return e;
  }

  /**
   * n generator samples (x, y interleaved) from the EMA or the live weights; `key` picks the latents.
   * BatchNorm in eval mode ("running", the study's evaluation: that generator's running statistics) or
   * on the statistics of these n samples ("batch"); neither updates the running statistics.
   */
  async sample(
    n: number,
    which: "ema" | "live" = "ema",
    key = 0,
    bn: "batch" | "running" = "running",
  ): Promise<Float32Array> {
    if (!Number.isInteger(n) || n < 2 || n > 8192 || n % 2 !== 0) {
      throw new Error(`FastToyGan.sample: n must be an even number in 2..8192, got ${n}`);
    }
    const e = this.evalProgram(n, which, bn);
    const st = new Uint8Array(STEP_SLOT);
    const view = new DataView(st.buffer);
    view.setUint32(0, (this.seed ^ 0x5bd1e995) >>> 0, true);
    view.setUint32(4, mix32(key + 0x1000), true);
    this.prog.write(this.b.evalStep, st);
    this.prog.run(e.ops);
    return await this.prog.read(e.out, n * 2);
  }

  /** n points of the training distribution from the GPU sampler (the one the D steps use). */
  async sampleData(n: number, key = 0): Promise<Float32Array> {
    if (!Number.isInteger(n) || n < 1 || n > 1 << 20) {
      throw new Error(`FastToyGan.sampleData: bad count ${n}`);
    }
    let e = this.dataPrograms.get(n);
    if (!e) {
      const out = this.prog.buffer(n * 8, `data${n}`), z = this.prog.buffer(16, `dataz${n}`);
      const op = this.prog.op("data", sampleKernel(2, n, 0, this.mixComponents), [
        this.whole(z),
        this.whole(out),
        { buffer: this.b.mix, offset: 0, size: this.mixComponents * MIX_COMPONENT_FLOATS * 4 },
        this.stepSlot(0, this.b.evalStep),
      ]);
      e = { ops: [op], out };
      this.dataPrograms.set(n, e);
    }
    const st = new Uint8Array(STEP_SLOT);
    const view = new DataView(st.buffer);
    view.setUint32(0, (this.seed ^ 0x27d4eb2f) >>> 0, true);
    view.setUint32(4, mix32(key + 0x2000), true);
    this.prog.write(this.b.evalStep, st);
    this.prog.run(e.ops);
    return await this.prog.read(e.out, n * 2);
  }

  // ---- state ----

  /** Loads generator and discriminator weights (state dicts of ToyGenerator / ToyDiscriminator). */
  async load(
    g: Map<string, Tensor>,
    d: Map<string, Tensor>,
    opts: { emaFrom?: Map<string, Tensor> } = {},
  ): Promise<void> {
    const pg = await packState(this.gLayout, g, "generator");
    const rg = await packState(this.gRunLayout, g, "generator running statistics");
    const pd = await packState(this.dLayout, d, "discriminator");
    const eg = opts.emaFrom ? await packState(this.gLayout, opts.emaFrom, "EMA generator") : pg;
    // A fresh EMA is a copy of G, running statistics included.
    const erg = opts.emaFrom
      ? await packState(this.gRunLayout, opts.emaFrom, "EMA generator running statistics")
      : rg;
    this.prog.write(this.b.pG, pg);
    this.prog.write(this.b.rG, rg);
    this.prog.write(this.b.eRG, erg);
    this.prog.write(this.b.pD, pd);
    this.prog.write(this.b.eG, eg);
    const nbt = g.get(`${this.gLayers[0].bn}.num_batches_tracked`);
    this.bnBatches = nbt ? Math.round(await nbt.item()) : 0;
  }

  /** Zeroes both optimisers (fresh Adam state), as fine-tuning starts. */
  resetOptimizers(): void {
    for (
      const [n, layout] of [["mG", this.gLayout], ["vG", this.gLayout], ["mD", this.dLayout], [
        "vD",
        this.dLayout,
      ]] as const
    ) {
      this.prog.write(this.b[n], new Float32Array(layout.floats));
    }
    this.adamStepsD = 0;
    this.adamStepsG = 0;
  }

  private async gState(buf: GPUBuffer, running: GPUBuffer): Promise<Map<string, Tensor>> {
    const m = unpackState(this.gLayout, await this.prog.read(buf, this.gLayout.floats));
    const r = unpackState(this.gRunLayout, await this.prog.read(running, this.gRunLayout.floats));
    for (const [k, v] of r) m.set(k, v);
    for (const l of this.gLayers) {
      if (l.bn) m.set(`${l.bn}.num_batches_tracked`, tensor([this.bnBatches], [1]));
    }
    return m;
  }

  /** Generator state dict (live weights). */
  generatorState(): Promise<Map<string, Tensor>> {
    return this.gState(this.b.pG, this.b.rG);
  }

  /** EMA generator state dict (with the EMA of the running statistics). */
  emaState(): Promise<Map<string, Tensor>> {
    return this.gState(this.b.eG, this.b.eRG);
  }

  async discriminatorState(): Promise<Map<string, Tensor>> {
    return unpackState(this.dLayout, await this.prog.read(this.b.pD, this.dLayout.floats));
  }

  /** Adam moments as flat tensors, for resumable checkpoints. */
  async optimizerState(): Promise<Map<string, Tensor>> {
    const m = new Map<string, Tensor>();
    for (
      const [n, layout] of [["mG", this.gLayout], ["vG", this.gLayout], ["mD", this.dLayout], [
        "vD",
        this.dLayout,
      ]] as const
    ) {
      m.set(n, tensor(await this.prog.read(this.b[n], layout.floats), [layout.floats]));
    }
    return m;
  }

  async loadOptimizerState(
    s: Map<string, Tensor>,
    steps: { g: number; d: number; iteration: number },
  ): Promise<void> {
    for (
      const [n, layout] of [["mG", this.gLayout], ["vG", this.gLayout], ["mD", this.dLayout], [
        "vD",
        this.dLayout,
      ]] as const
    ) {
      const t = s.get(n);
      if (!t || t.size !== layout.floats) {
        throw new Error(`optimizer state: ${n} is missing or has the wrong size`);
      }
      this.prog.write(this.b[n], await t.data());
    }
    this.adamStepsG = steps.g;
    this.adamStepsD = steps.d;
    this.iteration = steps.iteration;
  }

  /** The gradients of the last D step and G step (flat buffers as named host arrays; diagnostics). */
  async lastGradients(): Promise<{ g: Map<string, Float32Array>; d: Map<string, Float32Array> }> {
    return {
      g: unpackHost(this.gLayout, await this.prog.read(this.b.gG, this.gLayout.floats)),
      d: unpackHost(this.dLayout, await this.prog.read(this.b.gD, this.dLayout.floats)),
    };
  }

  /**
   * Test hook: the gradients of one D step and one G step on given latents (batch x 64) and real points
   * (batch x 2). Parameters stay put (the fused optimiser runs with learning rate 0, so the Adam moments
   * do change). Returns per-tensor gradients and the two losses.
   */
  async debugGradients(z: Float32Array, real: Float32Array): Promise<{
    gradD: Map<string, Float32Array>;
    gradG: Map<string, Float32Array>;
    lossD: number;
    lossG: number;
  }> {
    const B = this.batch;
    if (z.length !== B * LATENT || real.length !== B * 2) {
      throw new Error("debugGradients: wrong input sizes");
    }
    // Learning rate 0: the fused optimiser epilogue runs (moments change) but parameters stay put.
    const view = new DataView(this.stepData.buffer);
    for (let s = 0; s <= this.dSteps; s++) this.writeStepSlot(view, s * STEP_SLOT, 0, 0, 1, 0);
    this.prog.write(this.b.step, this.stepData);
    const noSample = (ops: Op[]) => ops.filter((o) => o.tag !== "sample");
    this.prog.write(this.b.z, z);
    this.prog.write(this.b.xD, real);
    this.prog.run(noSample(this.dStepOps[0]));
    const gradD = unpackHost(this.dLayout, await this.prog.read(this.b.gD, this.dLayout.floats));
    const ld = await this.prog.read(this.b.lossD, 2 * B);
    this.prog.run(noSample(this.gStepOps));
    const gradG = unpackHost(this.gLayout, await this.prog.read(this.b.gG, this.gLayout.floats));
    const lg = await this.prog.read(this.b.lossG, B);
    const sum = (a: Float32Array) => a.reduce((x, y) => x + y, 0);
    return { gradD, gradG, lossD: sum(ld) / B, lossG: sum(lg) / B };
  }

  dispose(): void {
    this.prog.dispose();
  }
}
