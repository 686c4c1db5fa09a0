// Per-iteration training statistics kept on the GPU (one scalar tensor per loss term and iteration) and
// read back once per tick in a single transfer. Keeping every value, not a running sum, lets the NaN check
// name the first iteration that went wrong. Pending scalars are packed into chunks so the number of live
// buffers stays small however long a tick is.

import { concat } from "../../nn/shape.ts";
import { scope, type Tensor } from "../../nn/tensor.ts";

export interface StatRow {
  name: string;
  step: number;
  value: number;
}

interface Chunk {
  meta: { name: string; step: number }[];
  values: Tensor;
}

const FOLD_AT = 256;

export class StatsBuffer {
  private pending: { name: string; step: number; t: Tensor }[] = [];
  private chunks: Chunk[] = [];

  /** Takes ownership of one-element tensors (disposed when read). */
  push(step: number, values: [string, Tensor][]): void {
    for (const [name, t] of values) {
      if (t.size !== 1) {
        throw new Error(`StatsBuffer: statistic ${name} must be one number, got shape [${t.shape}]`);
      }
      this.pending.push({ name, step, t });
    }
    if (this.pending.length >= FOLD_AT) this.fold();
  }

  private fold(): void {
    if (!this.pending.length) return;
    const p = this.pending;
    this.pending = [];
    const values = scope(() => concat(p.map((e) => e.t.view([1])), 0));
    for (const e of p) e.t.dispose();
    this.chunks.push({ meta: p.map(({ name, step }) => ({ name, step })), values });
  }

  /**
   * The newest iteration's values, read without emptying the buffer (a progress display's peek: one
   * small transfer; the tick's read still gets every value).
   */
  async latest(): Promise<{ step: number; values: Record<string, number> } | null> {
    this.fold();
    const c = this.chunks[this.chunks.length - 1];
    if (!c) return null;
    const data = await c.values.data();
    const step = c.meta[c.meta.length - 1].step;
    const values: Record<string, number> = {};
    c.meta.forEach((m, i) => {
      if (m.step === step) values[m.name] = data[i];
    });
    return { step, values };
  }

  /** All values since the last read, plus `extra` (not owned) recorded at `extraStep`; empties the buffer. */
  async read(extra: [string, Tensor][] = [], extraStep = -1): Promise<StatRow[]> {
    this.fold();
    const meta = [
      ...this.chunks.flatMap((c) => c.meta),
      ...extra.map(([name]) => ({ name, step: extraStep })),
    ];
    const parts = [...this.chunks.map((c) => c.values), ...extra.map(([, t]) => t)];
    this.chunks = [];
    if (!parts.length) return [];
    const all = scope(() => concat(parts.map((t) => t.view([t.size])), 0));
    const data = await all.data();
    all.dispose();
    for (const t of parts.slice(0, parts.length - extra.length)) t.dispose();
    return meta.map((m, i) => ({ ...m, value: data[i] }));
  }

  dispose(): void {
    for (const e of this.pending) e.t.dispose();
    for (const c of this.chunks) c.values.dispose();
    this.pending = [];
    this.chunks = [];
  }
}
