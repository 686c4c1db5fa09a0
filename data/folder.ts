// A folder of PNG/JPEG images (searched recursively, hidden entries skipped, sorted by relative path).
// Labels: from a dataset.json at the root if there is one (SGA layout); otherwise each top-level subfolder
// is a class (sorted names), and images directly in the root make it unlabelled (mixing both is an error).
// One class means no labels.

import { join, relative, sep } from "node:path";
import type { ArrayDataset } from "./dataset.ts";
import { subsetIndices } from "./dataset.ts";
import { type BuildOptions, datasetFromEncoded, type EncodedImage } from "./from_images.ts";
import { matchSgaLabels, parseSgaLabels } from "./sga_labels.ts";

export const IMAGE_EXTENSIONS = [".png", ".jpg", ".jpeg"];

export function isImageName(name: string): boolean {
  const lower = name.toLowerCase();
  return IMAGE_EXTENSIONS.some((ext) => lower.endsWith(ext));
}

function listImages(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of Deno.readDirSync(dir)) {
      if (e.name.startsWith(".")) continue;
      const path = join(dir, e.name);
      if (e.isDirectory) walk(path);
      else if (e.isFile && isImageName(e.name)) out.push(relative(root, path).split(sep).join("/"));
    }
  };
  walk(root);
  return out.sort();
}

export interface FolderOptions extends Pick<BuildOptions, "resolution" | "channels"> {
  maxImages?: number;
  name?: string;
}

export function loadFolder(root: string, opts: FolderOptions = {}): ArrayDataset {
  const name = opts.name ?? `folder:${root}`;
  let stat: Deno.FileInfo;
  try {
    stat = Deno.statSync(root);
  } catch (e) {
    throw new Error(`${name}: cannot open folder ${root}: ${(e as Error).message}`);
  }
  if (!stat.isDirectory) throw new Error(`${name}: ${root} is not a folder`);
  const paths = listImages(root);
  if (paths.length === 0) throw new Error(`${name}: no .png/.jpg/.jpeg images under ${root}`);

  let labels: (number | null)[] = paths.map(() => null);
  let classNames: string[] = [];
  let jsonText: string | null = null;
  try {
    jsonText = Deno.readTextFileSync(join(root, "dataset.json"));
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) {
      throw new Error(`${name}: cannot read dataset.json: ${(e as Error).message}`);
    }
  }
  const sga = jsonText === null ? null : parseSgaLabels(jsonText, join(root, "dataset.json"));
  if (sga) labels = matchSgaLabels(paths, sga, join(root, "dataset.json"));
  else if (jsonText === null) {
    const tops = paths.map((p) => (p.includes("/") ? p.slice(0, p.indexOf("/")) : null));
    const inRoot = tops.filter((t) => t === null).length;
    classNames = [...new Set(tops.filter((t): t is string => t !== null))].sort();
    if (inRoot > 0 && classNames.length > 0) {
      throw new Error(
        `${name}: ${inRoot} image(s) sit directly in ${root} next to class subfolders (${
          classNames.join(", ")
        }); ` +
          `put every image in a class subfolder, or none`,
      );
    }
    if (classNames.length > 1) labels = tops.map((t) => classNames.indexOf(t!));
    else classNames = [];
  }
  const keep = subsetIndices(paths.length, opts.maxImages);
  const files: EncodedImage[] = keep.map((i) => {
    const path = join(root, paths[i]);
    return { name: path, bytes: () => readFile(path), label: labels[i] };
  });
  return datasetFromEncoded(name, files, {
    resolution: opts.resolution,
    channels: opts.channels,
    classNames,
  });
}

function readFile(path: string): Uint8Array {
  try {
    return Deno.readFileSync(path);
  } catch (e) {
    throw new Error(`cannot read image ${path}: ${(e as Error).message}`);
  }
}
