// Batched matrix multiplication as a differentiable op. Transposes are flags of the GEMM kernel, so the
// backward products read their operands in place instead of copying transposes.

import { type Epilogue, matmul as gemm, type MatmulParams, matmulTakesTrees } from "../kernels/matmul.ts";
import type { PackSource } from "../kernels/pack_texture.ts";
import { record } from "./autograd.ts";
import { gemmOutType } from "./conv.ts";
import { maxReadBuffers, sourceOf, storedSourceOf } from "./lazy.ts";
import { add, greater, mul, relu } from "./ops.ts";
import { sum } from "./reduce.ts";
import { reshape, sumTo } from "./shape.ts";
import { Tensor } from "./tensor.ts";

interface Mat {
  batch: number[]; // leading dims ([] when 2-D)
  rows: number;
  cols: number;
}

function mat(t: Tensor, name: string): Mat {
  if (t.rank < 2) throw new Error(`${name} needs a matrix (rank >= 2), got shape [${t.shape}]`);
  return { batch: t.shape.slice(0, -2), rows: t.shape[t.rank - 2], cols: t.shape[t.rank - 1] };
}

/**
 * op(a) @ op(b) over leading batch dims, where op transposes the last two axes when the flag is set.
 * Batch dims must be equal, or one operand must be a plain matrix (broadcast over the batch).
 */
export function matmulT(a: Tensor, b: Tensor, transA = false, transB = false, epi?: Epilogue): Tensor {
  const A = mat(a, "matmul"), B = mat(b, "matmul");
  const m = transA ? A.cols : A.rows, k = transA ? A.rows : A.cols;
  const kb = transB ? B.cols : B.rows, n = transB ? B.rows : B.cols;
  if (k !== kb) {
    throw new Error(
      `matmul: inner dimensions differ: [${a.shape}]${transA ? "^T" : ""} @ [${b.shape}]${
        transB ? "^T" : ""
      }`,
    );
  }
  const ba = A.batch.reduce((x, y) => x * y, 1), bb = B.batch.reduce((x, y) => x * y, 1);
  let batchShape: number[];
  if (A.batch.length && B.batch.length) {
    if (A.batch.join() !== B.batch.join()) {
      throw new Error(`matmul: batch dims [${A.batch}] and [${B.batch}] differ`);
    }
    batchShape = A.batch;
  } else batchShape = A.batch.length ? A.batch : B.batch;
  const batch = Math.max(ba, bb);
  const dtype = gemmOutType(a, b);
  const out = Tensor.empty([...batchShape, m, n], dtype);
  const p: MatmulParams = {
    batch,
    m,
    n,
    k,
    transA,
    transB,
    broadcastA: A.batch.length === 0 && batch > 1,
    broadcastB: B.batch.length === 0 && batch > 1,
    outF16: dtype === "f16",
  };
  // Lazy operands go in as trees where the GEMM computes them more cheaply than a kernel of their own
  // (in the texture pack, or in a small GEMM's loads), else as buffers (f16 ones as one-load programs).
  // The two trees and the bias share one kernel's read bindings.
  const trees = matmulTakesTrees(p);
  let budget = maxReadBuffers() - 1 - (epi?.bias ? 1 : 0);
  const src = (t: Tensor, keep: number): PackSource => {
    if (!trees) return storedSourceOf(t.valueNode);
    const s = sourceOf(t.valueNode, budget - keep);
    budget -= s instanceof GPUBuffer ? 1 : s.operands.length;
    return s;
  };
  const sa = src(a, 1);
  gemm(sa, src(b, 0), out.buffer, p, epi);
  if (epi) return out; // fused epilogues are forward-only (inference paths)
  return record(out, "matmul", [a, b], (g, needs) => {
    // dA' = G B'^T, dB' = A'^T G, mapped back through the transposes.
    const ga = needs[0] ? (transA ? matmulT(b, g, transB, true) : matmulT(g, b, false, !transB)) : null;
    const gb = needs[1] ? (transB ? matmulT(g, a, true, transA) : matmulT(a, g, !transA, false)) : null;
    return [ga && sumTo(ga, a.shape), gb && sumTo(gb, b.shape)];
  });
}

/** a @ b. */
export function matmul(a: Tensor, b: Tensor): Tensor {
  if (a.rank === 1) {
    return reshape(matmul(reshape(a, [1, a.shape[0]]), b), b.rank === 1 ? [] : [b.shape[b.rank - 1]]);
  }
  if (b.rank === 1) return reshape(matmulT(a, reshape(b, [b.shape[0], 1])), a.shape.slice(0, -1));
  return matmulT(a, b);
}

/** Activations that `linear` applies in its GEMM's epilogue (their derivative is read off the output). */
export type LinearAct = "linear" | "relu";

/**
 * act(x W^T + b) for x [n, in], W [out, in], b [out]: one GEMM whose epilogue adds the bias and applies
 * the activation, instead of a GEMM and an elementwise kernel (other ranks and dtypes take that path).
 * The backward is written in differentiable ops; relu's mask (out > 0, the same as x W^T + b > 0) is
 * piecewise constant, so gradients of gradients need nothing more.
 */
export function linear(x: Tensor, w: Tensor, b: Tensor | null, act: LinearAct = "linear"): Tensor {
  if (x.rank !== 2 || [x, w, b ?? x].some((t) => t.dtype !== "f32")) {
    const y = matmulT(x, w, false, true);
    const z = b ? add(y, b) : y;
    return act === "relu" ? relu(z) : z;
  }
  if (b && (b.rank !== 1 || b.shape[0] !== w.shape[0])) {
    throw new Error(`linear: bias must have shape [${w.shape[0]}], got [${b.shape}]`);
  }
  const out = matmulT(x, w, false, true, {
    bias: b?.buffer,
    biasAlong: b ? "n" : undefined,
    expr: act === "relu" ? "max(v, 0.0)" : undefined,
  });
  return record(out, `linear_${act}`, b ? [x, w, b] : [x, w], (g, needs) => {
    const gz = act === "relu" ? mul(g, greater(out, 0)) : g;
    const dx = needs[0] ? matmulT(gz, w) : null;
    const dw = needs[1] ? matmulT(gz, x, true, false) : null;
    return b ? [dx, dw, needs[2] ? sum(gz, 0) : null] : [dx, dw];
  });
}
