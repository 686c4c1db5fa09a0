// Flat layouts of the toy networks' tensors for the fused trainer: every parameter (and BatchNorm
// running statistic) at a 64-float-aligned offset of one buffer, so that one Adam / EMA dispatch covers a
// whole network and every weight can be bound alone as a uniform range. Conversion to and from state
// dicts (engine tensors) keeps checkpoints in the engine's format.

import { tensor } from "../../nn/creation.ts";
import type { Tensor } from "../../nn/tensor.ts";
import type { LayerSpec } from "./models.ts";

export interface Slot {
  name: string;
  shape: number[];
  /** Offset in floats (multiple of 64: 256 bytes). */
  off: number;
  size: number;
}

export interface FlatLayout {
  slots: Slot[];
  byName: Map<string, Slot>;
  floats: number;
}

const ALIGN = 64;

function build(entries: [string, number[]][]): FlatLayout {
  const slots: Slot[] = [];
  let off = 0;
  for (const [name, shape] of entries) {
    const size = shape.reduce((a, b) => a * b, 1);
    slots.push({ name, shape, off, size });
    off += Math.ceil(size / ALIGN) * ALIGN;
  }
  return { slots, byName: new Map(slots.map((s) => [s.name, s])), floats: Math.max(off, ALIGN) };
}

/** Parameters: per layer weight, bias and (BatchNorm layers) gamma, beta. */
export function paramLayout(layers: LayerSpec[]): FlatLayout {
  const e: [string, number[]][] = [];
  for (const l of layers) {
    e.push([l.weight, [l.outF, l.inF]], [l.bias, [l.outF]]);
    if (l.bn) e.push([`${l.bn}.weight`, [l.outF]], [`${l.bn}.bias`, [l.outF]]);
  }
  return build(e);
}

/** BatchNorm running statistics (empty layout for networks without BatchNorm). */
export function runningLayout(layers: LayerSpec[]): FlatLayout {
  const e: [string, number[]][] = [];
  for (const l of layers) {
    if (l.bn) e.push([`${l.bn}.running_mean`, [l.outF]], [`${l.bn}.running_var`, [l.outF]]);
  }
  return build(e);
}

export function slot(layout: FlatLayout, name: string): Slot {
  const s = layout.byName.get(name);
  if (!s) throw new Error(`flat layout has no tensor named ${name}`);
  return s;
}

/** Packs named tensors into a flat host array (every slot must be present with its shape). */
export async function packState(
  layout: FlatLayout,
  state: Map<string, Tensor>,
  what: string,
): Promise<Float32Array> {
  const out = new Float32Array(layout.floats);
  for (const s of layout.slots) {
    const t = state.get(s.name);
    if (!t) throw new Error(`${what}: state has no tensor ${s.name}`);
    if (t.shape.join() !== s.shape.join()) {
      throw new Error(`${what}: ${s.name} has shape [${t.shape}], expected [${s.shape}]`);
    }
    out.set(await t.data({ checkFinite: true }), s.off);
  }
  return out;
}

/** Named tensors from a flat host array. */
export function unpackState(layout: FlatLayout, flat: Float32Array): Map<string, Tensor> {
  const m = new Map<string, Tensor>();
  for (const s of layout.slots) m.set(s.name, tensor(flat.slice(s.off, s.off + s.size), s.shape));
  return m;
}

/** Named host arrays from a flat host array (tests and gradient comparisons). */
export function unpackHost(layout: FlatLayout, flat: Float32Array): Map<string, Float32Array> {
  return new Map(layout.slots.map((s) => [s.name, flat.slice(s.off, s.off + s.size)]));
}
