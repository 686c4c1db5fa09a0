// Emoji images from the npm packages emoji-datasource-{apple,google,twitter,facebook} (16.0.0). Each package
// ships its own emoji.json (1,911 emoji; `category`, `sort_order`, `has_img_<style>`, `skin_variations`) and
// 64x64 RGBA PNGs under img/<style>/64/ (about 3,800 files counting skin-tone variants). Each package is
// 70-110 MB, so it is fetched only when that style is asked for, outside deno.lock (see packageDir).
// Alpha is composited on white; labels are the chosen categories (sorted) when there are two or more.

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

// Unpacked sizes of the packages (measured), said before a download starts.
const PACKAGE_MB: Record<EmojiStyle, number> = { apple: 106, facebook: 109, google: 82, twitter: 70 };

/** Deno's npm cache folder (`deno info --json`: npmCache). */
async function npmCacheDir(): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json"],
    stdout: "piped",
    stderr: "null",
  })
    .output();
  const info = out.success ? JSON.parse(new TextDecoder().decode(out.stdout)) : {};
  if (typeof info.npmCache !== "string") throw new Error("cannot locate Deno's npm cache (deno info --json)");
  return info.npmCache;
}

/**
 * The package folder, downloaded on first use only. The emoji packages are kept out of deno.lock on
 * purpose: Deno installs every npm package a lockfile names on the first npm use of any command, and the
 * four emoji packages are ~370 MB that the demo never needs. So the download runs in a child Deno without
 * a lockfile, and the files are read from the npm cache.
 */
async function packageDir(style: EmojiStyle): Promise<string> {
  const pkg = `emoji-datasource-${style}`;
  const dir = join(await npmCacheDir(), "registry.npmjs.org", pkg, VERSION);
  const ready = () => Deno.stat(join(dir, "emoji.json")).then(() => true, () => false);
  if (await ready()) return dir;
  console.error(
    `downloading npm package ${pkg}@${VERSION} (about ${PACKAGE_MB[style]} MB unpacked; once) ...`,
  );
  const code = `import "npm:${pkg}@${VERSION}/emoji.json" with { type: "json" };`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-lock", "--no-config", code],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success || !await ready()) {
    const why = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-3).join(" ");
    throw new Error(
      `cannot load npm package ${pkg}@${VERSION} (network or npm cache): ${why || "not in the cache"}`,
    );
  }
  return dir;
}

async function loadIndex(style: EmojiStyle): Promise<{ entries: EmojiEntry[]; dir: string }> {
  const dir = await packageDir(style);
  let entries: EmojiEntry[];
  try {
    entries = JSON.parse(await Deno.readTextFile(join(dir, "emoji.json")));
  } catch (e) {
    throw new Error(`${join(dir, "emoji.json")}: ${(e as Error).message}`);
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
