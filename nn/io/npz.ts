// NumPy .npz archives: a zip of .npy files (stored or deflated). pytorch-fid statistics are npz with mu, sigma.

import { zipSync } from "fflate";
import type { HostArray } from "./host.ts";
import { encodeNpy, npyLayout, parseNpy } from "./npy.ts";
import { ZipArchive } from "./zip_read.ts";

/**
 * Parses an .npz archive into arrays keyed by entry name without '.npy'. Entries not ending in .npy are
 * skipped unread. Each entry's npy header is read first (inflating only its head), and the entry's declared
 * size must be what the header needs before the rest is inflated.
 */
export function parseNpz(bytes: Uint8Array): Map<string, HostArray> {
  const zip = ZipArchive.open(bytes, "npz");
  const out = new Map<string, HostArray>();
  for (const name of zip.names()) {
    if (!name.endsWith(".npy")) continue;
    try {
      const entry = zip.entries.get(name)!;
      // numpy pads headers to 64 bytes; 4 KiB holds any header numpy writes for a plain dtype.
      const layout = npyLayout(zip.head(name, 4096));
      const need = layout.dataStart + layout.nbytes;
      if (entry.size !== need) {
        throw new Error(
          `declares ${entry.size} bytes, its header (shape [${layout.shape}] ${layout.dtype}) needs ${need}`,
        );
      }
      out.set(name.slice(0, -4), parseNpy(zip.read(name)));
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
