// Training snapshots. A snapshot is ONE safetensors file, written atomically: the tensors of G, D and G_ema
// (and both optimisers' moments, by parameter name) under prefixes, and the training state as JSON in its
// metadata (architectures as SGA init kwargs, counters, pl_mean, RNG state). One file means a snapshot is
// never half written; the weights are checked finite on the host before anything is written.

import { writeFileAtomic } from "../../nn/checkpoint.ts";
import { encodeSafetensors, type HostArray } from "../../nn/io/mod.ts";
import type { Module } from "../../nn/module.ts";
import type { Adam } from "../../nn/optim.ts";
import { concat } from "../../nn/shape.ts";
import { scope, type Tensor } from "../../nn/tensor.ts";
import type { Discriminator } from "../stylegan2/discriminator.ts";
import type { Generator } from "../stylegan2/generator.ts";
import {
  disposeSnapshot,
  type LoadedSnapshot,
  loadedTensor,
  META_KEY,
  parseSnapshot,
  SNAPSHOT_FORMAT,
  SNAPSHOT_VERSION,
  type SnapshotState,
} from "./snapshot_bytes.ts";

export {
  disposeSnapshot,
  type LoadedSnapshot,
  loadedTensor,
  SNAPSHOT_FORMAT,
  SNAPSHOT_VERSION,
  type SnapshotState,
};

/** Raised when training produced non-finite numbers; the last good snapshot is left in place. */
export class TrainingDivergedError extends Error {
  constructor(message: string, readonly step: number, readonly lastSnapshot: string | null) {
    super(message);
    this.name = "TrainingDivergedError";
  }
}

/** Reads f32 tensors back in a few large transfers (one per chunk of at most ~64 MiB), not one per tensor. */
export async function readTensors(tensors: Tensor[]): Promise<Float32Array[]> {
  const out: Float32Array[] = new Array(tensors.length);
  const budget = 16 * 2 ** 20; // floats per chunk
  let i = 0;
  while (i < tensors.length) {
    const chunk: number[] = [];
    let n = 0;
    while (i < tensors.length && (chunk.length === 0 || n + tensors[i].size <= budget)) {
      const t = tensors[i];
      if (t.dtype !== "f32") {
        out[i++] = await t.data();
        continue;
      }
      chunk.push(i);
      n += t.size;
      i++;
    }
    if (!chunk.length) continue;
    const flat = scope(() => concat(chunk.map((k) => tensors[k].view([tensors[k].size])), 0));
    const data = await flat.data();
    flat.dispose();
    let off = 0;
    for (const k of chunk) {
      out[k] = data.slice(off, off + tensors[k].size);
      off += tensors[k].size;
    }
  }
  return out;
}

function firstNonFinite(data: Float32Array): number {
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) return i;
  return -1;
}

export interface SnapshotParts {
  G: Generator;
  D: Discriminator;
  Gema: Generator;
  /** Optimisers with the parameter names of their parameter lists (moments are stored by name). */
  optG?: { opt: Adam; names: string[] } | null;
  optD?: { opt: Adam; names: string[] } | null;
}

/**
 * Writes a snapshot atomically. Throws TrainingDivergedError (writing nothing) if a weight of G, D or
 * G_ema is not finite.
 */
/** The training state of networks that were never trained here (imported, averaged, freshly made). */
export function untrainedState(seed = 0): Omit<
  SnapshotState,
  "format" | "version" | "G_init_kwargs" | "D_init_kwargs" | "time"
> {
  return { curNimg: 0, step: 0, tick: 0, optG: null, optD: null, plMean: 0, rng: { seed, step: 0 } };
}

export async function saveSnapshot(
  path: string,
  parts: SnapshotParts,
  state: Omit<SnapshotState, "format" | "version" | "G_init_kwargs" | "D_init_kwargs" | "time">,
  lastGood: string | null = null,
): Promise<void> {
  const named: [string, Tensor][] = [];
  const add = (prefix: string, m: Module) => {
    for (const [k, t] of m.stateDict()) named.push([`${prefix}.${k}`, t]);
  };
  add("G", parts.G);
  add("D", parts.D);
  add("G_ema", parts.Gema);
  for (const [prefix, o] of [["optG", parts.optG], ["optD", parts.optD]] as const) {
    if (!o) continue;
    if (o.names.length !== o.opt.params.length) {
      throw new Error(
        `saveSnapshot: ${o.names.length} names for ${o.opt.params.length} ${prefix} parameters`,
      );
    }
    o.names.forEach((n, i) => {
      named.push([`${prefix}.m.${n}`, o.opt.m[i]]);
      named.push([`${prefix}.v.${n}`, o.opt.v[i]]);
    });
  }
  const data = await readTensors(named.map(([, t]) => t));
  const arrays = new Map<string, HostArray>();
  named.forEach(([k, t], i) => {
    if (!k.startsWith("opt")) {
      const bad = firstNonFinite(data[i]);
      if (bad >= 0) {
        throw new TrainingDivergedError(
          `weights became non-finite (${k}[${bad}] = ${data[i][bad]}) at iteration ${state.step} ` +
            `(kimg ${(state.curNimg / 1000).toFixed(3)}); nothing written, last good snapshot: ${
              lastGood ?? "none"
            }`,
          state.step,
          lastGood,
        );
      }
    }
    arrays.set(k, { dtype: "f32", shape: [...t.shape], data: data[i] });
  });
  const full: SnapshotState = {
    format: SNAPSHOT_FORMAT,
    version: SNAPSHOT_VERSION,
    G_init_kwargs: parts.G.initKwargs() as unknown as Record<string, unknown>,
    D_init_kwargs: parts.D.initKwargs() as unknown as Record<string, unknown>,
    ...state,
    time: new Date().toISOString(),
  };
  await writeFileAtomic(path, encodeSafetensors(arrays, { [META_KEY]: JSON.stringify(full) }));
}

/** Reads a snapshot; `only` limits the parts put on the GPU (e.g. ["G_ema"] to generate). */
export async function readSnapshot(path: string, only?: string[]): Promise<LoadedSnapshot> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new Error(`cannot read snapshot ${path}: ${(e as Error).message}`);
  }
  return parseSnapshot(bytes, path, only);
}

/** Restores an optimiser's moments (by parameter name) and step counter. */
export function loadOptimizer(
  opt: Adam,
  names: string[],
  m: Map<string, Tensor> | undefined,
  v: Map<string, Tensor> | undefined,
  step: number,
  what: string,
): void {
  if (!m || !v) throw new Error(`snapshot has no ${what} optimiser state`);
  const state = new Map<string, Tensor | number>([["step", step]]);
  names.forEach((n, i) => {
    const mi = m.get(n), vi = v.get(n);
    if (!mi || !vi) throw new Error(`snapshot's ${what} optimiser state lacks parameter ${n}`);
    if (mi.size !== opt.params[i].size) {
      throw new Error(`snapshot's ${what} moments of ${n} have the wrong size`);
    }
    state.set(`m.${i}`, mi);
    state.set(`v.${i}`, vi);
  });
  if (m.size !== names.length) {
    throw new Error(
      `snapshot's ${what} optimiser holds ${m.size} parameters, this run trains ${names.length}`,
    );
  }
  opt.loadStateDict(state);
}
