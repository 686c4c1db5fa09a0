// A tiny rasteriser for the study's figures: an RGB canvas with rectangles, points, lines and bitmap
// text, panels of 2-D scatter plots and line charts, and PNG output through fast-png.

import { encode } from "fast-png";
import { writeFileAtomic } from "../../nn/checkpoint.ts";
import { ADVANCE, glyph, GLYPH_H, GLYPH_W, textWidth } from "./font5x7.ts";

export type RGB = [number, number, number];

export const COLORS: Record<string, RGB> = {
  black: [0, 0, 0],
  grey: [150, 150, 150],
  light: [225, 225, 225],
  /** Reference points under generated ones. */
  target: [185, 185, 185],
  white: [255, 255, 255],
  blue: [31, 119, 180],
  orange: [255, 127, 14],
  green: [44, 160, 44],
  red: [214, 39, 40],
  purple: [148, 103, 189],
};

export class Canvas {
  readonly data: Uint8Array;
  constructor(readonly width: number, readonly height: number, bg: RGB = COLORS.white) {
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
      throw new Error(`Canvas: bad size ${width}x${height}`);
    }
    this.data = new Uint8Array(width * height * 3);
    this.rect(0, 0, width, height, bg);
  }

  pixel(x: number, y: number, c: RGB, alpha = 1): void {
    x = Math.round(x);
    y = Math.round(y);
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const o = (y * this.width + x) * 3;
    for (let i = 0; i < 3; i++) this.data[o + i] = Math.round(this.data[o + i] * (1 - alpha) + c[i] * alpha);
  }

  rect(x: number, y: number, w: number, h: number, c: RGB): void {
    for (let j = Math.max(0, y); j < Math.min(this.height, y + h); j++) {
      for (let i = Math.max(0, x); i < Math.min(this.width, x + w); i++) this.pixel(i, j, c);
    }
  }

  frame(x: number, y: number, w: number, h: number, c: RGB): void {
    this.rect(x, y, w, 1, c);
    this.rect(x, y + h - 1, w, 1, c);
    this.rect(x, y, 1, h, c);
    this.rect(x + w - 1, y, 1, h, c);
  }

  /** A (2r+1)-pixel square dot, blended. */
  dot(x: number, y: number, c: RGB, r = 1, alpha = 0.6): void {
    for (let j = -r; j <= r; j++) for (let i = -r; i <= r; i++) this.pixel(x + i, y + j, c, alpha);
  }

  /** A line by DDA sampling (one sample per pixel step), `thick` pixels wide. */
  line(x0: number, y0: number, x1: number, y1: number, c: RGB, thick = 1): void {
    const n = Math.max(1, Math.ceil(Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0))));
    const h = Math.floor(thick / 2);
    for (let s = 0; s <= n; s++) {
      const x = x0 + ((x1 - x0) * s) / n, y = y0 + ((y1 - y0) * s) / n;
      for (let j = -h; j <= thick - 1 - h; j++) {
        for (let i = -h; i <= thick - 1 - h; i++) this.pixel(x + i, y + j, c);
      }
    }
  }

  /** Text with its top-left corner at (x, y). */
  text(s: string, x: number, y: number, c: RGB = COLORS.black, scale = 1): void {
    for (let k = 0; k < s.length; k++) {
      const rows = glyph(s[k]);
      for (let r = 0; r < GLYPH_H; r++) {
        for (let b = 0; b < GLYPH_W; b++) {
          if (rows[r] & (1 << (GLYPH_W - 1 - b))) {
            this.rect(x + (k * ADVANCE + b) * scale, y + r * scale, scale, scale, c);
          }
        }
      }
    }
  }

  textCentered(s: string, cx: number, y: number, c: RGB = COLORS.black, scale = 1): void {
    this.text(s, Math.round(cx - textWidth(s, scale) / 2), y, c, scale);
  }

  png(): Uint8Array {
    return encode({ width: this.width, height: this.height, data: this.data, channels: 3, depth: 8 });
  }

  async save(path: string): Promise<void> {
    await writeFileAtomic(path, this.png());
  }
}

export interface Series {
  /** x, y interleaved. */
  xy: ArrayLike<number>;
  color: RGB;
  label?: string;
}

export interface PanelBox {
  x: number;
  y: number;
  w: number;
  h: number;
}

const TITLE_H = 14;

function fmt(v: number): string {
  return Math.abs(v) >= 100 || Number.isInteger(v)
    ? String(Math.round(v))
    : v.toFixed(Math.abs(v) >= 1 ? 1 : 2);
}

/** Colour keys with labels, top-left of the box (or right-aligned to its right edge). */
function legend(cv: Canvas, b: PanelBox, series: Series[], right = false): void {
  let y = b.y + TITLE_H + 4;
  const w = Math.max(0, ...series.map((s) => textWidth(s.label ?? ""))) + 14;
  const x = right ? b.x + b.w - w - 4 : b.x + 6;
  for (const s of series) {
    if (!s.label) continue;
    cv.rect(x, y + 1, 5, 5, s.color);
    cv.text(s.label, x + 8, y, COLORS.black);
    y += 10;
  }
}

/** A square-aspect scatter panel over [lo, hi]^2 with a title, corner tick labels and a legend. */
export function scatterPanel(
  cv: Canvas,
  b: PanelBox,
  title: string,
  series: Series[],
  lo = -30,
  hi = 30,
): void {
  if (!(hi > lo)) throw new Error(`scatterPanel: empty range [${lo}, ${hi}]`);
  cv.textCentered(title, b.x + b.w / 2, b.y + 2);
  const top = b.y + TITLE_H, side = Math.min(b.w, b.h - TITLE_H - 10);
  const x0 = b.x + Math.floor((b.w - side) / 2);
  cv.frame(x0, top, side, side, COLORS.grey);
  const px = (v: number) => x0 + ((v - lo) / (hi - lo)) * (side - 1);
  const py = (v: number) => top + (1 - (v - lo) / (hi - lo)) * (side - 1);
  cv.line(px(0), top, px(0), top + side - 1, COLORS.light);
  cv.line(x0, py(0), x0 + side - 1, py(0), COLORS.light);
  for (const s of series) {
    for (let i = 0; i + 1 < s.xy.length; i += 2) {
      const x = s.xy[i], y = s.xy[i + 1];
      if (Number.isFinite(x) && Number.isFinite(y) && x >= lo && x <= hi && y >= lo && y <= hi) {
        cv.dot(px(x), py(y), s.color, 1, 0.5);
      }
    }
  }
  cv.text(fmt(lo), x0, top + side + 2, COLORS.grey);
  cv.text(fmt(hi), x0 + side - textWidth(fmt(hi)), top + side + 2, COLORS.grey);
  legend(cv, { ...b, x: x0 }, series);
}

/** A line chart of (x, y) series with axis ranges from the data (or given). */
export function linePanel(
  cv: Canvas,
  b: PanelBox,
  title: string,
  series: Series[],
  opts: { xLabel?: string; yMin?: number; yMax?: number; points?: boolean } = {},
): void {
  cv.textCentered(title, b.x + b.w / 2, b.y + 2);
  let xMin = Infinity, xMax = -Infinity, yMin = opts.yMin ?? Infinity, yMax = opts.yMax ?? -Infinity;
  for (const s of series) {
    for (let i = 0; i + 1 < s.xy.length; i += 2) {
      const x = s.xy[i], y = s.xy[i + 1];
      if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
      xMin = Math.min(xMin, x);
      xMax = Math.max(xMax, x);
      if (opts.yMin === undefined) yMin = Math.min(yMin, y);
      if (opts.yMax === undefined) yMax = Math.max(yMax, y);
    }
  }
  if (!Number.isFinite(xMin)) xMin = 0, xMax = 1, yMin = 0, yMax = 1;
  if (xMax === xMin) xMax = xMin + 1;
  if (yMax === yMin) yMax = yMin + 1;
  const left = b.x + 34, top = b.y + TITLE_H, w = b.w - 40, h = b.h - TITLE_H - 22;
  cv.frame(left, top, w, h, COLORS.grey);
  const px = (v: number) => left + ((v - xMin) / (xMax - xMin)) * (w - 1);
  const py = (v: number) => top + (1 - (v - yMin) / (yMax - yMin)) * (h - 1);
  for (const s of series) {
    let prev: [number, number] | null = null;
    for (let i = 0; i + 1 < s.xy.length; i += 2) {
      const x = s.xy[i], y = s.xy[i + 1];
      if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
      const p: [number, number] = [px(x), py(Math.min(Math.max(y, yMin), yMax))];
      if (prev && !opts.points) cv.line(prev[0], prev[1], p[0], p[1], s.color, 2);
      if (opts.points) cv.dot(p[0], p[1], s.color, 2, 0.8);
      prev = p;
    }
  }
  cv.text(fmt(yMax), b.x + 2, top, COLORS.grey);
  cv.text(fmt(yMin), b.x + 2, top + h - GLYPH_H, COLORS.grey);
  cv.text(fmt(xMin), left, top + h + 3, COLORS.grey);
  cv.text(fmt(xMax), left + w - textWidth(fmt(xMax)), top + h + 3, COLORS.grey);
  if (opts.xLabel) cv.textCentered(opts.xLabel, left + w / 2, top + h + 3, COLORS.grey);
  legend(cv, { ...b, x: left, w }, series, true);
}

/** A grid of panels: cols x rows cells of a given size. */
export function panelGrid(
  cols: number,
  rows: number,
  cell = 260,
  footer = 0,
): { canvas: Canvas; box: (i: number) => PanelBox } {
  const canvas = new Canvas(cols * cell, rows * cell + footer);
  return {
    canvas,
    box: (i: number) => ({
      x: (i % cols) * cell + 4,
      y: Math.floor(i / cols) * cell + 4,
      w: cell - 8,
      h: cell - 8,
    }),
  };
}
