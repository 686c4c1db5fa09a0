// NumPy .npz archives: a zip of .npy files (stored or deflated). pytorch-fid statistics are npz with mu, sigma.

import { zipSync } from "fflate";
import type { HostArray } from "./host.ts";
import { encodeNpy, parseNpy } from "./npy.ts";
import { unzipChecked } from "./zip_read.ts";

/** Unzips an archive with a clear error on malformed input; sizes are checked before allocation. */
export function unzipArchive(bytes: Uint8Array, what: string): Record<string, Uint8Array> {
  return unzipChecked(bytes, what);
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
