// Multi-tensor in-place axpby: dst_k <- a_k * src_k + b_k * dst_k for several f32 tensors in one
// dispatch (kernels/multi_tensor.ts). An EMA of a network's weights is this with a = 1 - beta, b = beta,
// BatchNorm's running statistics too. A source may be an elementwise tree (a fused prologue). The
// arithmetic is the elementwise axpby's (a * x + b * y in f32), so results are bit-identical to it.

import { dispatchMulti } from "./multi_tensor.ts";
import type { ElementwiseProgram } from "./prologue.ts";

/** One tensor of the update: dst <- a * src + b * dst over n f32 values, dst written in place. */
export interface AxpbyItem {
  dst: GPUBuffer;
  src: GPUBuffer | ElementwiseProgram;
  n: number;
  a: number;
  b: number;
}

const SPEC = {
  name: "axpby-into",
  outputs: ["d"],
  shared: [],
  prelude: "",
  body: (j: number, load: string) => `d${j}[i] = xa * ${load} + xb * d${j}[i];`,
};

/**
 * The update of every item, in one dispatch. The caller keeps the items' bindings (multiItemBindings)
 * within the adapter's storage-binding limit; no buffer may be a dst twice or both a dst and a source.
 */
export function axpbyIntoMulti(items: AxpbyItem[]): void {
  dispatchMulti(
    SPEC,
    items.map((it) => ({ outputs: [it.dst], source: it.src, n: it.n, xa: it.a, xb: it.b })),
  );
}
