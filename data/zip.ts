// Zip datasets in SGA's layout: PNG/JPEG images at any path inside the archive (sorted by path) and an
// optional dataset.json at the root with {"labels": [["path", label], ...]} or {"labels": null}.
// Read with nn/io/zip_read (sizes checked, inflation capped); only the images kept and dataset.json are
// inflated, each only after its first bytes show the right kind of file (an image's magic, a JSON object).

import { ZipArchive } from "../nn/io/zip_read.ts";
import { isJpeg, isPng } from "./image_io.ts";
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
  const zip = ZipArchive.open(bytes, where);
  const byPath = new Map(zip.names().filter(wanted).map((k) => [k.replaceAll("\\", "/"), k]));
  const paths = [...byPath.keys()].filter((p) => p !== "dataset.json").sort();
  if (paths.length === 0) throw new Error(`${where}: the zip holds no .png/.jpg/.jpeg images`);
  const jsonName = byPath.get("dataset.json");
  let sga = null;
  if (jsonName !== undefined) {
    const head = new TextDecoder().decode(zip.head(jsonName, 256)).replace(/^\uFEFF/, "").trimStart();
    if (head && !head.startsWith("{")) {
      throw new Error(
        `${where}:dataset.json is not a JSON object (starts with ${JSON.stringify(head.slice(0, 8))})`,
      );
    }
    sga = parseSgaLabels(new TextDecoder().decode(zip.read(jsonName)), `${where}:dataset.json`);
  }
  const labels = sga ? matchSgaLabels(paths, sga, `${where}:dataset.json`) : null;
  const keep = subsetIndices(paths.length, opts.maxImages);
  const read = (path: string): Uint8Array => {
    const name = byPath.get(path)!;
    const head = zip.head(name, 8);
    if (!isPng(head) && !isJpeg(head)) {
      const hex = Array.from(head.subarray(0, 4), (b) => b.toString(16).padStart(2, "0")).join(" ");
      throw new Error(
        `${where}:${path}: not a PNG or JPEG image (${zip.entries.get(name)!.size} bytes, starts with ${
          hex || "nothing"
        })`,
      );
    }
    return zip.read(name);
  };
  const files = keep.map((i) => ({
    name: `${where}:${paths[i]}`,
    bytes: read(paths[i]),
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
