// Networks from files: a training snapshot's G, D and G_ema, or an SGA network pickle's (read as data,
// rebuilt from its init kwargs); and copies of a generator (G_ema starts as one).

import { readNetworkPickle, type TorchNetwork } from "../../nn/io/mod.ts";
import type { Module } from "../../nn/module.ts";
import { Discriminator } from "../stylegan2/discriminator.ts";
import { Generator } from "../stylegan2/generator.ts";
import {
  disposeSnapshot,
  type LoadedSnapshot,
  loadedTensor,
  readSnapshot,
  type SnapshotState,
} from "./snapshot.ts";

/** G, D and G_ema of a file: this project's snapshot (.safetensors) or an SGA network pickle (.pkl). */
export interface LoadedNetworks {
  G: Generator;
  D: Discriminator | null;
  Gema: Generator;
  /** Our snapshots only. */
  state: SnapshotState | null;
}

function fromTorch(net: unknown, kind: "G" | "D", path: string): Generator | Discriminator | null {
  if (!net || typeof net !== "object" || !("initKwargs" in net)) return null;
  const t = net as TorchNetwork;
  const m = kind === "D"
    ? Discriminator.fromInitKwargs(t.initKwargs)
    : Generator.fromInitKwargs(t.initKwargs);
  const state = new Map([...t.state].map(([k, a]) => [k, loadedTensor(k, a)]));
  try {
    m.loadStateDict(state, { strict: true });
  } catch (e) {
    m.dispose();
    throw new Error(`${path}: ${kind}: ${(e as Error).message}`);
  } finally {
    for (const x of state.values()) x.dispose();
  }
  return m;
}

export async function loadNetworks(path: string): Promise<LoadedNetworks> {
  if (path.toLowerCase().endsWith(".pkl")) {
    let nets: Record<string, unknown>;
    try {
      nets = readNetworkPickle(await Deno.readFile(path));
    } catch (e) {
      throw new Error(`${path}: ${(e as Error).message}`);
    }
    const G = fromTorch(nets.G, "G", path) as Generator | null;
    const Gema = fromTorch(nets.G_ema, "G", path) as Generator | null;
    if (!G && !Gema) throw new Error(`${path}: the pickle holds no G or G_ema`);
    const D = fromTorch(nets.D, "D", path) as Discriminator | null;
    return { G: G ?? cloneGenerator(Gema!), Gema: Gema ?? cloneGenerator(G!), D, state: null };
  }
  const snap = await readSnapshot(path, ["G", "D", "G_ema"]);
  try {
    return networksFromSnapshot(snap, path);
  } finally {
    disposeSnapshot(snap);
  }
}

/** Builds G, D and G_ema from a snapshot read with readSnapshot (its tensors stay owned by `snap`). */
export function networksFromSnapshot(
  snap: LoadedSnapshot,
  path: string,
): { G: Generator; D: Discriminator; Gema: Generator; state: SnapshotState } {
  const built: Module[] = [];
  const build = (kind: "G" | "G_ema" | "D") => {
    const sd = snap.parts.get(kind);
    if (!sd) throw new Error(`${path}: snapshot has no ${kind}`);
    const m = kind === "D"
      ? Discriminator.fromInitKwargs(snap.state.D_init_kwargs)
      : Generator.fromInitKwargs(snap.state.G_init_kwargs);
    built.push(m);
    try {
      m.loadStateDict(sd, { strict: true });
    } catch (e) {
      throw new Error(`${path}: ${kind}: ${(e as Error).message}`);
    }
    return m;
  };
  try {
    return {
      G: build("G") as Generator,
      D: build("D") as Discriminator,
      Gema: build("G_ema") as Generator,
      state: snap.state,
    };
  } catch (e) {
    for (const m of built) m.dispose();
    throw e;
  }
}

/** A new generator of the same architecture holding a copy of G's parameters and buffers. */
export function cloneGenerator(G: Generator): Generator {
  const copy = Generator.fromInitKwargs(G.initKwargs() as unknown as Record<string, unknown>);
  copy.loadStateDict(G.stateDict(), { strict: true });
  return copy;
}
