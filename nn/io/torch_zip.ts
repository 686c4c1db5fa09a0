// torch.save zip archives (and TorchScript .pt files, which share the layout):
// `<prefix>/data.pkl` pickles the object; each storage it references lives in `<prefix>/data/<key>`.
// TorchScript adds `constants.pkl` (storages in `constants/`) and Python code in `code/`, never run.

import { unzipArchive } from "./npz.ts";
import { unpickle } from "./pickle.ts";
import { torchHandlers } from "./torch_handlers.ts";
import { parseStoragePid, TorchStorage } from "./torch_tensor.ts";

export interface TorchZipOptions {
  /** Which pickle to read: the object (`data`, default) or TorchScript's constants table (`constants`). */
  record?: "data" | "constants";
}

export type ZipFiles = Record<string, Uint8Array>;

/** The top-level folder prefix of a torch archive (with trailing slash, or "" when flat), if it is one. */
export function torchZipPrefix(files: ZipFiles): string | undefined {
  const pkl = Object.keys(files).find((n) => /^([^/]+\/)?data\.pkl$/.test(n));
  return pkl?.slice(0, -"data.pkl".length);
}

/** Reads a torch.save / TorchScript zip archive as data: tensors become HostArrays, dicts Maps. */
export function readTorchZip(bytes: Uint8Array, opts: TorchZipOptions = {}): any {
  return readTorchZipFiles(unzipArchive(bytes, "torch zip"), opts);
}

/** readTorchZip over an already unzipped archive. */
export function readTorchZipFiles(files: ZipFiles, opts: TorchZipOptions = {}): any {
  const prefix = torchZipPrefix(files);
  if (prefix === undefined) throw new Error("torch zip: no data.pkl record (not a torch.save archive)");
  const record = opts.record ?? "data";
  const pkl = files[`${prefix}${record}.pkl`];
  if (!pkl) throw new Error(`torch zip: no ${record}.pkl record`);
  const order = files[`${prefix}byteorder`];
  const littleEndian = !order || new TextDecoder().decode(order).trim() !== "big";
  // Keyed by dtype too: torch >= 2 may view one byte storage as several dtypes.
  const storages = new Map<string, TorchStorage>();
  const persistentLoad = (pid: unknown) => {
    const p = parseStoragePid(pid);
    const id = `${p.key}|${p.dtype}`;
    let s = storages.get(id);
    if (!s) {
      const raw = files[`${prefix}${record}/${p.key}`];
      if (!raw) throw new Error(`torch zip: missing storage record '${record}/${p.key}'`);
      s = TorchStorage.fromBytes(p.dtype, raw, littleEndian);
      storages.set(id, s);
    }
    return s;
  };
  try {
    return unpickle(pkl, { handlers: torchHandlers(), persistentLoad });
  } catch (e) {
    throw new Error(`torch zip ${record}.pkl: ${(e as Error).message}`);
  }
}
