// Emoji images from the npm packages emoji-datasource-{apple,google,twitter,facebook} (16.0.0). Each package
// ships its own emoji.json (1,911 emoji; `category`, `sort_order`, `has_img_<style>`, `skin_variations`) and
// 64x64 RGBA PNGs under img/<style>/64/ (about 3,800 files counting skin-tone variants). Each package is
// ~80 MB, so it is fetched only when that style is asked for (a computed npm: specifier).
// Alpha is composited on white; labels are the chosen categories (sorted) when there are two or more.

import { createRequire } from "node:module";
import { join } from "node:path";
import type { ArrayDataset } from "./dataset.ts";
import { subsetIndices } from "./dataset.ts";
import { datasetFromEncoded, type EncodedImage } from "./from_images.ts";

export const EMOJI_STYLES = ["apple", "google", "twitter", "facebook"] as const;
export type EmojiStyle = typeof EMOJI_STYLES[number];
const VERSION = "16.0.0";

interface EmojiImageFlags {
  image: string;
  has_img_apple?: boolean;
  has_img_google?: boolean;
  has_img_twitter?: boolean;
  has_img_facebook?: boolean;
}

interface EmojiEntry extends EmojiImageFlags {
  name: string;
  category: string;
  sort_order: number;
  skin_variations?: Record<string, EmojiImageFlags>;
}

export interface EmojiOptions {
  style: EmojiStyle;
  /** Category names (case-insensitive, e.g. "Smileys & Emotion"); default all. */
  categories?: readonly string[];
  /** Include skin-tone variants (default false: one image per emoji). */
  skinTones?: boolean;
  /** Output size (default 64, the stored size). */
  resolution?: number;
  maxImages?: number;
  name?: string;
}

async function loadIndex(style: EmojiStyle): Promise<{ entries: EmojiEntry[]; dir: string }> {
  const pkg = `emoji-datasource-${style}`;
  let entries: EmojiEntry[];
  try {
    const spec = `npm:${pkg}@${VERSION}/emoji.json`;
    entries = (await import(spec, { with: { type: "json" } })).default;
  } catch (e) {
    throw new Error(
      `cannot load npm package ${pkg}@${VERSION} (network or npm cache): ${(e as Error).message}`,
    );
  }
  // Deno keeps npm packages on disk; resolving a file of the package gives its folder.
  let dir: string;
  try {
    dir = join(createRequire(import.meta.url).resolve(`${pkg}/emoji.json`), "..");
  } catch (e) {
    throw new Error(`npm package ${pkg} loaded but its folder cannot be located: ${(e as Error).message}`);
  }
  return { entries, dir };
}

export async function loadEmoji(opts: EmojiOptions): Promise<ArrayDataset> {
  const { style } = opts;
  const name = opts.name ?? `emoji:${style}`;
  if (!EMOJI_STYLES.includes(style)) {
    throw new Error(`${name}: unknown emoji style "${style}"; use one of ${EMOJI_STYLES.join(", ")}`);
  }
  const { entries, dir } = await loadIndex(style);
  const all = [...new Set(entries.map((e) => e.category))].sort();
  const wanted = (opts.categories ?? all).map((c) => {
    const hit = all.find((a) => a.toLowerCase() === c.trim().toLowerCase());
    if (!hit) throw new Error(`${name}: unknown emoji category "${c}"; categories are: ${all.join(", ")}`);
    return hit;
  });
  const categories = [...new Set(wanted)].sort();
  const flag = `has_img_${style}` as const;
  const files: EncodedImage[] = [];
  const sorted = entries.filter((e) => categories.includes(e.category)).sort((a, b) =>
    a.sort_order - b.sort_order
  );
  for (const e of sorted) {
    const label = categories.length > 1 ? categories.indexOf(e.category) : null;
    const variants = [e, ...(opts.skinTones ? Object.values(e.skin_variations ?? {}) : [])];
    for (const v of variants) {
      if (!v[flag]) continue;
      const path = join(dir, "img", style, "64", v.image);
      files.push({ name: path, bytes: () => readFile(path), label });
    }
  }
  const keep = subsetIndices(files.length, opts.maxImages);
  return datasetFromEncoded(name, keep.map((i) => files[i]), {
    resolution: opts.resolution ?? 64,
    channels: 3,
    classNames: categories.length > 1 ? categories : [],
  });
}

function readFile(path: string): Uint8Array {
  try {
    return Deno.readFileSync(path);
  } catch (e) {
    throw new Error(`cannot read emoji image ${path}: ${(e as Error).message}`);
  }
}
