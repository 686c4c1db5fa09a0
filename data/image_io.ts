// Image files in and out: PNG (fast-png) and JPEG (jpeg-js) decode to 8-bit HWC pixels; PNG encode; image grids
// of generated tensors. The format is sniffed from the bytes, never from the file name.
//
// Channels after decoding: grey stays 1 channel, colour is 3, and alpha depends on `alpha`:
//   "keep"  (default) RGBA stays 4 channels; grey+alpha becomes RGBA (grey copied to R, G, B);
//   "white" alpha is composited over a white background (c*a + 255*(1-a)), giving 1 or 3 channels;
//   "drop"  alpha is discarded, giving 1 or 3 channels.
// 16-bit PNGs keep their high byte; 1/2/4-bit greys are scaled to 0..255; palettes are expanded (tRNS alpha
// included). A PNG colour-key tRNS on a grey/RGB image is ignored (the image is treated as opaque).

import { decode as pngDecode, encode as pngEncode } from "fast-png";
import jpeg from "jpeg-js";
import { writeFileAtomic } from "../nn/checkpoint.ts";
import type { Tensor } from "../nn/tensor.ts";

/** 8-bit pixels in row-major HWC order. */
export interface RawImage {
  width: number;
  height: number;
  channels: 1 | 3 | 4;
  data: Uint8Array;
}

export type AlphaMode = "keep" | "white" | "drop";

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Images beyond this many pixels are refused (8192 x 8192), whatever their file claims. */
export const MAX_IMAGE_PIXELS = 2 ** 26;
/**
 * Decompression bombs: beyond 2048 x 2048, an image may have at most 256 pixels per byte of file. Real
 * photos and renders are far below that (MNIST PNGs ~3, flat emoji ~50); a 16 KB file claiming 16 MP is not.
 */
const PIXELS_PER_BYTE = 256, PIXELS_ALWAYS_ALLOWED = 2 ** 22;
/**
 * Sides beyond this are refused even within the pixel caps: a 1 x 65535 frame holds few pixels but costs a
 * decoder one row (and its buffers) per line. Twice WebGPU's largest guaranteed texture side (8192).
 */
export const MAX_IMAGE_SIDE = 16384;
/** zlib's best case is about 1032:1, so image data cannot inflate to more than this times its size. */
const MAX_DEFLATE_RATIO = 1032;

function checkPixelBudget(width: number, height: number, fileBytes: number): void {
  const pixels = width * height;
  if (pixels > MAX_IMAGE_PIXELS) {
    throw new Error(`${width}x${height} is more than the ${MAX_IMAGE_PIXELS} pixels allowed`);
  }
  if (pixels > Math.max(PIXELS_ALWAYS_ALLOWED, PIXELS_PER_BYTE * fileBytes)) {
    throw new Error(
      `${width}x${height} pixels from a ${fileBytes}-byte file is more than ${PIXELS_PER_BYTE} pixels per byte: ` +
        "a forged header or a decompression bomb",
    );
  }
  if (width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE) {
    throw new Error(`${width}x${height} pixels: a side longer than the ${MAX_IMAGE_SIDE} pixels allowed`);
  }
}

export function isPng(bytes: Uint8Array): boolean {
  return bytes.length >= 8 && PNG_MAGIC.every((b, i) => bytes[i] === b);
}

export function isJpeg(bytes: Uint8Array): boolean {
  return bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff;
}

/** Decodes PNG or JPEG bytes; `name` (a path or zip entry) appears in every error. */
export function decodeImage(bytes: Uint8Array, name: string, { alpha = "keep" as AlphaMode } = {}): RawImage {
  let img: { width: number; height: number; channels: number; data: Uint8Array };
  if (isPng(bytes)) img = wrap(name, "PNG", () => decodePngPixels(bytes));
  else if (isJpeg(bytes)) img = wrap(name, "JPEG", () => decodeJpegPixels(bytes));
  else {
    const head = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, "0")).join(" ");
    throw new Error(
      `${name}: not a PNG or JPEG image (${bytes.length} bytes, starts with ${head || "nothing"})`,
    );
  }
  if (img.width <= 0 || img.height <= 0) {
    throw new Error(`${name}: image has no pixels (${img.width}x${img.height})`);
  }
  return applyAlpha(img, alpha);
}

function wrap<T>(name: string, format: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    // A decoder's own errors explain themselves; a RangeError or TypeError from inside it means data
    // its checks missed, which we can only call malformed.
    const why = e instanceof Error && e.constructor === Error
      ? e.message
      : `malformed or truncated data (the decoder failed with ${
        (e as Error)?.constructor?.name ?? "an error"
      })`;
    throw new Error(`${name}: cannot decode ${format}: ${why}`);
  }
}

const PNG_CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

/**
 * Walks a PNG's chunks before decoding: each chunk inside the file, IHDR first with valid fields, image
 * data present, and a size that its compressed data can actually hold and that is under MAX_IMAGE_PIXELS,
 * so a forged header cannot make the decoder allocate.
 */
function checkPngStructure(bytes: Uint8Array): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let p = 8, idat = 0, width = 0, height = 0, depth = 0, type = -1, sawEnd = false;
  while (p < bytes.length && !sawEnd) {
    if (p + 12 > bytes.length) throw new Error(`truncated chunk header at byte ${p}`);
    const len = view.getUint32(p), tag = String.fromCharCode(...bytes.subarray(p + 4, p + 8));
    if (p + 12 + len > bytes.length) {
      throw new Error(
        `truncated: chunk ${JSON.stringify(tag)} at byte ${p} needs ${len} bytes, ${
          bytes.length - p - 12
        } left`,
      );
    }
    if (p === 8) {
      if (tag !== "IHDR" || len !== 13) throw new Error("the first chunk is not a 13-byte IHDR");
      [width, height, depth, type] = [
        view.getUint32(p + 8),
        view.getUint32(p + 12),
        bytes[p + 16],
        bytes[p + 17],
      ];
    }
    if (tag === "IDAT") idat += len;
    if (tag === "IEND") sawEnd = true;
    p += 12 + len;
  }
  const channels = PNG_CHANNELS[type];
  if (!channels || ![1, 2, 4, 8, 16].includes(depth)) {
    throw new Error(`IHDR has an invalid bit depth ${depth} / colour type ${type}`);
  }
  if (width === 0 || height === 0) throw new Error(`image has no pixels (${width}x${height})`);
  checkPixelBudget(width, height, bytes.length);
  if (idat === 0) throw new Error("no image data (IDAT) chunk");
  const raw = height * (1 + Math.ceil((width * channels * depth) / 8));
  if (raw > MAX_DEFLATE_RATIO * idat + 1024) {
    throw new Error(
      `IHDR declares ${width}x${height} (${raw} bytes), more than its ${idat} bytes of compressed data can ` +
        "hold: a forged header or a decompression bomb",
    );
  }
}

/** PNG to 8-bit with 1 (grey), 2 (grey+alpha), 3 or 4 channels. */
function decodePngPixels(bytes: Uint8Array) {
  checkPngStructure(bytes);
  const png = pngDecode(bytes);
  const { width, height, depth } = png;
  if (png.palette) {
    const channels = png.palette[0]?.length ?? 3;
    const out = new Uint8Array(width * height * channels);
    const rowBytes = Math.ceil((width * depth) / 8);
    const src = png.data as Uint8Array;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const idx = unpackSample(src, y * rowBytes, x, depth);
        const color = png.palette[idx];
        if (!color) throw new Error(`palette index ${idx} out of range (${png.palette.length} colours)`);
        for (let c = 0; c < channels; c++) out[(y * width + x) * channels + c] = color[c] ?? 255;
      }
    }
    return { width, height, channels, data: out };
  }
  const channels = png.channels;
  const n = width * height * channels;
  const out = new Uint8Array(n);
  if (depth === 8) out.set(png.data.subarray(0, n));
  else if (depth === 16) {
    const src = png.data as Uint16Array;
    for (let i = 0; i < n; i++) out[i] = src[i] >> 8;
  } else {
    // Sub-byte depths only exist for grey (1 channel); rows are padded to whole bytes.
    const rowBytes = Math.ceil((width * depth) / 8);
    const scale = 255 / ((1 << depth) - 1);
    const src = png.data as Uint8Array;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        out[y * width + x] = Math.round(unpackSample(src, y * rowBytes, x, depth) * scale);
      }
    }
  }
  return { width, height, channels, data: out };
}

function unpackSample(src: Uint8Array, rowStart: number, x: number, depth: number): number {
  if (depth === 8) return src[rowStart + x];
  const bit = x * depth;
  const byte = src[rowStart + (bit >> 3)];
  return (byte >> (8 - depth - (bit & 7))) & ((1 << depth) - 1);
}

/** JPEG to 8-bit grey or RGB; jpeg-js always expands to RGB, so single-component files are reduced back. */
function decodeJpegPixels(bytes: Uint8Array) {
  const size = jpegFrame(bytes);
  if (size) checkPixelBudget(size.width, size.height, bytes.length);
  const maxPixels = Math.min(
    MAX_IMAGE_PIXELS,
    Math.max(PIXELS_ALWAYS_ALLOWED, PIXELS_PER_BYTE * bytes.length),
  );
  const decoded = jpeg.decode(bytes, {
    useTArray: true,
    formatAsRGBA: false,
    tolerantDecoding: false,
    maxResolutionInMP: maxPixels / 1e6,
    maxMemoryUsageInMB: Math.ceil((8 * maxPixels) / 2 ** 20),
  });
  const { width, height } = decoded;
  const rgb = decoded.data as Uint8Array;
  if (jpegComponents(bytes) !== 1) return { width, height, channels: 3, data: rgb };
  const grey = new Uint8Array(width * height);
  for (let i = 0; i < grey.length; i++) grey[i] = rgb[3 * i];
  return { width, height, channels: 1, data: grey };
}

/** Number of colour components declared by the JPEG frame header (SOFn), or 0 if none is found. */
function jpegComponents(bytes: Uint8Array): number {
  return jpegFrame(bytes)?.components ?? 0;
}

/** The JPEG frame header (SOFn): size and component count, or undefined if none is found. */
function jpegFrame(bytes: Uint8Array): { width: number; height: number; components: number } | undefined {
  let p = 2;
  while (p + 9 < bytes.length) {
    if (bytes[p] !== 0xff) return undefined;
    const marker = bytes[p + 1];
    if (marker === 0xff) {
      p++;
      continue;
    }
    const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isSof) {
      const height = (bytes[p + 5] << 8) | bytes[p + 6], width = (bytes[p + 7] << 8) | bytes[p + 8];
      return { width, height, components: bytes[p + 9] };
    }
    p += 2 + ((bytes[p + 2] << 8) | bytes[p + 3]);
  }
  return undefined;
}

function applyAlpha(
  img: { width: number; height: number; channels: number; data: Uint8Array },
  alpha: AlphaMode,
): RawImage {
  const { width, height, channels, data } = img;
  if (channels === 1 || channels === 3) return { width, height, channels, data };
  const n = width * height;
  const colour = channels - 1; // 1 (grey) or 3
  if (alpha === "keep") {
    if (channels === 4) return { width, height, channels: 4, data };
    const out = new Uint8Array(n * 4);
    for (let i = 0; i < n; i++) {
      out[4 * i] = out[4 * i + 1] = out[4 * i + 2] = data[2 * i];
      out[4 * i + 3] = data[2 * i + 1];
    }
    return { width, height, channels: 4, data: out };
  }
  const out = new Uint8Array(n * colour);
  for (let i = 0; i < n; i++) {
    const a = data[i * channels + colour];
    for (let c = 0; c < colour; c++) {
      const v = data[i * channels + c];
      out[i * colour + c] = alpha === "drop" ? v : Math.round((v * a + 255 * (255 - a)) / 255);
    }
  }
  return { width, height, channels: colour as 1 | 3, data: out };
}

/** Encodes 8-bit HWC pixels (1, 3 or 4 channels) as PNG. */
export function encodePng(img: RawImage): Uint8Array {
  checkImage(img, "encodePng");
  return pngEncode({
    width: img.width,
    height: img.height,
    channels: img.channels,
    depth: 8,
    data: img.data,
  });
}

function checkImage(img: RawImage, what: string): void {
  if (![1, 3, 4].includes(img.channels)) {
    throw new Error(`${what}: channels must be 1, 3 or 4, got ${img.channels}`);
  }
  if (!Number.isInteger(img.width) || !Number.isInteger(img.height) || img.width <= 0 || img.height <= 0) {
    throw new Error(`${what}: bad size ${img.width}x${img.height}`);
  }
  if (img.data.length !== img.width * img.height * img.channels) {
    throw new Error(
      `${what}: ${img.data.length} bytes do not fit ${img.width}x${img.height}x${img.channels}`,
    );
  }
}

/** Reads and decodes an image file; errors name the file. */
export async function readImage(path: string, opts: { alpha?: AlphaMode } = {}): Promise<RawImage> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new Error(`cannot read image ${path}: ${(e as Error).message}`);
  }
  return decodeImage(bytes, path, opts);
}

/** Writes a PNG atomically (temporary file, then rename). */
export async function writePng(path: string, img: RawImage): Promise<void> {
  await writeFileAtomic(path, encodePng(img));
}

/** Generated images leave as clamp(x*127.5+128, 0, 255) truncated to uint8 (SGA's convention). */
export function floatToUint8(x: Float32Array): Uint8Array {
  const out = new Uint8Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const v = x[i] * 127.5 + 128;
    out[i] = v > 255 ? 255 : v > 0 ? v : 0; // NaN -> 0
  }
  return out;
}

export interface GridOptions {
  /** Images per row (default ceil(sqrt(n))). */
  cols?: number;
  /** Pixels between images and around the border (default 0). */
  pad?: number;
  /** Grey level of the padding (default 255, white). */
  padValue?: number;
}

/** Tiles n uint8 CHW images (NCHW, c = 1, 3 or 4) into one HWC image, row by row. */
export function imageGrid(
  pixels: Uint8Array,
  shape: readonly number[],
  { cols, pad = 0, padValue = 255 }: GridOptions = {},
): RawImage {
  if (shape.length !== 4) throw new Error(`imageGrid: expected NCHW images, got shape [${shape}]`);
  const [n, c, h, w] = shape;
  if (![1, 3, 4].includes(c)) throw new Error(`imageGrid: channels must be 1, 3 or 4, got shape [${shape}]`);
  if (n < 1) throw new Error(`imageGrid: no images (shape [${shape}])`);
  if (pixels.length !== n * c * h * w) {
    throw new Error(`imageGrid: ${pixels.length} values for shape [${shape}]`);
  }
  const nc = cols ?? Math.ceil(Math.sqrt(n));
  if (!Number.isInteger(nc) || nc < 1) {
    throw new Error(`imageGrid: cols must be a positive integer, got ${cols}`);
  }
  if (!Number.isInteger(pad) || pad < 0) {
    throw new Error(`imageGrid: pad must be a non-negative integer, got ${pad}`);
  }
  const rows = Math.ceil(n / nc);
  const width = nc * w + (nc + 1) * pad, height = rows * h + (rows + 1) * pad;
  const out = new Uint8Array(width * height * c).fill(padValue);
  for (let k = 0; k < n; k++) {
    const x0 = pad + (k % nc) * (w + pad), y0 = pad + Math.floor(k / nc) * (h + pad);
    for (let ch = 0; ch < c; ch++) {
      for (let y = 0; y < h; y++) {
        const src = ((k * c + ch) * h + y) * w;
        const dst = ((y0 + y) * width + x0) * c + ch;
        for (let x = 0; x < w; x++) out[dst + x * c] = pixels[src + x];
      }
    }
  }
  return { width, height, channels: c as 1 | 3 | 4, data: out };
}

/** Saves NCHW images in [-1, 1] as one PNG grid, written atomically. */
export async function saveImageGrid(path: string, images: Tensor, opts: GridOptions = {}): Promise<void> {
  if (images.shape.length !== 4) {
    throw new Error(`saveImageGrid(${path}): expected NCHW, got [${images.shape}]`);
  }
  const pixels = floatToUint8(await images.data());
  await writePng(path, imageGrid(pixels, images.shape, opts));
}
