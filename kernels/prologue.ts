// Fused prologues: a kernel that reads an operand at flat indices (a reduction, the Adam update) can take
// an elementwise tree in place of the operand's buffer, and computes the values as it loads them, so
// the tree needs no kernel and no buffer of its own. The tree arrives as a program (strided operands,
// `let` statements over in0..inK and P(ju), a result); it renders as `fn NAME(i: u32) -> f32` over extra
// bindings, with its shape, strides and scalars appended to the consumer's uniform.

import type { Binding } from "./runtime.ts";
import { coordinates, FAST_DIV_WGSL, fastCoords, loadAs, type StridedOperand } from "./elementwise.ts";

/** An elementwise tree as data: what kernels/elementwise.ts runs, or a consumer inlines. */
export interface ElementwiseProgram {
  /** The tree's shape; the consumer reads it at flat (row-major) indices. */
  shape: number[];
  operands: StridedOperand[];
  /** `let` statements over in0..inK (the operands' values) and P(ju) (the scalars). */
  body: string;
  result: string;
  scalars: number[];
  helpers: string;
}

export interface RenderedPrologue {
  /** WGSL declarations: bindings, helpers and the load function. */
  code: string;
  /** Part of the consumer's pipeline key: the structure (not the values). */
  key: string;
  bindings: Binding[];
  /** Words to append to the consumer's uniform at `uBase`. */
  words: Uint32Array;
}

function isContiguous(strides: number[], shape: number[]): boolean {
  let expect = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] !== 1 && strides[d] !== expect) return false;
    expect *= shape[d];
  }
  return true;
}

/**
 * Renders `p` as `fn ${name}(i: u32) -> f32`. Its bindings start at `firstBinding`; its words live in the
 * consumer's uniform from word `uBase`, which the consumer reads through `fn U(j: u32) -> u32`.
 * With `laneDim` it also renders `fn ${name}_x4(i: u32, step: i32) -> vec4<f32>`, the values at i + k*step
 * for k < 4, where step is the row-major stride of dimension laneDim of p.shape and the caller guarantees
 * that the lanes it keeps do not carry out of that dimension: the coordinates are decomposed once for
 * the four values instead of once each.
 */
export function renderPrologue(
  p: ElementwiseProgram,
  name: string,
  firstBinding: number,
  uBase: number,
  laneDim?: number,
): RenderedPrologue {
  const rank = p.shape.length;
  const k = p.operands.length;
  const flat = p.operands.map((o) => isContiguous(o.strides, p.shape));
  const stride = 1 + rank; // per operand: offset, strides
  const sBase = rank + k * stride;
  // The shape's reciprocals follow the scalars when coordinates take the fast division.
  const strided = flat.some((c) => !c);
  const fast = strided && fastCoords(p.shape);
  const rBase = sBase + p.scalars.length;
  const words = new Uint32Array(rBase + (fast ? rank : 0));
  const f = new Float32Array(words.buffer);
  p.shape.forEach((d, i) => words[i] = d);
  if (fast) p.shape.forEach((d, i) => f[rBase + i] = 1 / d);
  p.operands.forEach((o, j) => {
    words[rank + j * stride] = o.offset;
    o.strides.forEach((s, d) => words[rank + j * stride + 1 + d] = s);
  });
  p.scalars.forEach((s, i) => f[sBase + i] = s);
  const U = (j: number) => `U(${uBase + j}u)`;
  const decl = p.operands.map((o, j) =>
    `@group(0) @binding(${firstBinding + j}) var<storage, read> ${name}_in${j}: array<${o.dtype}>;`
  ).join("\n");
  // The division helper is named after the load function: a consumer may paste two prologues and
  // define its own fdiv.
  const div = `${name}_fdiv`;
  const coords = strided
    ? coordinates(rank, U, fast ? (d) => `bitcast<f32>(${U(rBase + d)})` : null, div)
    : [];
  const loads = p.operands.map((o, j) => {
    const base = rank + j * stride;
    const idx = flat[j]
      ? `${U(base)} + i`
      : [U(base), ...p.shape.map((_, d) => `c${d} * ${U(base + 1 + d)}`)].join(" + ");
    return `let in${j} = ${loadAs(o.dtype, `${name}_in${j}[${idx}]`)};`;
  });
  // The body reads scalar j as P(ju): here that is word sBase + j of the prologue's uniform part.
  const body = p.body.replace(/\bP\((\d+)u\)/g, (_, j: string) => `bitcast<f32>(${U(sBase + Number(j))})`);
  let lanes = "";
  if (laneDim !== undefined) {
    if (!Number.isInteger(laneDim) || laneDim < 0 || laneDim >= rank) {
      throw new Error(`renderPrologue: lane dimension ${laneDim} is not one of the tree's ${rank}`);
    }
    // Lane k reads flat operands at i + k*step and strided ones k strides of laneDim further on.
    const lane = (k: number) =>
      p.operands.map((o, j) => {
        const base = rank + j * stride;
        const idx = flat[j] ? `u32(i32(${U(base)} + i) + ${k} * step)` : [
          U(base),
          ...p.shape.map((_, d) =>
            d === laneDim ? `(c${d} + ${k}u) * ${U(base + 1 + d)}` : `c${d} * ${U(base + 1 + d)}`
          ),
        ].join(" + ");
        return `let in${j} = ${loadAs(o.dtype, `${name}_in${j}[${idx}]`)};`;
      }).join(" ");
    lanes = `
fn ${name}_x4(i: u32, step: i32) -> vec4<f32> {
  ${coords.join("\n  ")}
  var v: vec4<f32>;
  ${[0, 1, 2, 3].map((k) => `{ ${lane(k)} ${body} v[${k}] = f32(${p.result}); }`).join("\n  ")}
  return v;
}`;
  }
  const code = `${decl}
${p.helpers}
${fast ? FAST_DIV_WGSL.replace("fn fdiv(", `fn ${div}(`) : ""}
fn ${name}(i: u32) -> f32 {
  ${coords.join("\n  ")}
  ${loads.join("\n  ")}
  ${body}
  return f32(${p.result});
}${lanes}`;
  const key = [
    "pro",
    rank,
    p.operands.map((o, j) => o.dtype + (flat[j] ? "c" : "s")).join(","),
    fast ? "fdiv" : "div",
    p.body,
    p.result,
    p.helpers,
    firstBinding,
    uBase,
    laneDim ?? "",
  ].join("|");
  return { code, key, bindings: p.operands.map((o) => ({ buffer: o.buffer })), words };
}

/**
 * Renames the functions a prologue's code defines (its helpers) so two prologues pasted into one kernel
 * never clash; the load function (`loadName`, and helpers named after it) keeps its name.
 */
export function suffixHelpers(code: string, suffix: string, loadName: string): string {
  const names = [...code.matchAll(/fn\s+(\w+)\s*\(/g)].map((m) => m[1]).filter((n) =>
    !n.startsWith(loadName)
  );
  if (names.length === 0) return code;
  return code.replace(new RegExp(`\\b(${names.join("|")})\\b`, "g"), `$1${suffix}`);
}
