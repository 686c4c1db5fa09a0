// Reverse-mode autograd. Every op's backward rule is written with differentiable ops, so with
// `createGraph` the gradients themselves carry a graph and can be differentiated again (R1, path length).

import { keep, type Tensor } from "./tensor.ts";

let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs fn without recording a graph. */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

function withGrad<T>(enabled: boolean, fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = enabled;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/**
 * Attaches a graph node to `out` when grad mode is on and an input needs gradients.
 * `backward` maps the output gradient to one gradient (or null) per input; `needs[j]` says whether
 * input j's gradient is used by this grad() call (rules skip eager work, GEMMs and reductions, for
 * the others: D's weight gradients in a generator step, say).
 */
export function record(
  out: Tensor,
  name: string,
  inputs: Tensor[],
  backward: (g: Tensor, needs: readonly boolean[]) => (Tensor | null)[],
): Tensor {
  if (gradEnabled && inputs.some((t) => t.requiresGrad)) {
    out.requiresGrad = true;
    out.gradFn = { name, inputs, backward };
  }
  return out;
}

function topoOrder(outputs: Tensor[]): Tensor[] {
  const order: Tensor[] = [];
  const visited = new Set<Tensor>();
  // Iterative DFS: deep graphs (long MLP chains) must not overflow the JS stack.
  const stack: [Tensor, number][] = outputs.map((t) => [t, 0]);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    if (i === 0 && visited.has(t)) {
      stack.pop();
      continue;
    }
    visited.add(t);
    const inputs = t.gradFn?.inputs ?? [];
    if (i < inputs.length) {
      top[1]++;
      const next = inputs[i];
      if (next.requiresGrad && !visited.has(next)) stack.push([next, 0]);
    } else {
      stack.pop();
      order.push(t);
    }
  }
  return order; // inputs before outputs
}

export interface GradOptions {
  /** Gradients of the outputs (default: ones, which needs scalar outputs). */
  gradOutputs?: Tensor[];
  /** Record a graph of the gradient computation so it can be differentiated again. */
  createGraph?: boolean;
}

// Circular-import-free access to the few ops autograd itself needs.
interface AutogradOps {
  add(a: Tensor, b: Tensor): Tensor;
  onesLike(t: Tensor): Tensor;
  zerosLike(t: Tensor): Tensor;
}
let ops: AutogradOps | null = null;
export function registerAutogradOps(o: AutogradOps): void {
  ops = o;
}

/** Gradients of sum(outputs * gradOutputs) with respect to each input (zeros where unconnected). */
export function grad(outputs: Tensor | Tensor[], inputs: Tensor[], opts: GradOptions = {}): Tensor[] {
  const outs = Array.isArray(outputs) ? outputs : [outputs];
  const o = ops!;
  const grads = new Map<Tensor, Tensor>();
  outs.forEach((t, i) => {
    if (!t.requiresGrad) return;
    let g = opts.gradOutputs?.[i];
    if (!g) {
      if (t.size !== 1) {
        throw new Error(`grad of a non-scalar output [${t.shape}] needs gradOutputs`);
      }
      g = o.onesLike(t);
    } else if (g.shape.join() !== t.shape.join()) {
      throw new Error(`gradOutputs[${i}] has shape [${g.shape}], output has [${t.shape}]`);
    }
    const prev = grads.get(t);
    grads.set(t, prev ? o.add(prev, g) : g);
  });
  const wanted = new Set(inputs);
  const createGraph = opts.createGraph ?? false;
  // Backward rules may return the incoming gradient itself for several inputs: count who holds each
  // gradient tensor, and free one (when no graph is kept) only when nobody does.
  const held = new Map<Tensor, number>();
  for (const g of grads.values()) held.set(g, (held.get(g) ?? 0) + 1);
  // The caller's gradOutputs stay the caller's: one extra hold means they are never freed here.
  for (const g of opts.gradOutputs ?? []) if (g) held.set(g, (held.get(g) ?? 0) + 1);
  const release = (g: Tensor) => {
    const n = (held.get(g) ?? 0) - 1;
    if (n > 0) return void held.set(g, n);
    held.delete(g);
    if (!createGraph) g.dispose();
  };
  const store = (t: Tensor, g: Tensor) => {
    const prev = grads.get(t);
    grads.set(t, g);
    held.set(g, (held.get(g) ?? 0) + 1);
    if (prev) release(prev);
  };
  const order = topoOrder(outs.filter((t) => t.requiresGrad));
  // A tensor's gradient is needed when a wanted input is reachable from it (order: inputs first).
  const needed = new Set<Tensor>();
  for (const t of order) {
    if (wanted.has(t) || t.gradFn?.inputs.some((i) => needed.has(i))) needed.add(t);
  }
  withGrad(createGraph, () => {
    for (let idx = order.length - 1; idx >= 0; idx--) {
      const t = order[idx];
      const node = t.gradFn;
      const g = grads.get(t);
      if (!node || !g) continue;
      const ins = needed.has(t) ? node.backward(g, node.inputs.map((i) => needed.has(i))) : [];
      node.inputs.forEach((inp, j) => {
        const gi = ins[j];
        if (!gi || !needed.has(inp)) return;
        if (gi.shape.join() !== inp.shape.join()) {
          throw new Error(
            `backward of ${node.name} gave a gradient of shape [${gi.shape}] for input [${inp.shape}]`,
          );
        }
        const prev = grads.get(inp);
        if (prev) {
          store(inp, o.add(prev, gi));
          if (!held.has(gi) && !createGraph) gi.dispose();
        } else store(inp, gi);
      });
      // Without a graph to keep, an intermediate gradient is dead once propagated.
      if (!wanted.has(t)) {
        grads.delete(t);
        release(g);
      }
    }
  });
  return inputs.map((t) => grads.get(t) ?? o.zerosLike(t));
}

/** Accumulates d(loss)/d(leaf) into `leaf.grad` for every leaf parameter that requires gradients. */
export function backward(loss: Tensor, params: Tensor[]): void {
  const gs = grad(loss, params);
  params.forEach((p, i) => {
    const g = keep(gs[i]);
    if (p.grad) {
      const sum = keep(ops!.add(p.grad, g));
      p.grad.dispose();
      g.dispose();
      p.grad = sum;
    } else p.grad = g;
  });
}
