// Differentiable elementwise math with broadcasting. Each op is a WGSL expression for the forward pass
// and a backward rule made of these same ops, so higher-order gradients need no extra code.

import { record, registerAutogradOps } from "./autograd.ts";
import { full, onesLike, zerosLike } from "./creation.ts";
import { broadcastTo, sumTo } from "./shape.ts";
import { op } from "./lazy.ts";
import { contiguousStrides, type DType, requireShaderF16, type Shape, Tensor } from "./tensor.ts";

export type TensorLike = Tensor | number;

/** The broadcast of two shapes (numpy rules), or a clear error. */
export function broadcastShapes(a: Shape, b: Shape): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array(n);
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new Error(`shapes [${a}] and [${b}] cannot be broadcast together`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Element strides that read `t` broadcast to `shape` (0 along broadcast dimensions). */
export function broadcastStrides(t: Tensor, shape: Shape): number[] {
  const s = contiguousStrides(t.shape);
  const off = shape.length - t.rank;
  return shape.map((_, i) => {
    const j = i - off;
    return j < 0 || t.shape[j] === 1 ? 0 : s[j];
  });
}

/**
 * An elementwise expression over broadcast inputs as a new tensor (no graph recorded). The value is lazy
 * (nn/lazy.ts): chains of these fuse into one kernel, run when something needs the buffer.
 */
export function mapElementwise(
  _name: string,
  expr: string,
  inputs: Tensor[],
  opts: { scalars?: number[]; dtype?: DType; helpers?: string } = {},
): Tensor {
  let shape: number[] = [];
  for (const t of inputs) shape = broadcastShapes(shape, t.shape);
  const dtype = opts.dtype ?? resultType(inputs);
  const node = op(expr, inputs.map((t) => t.valueNode), shape, dtype, opts.scalars ?? [], opts.helpers ?? "");
  return Tensor.fromNode(node);
}

/**
 * The dtype of an elementwise result: f16 only when every float input is f16 (f16 with f32 gives f32,
 * as in PyTorch); otherwise the first input's, as before f16 existed.
 */
function resultType(inputs: Tensor[]): DType {
  if (inputs.length === 0) return "f32";
  if (inputs.some((t) => t.dtype === "f16")) return inputs.some((t) => t.dtype === "f32") ? "f32" : "f16";
  return inputs[0].dtype;
}

function requireFloat(name: string, ...ts: Tensor[]) {
  for (const t of ts) {
    if (t.dtype === "i32") throw new Error(`${name} needs float tensors (f32 or f16), got ${t.dtype}`);
  }
}

// ---- binary ----

export function add(a: TensorLike, b: TensorLike): Tensor {
  if (typeof b === "number") return addScalar(a as Tensor, b);
  if (typeof a === "number") return addScalar(b, a);
  const out = mapElementwise("add", "in0 + in1", [a, b]);
  return record(out, "add", [a, b], (g, needs) => [
    needs[0] ? sumTo(g, a.shape) : null,
    needs[1] ? sumTo(g, b.shape) : null,
  ]);
}

export function sub(a: TensorLike, b: TensorLike): Tensor {
  if (typeof b === "number") return addScalar(a as Tensor, -b);
  if (typeof a === "number") return addScalar(neg(b), a);
  const out = mapElementwise("sub", "in0 - in1", [a, b]);
  return record(out, "sub", [a, b], (g, needs) => [
    needs[0] ? sumTo(g, a.shape) : null,
    needs[1] ? sumTo(neg(g), b.shape) : null,
  ]);
}

export function mul(a: TensorLike, b: TensorLike): Tensor {
  if (typeof b === "number") return mulScalar(a as Tensor, b);
  if (typeof a === "number") return mulScalar(b, a);
  const out = mapElementwise("mul", "in0 * in1", [a, b]);
  return record(out, "mul", [a, b], (g, needs) => [
    needs[0] ? sumTo(mul(g, b), a.shape) : null,
    needs[1] ? sumTo(mul(g, a), b.shape) : null,
  ]);
}

export function div(a: TensorLike, b: TensorLike): Tensor {
  if (typeof b === "number") return mulScalar(a as Tensor, 1 / b);
  if (typeof a === "number") return mulScalar(reciprocal(b), a);
  const out = mapElementwise("div", "in0 / in1", [a, b]);
  return record(out, "div", [a, b], (g, needs) => [
    needs[0] ? sumTo(div(g, b), a.shape) : null,
    needs[1] ? sumTo(neg(div(mul(g, out), b)), b.shape) : null,
  ]);
}

/** Elementwise maximum (the gradient goes to the larger operand; to `a` on ties). */
export function maximum(a: Tensor, b: Tensor): Tensor {
  const out = mapElementwise("maximum", "max(in0, in1)", [a, b]);
  return record(out, "maximum", [a, b], (g) => {
    const m = mapElementwise("ge", "select(0.0, 1.0, in0 >= in1)", [a, b]);
    return [sumTo(mul(g, m), a.shape), sumTo(mul(g, rsub(m, 1)), b.shape)];
  });
}

export function minimum(a: Tensor, b: Tensor): Tensor {
  return neg(maximum(neg(a), neg(b)));
}

function addScalar(a: Tensor, s: number): Tensor {
  const out = mapElementwise("adds", "in0 + p0", [a], { scalars: [s] });
  return record(out, "addScalar", [a], (g) => [g]);
}

function mulScalar(a: Tensor, s: number): Tensor {
  const out = mapElementwise("muls", "in0 * p0", [a], { scalars: [s] });
  return record(out, "mulScalar", [a], (g) => [mulScalar(g, s)]);
}

/** s - a */
export function rsub(a: Tensor, s: number): Tensor {
  return addScalar(neg(a), s);
}

/** a * x + b * y (a common fused form: lerp, EMA, Adam-like updates). */
export function axpby(x: Tensor, a: number, y: Tensor, b: number): Tensor {
  const out = mapElementwise("axpby", "p0 * in0 + p1 * in1", [x, y], { scalars: [a, b] });
  return record(
    out,
    "axpby",
    [x, y],
    (g) => [sumTo(mulScalar(g, a), x.shape), sumTo(mulScalar(g, b), y.shape)],
  );
}

/** a + (b - a) * t, with scalar t. */
export function lerp(a: Tensor, b: Tensor, t: number): Tensor {
  return axpby(a, 1 - t, b, t);
}

// ---- unary ----

export function neg(a: Tensor): Tensor {
  return mulScalar(a, -1);
}

export function reciprocal(a: Tensor): Tensor {
  const out = mapElementwise("recip", "1.0 / in0", [a]);
  return record(out, "reciprocal", [a], (g) => [neg(mul(g, square(out)))]);
}

export function square(a: Tensor): Tensor {
  requireFloat("square", a);
  const out = mapElementwise("square", "in0 * in0", [a]);
  return record(out, "square", [a], (g) => [mul(g, mulScalar(a, 2))]);
}

export function exp(a: Tensor): Tensor {
  const out = mapElementwise("exp", "exp(in0)", [a]);
  return record(out, "exp", [a], (g) => [mul(g, out)]);
}

export function log(a: Tensor): Tensor {
  const out = mapElementwise("log", "log(in0)", [a]);
  return record(out, "log", [a], (g) => [div(g, a)]);
}

export function sqrt(a: Tensor): Tensor {
  const out = mapElementwise("sqrt", "sqrt(in0)", [a]);
  return record(out, "sqrt", [a], (g) => [div(mulScalar(g, 0.5), out)]);
}

export function rsqrt(a: Tensor): Tensor {
  const out = mapElementwise("rsqrt", "inverseSqrt(in0)", [a]);
  // d/dx x^-1/2 = -1/2 x^-3/2 = -1/2 * out^3
  return record(out, "rsqrt", [a], (g) => [mul(g, mulScalar(mul(out, square(out)), -0.5))]);
}

/** x ** p for a scalar exponent (x > 0 unless p is an integer). */
export function pow(a: Tensor, p: number): Tensor {
  if (p === 2) return square(a);
  if (p === 1) return a;
  const isInt = Number.isInteger(p);
  const expr = isInt
    ? "select(1.0, -1.0, in0 < 0.0 && (i32(p0) % 2) != 0) * pow(abs(in0), p0)"
    : "pow(in0, p0)";
  const out = mapElementwise(isInt ? "powi" : "pow", expr, [a], { scalars: [p] });
  return record(out, "pow", [a], (g) => [mul(g, mulScalar(pow(a, p - 1), p))]);
}

export function abs(a: Tensor): Tensor {
  const out = mapElementwise("abs", "abs(in0)", [a]);
  return record(out, "abs", [a], (g) => [mul(g, sign(a))]);
}

/** -1, 0 or 1 (no gradient). */
export function sign(a: Tensor): Tensor {
  return mapElementwise("sign", "sign(in0)", [a]);
}

export function relu(a: Tensor): Tensor {
  const out = mapElementwise("relu", "max(in0, 0.0)", [a]);
  return record(
    out,
    "relu",
    [a],
    (g) => [mul(g, mapElementwise("relu_mask", "select(0.0, 1.0, in0 > 0.0)", [a]))],
  );
}

/** x for x > 0, alpha*x otherwise. */
export function leakyRelu(a: Tensor, alpha = 0.2): Tensor {
  const out = mapElementwise("lrelu", "select(in0 * p0, in0, in0 > 0.0)", [a], { scalars: [alpha] });
  return record(out, "leakyRelu", [a], (g) => [
    mul(g, mapElementwise("lrelu_slope", "select(p0, 1.0, in0 > 0.0)", [a], { scalars: [alpha] })),
  ]);
}

export function sigmoid(a: Tensor): Tensor {
  // Written to stay finite for large |x| (no reliance on inf inside WGSL).
  const out = mapElementwise("sigmoid", "sigm(in0)", [a], {
    helpers:
      "fn sigm(x: f32) -> f32 { let e = exp(-abs(x)); return select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0); }",
  });
  return record(out, "sigmoid", [a], (g) => [mul(g, mul(out, rsub(out, 1)))]);
}

export function tanh(a: Tensor): Tensor {
  // tanh via exp of a non-positive argument: no overflow for large |x|.
  const out = mapElementwise(
    "tanh",
    "sign(in0) * (1.0 - exp(-2.0 * abs(in0))) / (1.0 + exp(-2.0 * abs(in0)))",
    [a],
  );
  return record(out, "tanh", [a], (g) => [mul(g, rsub(square(out), 1))]);
}

/** log(1 + exp(x)), computed stably. */
export function softplus(a: Tensor): Tensor {
  const out = mapElementwise("softplus", "max(in0, 0.0) + log(1.0 + exp(-abs(in0)))", [a]);
  return record(out, "softplus", [a], (g) => [mul(g, sigmoid(a))]);
}

export function clamp(a: Tensor, lo: number, hi: number): Tensor {
  const out = mapElementwise("clamp", "clamp(in0, p0, p1)", [a], { scalars: [lo, hi] });
  return record(out, "clamp", [a], (g) => [
    mul(
      g,
      mapElementwise("clamp_mask", "select(0.0, 1.0, in0 >= p0 && in0 <= p1)", [a], { scalars: [lo, hi] }),
    ),
  ]);
}

/** cond ? a : b, with cond nonzero meaning true (cond gets no gradient). */
export function where(cond: Tensor, a: TensorLike, b: TensorLike): Tensor {
  const ta = typeof a === "number" ? full([], a) : a;
  const tb = typeof b === "number" ? full([], b) : b;
  const c = cond.dtype === "i32" ? "in0 != 0" : "in0 != 0.0";
  const out = mapElementwise("where", `select(in2, in1, ${c})`, [cond, ta, tb], { dtype: "f32" });
  return record(out, "where", [ta, tb], (g) => {
    const z = zerosLike(g);
    return [sumTo(where(cond, g, z), ta.shape), sumTo(where(cond, z, g), tb.shape)];
  });
}

// ---- comparisons (no gradient; 1.0 / 0.0) ----

export function greater(a: TensorLike, b: TensorLike): Tensor {
  return compare(">", a, b);
}
export function less(a: TensorLike, b: TensorLike): Tensor {
  return compare("<", a, b);
}
export function equal(a: TensorLike, b: TensorLike): Tensor {
  return compare("==", a, b);
}

function compare(op: string, a: TensorLike, b: TensorLike): Tensor {
  const ta = typeof a === "number" ? full([], a) : a;
  const tb = typeof b === "number" ? full([], b) : b;
  return mapElementwise(`cmp${op}`, `select(0.0, 1.0, f32(in0) ${op} f32(in1))`, [ta, tb], { dtype: "f32" });
}

/**
 * Casts between f32, f16 (round to nearest even; needs shader-f16) and i32 (truncating toward zero).
 * Float-to-float casts carry the gradient (cast back to the input's dtype); casts to or from i32 none.
 */
export function cast(a: Tensor, dtype: DType): Tensor {
  if (a.dtype === dtype) return a;
  if (dtype === "f16") requireShaderF16();
  const out = mapElementwise(`cast_${dtype}`, "in0", [a], { dtype });
  if (a.dtype === "i32" || dtype === "i32") return out;
  return record(out, `cast_${dtype}`, [a], (g) => [cast(g, a.dtype)]);
}

/** Marks a value as constant: the result shares storage and carries no graph. */
export function detach(a: Tensor): Tensor {
  return a.view(a.shape);
}

/** 1 where the value is finite, 0 for NaN and +-inf (no gradient). */
export function isFiniteMask(a: Tensor): Tensor {
  // Exponent bits all ones means inf or NaN; tested on the bits, since compilers may fold float tricks.
  return mapElementwise("isfinite", "select(1.0, 0.0, (bitcast<u32>(in0) & 0x7f800000u) == 0x7f800000u)", [
    a,
  ]);
}

registerAutogradOps({ add, onesLike, zerosLike });

export { broadcastTo };
