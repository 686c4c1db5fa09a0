// torch.save zip archives (and TorchScript .pt files, which share the layout):
// `<prefix>/data.pkl` pickles the object; each storage it references lives in `<prefix>/data/<key>`.
// TorchScript adds `constants.pkl` (storages in `constants/`) and Python code in `code/`, never run.

import { unpickle } from "./pickle.ts";
import { torchHandlers } from "./torch_handlers.ts";
import { parseStoragePid, TorchStorage } from "./torch_tensor.ts";
import { DTYPE_BYTES } from "./host.ts";
import { ZipArchive } from "./zip_read.ts";

export interface TorchZipOptions {
  /** Which pickle to read: the object (`data`, default) or TorchScript's constants table (`constants`). */
  record?: "data" | "constants";
}

/** The top-level folder prefix of a torch archive (with trailing slash, or "" when flat), if it is one. */
export function torchZipPrefix(zip: ZipArchive): string | undefined {
  const pkl = zip.names().find((n) => /^([^/]+\/)?data\.pkl$/.test(n));
  return pkl?.slice(0, -"data.pkl".length);
}

/** Reads a torch.save / TorchScript zip archive as data: tensors become HostArrays, dicts Maps. */
export function readTorchZip(bytes: Uint8Array, opts: TorchZipOptions = {}): any {
  return readTorchZipArchive(ZipArchive.open(bytes, "torch zip"), opts);
}

/**
 * readTorchZip over an opened archive. Only the pickle and the storages it references are inflated, and
 * each storage's declared size must equal what the pickle says it holds before it is inflated.
 */
export function readTorchZipArchive(zip: ZipArchive, opts: TorchZipOptions = {}): any {
  const prefix = torchZipPrefix(zip);
  if (prefix === undefined) throw new Error("torch zip: no data.pkl record (not a torch.save archive)");
  const record = opts.record ?? "data";
  const pklName = `${prefix}${record}.pkl`;
  if (!zip.has(pklName)) throw new Error(`torch zip: no ${record}.pkl record`);
  // torch.save and TorchScript write protocol 2+ pickles, which open with PROTO: checked before inflating.
  const first = zip.head(pklName, 2);
  if (first[0] !== 0x80 || !(first[1] >= 2)) {
    const hex = Array.from(first, (b) => b.toString(16).padStart(2, "0")).join(" ");
    throw new Error(`torch zip ${record}.pkl: not a protocol 2+ pickle (starts with ${hex || "nothing"})`);
  }
  const pkl = zip.read(pklName);
  const order = zip.has(`${prefix}byteorder`) ? zip.read(`${prefix}byteorder`) : null;
  const littleEndian = !order || new TextDecoder().decode(order).trim() !== "big";
  // Keyed by dtype too: torch >= 2 may view one byte storage as several dtypes.
  const storages = new Map<string, TorchStorage>();
  const persistentLoad = (pid: unknown) => {
    const p = parseStoragePid(pid);
    const id = `${p.key}|${p.dtype}`;
    let s = storages.get(id);
    if (!s) {
      const name = `${prefix}${record}/${p.key}`;
      const entry = zip.entries.get(name);
      if (!entry) throw new Error(`torch zip: missing storage record '${record}/${p.key}'`);
      const want = p.numel * DTYPE_BYTES[p.dtype];
      if (entry.size !== want) {
        throw new Error(
          `torch zip: storage record '${record}/${p.key}' declares ${entry.size} bytes, the pickle's ` +
            `${p.numel} ${p.dtype} elements are ${want} bytes`,
        );
      }
      s = TorchStorage.fromBytes(p.dtype, zip.read(name), littleEndian);
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
