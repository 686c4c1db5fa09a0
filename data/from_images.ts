// Builds an in-memory dataset from encoded image files (folders, zips, emoji): decode with alpha composited
// on white, bring every image to one square size and one channel count, pack as uint8 NCHW.
//
// Size policy: with `resolution`, non-square images are centre-cropped to a square and every image is resized
// (see resize.ts); without it, all images must be square and share one size, or the error names the first
// file that differs. Channels: 1 if every image is grey, else 3 (grey images are replicated), unless forced.

import { ArrayDataset, checkDatasetBytes } from "./dataset.ts";
import { decodeImage, type RawImage } from "./image_io.ts";
import { centerCropSquare, hwcToChw, resizeImage, toChannels } from "./resize.ts";

export interface EncodedImage {
  /** Path or zip entry, used in errors. */
  name: string;
  /** Bytes, or a function that reads them (so large sources are read one file at a time). */
  bytes: Uint8Array | (() => Uint8Array);
  label: number | null;
}

export interface BuildOptions {
  resolution?: number;
  channels?: 1 | 3;
  classNames?: readonly string[];
}

export function checkResolution(resolution: number | undefined, what: string): void {
  if (resolution === undefined) return;
  if (!Number.isInteger(resolution) || resolution < 1 || resolution > 8192) {
    throw new Error(`${what}: resolution must be an integer in [1, 8192], got ${resolution}`);
  }
}

export function datasetFromEncoded(
  name: string,
  files: readonly EncodedImage[],
  opts: BuildOptions = {},
): ArrayDataset {
  checkResolution(opts.resolution, name);
  if (files.length === 0) throw new Error(`${name}: no PNG or JPEG images found`);
  const hasLabels = files[0].label !== null;
  if (files.some((f) => (f.label !== null) !== hasLabels)) {
    throw new Error(`${name}: some images have labels and some do not`);
  }
  let first: { name: string; size: string } | null = null;
  const images: RawImage[] = files.map((f) => {
    let img = decodeImage(typeof f.bytes === "function" ? f.bytes() : f.bytes, f.name, { alpha: "white" });
    if (opts.resolution !== undefined) {
      img = resizeImage(centerCropSquare(img), opts.resolution, opts.resolution);
    } else {
      const size = `${img.width}x${img.height}`;
      if (img.width !== img.height) {
        throw new Error(
          `${f.name}: image is ${size}, not square; pass a resolution to centre-crop and resize`,
        );
      }
      first ??= { name: f.name, size };
      if (size !== first.size) {
        throw new Error(
          `${name}: images must share one size, but ${first.name} is ${first.size} and ${f.name} is ${size}; ` +
            `pass a resolution to resize them all`,
        );
      }
    }
    return img;
  });
  const resolution = images[0].width;
  const channels = opts.channels ?? (images.every((im) => im.channels === 1) ? 1 : 3);
  checkDatasetBytes(name, images.length, channels, resolution);
  const per = channels * resolution * resolution;
  const pixels = new Uint8Array(images.length * per);
  images.forEach((im, i) => hwcToChw(toChannels(im, channels), pixels, i * per));
  const labels = hasLabels ? Int32Array.from(files, (f) => f.label!) : null;
  return new ArrayDataset(name, resolution, channels, pixels, labels, opts.classNames ?? []);
}
