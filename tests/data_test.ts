// Tests for data/: image decoding (fixtures written by Pillow, see tests/fixtures/data/make_fixtures.py),
// PNG round trips, resizing, MNIST, emoji, folder and zip datasets, the sampler, batches and image grids.

import { zipSync } from "fflate";
import { join } from "node:path";
import { gpuTest, rng } from "./harness.ts";
import { tensor } from "../nn/creation.ts";
import {
  decodeImage,
  encodePng,
  floatToUint8,
  imageGrid,
  type RawImage,
  readImage,
  saveImageGrid,
} from "../data/image_io.ts";
import { centerCropSquare, padImage, resizeImage } from "../data/resize.ts";
import { sampler, subsetIndices } from "../data/dataset.ts";
import { openDataset } from "../data/open.ts";
import { datasetFromZip } from "../data/zip.ts";

const FIX = new URL("./fixtures/data/", import.meta.url).pathname;

function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
}

function assertEq<T>(actual: T, expected: T, what: string): void {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what}: got ${a}, expected ${e}`);
}

async function assertRejects(fn: () => unknown, ...needles: string[]): Promise<void> {
  try {
    await fn();
  } catch (e) {
    const msg = (e as Error).message;
    for (const n of needles) assert(msg.includes(n), `error "${msg}" should mention "${n}"`);
    return;
  }
  throw new Error(`expected an error mentioning ${needles.join(", ")}`);
}

function pixels(img: RawImage): number[] {
  return Array.from(img.data);
}

const rgbAt = (x: number, y: number) => [30 * x, 40 * y, 10 * (x + y)];

function pngBytes(w: number, h: number, c: 1 | 3 | 4, seed: number): Uint8Array {
  const r = rng(seed);
  return encodePng({
    width: w,
    height: h,
    channels: c,
    data: Uint8Array.from({ length: w * h * c }, () => r() * 256),
  });
}

// ---- decoding ----

Deno.test("decode: 8-bit RGB and grey PNG match the pattern", async () => {
  const rgb = await readImage(FIX + "rgb_8x6.png");
  assertEq([rgb.width, rgb.height, rgb.channels], [8, 6, 3], "rgb size");
  const want: number[] = [];
  for (let y = 0; y < 6; y++) for (let x = 0; x < 8; x++) want.push(...rgbAt(x, y));
  assertEq(pixels(rgb), want, "rgb pixels");
  const grey = await readImage(FIX + "grey_8x6.png");
  assertEq(grey.channels, 1, "grey channels");
  assertEq(grey.data[5 * 8 + 7], 30 * 7 + 25, "grey pixel (7,5)");
});

Deno.test("decode: alpha kept, composited on white, or dropped", async () => {
  const keep = await readImage(FIX + "rgba_4x4.png");
  assertEq([keep.channels, keep.data[4 * 5 + 3]], [4, 255 - 60], "rgba keeps alpha");
  const white = await readImage(FIX + "rgba_4x4.png", { alpha: "white" });
  const drop = await readImage(FIX + "rgba_4x4.png", { alpha: "drop" });
  assertEq([white.channels, drop.channels], [3, 3], "alpha resolved to RGB");
  // pixel (x=3, y=2): colour (90, 80, 50), alpha 75
  const a = 75 / 255, i = (2 * 4 + 3) * 3;
  assertEq(pixels(drop).slice(i, i + 3), [90, 80, 50], "dropped alpha");
  assertEq(
    pixels(white).slice(i, i + 3),
    [90, 80, 50].map((v) => Math.round(v * a + 255 * (1 - a))),
    "on white",
  );
  const la = await readImage(FIX + "grey_alpha_4x4.png");
  assertEq([la.channels, ...pixels(la).slice(4 * 5, 4 * 5 + 4)], [4, 40, 40, 40, 195], "grey+alpha -> RGBA");
  const laWhite = await readImage(FIX + "grey_alpha_4x4.png", { alpha: "white" });
  assertEq([laWhite.channels, laWhite.data[0]], [1, 0], "grey+alpha on white stays grey");
});

Deno.test("decode: 2-bit palette with tRNS, 16-bit grey and 1-bit grey PNGs", async () => {
  const pal = await readImage(FIX + "palette_4x2.png");
  assertEq(pal.channels, 4, "palette with tRNS is RGBA");
  assertEq(
    pixels(pal),
    [
      255,
      0,
      0,
      255,
      0,
      255,
      0,
      128,
      0,
      0,
      255,
      0,
      10,
      20,
      30,
      255,
      10,
      20,
      30,
      255,
      0,
      0,
      255,
      0,
      0,
      255,
      0,
      128,
      255,
      0,
      0,
      255,
    ],
    "palette pixels",
  );
  const g16 = await readImage(FIX + "grey16_4x2.png");
  assertEq(pixels(g16), [0, 1, 3, 255, 1, 100, 200, 48], "16-bit keeps the high byte");
  const bw = await readImage(FIX + "bw_10x2.png");
  assertEq(pixels(bw).slice(0, 12), [0, 255, 0, 255, 0, 255, 0, 255, 0, 255, 255, 0], "1-bit grey");
});

Deno.test("decode: JPEG colour and greyscale", async () => {
  const rgb = await readImage(FIX + "rgb_16x16.jpg");
  assertEq([rgb.width, rgb.height, rgb.channels], [16, 16, 3], "jpeg size");
  // Lossy with 4:2:0 chroma: jpeg-js is within 12 of Pillow/libjpeg here, and 14 of the encoded pattern.
  let worst = 0, total = 0;
  for (let y = 0; y < 16; y++) {
    for (let x = 0; x < 16; x++) {
      const want = [16 * x, 16 * y, 128];
      for (let c = 0; c < 3; c++) {
        const d = Math.abs(rgb.data[(y * 16 + x) * 3 + c] - want[c]);
        worst = Math.max(worst, d);
        total += d;
      }
    }
  }
  assert(worst <= 20 && total / 768 <= 6, `jpeg pixels off by up to ${worst}, ${total / 768} on average`);
  const grey = await readImage(FIX + "grey_16x16.jpg");
  assertEq(grey.channels, 1, "single-component JPEG decodes to 1 channel");
  assert(
    Math.abs(grey.data[15 * 16 + 15] - Math.round(0.299 * 240 + 0.587 * 240 + 0.114 * 128)) <= 8,
    "grey value",
  );
});

Deno.test("decode: clear errors for corrupt, unknown and missing files", async () => {
  await assertRejects(() => readImage(FIX + "corrupt.png"), "corrupt.png", "cannot decode PNG");
  await assertRejects(() => readImage(FIX + "make_fixtures.py"), "make_fixtures.py", "not a PNG or JPEG");
  await assertRejects(() => readImage(FIX + "nope.png"), "nope.png", "cannot read image");
  const jpg = await Deno.readFile(FIX + "rgb_16x16.jpg");
  await assertRejects(() => decodeImage(jpg.subarray(0, 200), "cut.jpg"), "cut.jpg", "cannot decode JPEG");
});

Deno.test("encode: PNG round trips for 1, 3 and 4 channels", () => {
  for (const c of [1, 3, 4] as const) {
    const bytes = pngBytes(7, 5, c, c);
    const back = decodeImage(bytes, "mem");
    const again = decodeImage(encodePng(back), "mem2");
    assertEq([back.width, back.height, back.channels], [7, 5, c], `size c=${c}`);
    assertEq(pixels(again), pixels(back), `pixels c=${c}`);
  }
  let threw = false;
  try {
    encodePng({ width: 2, height: 2, channels: 3, data: new Uint8Array(5) });
  } catch (e) {
    threw = (e as Error).message.includes("do not fit");
  }
  assert(threw, "encodePng rejects a wrong data length");
});

// ---- resizing ----

Deno.test("resize: box mean for integer factors, area for others, bilinear upsampling", () => {
  const img: RawImage = {
    width: 4,
    height: 4,
    channels: 1,
    data: Uint8Array.from({ length: 16 }, (_, i) => i * 10),
  };
  assertEq(pixels(resizeImage(img, 2, 2)), [25, 45, 105, 125], "2x box");
  assertEq(pixels(resizeImage(img, 1, 1)), [75], "4x box");
  const row: RawImage = { width: 3, height: 1, channels: 1, data: Uint8Array.from([0, 90, 180]) };
  assertEq(pixels(resizeImage(row, 2, 1)), [30, 150], "3->2 area weights (1, 0.5) / 1.5");
  const up = resizeImage({ width: 2, height: 1, channels: 1, data: Uint8Array.from([0, 100]) }, 4, 1);
  assertEq(pixels(up), [0, 25, 75, 100], "bilinear 2->4 with half-pixel centres");
  const flat = resizeImage({ width: 3, height: 3, channels: 3, data: new Uint8Array(27).fill(77) }, 7, 5);
  assert(flat.data.every((v) => v === 77), "constant stays constant");
  const wide: RawImage = {
    width: 5,
    height: 2,
    channels: 1,
    data: Uint8Array.from({ length: 10 }, (_, i) => i),
  };
  assertEq(pixels(centerCropSquare(wide)), [1, 2, 6, 7], "centre crop");
  assertEq(pixels(padImage({ width: 1, height: 1, channels: 1, data: Uint8Array.from([9]) }, 1)), [
    0,
    0,
    0,
    0,
    9,
    0,
    0,
    0,
    0,
  ], "pad");
});

// ---- MNIST ----

Deno.test("mnist: 10,000 digits with labels and MNIST's moments", async () => {
  const ds = await openDataset("mnist");
  assertEq([ds.size, ds.resolution, ds.channels, ds.numClasses], [10000, 32, 1, 10], "mnist shape");
  const counts = new Array(10).fill(0);
  for (const l of ds.labels!) counts[l]++;
  assertEq(counts, [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978], "class counts");
  let s = 0, s2 = 0, border = 0;
  for (let i = 0; i < ds.size; i++) {
    const im = ds.image(i);
    for (let j = 0; j < im.length; j++) {
      const v = im[j] / 255;
      s += v;
      s2 += v * v;
      if (j < 64 || j % 32 < 2) border += im[j];
    }
  }
  // Moments of the 28x28 digits (MNIST: mean 0.1307, std 0.3081), recovered from the padded 32x32 images.
  const n28 = ds.size * 784, mean = s / n28, std = Math.sqrt(s2 / n28 - mean * mean);
  assert(Math.abs(mean - 0.1307) < 0.003 && Math.abs(std - 0.3081) < 0.005, `mnist mean ${mean}, std ${std}`);
  assertEq(border, 0, "2-pixel zero padding");
});

Deno.test("mnist: class filtering, resizing and maxImages", async () => {
  const low = await openDataset("mnist:0-4");
  assertEq([low.size, low.numClasses, low.classNames], [5131, 5, ["0", "1", "2", "3", "4"]], "mnist:0-4");
  const some = await openDataset("mnist:1,7", { resolution: 16, maxImages: 100 });
  assertEq([some.size, some.resolution, some.classNames], [100, 16, ["1", "7"]], "mnist:1,7 at 16");
  assert(some.labels!.every((l) => l === 0 || l === 1), "labels renumbered to 0..k-1");
  const one = await openDataset("mnist:3");
  assertEq([one.size, one.numClasses, one.labels], [1032, 0, null], "a single class is unconditional");
  await assertRejects(() => openDataset("mnist:4-2"), "4 > 2");
  await assertRejects(() => openDataset("mnist:x"), "bad MNIST class list");
});

// ---- emoji (only when the npm package is already cached: it is ~80 MB) ----

function emojiCached(): boolean {
  const base = Deno.env.get("DENO_DIR") ?? join(Deno.env.get("HOME") ?? "/", ".cache", "deno");
  try {
    return Deno.statSync(join(base, "npm", "registry.npmjs.org", "emoji-datasource-google", "16.0.0"))
      .isDirectory;
  } catch {
    return false;
  }
}

Deno.test({
  name: "emoji: google smileys, resized to 32, alpha on white",
  ignore: !emojiCached(),
  fn: async () => {
    const ds = await openDataset("emoji:google:smileys & emotion", { resolution: 32, maxImages: 20 });
    assertEq([ds.size, ds.resolution, ds.channels, ds.labels], [20, 32, 3, null], "emoji dataset");
    assertEq(Array.from(ds.image(0).subarray(0, 3)), [255, 255, 255], "corner is white");
    const two = await openDataset("emoji:google:Flags,Objects", { maxImages: 10 });
    assertEq([two.resolution, two.classNames], [64, ["Flags", "Objects"]], "two categories");
    await assertRejects(
      () => openDataset("emoji:google:Nonsense"),
      "unknown emoji category",
      "Smileys & Emotion",
    );
  },
});

// ---- folders and zips ----

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "data_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("folder: two class subfolders, PNG and JPEG, sizes checked", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(join(dir, "cats"));
    await Deno.mkdir(join(dir, "dogs"));
    await Deno.writeFile(join(dir, "dogs", "b.png"), pngBytes(16, 16, 3, 1));
    await Deno.writeFile(join(dir, "dogs", "a.png"), pngBytes(16, 16, 4, 2));
    await Deno.copyFile(FIX + "rgb_16x16.jpg", join(dir, "cats", "z.jpg"));
    await Deno.writeFile(join(dir, "notes.txt"), new TextEncoder().encode("not an image"));
    const ds = await openDataset(dir);
    assertEq(
      [ds.size, ds.resolution, ds.channels, ds.classNames],
      [3, 16, 3, ["cats", "dogs"]],
      "folder dataset",
    );
    assertEq(Array.from(ds.labels!), [0, 1, 1], "labels follow sorted paths");
    const small = await openDataset(`folder:${dir}`, { resolution: 8 });
    assertEq(small.resolution, 8, "resized");
    await Deno.writeFile(join(dir, "dogs", "c.png"), pngBytes(12, 12, 1, 3));
    await assertRejects(() => openDataset(dir), "must share one size", "c.png", "12x12");
    assertEq((await openDataset(dir, { resolution: 16 })).size, 4, "mixed sizes with a resolution");
    await Deno.writeFile(join(dir, "root.png"), pngBytes(16, 16, 3, 4));
    await assertRejects(() => openDataset(dir), "directly in", "class subfolder");
  });
});

Deno.test("folder: non-square images need a resolution; corrupt files are named", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeFile(join(dir, "wide.png"), pngBytes(8, 4, 1, 5));
    await assertRejects(() => openDataset(dir), "wide.png", "not square");
    const ds = await openDataset(dir, { resolution: 4 });
    assertEq([ds.size, ds.channels, ds.labels], [1, 1, null], "grey, unlabelled");
    await Deno.copyFile(FIX + "corrupt.png", join(dir, "x.png"));
    await assertRejects(() => openDataset(dir, { resolution: 4 }), "x.png", "cannot decode PNG");
  });
});

function sgaZip(files: Record<string, Uint8Array>, labels?: unknown): Uint8Array {
  const entries: Record<string, Uint8Array> = { ...files };
  if (labels !== undefined) entries["dataset.json"] = new TextEncoder().encode(JSON.stringify({ labels }));
  return zipSync(entries);
}

Deno.test("zip: SGA layout with dataset.json labels", async () => {
  const files = {
    "00000/img00000002.png": pngBytes(8, 8, 3, 6),
    "00000/img00000000.png": pngBytes(8, 8, 3, 7),
    "00001/img00000001.png": pngBytes(8, 8, 3, 8),
  };
  const labels = [["00000/img00000000.png", 2], ["00001/img00000001.png", 0], ["00000/img00000002.png", 1]];
  const ds = datasetFromZip(sgaZip(files, labels), "t.zip");
  assertEq([ds.size, ds.resolution, ds.numClasses], [3, 8, 3], "zip dataset");
  assertEq(Array.from(ds.labels!), [2, 1, 0], "labels in sorted path order");
  const want = decodeImage(files["00000/img00000000.png"], "x");
  assertEq(ds.image(0)[1], want.data[3], "CHW layout: channel 0, pixel 1");
  assertEq(datasetFromZip(sgaZip(files, null), "n.zip").labels, null, "labels: null");
  assertEq(datasetFromZip(sgaZip(files), "plain.zip").labels, null, "no dataset.json");
  await withTempDir(async (dir) => {
    const path = join(dir, "d.zip");
    await Deno.writeFile(path, sgaZip(files, labels));
    assertEq((await openDataset(path)).size, 3, "open by .zip path");
    assertEq((await openDataset(`zip:${path}`, { maxImages: 2 })).size, 2, "maxImages");
  });
});

Deno.test("zip: clear errors for label mismatches, bad labels and bad archives", async () => {
  const files = { "a.png": pngBytes(4, 4, 1, 9), "b.png": pngBytes(4, 4, 1, 10) };
  await assertRejects(() => datasetFromZip(sgaZip(files, [["a.png", 0]]), "m.zip"), "no label", "b.png");
  await assertRejects(
    () => datasetFromZip(sgaZip(files, [["a.png", 0], ["b.png", 1], ["c.png", 1]]), "o.zip"),
    "not images",
    "c.png",
  );
  await assertRejects(
    () => datasetFromZip(sgaZip(files, [["a.png", 0.5], ["b.png", 1]]), "f.zip"),
    "a.png",
    "0.5",
  );
  await assertRejects(() => datasetFromZip(new Uint8Array([1, 2, 3, 4]), "junk.zip"), "junk.zip", "zip");
  const mixed = { "a.png": pngBytes(4, 4, 1, 9), "b.png": pngBytes(6, 6, 1, 10) };
  await assertRejects(() => datasetFromZip(sgaZip(mixed), "s.zip"), "s.zip:b.png is 6x6");
});

Deno.test("openDataset: unknown specs list the valid forms", async () => {
  await assertRejects(() => openDataset("imagenet"), "Valid forms", "mnist:0-4", "emoji:STYLE");
  await assertRejects(() => openDataset("emoji:pixel"), "apple, google, twitter, facebook");
  await assertRejects(() => openDataset("folder:/no/such/dir"), "cannot open folder");
  await assertRejects(() => openDataset("missing.zip"), "cannot read zip dataset", "missing.zip");
});

// ---- sampling, batches and grids ----

Deno.test("sampler: seeded epochs are permutations and batches continue across epochs", () => {
  const take = (seed: number) => {
    const it = sampler({ size: 10 }, 4, seed);
    return Array.from({ length: 5 }, () => it.next().value as number[]).flat();
  };
  const a = take(1);
  assertEq(a, take(1), "same seed, same order");
  assert(JSON.stringify(a) !== JSON.stringify(take(2)), "different seeds differ");
  assertEq(
    [...a.slice(0, 10)].sort((x, y) => x - y),
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    "epoch 1 is a permutation",
  );
  assertEq(
    [...a.slice(10, 20)].sort((x, y) => x - y),
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    "epoch 2 is a permutation",
  );
  assertEq((sampler({ size: 3 }, 7, 0).next().value as number[]).length, 7, "batch larger than the dataset");
  const sub = subsetIndices(100, 10, 0);
  assertEq([sub.length, sub.every((v, i) => i === 0 || v > sub[i - 1])], [10, true], "subset sorted");
});

gpuTest("batch: images enter as uint8/127.5 - 1 with i32 labels", async () => {
  const ds = datasetFromZip(
    sgaZip({ "a.png": pngBytes(4, 4, 3, 11), "b.png": pngBytes(4, 4, 3, 12) }, [["a.png", 0], ["b.png", 1]]),
    "b.zip",
  );
  const { images, labels } = ds.batch([1, 0, 1]);
  assertEq([images.shape, labels!.shape, labels!.dtype], [[3, 3, 4, 4], [3], "i32"], "batch shapes");
  const x = await images.data();
  const img1 = ds.image(1);
  for (let j = 0; j < img1.length; j++) assert(Math.abs(x[j] - (img1[j] / 127.5 - 1)) < 1e-6, `pixel ${j}`);
  assertEq(Array.from(await labels!.ints()), [1, 0, 1], "labels");
  images.dispose();
  labels!.dispose();
});

gpuTest("saveImageGrid: PNG grid decodes back with the right size and values", async () => {
  const n = 5, c = 3, h = 4, w = 6;
  const values = Float32Array.from({ length: n * c * h * w }, (_, i) => ((i * 37) % 200) / 100 - 1.05);
  const t = tensor(values, [n, c, h, w]);
  await withTempDir(async (dir) => {
    const path = join(dir, "grid.png");
    await saveImageGrid(path, t, { cols: 3, pad: 1 });
    const img = await readImage(path);
    assertEq([img.width, img.height, img.channels], [3 * w + 4, 2 * h + 3, 3], "grid size");
    const u8 = floatToUint8(values);
    // image 4 sits in row 1, column 1; check its channel-2 pixel (y=3, x=5).
    const gx = 1 + 1 * (w + 1) + 5, gy = 1 + 1 * (h + 1) + 3;
    assertEq(img.data[(gy * img.width + gx) * 3 + 2], u8[((4 * c + 2) * h + 3) * w + 5], "grid pixel");
    assertEq(img.data[0], 255, "white padding");
    assertEq([...Deno.readDirSync(dir)].length, 1, "no temporary file left");
  });
  t.dispose();
  assertEq(
    Array.from(floatToUint8(Float32Array.from([-2, -1, 0, 0.999, 1, NaN]))),
    [0, 0, 128, 255, 255, 0],
    "clamp(x*127.5+128)",
  );
  const g = imageGrid(new Uint8Array(2 * 1 * 2 * 2).fill(9), [2, 1, 2, 2]);
  assertEq([g.width, g.height, g.channels], [4, 2, 1], "default grid: ceil(sqrt(n)) columns, no padding");
});

Deno.test("emoji packages stay out of deno.lock (Deno installs every locked npm package on any first run)", () => {
  // Before: `cli.ts info` on a fresh machine downloaded ~370 MB of emoji packages the demo never uses.
  const lock = Deno.readTextFileSync(new URL("../deno.lock", import.meta.url));
  if (/emoji-datasource/.test(lock)) throw new Error("deno.lock names an emoji package");
});
