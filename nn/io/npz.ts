// NumPy .npz archives: a zip of .npy files (stored or deflated). pytorch-fid statistics are npz with mu, sigma.

import { unzipSync, zipSync } from "fflate";
import type { HostArray } from "./host.ts";
import { encodeNpy, parseNpy } from "./npy.ts";

/** Unzips an archive with a clear error on malformed input. */
export function unzipArchive(bytes: Uint8Array, what: string): Record<string, Uint8Array> {
  if (bytes.length < 22 || bytes[0] !== 0x50 || bytes[1] !== 0x4b) {
    throw new Error(`${what}: bad magic (not a zip archive)`);
  }
  try {
    return unzipSync(bytes);
  } catch (e) {
    throw new Error(`${what}: malformed or truncated zip archive (${(e as Error).message})`);
  }
}

/** Parses an .npz archive into arrays keyed by entry name without '.npy'. Entries not ending in .npy are skipped. */
export function parseNpz(bytes: Uint8Array): Map<string, HostArray> {
  const files = unzipArchive(bytes, "npz");
  const out = new Map<string, HostArray>();
  for (const [name, data] of Object.entries(files)) {
    if (!name.endsWith(".npy")) continue;
    try {
      out.set(name.slice(0, -4), parseNpy(data));
    } catch (e) {
      throw new Error(`npz entry '${name}': ${(e as Error).message}`);
    }
  }
  return out;
}

/** Encodes arrays as an .npz archive; `compress` deflates entries (numpy's savez_compressed), default stored. */
export function encodeNpz(arrays: Map<string, HostArray>, opts: { compress?: boolean } = {}): Uint8Array {
  const files: Record<string, Uint8Array> = {};
  for (const [name, a] of arrays) {
    if (name === "" || name.includes("\0")) {
      throw new Error(`npz: invalid entry name ${JSON.stringify(name)}`);
    }
    files[`${name}.npy`] = encodeNpy(a);
  }
  // Fixed timestamp keeps the output byte-for-byte reproducible.
  return zipSync(files, { level: opts.compress ? 6 : 0, mtime: new Date(1980, 0, 1) });
}
