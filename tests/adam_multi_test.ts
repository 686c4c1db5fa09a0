// Multi-tensor Adam (kernels/adam.ts adamStepMulti through nn/optim.ts): one dispatch updates many
// parameters, bit-identical to updating each with the per-tensor kernel in order, on sizes that are not
// multiples of the workgroup, with lazy (prologue) and computed gradients mixed, more parameters than one
// dispatch binds, and a gradient that reads a parameter updated earlier in the same step.

import { adamStep } from "../kernels/adam.ts";
import { multiArmBudget } from "../kernels/multi_tensor.ts";
import { gpu, onCpuAdapter } from "../kernels/runtime.ts";
import { tensor } from "../nn/creation.ts";
import * as o from "../nn/ops.ts";
import { Adam } from "../nn/optim.ts";
import { scope, type Tensor } from "../nn/tensor.ts";
import { assertClose, gpuTest, randArray, sameFormulaTolerance } from "./harness.ts";

const SHAPES = [[1], [257], [3, 5, 7], [1000], [2, 300], [13], [4, 1, 9]];
const LR = 0.05, BETAS: [number, number] = [0.8, 0.95], EPS = 1e-6;

/** Gradient j of step `step`: lazy trees of several shapes (one broadcasts a small tensor), or buffers. */
function gradient(j: number, shape: number[], step: number, base: Float32Array): Tensor {
  const g = tensor(base, shape);
  if (j % 3 === 0) return o.mul(o.tanh(g), step + 1); // lazy
  if (j % 3 === 1) {
    const c = o.add(o.mul(g, g), 0.25 * (step + 1));
    void c.buffer; // a computed buffer
    return c;
  }
  return o.sub(o.exp(o.mul(g, 0.5)), tensor([0.5 + step], [1])); // lazy with a broadcast scalar
}

/** Today's per-tensor path: one adamStep per parameter, in order, as Adam.update ran before. */
function perTensor(opt: Adam, gs: Tensor[]): void {
  opt.step++;
  opt.params.forEach((p, j) => {
    const pb = p.writableBuffer, mb = opt.m[j].writableBuffer, vb = opt.v[j].writableBuffer;
    adamStep(pb, gs[j].buffer, mb, vb, p.size, {
      lr: opt.lr,
      beta1: opt.betas[0],
      beta2: opt.betas[1],
      eps: opt.eps,
      weightDecay: opt.weightDecay,
      bc1: 1 - opt.betas[0] ** opt.step,
      bc2: 1 - opt.betas[1] ** opt.step,
    });
  });
}

async function train(count: number, multi: boolean, steps = 3) {
  const shapes = Array.from({ length: count }, (_, j) => SHAPES[j % SHAPES.length]);
  const sizes = shapes.map((s) => s.reduce((a, b) => a * b, 1));
  const params = shapes.map((s, j) => tensor(randArray(sizes[j], 100 + j), s));
  const gBase = sizes.map((n, j) => randArray(n, 200 + j));
  const opt = new Adam(params, { lr: LR, betas: BETAS, eps: EPS, weightDecay: 0.01 });
  let dispatches = 0;
  for (let step = 0; step < steps; step++) {
    scope(() => {
      const gs = shapes.map((s, j) => gradient(j, s, step, gBase[j]));
      const rt = gpu();
      const d0 = rt.totalDispatches;
      if (multi) opt.update(gs);
      else perTensor(opt, gs);
      dispatches += rt.totalDispatches - d0;
    });
  }
  const out = await Promise.all([...params, ...opt.m, ...opt.v].map((t) => t.data()));
  for (const p of params) p.dispose();
  opt.dispose();
  return { out, dispatches };
}

gpuTest(
  "multi-tensor Adam: bit-identical to per-tensor Adam, one dispatch for several parameters",
  async () => {
    const a = await train(SHAPES.length, true), b = await train(SHAPES.length, false);
    a.out.forEach((x, i) => assertClose(x, b.out[i], { ...sameFormulaTolerance(), what: `tensor ${i}` }));
    // Seven parameters of at most 4 + 3 bindings fit one dispatch per step on any adapter (>= 8 x 4 bindings
    // is not promised, so allow what the limit forces); the per-tensor path also computes 5 gradient buffers.
    const perStep = a.dispatches / 3;
    const limit = gpu().device.limits.maxStorageBuffersPerShaderStage;
    if (limit >= 32 && perStep > 2) throw new Error(`expected <= 2 Adam dispatches per step, got ${perStep}`);
    if (perStep >= b.dispatches / 3) throw new Error(`multi ${perStep} >= per-tensor ${b.dispatches / 3}`);
  },
);

gpuTest(
  "multi-tensor Adam: more parameters than one dispatch binds are split, still bit-identical",
  async () => {
    const a = await train(40, true, 2), b = await train(40, false, 2);
    a.out.forEach((x, i) => assertClose(x, b.out[i], { ...sameFormulaTolerance(), what: `tensor ${i}` }));
    const limit = gpu().device.limits.maxStorageBuffersPerShaderStage;
    const perStep = a.dispatches / 2;
    // 40 parameters of 4-5 bindings each: the binding limit decides how many share a dispatch.
    if (perStep > Math.ceil((40 * 5) / (limit - 4)) + 3) {
      throw new Error(
        `${perStep} Adam dispatches per step`,
      );
    }
  },
);

gpuTest(
  "multi-tensor Adam: a gradient that is an earlier parameter sees it updated (order kept)",
  async () => {
    const run = async (multi: boolean) => {
      const a = tensor(randArray(300, 1), [300]), b = tensor(randArray(300, 2), [300]);
      const c = tensor(randArray(300, 3), [300]);
      const opt = new Adam([a, b, c], { lr: 0.1 });
      for (let step = 0; step < 2; step++) {
        scope(() => {
          // b's gradient is a itself (its buffer), c's a lazy tree over b: both read what was just updated.
          const gs = [o.mul(o.tanh(a), 1), a, o.mul(b, 2)];
          if (multi) opt.update(gs);
          else perTensor(opt, gs);
        });
      }
      const out = await Promise.all([a, b, c].map((t) => t.data()));
      for (const t of [a, b, c]) t.dispose();
      opt.dispose();
      return out;
    };
    const x = await run(true), y = await run(false);
    x.forEach((v, i) => assertClose(v, y[i], { rtol: 0, atol: 0, what: `tensor ${i}` }));
  },
);

gpuTest(
  "multi-tensor Adam: on a CPU adapter large parameters take their own dispatch, small ones share one",
  async () => {
    // Workgroups 48, 47, 1, 1 (256 values each): on a CPU adapter the second weight's arm would run masked
    // over the first's 48 workgroups and the first's over its 47 (95 passes > the budget of 64), so it
    // starts a new group that the two biases join (47 + 1 + 2 = 50 passes). A GPU groups all four.
    const sizes = [12288, 12000, 64, 3];
    const params = sizes.map((n, j) => tensor(randArray(n, 10 + j), [n]));
    const ref = sizes.map((n, j) => tensor(randArray(n, 10 + j), [n]));
    const opt = new Adam(params, { lr: 0.01 }), optRef = new Adam(ref, { lr: 0.01 });
    const rt = gpu();
    let used = 0;
    scope(() => {
      const gs = sizes.map((n, j) => tensor(randArray(n, 50 + j), [n]));
      for (const g of gs) void g.buffer;
      const d0 = rt.totalDispatches;
      opt.update(gs);
      used = rt.totalDispatches - d0;
      perTensor(optRef, gs);
    });
    const [a, b] = await Promise.all([params, ref].map((ts) => Promise.all(ts.map((t) => t.data()))));
    a.forEach((x, i) => assertClose(x, b[i], { rtol: 0, atol: 0, what: `parameter ${i}` }));
    const want = onCpuAdapter() ? 2 : 1;
    if (onCpuAdapter() !== (multiArmBudget() !== Infinity)) throw new Error("budget and adapter disagree");
    if (used !== want) throw new Error(`${used} Adam dispatches, want ${want}`);
    for (const t of [...params, ...ref]) t.dispose();
    opt.dispose();
    optRef.dispose();
  },
);
