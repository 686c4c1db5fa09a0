// StyleGAN2-ADA network pickles (`network-snapshot-*.pkl`): a dict {G, D, G_ema, training_set_kwargs, ...}
// whose networks are "persistent" objects rebuilt by torch_utils.persistence._reconstruct_persistent_obj(meta),
// meta = {type, version, module_src, class_name, state}. module_src is kept as text and never executed.

import type { HostArray } from "./host.ts";
import { type PickleHandler, toPlain, unpickle } from "./pickle.ts";
import { PersistentObject, reconstructPersistent } from "./persistent.ts";
import { flattenTensors } from "./state_dict.ts";
import { torchHandlers } from "./torch_handlers.ts";
import { isZip, readLegacyTorchSave } from "./torch_legacy.ts";
import { readTorchZip } from "./torch_zip.ts";

/** One network of a snapshot, as data. */
export interface TorchNetwork {
  className: string;
  /** Constructor keyword arguments (the architecture), as plain JSON. */
  initKwargs: Record<string, unknown>;
  initArgs: unknown[];
  /** Parameters and persistent buffers by dotted name, like the module's state_dict(). */
  state: Map<string, HostArray>;
  /** The Python source the class came from: text for reference, never run. */
  moduleSrc: string;
}

/** `_load_from_bytes(blob)`: a storage saved as a legacy torch.save stream or, in newer files, a zip. */
const loadFromBytes: PickleHandler = (args) => {
  const blob = args[0];
  if (!(blob instanceof Uint8Array)) throw new Error("_load_from_bytes argument is not bytes");
  return isZip(blob) ? readTorchZip(blob) : readLegacyTorchSave(blob);
};

export function networkPickleHandlers(): Map<string, PickleHandler> {
  return torchHandlers(
    new Map([
      ["torch_utils.persistence._reconstruct_persistent_obj", reconstructPersistent],
      ["torch.storage._load_from_bytes", loadFromBytes],
    ]),
  );
}

/** Converts a persistent module object into {className, initKwargs, state}. */
export function toNetwork(obj: PersistentObject): TorchNetwork {
  const st = obj.state instanceof Map ? obj.state : new Map();
  const kwargs = toPlain(st.get("_init_kwargs") ?? new Map());
  const args = toPlain(st.get("_init_args") ?? []);
  return {
    className: obj.className,
    initKwargs: (kwargs ?? {}) as Record<string, unknown>,
    initArgs: Array.isArray(args) ? args : [],
    state: flattenTensors(obj),
    moduleSrc: obj.moduleSrc,
  };
}

/**
 * Reads a network snapshot pickle: persistent networks become TorchNetwork, other entries plain JSON
 * (training_set_kwargs etc.).
 */
export function readNetworkPickle(bytes: Uint8Array): Record<string, TorchNetwork | unknown> {
  let top: unknown;
  try {
    top = unpickle(bytes, { handlers: networkPickleHandlers() });
  } catch (e) {
    throw new Error(`network pickle: ${(e as Error).message}`);
  }
  if (!(top instanceof Map)) throw new Error("network pickle: top level is not a dict (not an SGA snapshot)");
  const out: Record<string, unknown> = {};
  let networks = 0;
  for (const [k, v] of top) {
    if (v instanceof PersistentObject) {
      out[String(k)] = toNetwork(v);
      networks++;
    } else out[String(k)] = toPlain(v);
  }
  if (networks === 0) throw new Error("network pickle: no persistent networks found (not an SGA snapshot)");
  return out;
}
