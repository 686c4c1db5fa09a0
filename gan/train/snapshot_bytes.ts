// A training snapshot's bytes parsed (no file access: the browser page loads snapshots it was given as
// bytes; gan/train/snapshot.ts reads the file and writes snapshots). See snapshot.ts for the format.

import { tensorFromHost } from "../../nn/host_tensor.ts";
import { parseSafetensors } from "../../nn/io/safetensors.ts";
import { type HostArray, toFloat32 } from "../../nn/io/host.ts";
import { markIfSeparable } from "../../nn/upfirdn2d.ts";
import type { Tensor } from "../../nn/tensor.ts";
import { Generator } from "../stylegan2/generator.ts";

export const SNAPSHOT_FORMAT = "gan-cocktail-stylegan2-snapshot";
export const SNAPSHOT_VERSION = 1;
export const META_KEY = "training_state";

/** The JSON part of a snapshot. */
export interface SnapshotState {
  format: typeof SNAPSHOT_FORMAT;
  version: number;
  G_init_kwargs: Record<string, unknown>;
  D_init_kwargs: Record<string, unknown>;
  /** Images shown to D so far. */
  curNimg: number;
  /** Training iterations done (one iteration = G and D steps on one batch). */
  step: number;
  tick: number;
  /** Adam step counters (moments are tensors in the file). */
  optG: { step: number } | null;
  optD: { step: number } | null;
  plMean: number;
  /** Every random number of iteration i comes from streams keyed by (seed, i): this is the whole RNG state. */
  rng: { seed: number; step: number };
  /** Class names of the training data (conditional runs), for `generate --class`. */
  classNames?: string[];
  time: string;
}

/** A snapshot read back: its state and its tensors split by network. */
export interface LoadedSnapshot {
  state: SnapshotState;
  /** Prefix ("G", "D", "G_ema", "optG.m", ...) -> state dict. */
  parts: Map<string, Map<string, Tensor>>;
}

/** Parses a snapshot's bytes; `only` limits the parts put on the GPU; errors name `name`. */
export function parseSnapshot(bytes: Uint8Array, name: string, only?: string[]): LoadedSnapshot {
  let parsed: ReturnType<typeof parseSafetensors>;
  try {
    parsed = parseSafetensors(bytes);
  } catch (e) {
    throw new Error(`${name}: ${(e as Error).message}`);
  }
  const raw = parsed.metadata[META_KEY];
  if (!raw) throw new Error(`${name}: not a training snapshot (no '${META_KEY}' metadata)`);
  let state: SnapshotState;
  try {
    state = JSON.parse(raw) as SnapshotState;
  } catch (e) {
    throw new Error(`${name}: the '${META_KEY}' metadata is not JSON: ${(e as Error).message}`);
  }
  if (state.format !== SNAPSHOT_FORMAT || state.version !== SNAPSHOT_VERSION) {
    throw new Error(`${name}: unsupported snapshot format ${state.format} v${state.version}`);
  }
  const parts = new Map<string, Map<string, Tensor>>();
  for (const [k, a] of parsed.tensors) {
    const m = /^(G_ema|G|D|optG\.[mv]|optD\.[mv])\.(.+)$/.exec(k);
    if (!m) throw new Error(`${name}: unexpected tensor name ${k}`);
    if (only && !only.includes(m[1])) continue;
    if (!parts.has(m[1])) parts.set(m[1], new Map());
    parts.get(m[1])!.set(m[2], loadedTensor(m[2], a));
  }
  return { state, parts };
}

/**
 * A state-dict tensor from host data. A resampling filter is marked separable from its values as read
 * (copyInto hands the mark to the module's buffer), so the two-pass path never runs on values it did not see.
 */
export function loadedTensor(name: string, a: HostArray): Tensor {
  const t = tensorFromHost(a);
  if (/(^|\.)resample_filter$/.test(name) && t.dtype === "f32") markIfSeparable(t, toFloat32(a));
  return t;
}

/** Disposes the tensors of a loaded snapshot. */
export function disposeSnapshot(s: LoadedSnapshot): void {
  for (const m of s.parts.values()) for (const t of m.values()) t.dispose();
}

/** One generator ("G_ema" by default) of a snapshot's bytes, with the snapshot's state. */
export function generatorFromSnapshotBytes(
  bytes: Uint8Array,
  name: string,
  network: "G_ema" | "G" = "G_ema",
): { G: Generator; state: SnapshotState } {
  const snap = parseSnapshot(bytes, name, [network]);
  try {
    const sd = snap.parts.get(network);
    if (!sd) throw new Error(`${name}: snapshot has no ${network}`);
    const G = Generator.fromInitKwargs(snap.state.G_init_kwargs);
    try {
      G.loadStateDict(sd, { strict: true });
    } catch (e) {
      G.dispose();
      throw new Error(`${name}: ${network}: ${(e as Error).message}`);
    }
    return { G, state: snap.state };
  } finally {
    disposeSnapshot(snap);
  }
}
