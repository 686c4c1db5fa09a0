// bias_act (SGA): y = clamp(gain * act(x + b), -clamp, clamp), with b broadcast along axis `dim`.
// The forward is one fused kernel. The backward is dx = g * D with D = gain * act'(x + b) * [not clamped]:
// fused into one kernel when no graph is being built; otherwise D is written with differentiable ops (for
// relu/lrelu/linear it is piecewise constant), so gradients of gradients keep working.

import { isGradEnabled, record } from "./autograd.ts";
import { add, exp, mapElementwise, mul, rsub, sigmoid, square, tanh, where } from "./ops.ts";
import { sum } from "./reduce.ts";
import { reshape } from "./shape.ts";
import type { Tensor } from "./tensor.ts";

export type Activation =
  | "linear"
  | "relu"
  | "lrelu"
  | "tanh"
  | "sigmoid"
  | "elu"
  | "selu"
  | "softplus"
  | "swish";

export interface BiasActOptions {
  act?: Activation;
  /** Slope of lrelu's negative side (default 0.2); unused by the others. */
  alpha?: number;
  /** Default: sqrt(2) for relu, lrelu and swish; 1 otherwise. */
  gain?: number;
  /** Clamp the output to [-clamp, clamp]; absent (or negative) means no clamp. */
  clamp?: number;
  /** The axis of x that b runs along (default 1, the channels of NCHW). */
  dim?: number;
}

const SELU_SCALE = 1.0507009873554805;
const SELU_ALPHA = 1.6732632423543772;

// WGSL: f(z) and f'(z), with alpha as p0; written to stay finite for large |z|.
const ACT: Record<Activation, { f: string; d: string; gain: number }> = {
  linear: { f: "z", d: "1.0", gain: 1 },
  relu: { f: "max(z, 0.0)", d: "select(0.0, 1.0, z > 0.0)", gain: Math.SQRT2 },
  lrelu: { f: "select(z * a, z, z > 0.0)", d: "select(a, 1.0, z > 0.0)", gain: Math.SQRT2 },
  tanh: { f: "tanh_(z)", d: "1.0 - tanh_(z) * tanh_(z)", gain: 1 },
  sigmoid: { f: "sigm(z)", d: "sigm(z) * (1.0 - sigm(z))", gain: 1 },
  elu: {
    f: "select(exp(min(z, 0.0)) - 1.0, z, z >= 0.0)",
    d: "select(exp(min(z, 0.0)), 1.0, z >= 0.0)",
    gain: 1,
  },
  selu: {
    f: `${SELU_SCALE} * select(${SELU_ALPHA} * (exp(min(z, 0.0)) - 1.0), z, z >= 0.0)`,
    d: `${SELU_SCALE} * select(${SELU_ALPHA} * exp(min(z, 0.0)), 1.0, z >= 0.0)`,
    gain: 1,
  },
  softplus: { f: "max(z, 0.0) + log(1.0 + exp(-abs(z)))", d: "sigm(z)", gain: 1 },
  swish: { f: "z * sigm(z)", d: "sigm(z) * (1.0 + z * (1.0 - sigm(z)))", gain: Math.SQRT2 },
};

const HELPERS = `
fn sigm(x: f32) -> f32 { let e = exp(-abs(x)); return select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0); }
fn tanh_(x: f32) -> f32 { let e = exp(-2.0 * abs(x)); return sign(x) * (1.0 - e) / (1.0 + e); }`;

/** Fused bias + activation + gain + clamp. */
export function biasAct(x: Tensor, b: Tensor | null, o: BiasActOptions = {}): Tensor {
  const act = o.act ?? "linear";
  const spec = ACT[act];
  if (!spec) throw new Error(`biasAct: unknown activation "${act}" (one of ${Object.keys(ACT).join(", ")})`);
  if (x.dtype === "i32") throw new Error("biasAct: x must be f32 or f16");
  const dim = o.dim ?? 1;
  if (!Number.isInteger(dim) || dim < 0 || dim >= Math.max(x.rank, 1)) {
    throw new Error(`biasAct: dim ${dim} is out of range for x of shape [${x.shape}]`);
  }
  if (b && (b.rank !== 1 || b.shape[0] !== x.shape[dim])) {
    throw new Error(`biasAct: b must have shape [${x.shape[dim]}] (x.shape[${dim}]), got [${b.shape}]`);
  }
  const alpha = o.alpha ?? (act === "lrelu" ? 0.2 : 0);
  const gain = o.gain ?? spec.gain;
  const clamp = o.clamp !== undefined && o.clamp >= 0 ? o.clamp : -1; // -1: none
  const scalars = [alpha, gain, clamp];
  const helpers = (name: string, ret: string, extra = "") =>
    `${HELPERS}
fn ${name}(z: f32, a: f32, gain: f32, cl: f32${extra}) -> f32 {
  let y = gain * (${spec.f});
  ${ret}
}`;
  // b broadcasts along `dim` as [C, 1, ..., 1]: a view, so the op stays lazy and fuses with its neighbours.
  const c = x.shape[dim] ?? 1;
  const fused = (name: string, expr: string, xs: Tensor[], fn: string): Tensor => {
    const views = [...xs];
    if (b) views.push(b.view([c, ...new Array(Math.max(x.rank - dim - 1, 0)).fill(1)]));
    const r = mapElementwise(name, expr, views, { scalars, helpers: fn });
    if (b) views[views.length - 1].dispose();
    return r;
  };

  // Forward: one kernel.
  const out = fused(
    `bias_act_${act}`,
    `fz(${b ? "in0 + in1" : "in0"}, p0, p1, p2)`,
    [x],
    helpers("fz", "if (cl >= 0.0) { return clamp(y, -cl, cl); } return y;"),
  );
  const inputsOf = b ? [x, b] : [x];
  return record(out, `biasAct_${act}`, inputsOf, (g, needs) => {
    let dx: Tensor;
    if (!isGradEnabled()) {
      // No graph to build: dx = g * D in one kernel.
      dx = fused(
        `bias_act_grad_${act}`,
        `fz(${b ? "in0 + in2" : "in0"}, p0, p1, p2, in1)`,
        [x, g],
        helpers(
          "fz",
          `if (cl >= 0.0 && abs(y) > cl) { return 0.0; } return g * gain * (${spec.d});`,
          ", g: f32",
        ),
      );
    } else {
      const bv = b ? reshape(b, [c, ...new Array(x.rank - dim - 1).fill(1)]) : null;
      dx = mul(g, derivative(x, bv, act, scalars, helpers));
    }
    // db: sum over everything but `dim`, as two reductions over contiguous axis blocks (each takes dx's
    // lazy tree as its prologue; reshaping a broadcasting tree first would compute it into a buffer).
    let db: Tensor | null = null;
    if (b && needs[1]) {
      const after = Array.from({ length: x.rank - dim - 1 }, (_, i) => dim + 1 + i);
      const inner = after.length > 0 ? sum(dx, after) : dx;
      db = dim > 0 ? sum(inner, Array.from({ length: dim }, (_, i) => i)) : inner;
      if (db === dx) db = reshape(dx, [c]);
    }
    return [dx, db];
  });
}

/** D = gain * act'(z) * [|gain * act(z)| <= clamp], differentiable in x and b. */
function derivative(
  x: Tensor,
  bv: Tensor | null,
  act: Activation,
  scalars: number[],
  helpers: (name: string, ret: string) => string,
): Tensor {
  const z = bv ? add(x, bv) : x;
  // Piecewise-constant parts (slopes and the clamp mask) carry no gradient.
  const constant = (body: string) =>
    mapElementwise(`bias_act_mask_${act}`, "fz(in0, p0, p1, p2)", [z], {
      scalars,
      helpers: helpers("fz", body),
    });
  const unclamped = "if (cl >= 0.0 && abs(y) > cl) { return 0.0; }";
  let d: Tensor;
  switch (act) {
    case "linear":
    case "relu":
    case "lrelu":
      return constant(`${unclamped} return gain * (${ACT[act].d});`);
    case "tanh":
      d = rsub(square(tanh(z)), 1);
      break;
    case "sigmoid": {
      const s = sigmoid(z);
      d = mul(s, rsub(s, 1));
      break;
    }
    case "elu":
    case "selu": {
      const [scale, a] = act === "elu" ? [1, 1] : [SELU_SCALE, SELU_ALPHA];
      // exp(min(z, 0)) keeps the unused branch finite.
      const neg = mul(exp(where(constant("return select(0.0, 1.0, z < 0.0);"), z, 0)), scale * a);
      d = where(constant("return select(0.0, 1.0, z >= 0.0);"), scale, neg);
      break;
    }
    case "softplus":
      d = sigmoid(z);
      break;
    case "swish": {
      const s = sigmoid(z);
      d = mul(s, add(mul(z, rsub(s, 1)), 1));
      break;
    }
  }
  return mul(d, constant(`${unclamped} return gain;`));
}
