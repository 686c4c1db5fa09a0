// Pixel geometry on 8-bit HWC images: resizing, centre cropping, padding and channel conversion.
//
// Resizing is separable and works per axis:
//   shrinking: area averaging. Each output pixel is the mean of the input area it covers (fractional pixels
//     weighted by overlap), so power-of-two and other integer factors are the plain block (box) mean, and
//     non-integer factors do not alias the way point-sampled bilinear does;
//   enlarging: bilinear with half-pixel centres (PyTorch's align_corners=False), edges clamped.
// Results are rounded to the nearest integer.

import type { RawImage } from "./image_io.ts";

interface Tap {
  index: number;
  weight: number;
}

/** For each output position along one axis, the input samples and weights that make it. */
function axisTaps(inSize: number, outSize: number): Tap[][] {
  const taps: Tap[][] = [];
  if (outSize <= inSize) {
    const scale = inSize / outSize;
    for (let o = 0; o < outSize; o++) {
      const lo = o * scale, hi = (o + 1) * scale;
      const row: Tap[] = [];
      for (let i = Math.floor(lo); i < Math.min(Math.ceil(hi), inSize); i++) {
        const overlap = Math.min(hi, i + 1) - Math.max(lo, i);
        if (overlap > 1e-9) row.push({ index: i, weight: overlap / scale });
      }
      taps.push(row);
    }
  } else {
    const scale = inSize / outSize;
    for (let o = 0; o < outSize; o++) {
      const pos = Math.min(Math.max((o + 0.5) * scale - 0.5, 0), inSize - 1);
      const i0 = Math.floor(pos), i1 = Math.min(i0 + 1, inSize - 1), f = pos - i0;
      taps.push(
        f > 0 ? [{ index: i0, weight: 1 - f }, { index: i1, weight: f }] : [{ index: i0, weight: 1 }],
      );
    }
  }
  return taps;
}

/** Resizes to outWidth x outHeight (area averaging to shrink, bilinear to enlarge). */
export function resizeImage(img: RawImage, outWidth: number, outHeight: number): RawImage {
  for (const [what, v] of [["width", outWidth], ["height", outHeight]] as const) {
    if (!Number.isInteger(v) || v < 1) {
      throw new Error(`resizeImage: output ${what} must be a positive integer, got ${v}`);
    }
  }
  const { width, height, channels: c, data } = img;
  if (width === outWidth && height === outHeight) return img;
  const xTaps = axisTaps(width, outWidth), yTaps = axisTaps(height, outHeight);
  // Horizontal pass into floats, then vertical pass with rounding.
  const mid = new Float32Array(height * outWidth * c);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < outWidth; x++) {
      for (let ch = 0; ch < c; ch++) {
        let s = 0;
        for (const t of xTaps[x]) s += t.weight * data[(y * width + t.index) * c + ch];
        mid[(y * outWidth + x) * c + ch] = s;
      }
    }
  }
  const out = new Uint8Array(outHeight * outWidth * c);
  const rowLen = outWidth * c;
  for (let y = 0; y < outHeight; y++) {
    for (let k = 0; k < rowLen; k++) {
      let s = 0;
      for (const t of yTaps[y]) s += t.weight * mid[t.index * rowLen + k];
      out[y * rowLen + k] = Math.min(255, Math.max(0, Math.round(s)));
    }
  }
  return { width: outWidth, height: outHeight, channels: c, data: out };
}

/** The largest centred square (odd leftovers trimmed from the right/bottom). */
export function centerCropSquare(img: RawImage): RawImage {
  const { width, height, channels: c, data } = img;
  if (width === height) return img;
  const s = Math.min(width, height);
  const x0 = Math.floor((width - s) / 2), y0 = Math.floor((height - s) / 2);
  const out = new Uint8Array(s * s * c);
  for (let y = 0; y < s; y++) {
    out.set(data.subarray(((y0 + y) * width + x0) * c, ((y0 + y) * width + x0 + s) * c), y * s * c);
  }
  return { width: s, height: s, channels: c, data: out };
}

/** Adds `pad` pixels of `value` on every side. */
export function padImage(img: RawImage, pad: number, value = 0): RawImage {
  if (!Number.isInteger(pad) || pad < 0) {
    throw new Error(`padImage: pad must be a non-negative integer, got ${pad}`);
  }
  const { width, height, channels: c, data } = img;
  const w = width + 2 * pad, h = height + 2 * pad;
  const out = new Uint8Array(w * h * c).fill(value);
  for (let y = 0; y < height; y++) {
    out.set(data.subarray(y * width * c, (y + 1) * width * c), ((y + pad) * w + pad) * c);
  }
  return { width: w, height: h, channels: c, data: out };
}

/** Converts between grey (1) and RGB (3) channels; grey from RGB uses ITU-R 601 luma like PIL's "L". */
export function toChannels(img: RawImage, channels: 1 | 3): RawImage {
  const { width, height, channels: c, data } = img;
  if (c === channels) return img;
  if (c === 4) throw new Error("toChannels: resolve alpha first (decode with alpha 'white' or 'drop')");
  const n = width * height;
  const out = new Uint8Array(n * channels);
  if (channels === 3) { for (let i = 0; i < n; i++) out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = data[i]; }
  else {
    for (let i = 0; i < n; i++) {
      out[i] = Math.round((299 * data[3 * i] + 587 * data[3 * i + 1] + 114 * data[3 * i + 2]) / 1000);
    }
  }
  return { width, height, channels, data: out };
}

/** HWC pixels to CHW (the dataset layout). */
export function hwcToChw(img: RawImage, out = new Uint8Array(img.data.length), offset = 0): Uint8Array {
  const { width, height, channels: c, data } = img;
  const plane = width * height;
  for (let i = 0; i < plane; i++) {
    for (let ch = 0; ch < c; ch++) out[offset + ch * plane + i] = data[i * c + ch];
  }
  return out;
}

/** CHW pixels back to an HWC image. */
export function chwToImage(chw: Uint8Array, channels: 1 | 3 | 4, height: number, width: number): RawImage {
  const plane = width * height;
  if (chw.length !== plane * channels) {
    throw new Error(`chwToImage: ${chw.length} values for ${channels}x${height}x${width}`);
  }
  const data = new Uint8Array(chw.length);
  for (let i = 0; i < plane; i++) {
    for (let ch = 0; ch < channels; ch++) data[i * channels + ch] = chw[ch * plane + i];
  }
  return { width, height, channels, data };
}
