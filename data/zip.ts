// Zip datasets in SGA's layout: PNG/JPEG images at any path inside the archive (sorted by path) and an
// optional dataset.json at the root with {"labels": [["path", label], ...]} or {"labels": null}.
// Read with nn/io/zip_read (sizes checked, inflation capped); only image entries and dataset.json are inflated.

import { unzipChecked } from "../nn/io/zip_read.ts";
import type { ArrayDataset } from "./dataset.ts";
import { subsetIndices } from "./dataset.ts";
import { isImageName } from "./folder.ts";
import { type BuildOptions, datasetFromEncoded } from "./from_images.ts";
import { matchSgaLabels, parseSgaLabels } from "./sga_labels.ts";

export interface ZipOptions extends Pick<BuildOptions, "resolution" | "channels"> {
  maxImages?: number;
  name?: string;
}

/** Opens a zip dataset from bytes; `where` names it in errors. */
export function datasetFromZip(bytes: Uint8Array, where: string, opts: ZipOptions = {}): ArrayDataset {
  const name = opts.name ?? `zip:${where}`;
  const wanted = (path: string) => {
    const p = path.replaceAll("\\", "/");
    return p === "dataset.json" || (!p.endsWith("/") && !p.startsWith("__MACOSX/") && isImageName(p));
  };
  const entries = unzipChecked(bytes, where, { filter: wanted });
  const byPath = new Map(Object.entries(entries).map(([k, v]) => [k.replaceAll("\\", "/"), v]));
  const paths = [...byPath.keys()].filter((p) => p !== "dataset.json").sort();
  if (paths.length === 0) throw new Error(`${where}: the zip holds no .png/.jpg/.jpeg images`);
  const json = byPath.get("dataset.json");
  const sga = json ? parseSgaLabels(new TextDecoder().decode(json), `${where}:dataset.json`) : null;
  const labels = sga ? matchSgaLabels(paths, sga, `${where}:dataset.json`) : null;
  const keep = subsetIndices(paths.length, opts.maxImages);
  const files = keep.map((i) => ({
    name: `${where}:${paths[i]}`,
    bytes: byPath.get(paths[i])!,
    label: labels ? labels[i] : null,
  }));
  return datasetFromEncoded(name, files, { resolution: opts.resolution, channels: opts.channels });
}

export async function loadZip(path: string, opts: ZipOptions = {}): Promise<ArrayDataset> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new Error(`cannot read zip dataset ${path}: ${(e as Error).message}`);
  }
  return datasetFromZip(bytes, path, opts);
}
