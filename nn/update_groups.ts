// Groups in-place updates into multi-tensor dispatches (kernels/multi_tensor.ts) while keeping the result
// of running them one by one, in order: a group is dispatched before an update whose targets a pending
// one reads or writes, or whose source reads a pending target, when the next update's bindings would
// pass the adapter's limit, and on CPU adapters when its arm would cost more than a dispatch
// (kernels/multi_tensor.ts multiArmBudget). Each source's last elementwise ops run inside the update (a
// fused prologue). Adam (nn/optim.ts) and axpbyInto (nn/module.ts) are built on it.

import {
  multiArmBudget,
  multiItemBindings,
  multiItemWorkgroups,
  sourceBuffers,
} from "../kernels/multi_tensor.ts";
import type { ElementwiseProgram } from "../kernels/prologue.ts";
import { gpu } from "../kernels/runtime.ts";
import { maxReadBuffers, prologueOf } from "./lazy.ts";
import type { Tensor } from "./tensor.ts";

export class UpdateGroups<I> {
  private group: I[] = [];
  private bindings = 0;
  private workgroups = 0;
  private readonly armBudget = multiArmBudget();
  private readonly writes = new Set<GPUBuffer>();
  private readonly reads = new Set<GPUBuffer>();
  private readonly limit = gpu().device.limits.maxStorageBuffersPerShaderStage;

  /** `run` dispatches one group; at most `maxItems` updates share a dispatch. */
  constructor(private readonly run: (items: I[]) => void, private readonly maxItems: number) {}

  /**
   * Adds the update writing `targets` in place from `source`; `item` builds the kernel's item from the
   * targets' buffers and the source as the kernel reads it. `what` names the update in errors.
   */
  add(
    what: string,
    targets: Tensor[],
    source: Tensor,
    item: (buffers: GPUBuffer[], source: GPUBuffer | ElementwiseProgram) => I,
  ): void {
    // A pending update that reads or writes these targets must run before they are written.
    if (targets.some((t) => this.writes.has(t.buffer) || this.reads.has(t.buffer))) this.flush();
    // In-place targets first: lazy values reading them (the source too) are computed before they change.
    const outs = targets.map((t) => t.writableBuffer);
    const src = prologueOf(source.valueNode, maxReadBuffers() - targets.length) ?? source.buffer;
    const srcReads = sourceBuffers(src);
    if (srcReads.some((b) => outs.includes(b))) {
      throw new Error(`${what} reads and writes the same buffer`);
    }
    const need = multiItemBindings(outs.length, src);
    const wg = multiItemWorkgroups(targets[0].size);
    if (
      this.group.length >= this.maxItems || this.bindings + need > this.limit ||
      srcReads.some((b) => this.writes.has(b)) ||
      this.workgroups + wg * this.group.length > this.armBudget
    ) this.flush();
    this.group.push(item(outs, src));
    this.bindings += need;
    this.workgroups += wg;
    for (const b of outs) this.writes.add(b);
    for (const b of srcReads) this.reads.add(b);
  }

  /** Dispatches the pending group (if any). */
  flush(): void {
    if (this.group.length) this.run(this.group);
    this.group = [];
    this.bindings = 0;
    this.workgroups = 0;
    this.writes.clear();
    this.reads.clear();
  }
}
