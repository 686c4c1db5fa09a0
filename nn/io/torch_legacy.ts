// The legacy (non-zip) torch.save stream, as written by `_use_new_zipfile_serialization=False` and by
// `torch.storage._load_from_bytes` blobs inside SGA network pickles. Layout, pickle after pickle:
// magic number, protocol version, sys info, the object (storages as persistent ids), the sorted list of
// storage keys; then per key an int64 element count and the raw data.

import { DTYPE_BYTES } from "./host.ts";
import { type PickleHandler, unpickleAt } from "./pickle.ts";
import { torchHandlers } from "./torch_handlers.ts";
import { parseStoragePid, type StoragePid, TorchStorage } from "./torch_tensor.ts";
import { readTorchZip } from "./torch_zip.ts";

const MAGIC = 0x1950a86a20f9469cfc6cn;
const PROTOCOL_VERSION = 1001;

export function isZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 &&
    bytes[3] === 0x04;
}

/** True when the bytes begin with the legacy torch.save magic-number pickle. */
export function isLegacyTorchSave(bytes: Uint8Array): boolean {
  try {
    return unpickleAt(bytes.subarray(0, 64), 0).value === MAGIC;
  } catch {
    return false;
  }
}

/**
 * Reads a legacy torch.save stream (zip blobs are passed to readTorchZip). `extraHandlers` extend the
 * allow-list for the object pickle.
 */
export function readLegacyTorchSave(bytes: Uint8Array, extraHandlers?: Map<string, PickleHandler>): any {
  if (isZip(bytes)) return readTorchZip(bytes);
  const fail = (why: string): never => {
    throw new Error(`legacy torch.save: ${why}`);
  };
  const next = (pos: number, what: string, opts = {}) => {
    try {
      return unpickleAt(bytes, pos, opts);
    } catch (e) {
      return fail(`${what}: ${(e as Error).message}`);
    }
  };
  if (bytes.length === 0 || bytes[0] !== 0x80) {
    fail("bad magic (not a pickle stream; the old tar format is unsupported)");
  }
  const magic = next(0, "magic number");
  if (magic.value !== MAGIC) fail("bad magic number");
  const proto = next(magic.end, "protocol version");
  if (proto.value !== PROTOCOL_VERSION) fail(`unsupported protocol version ${String(proto.value)}`);
  const sys = next(proto.end, "sys info");
  const littleEndian = !(sys.value instanceof Map) || sys.value.get("little_endian") !== false;

  // Pass 1 finds where the object pickle ends and which storages it references (with their dtypes).
  const objStart = sys.end;
  const pids = new Map<string, StoragePid>();
  const scan = next(objStart, "object", {
    persistentLoad: (pid: unknown) => {
      if (Array.isArray(pid) && pid[0] === "storage") {
        const p = parseStoragePid(pid);
        pids.set(p.key, p);
        if (p.view) pids.set(p.view.key, p);
      }
      return {};
    },
  });
  const keys = next(scan.end, "storage key list");
  if (!Array.isArray(keys.value)) fail("storage key list is not a list");

  const storages = new Map<string, TorchStorage>();
  let pos = keys.end;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (const rawKey of keys.value as unknown[]) {
    const key = String(rawKey);
    const p = pids.get(key) ?? fail(`storage '${key}' is listed but never referenced`);
    if (pos + 8 > bytes.length) fail(`truncated before the size of storage '${key}'`);
    const count = view.getBigInt64(pos, true);
    pos += 8;
    const nbytes = Number(count) * DTYPE_BYTES[p.dtype];
    if (count < 0n || pos + nbytes > bytes.length) {
      fail(`truncated storage '${key}' (${count} ${p.dtype} elements, ${bytes.length - pos} bytes left)`);
    }
    storages.set(key, TorchStorage.fromBytes(p.dtype, bytes.subarray(pos, pos + nbytes), littleEndian));
    pos += nbytes;
  }

  // Pass 2 rebuilds the object with the storages now at hand.
  const persistentLoad = (pid: unknown) => {
    if (!Array.isArray(pid) || pid[0] !== "storage") return { $persistent: pid };
    const p = parseStoragePid(pid);
    const root = storages.get(p.key) ?? fail(`storage '${p.key}' has no data`);
    if (!p.view) return root;
    const { offset, size } = p.view;
    if (offset < 0 || offset + size > root.data.length) fail(`storage view '${p.view.key}' outside its root`);
    return new TorchStorage(root.dtype, root.data.slice(offset, offset + size));
  };
  return next(objStart, "object", { handlers: torchHandlers(extraHandlers), persistentLoad }).value;
}
