// Finite-difference checks of first- and second-order gradients along random directions.
// L(x) = sum(f(x) * w) with fixed random w; the analytic directional derivative <dL/dx, v> must match
// (L(x + e v) - L(x - e v)) / 2e, and the Hessian-vector product d<dL/dx, v>/dx must match the central
// difference of the gradients.

import { grad } from "../nn/autograd.ts";
import { tensor } from "../nn/creation.ts";
import { add, mul } from "../nn/ops.ts";
import { sum } from "../nn/reduce.ts";
import { scope, scopeAsync, Tensor } from "../nn/tensor.ts";
import { randArray } from "./harness.ts";

type Fn = (...xs: Tensor[]) => Tensor;

async function lossAt(f: Fn, xs: Float32Array[], shapes: number[][], w: Float32Array): Promise<number> {
  return await scopeAsync(async () => {
    const ts = xs.map((x, i) => tensor(x, shapes[i]));
    const y = f(...ts);
    if (y.size !== w.length) throw new Error(`gradcheck: output size ${y.size} != weights ${w.length}`);
    const l = sum(mul(y, tensor(w, y.shape)));
    const d = await l.data();
    // Accumulate in float64 on the host to keep the difference quotient clean.
    return d[0];
  });
}

async function gradsAt(
  f: Fn,
  xs: Float32Array[],
  shapes: number[][],
  w: Float32Array,
): Promise<Float64Array[]> {
  return await scopeAsync(async () => {
    const ts = xs.map((x, i) => {
      const t = tensor(x, shapes[i]);
      t.requiresGrad = true;
      return t;
    });
    const y = f(...ts);
    const l = sum(mul(y, tensor(w, y.shape)));
    const gs = grad(l, ts);
    return await Promise.all(gs.map(async (g) => Float64Array.from(await g.data())));
  });
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

function perturb(xs: Float32Array[], vs: Float32Array[], e: number): Float32Array[] {
  return xs.map((x, i) => x.map((v, j) => v + e * vs[i][j]));
}

/**
 * Checks first- and (optionally) second-order gradients of f at the given inputs.
 * Tolerances are relative to the magnitude of the derivative (float32 differences are noisy).
 */
export async function gradcheck(
  f: Fn,
  inputs: { data: Float32Array; shape: number[] }[],
  { eps = 1e-2, rtol = 2e-2, atol = 2e-3, secondOrder = true, seed = 7, directions = 2 } = {},
): Promise<void> {
  const xs = inputs.map((i) => i.data);
  const shapes = inputs.map((i) => i.shape);
  const outSize = scope(() => f(...xs.map((x, i) => tensor(x, shapes[i]))).size);
  const w = randArray(outSize, seed + 1);
  const g0 = await gradsAt(f, xs, shapes, w);
  for (let dir = 0; dir < directions; dir++) {
    const vs = xs.map((x, i) => randArray(x.length, seed + 100 * dir + i + 2));
    const analytic = g0.reduce((s, g, i) => s + dot(g, vs[i]), 0);
    const lp = await lossAt(f, perturb(xs, vs, eps), shapes, w);
    const lm = await lossAt(f, perturb(xs, vs, -eps), shapes, w);
    const numeric = (lp - lm) / (2 * eps);
    if (!(Math.abs(analytic - numeric) <= atol + rtol * Math.abs(numeric))) {
      throw new Error(`first-order gradient mismatch: analytic ${analytic}, numeric ${numeric}`);
    }
    if (!secondOrder) continue;
    // Hessian-vector product: grad of <dL/dx, v> with a graph, against differences of gradients.
    const hv = await scopeAsync(async () => {
      const ts = xs.map((x, i) => {
        const t = tensor(x, shapes[i]);
        t.requiresGrad = true;
        return t;
      });
      const y = f(...ts);
      const l = sum(mul(y, tensor(w, y.shape)));
      const gs = grad(l, ts, { createGraph: true });
      let s: Tensor | null = null;
      gs.forEach((g, i) => {
        if (!g.requiresGrad) return; // linear in this input: no second-order term
        const term = sum(mul(g, tensor(vs[i], g.shape)));
        s = s ? add(s, term) : term;
      });
      if (!s) return xs.map((x) => new Float64Array(x.length));
      const hs = grad(s, ts);
      return await Promise.all(hs.map(async (h) => Float64Array.from(await h.data())));
    });
    const gp = await gradsAt(f, perturb(xs, vs, eps), shapes, w);
    const gm = await gradsAt(f, perturb(xs, vs, -eps), shapes, w);
    // Compare along a second random direction u: <Hv, u> vs <(g+ - g-)/2e, u>.
    const us = xs.map((x, i) => randArray(x.length, seed + 1000 * dir + i + 5));
    let a2 = 0, n2 = 0;
    for (let i = 0; i < xs.length; i++) {
      a2 += dot(hv[i], us[i]);
      for (let j = 0; j < xs[i].length; j++) n2 += ((gp[i][j] - gm[i][j]) / (2 * eps)) * us[i][j];
    }
    if (!(Math.abs(a2 - n2) <= atol + rtol * Math.abs(n2))) {
      throw new Error(`second-order gradient mismatch: analytic ${a2}, numeric ${n2}`);
    }
  }
}
