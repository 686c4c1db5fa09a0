// Optimisers. Adam runs one fused kernel per group of parameters; nothing is read back, so a step never
// waits.

import { type AdamItem, adamStepMulti } from "../kernels/adam.ts";
import { zerosLike } from "./creation.ts";
import { axpby } from "./ops.ts";
import { copyInto } from "./module.ts";
import { keep, type Tensor } from "./tensor.ts";
import { noGrad } from "./autograd.ts";
import { UpdateGroups } from "./update_groups.ts";

export interface AdamOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

function gradsOf(params: Tensor[], grads?: (Tensor | null)[]): (Tensor | null)[] {
  const gs = grads ?? params.map((p) => p.grad);
  if (gs.length !== params.length) {
    throw new Error(`optimizer: ${gs.length} gradients for ${params.length} params`);
  }
  gs.forEach((g, i) => {
    if (g && g.size !== params[i].size) {
      throw new Error(`optimizer: gradient [${g.shape}] does not fit parameter [${params[i].shape}]`);
    }
  });
  return gs;
}

/** Parameters one multi-tensor Adam dispatch updates at most (keeps its shader small). */
const MAX_PARAMS_PER_DISPATCH = 16;

export class Adam {
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  step = 0;
  readonly m: Tensor[];
  readonly v: Tensor[];
  constructor(readonly params: Tensor[], opts: AdamOptions = {}) {
    this.lr = opts.lr ?? 1e-3;
    this.betas = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0;
    this.m = params.map((p) => keep(zerosLike(p)));
    this.v = params.map((p) => keep(zerosLike(p)));
  }

  /**
   * One update from `grads` (default: each parameter's .grad); parameters without a gradient are skipped.
   * Consecutive parameters share one dispatch (kernels/adam.ts adamStepMulti) while their buffers fit the
   * adapter's binding limit; the result is the one of updating them one by one, in order.
   */
  update(grads?: (Tensor | null)[]): void {
    const gs = gradsOf(this.params, grads);
    this.step++;
    const [b1, b2] = this.betas;
    const scalars = {
      lr: this.lr,
      beta1: b1,
      beta2: b2,
      eps: this.eps,
      weightDecay: this.weightDecay,
      bc1: 1 - b1 ** this.step,
      bc2: 1 - b2 ** this.step,
    };
    const groups = new UpdateGroups(
      (items: AdamItem[]) => adamStepMulti(items, scalars),
      MAX_PARAMS_PER_DISPATCH,
    );
    this.params.forEach((p, i) => {
      const g = gs[i];
      if (!g) return;
      groups.add(`Adam: parameter ${i}`, [p, this.m[i], this.v[i]], g, ([pb, mb, vb], grad) => ({
        param: pb,
        grad,
        m: mb,
        v: vb,
        n: p.size,
      }));
    });
    groups.flush();
  }

  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** Moments by parameter index plus the step count, for checkpoints. */
  stateDict(): Map<string, Tensor | number> {
    const s = new Map<string, Tensor | number>([["step", this.step]]);
    this.m.forEach((t, i) => s.set(`m.${i}`, t));
    this.v.forEach((t, i) => s.set(`v.${i}`, t));
    return s;
  }

  loadStateDict(s: Map<string, Tensor | number>): void {
    this.step = Number(s.get("step") ?? 0);
    this.m.forEach((t, i) => {
      const src = s.get(`m.${i}`);
      if (src && typeof src !== "number") copyInto(src, t);
    });
    this.v.forEach((t, i) => {
      const src = s.get(`v.${i}`);
      if (src && typeof src !== "number") copyInto(src, t);
    });
  }

  dispose(): void {
    for (const t of [...this.m, ...this.v]) t.dispose();
  }
}

/** Stochastic gradient descent with optional momentum. */
export class SGD {
  readonly velocity: (Tensor | null)[];
  constructor(readonly params: Tensor[], public lr = 1e-2, readonly momentum = 0) {
    this.velocity = params.map(() => null);
  }
  update(grads?: (Tensor | null)[]): void {
    const gs = gradsOf(this.params, grads);
    noGrad(() => {
      this.params.forEach((p, i) => {
        const g = gs[i];
        if (!g) return;
        let d = g;
        if (this.momentum > 0) {
          const v = this.velocity[i];
          d = keep(v ? axpby(v, this.momentum, g, 1) : axpby(g, 1, g, 0));
          v?.dispose();
          this.velocity[i] = d;
        }
        const next = axpby(p, 1, d, -this.lr);
        copyInto(next, p);
        next.dispose();
      });
    });
  }
  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }
}
