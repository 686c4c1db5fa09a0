// The fuzzing corpus and its mutations. Every format the project reads has valid seed files (the golden
// files under tests/golden and tests/fixtures, plus a dataset zip built here); case i of a seeded run picks
// a seed file and a mutation from one generator, so a failing case is rebuilt from (seed, i) alone.
// Mutations: truncation, bit flips, integer fields set huge / negative / zero, spliced and duplicated
// regions, nesting-depth and shared-reference bombs, zip bombs (sizes that lie, entries that inflate far),
// duplicated keys and entries, wrong dtypes and shapes. Each zip-based format is also mutated inside:
// one entry is mutated with its own format's mutations and the archive rebuilt.

import { unzipSync, zipSync, zlibSync } from "fflate";
import { mulberry32 } from "../nn/host_random.ts";
import { loadStateDict, readNetworkPickle } from "../nn/io/torch.ts";
import { torchHandlers } from "../nn/io/torch_handlers.ts";
import { toPlain, unpickle } from "../nn/io/pickle.ts";
import { parseNpy } from "../nn/io/npy.ts";
import { parseNpz } from "../nn/io/npz.ts";
import { parseSafetensors } from "../nn/io/safetensors.ts";
import { crc32 } from "../nn/io/zip_read.ts";
import { decodeImage } from "../data/image_io.ts";
import { datasetFromZip } from "../data/zip.ts";

export type Format = "pickle" | "sga" | "torch" | "npy" | "npz" | "safetensors" | "png" | "jpeg" | "dataset";

export interface Seed {
  name: string;
  format: Format;
  bytes: Uint8Array;
}

export interface FuzzCase {
  index: number;
  seed: string;
  format: Format;
  mutation: string;
  bytes: Uint8Array;
}

/** Loads a case the way the project's commands do; the value is discarded. */
export const LOADERS: Record<Format, (b: Uint8Array) => unknown> = {
  pickle: (b) => toPlain(unpickle(b, { handlers: torchHandlers() })),
  sga: (b) => readNetworkPickle(b),
  torch: (b) => loadStateDict(b),
  npy: (b) => parseNpy(b),
  npz: (b) => parseNpz(b),
  safetensors: (b) => parseSafetensors(b),
  png: (b) => decodeImage(b, "fuzz.png", { alpha: "white" }),
  jpeg: (b) => decodeImage(b, "fuzz.jpg"),
  dataset: (b) => datasetFromZip(b, "fuzz.zip", { resolution: 8 }),
};

const ROOT = new URL("./", import.meta.url);

const SEED_FILES: [string, Format][] = [
  ...[0, 1, 2, 3, 4, 5].map((p): [string, Format] => [`golden/io/data_p${p}.pkl`, "pickle"]),
  ["golden/io/numpy_p2.pkl", "pickle"],
  ["golden/io/numpy_p5.pkl", "pickle"],
  ["golden/io/malicious_p2.pkl", "pickle"],
  ["golden/io/malicious_p4.pkl", "pickle"],
  ["golden/io/sga_snapshot.pkl", "sga"],
  ["golden/import/network-snapshot.pkl", "sga"],
  ["golden/io/state_zip.pt", "torch"],
  ["golden/io/state_legacy.pt", "torch"],
  ["golden/io/module_zip.pt", "torch"],
  ["golden/io/storage_zip.pt", "torch"],
  ["golden/io/script.pt", "torch"],
  ["golden/io/traced.pt", "torch"],
  ["golden/import/g_ema_only.pt", "torch"],
  ...["f2_le", "f4_le", "f8_be", "fortran", "i1", "i2_le", "i4_be", "i8_le", "b1", "u1", "empty", "v2", "v3"]
    .map((n): [string, Format] => [`golden/io/${n}.npy`, "npy"]),
  ["golden/io/stats_compressed.npz", "npz"],
  ["golden/io/stored.npz", "npz"],
  ["golden/io/tensors.safetensors", "safetensors"],
  ...["bw_10x2", "grey16_4x2", "grey_8x6", "grey_alpha_4x4", "palette_4x2", "rgb_8x6", "rgba_4x4"]
    .map((n): [string, Format] => [`fixtures/data/${n}.png`, "png"]),
  ["fixtures/data/grey_16x16.jpg", "jpeg"],
  ["fixtures/data/rgb_16x16.jpg", "jpeg"],
];

/** The seed corpus: every seed file, plus an SGA dataset zip (images + dataset.json), stored and deflated. */
export function loadSeeds(): Seed[] {
  const seeds = SEED_FILES.map(([path, format]) => ({
    name: path,
    format,
    bytes: Deno.readFileSync(new URL(path, ROOT)),
  }));
  const img = (n: string) => Deno.readFileSync(new URL(`fixtures/data/${n}`, ROOT));
  const files: Record<string, Uint8Array> = {
    "00000/img0.png": img("rgb_8x6.png"),
    "00000/img1.png": img("grey_8x6.png"),
    "00000/img2.jpg": img("rgb_16x16.jpg"),
    "dataset.json": new TextEncoder().encode(
      JSON.stringify({ labels: [["00000/img0.png", 0], ["00000/img1.png", 1], ["00000/img2.jpg", 0]] }),
    ),
  };
  const mtime = new Date(1980, 0, 1);
  seeds.push({ name: "dataset_stored.zip", format: "dataset", bytes: zipSync(files, { level: 0, mtime }) });
  seeds.push({ name: "dataset_deflated.zip", format: "dataset", bytes: zipSync(files, { level: 6, mtime }) });
  return seeds;
}

// ---- generic byte mutations ----

type Rng = () => number;
const int = (r: Rng, n: number) => Math.floor(r() * n);
const pick = <T>(r: Rng, xs: readonly T[]): T => xs[int(r, xs.length)];

/** Integers that break length and offset fields: zero, one, all-ones, sign bits, just past a size. */
function interesting(r: Rng, len: number): bigint {
  return pick(r, [
    0n,
    1n,
    0x7fn,
    0x80n,
    0xffn,
    0x7fffn,
    0xffffn,
    0x7fffffffn,
    0x80000000n,
    0xffffffffn,
    0x7fffffffffffffffn,
    0xffffffffffffffffn,
    BigInt(len),
    BigInt(len + 1),
    BigInt(len * 1000),
    BigInt(2 ** 40),
  ]);
}

function writeInt(b: Uint8Array, at: number, width: number, v: bigint, little: boolean): void {
  for (let k = 0; k < width && at + k < b.length; k++) {
    const byte = Number((v >> BigInt(8 * k)) & 0xffn);
    b[little ? at + k : at + width - 1 - k] = byte;
  }
}

function truncate(r: Rng, b: Uint8Array): Uint8Array {
  return b.slice(0, int(r, b.length));
}

function bitFlips(r: Rng, b: Uint8Array): Uint8Array {
  const out = b.slice();
  const n = 1 + int(r, 8);
  for (let i = 0; i < n && out.length; i++) out[int(r, out.length)] ^= 1 << int(r, 8);
  return out;
}

function intField(r: Rng, b: Uint8Array): Uint8Array {
  const out = b.slice();
  if (!out.length) return out;
  writeInt(out, int(r, out.length), pick(r, [1, 2, 4, 8]), interesting(r, b.length), r() < 0.8);
  return out;
}

function splice(r: Rng, b: Uint8Array): Uint8Array {
  if (b.length < 2) return b.slice();
  const a = int(r, b.length), n = 1 + int(r, Math.min(256, b.length - a));
  const chunk = b.subarray(a, a + n);
  const at = int(r, b.length);
  const mode = int(r, 3);
  if (mode === 0) return concat(b.subarray(0, a), b.subarray(a + n)); // delete
  if (mode === 1) return concat(b.subarray(0, at), chunk, b.subarray(at)); // duplicate elsewhere
  return concat(b.subarray(0, at), chunk, chunk, chunk, b.subarray(at)); // repeat
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const GENERIC: [string, (r: Rng, b: Uint8Array) => Uint8Array][] = [
  ["truncate", truncate],
  ["bitflip", bitFlips],
  ["int-field", intField],
  ["splice", splice],
];

// ---- text-level mutations (names, numbers inside headers and pickles) ----

const enc = new TextEncoder(), dec = new TextDecoder("latin1");

/** Same-length swaps of dtype and storage names, so binary length prefixes stay valid. */
const SWAPS: [string, string[]][] = [
  ["FloatStorage", ["ShortStorage", "Floatstorage"]],
  ["LongStorage", ["HalfStorage", "ByteStorage", "CharStorage", "BoolStorage"]],
  ["HalfStorage", ["LongStorage", "ByteStorage"]],
  ["float32", ["float16", "float64", "int8_ab"]],
  ["<f4", ["<f8", "<i8", "|O8", ">f2", "<c8", "<u4"]],
  ["<f8", ["<f4", "<i2", "|b1", "<U8"]],
  ['"F32"', ['"F16"', '"I64"', '"U16"', '"F64"']],
  ["_rebuild_tensor_v2", ["_rebuild_tensor_v3", "_rebuild_parameter"]],
];

function swapName(r: Rng, b: Uint8Array): Uint8Array {
  const text = dec.decode(b);
  const present = SWAPS.filter(([from]) => text.includes(from));
  if (!present.length) return bitFlips(r, b);
  const [from, tos] = pick(r, present);
  const to = pick(r, tos);
  let idx = text.indexOf(from), k = int(r, 4);
  while (k-- > 0) idx = text.indexOf(from, idx + 1) >= 0 ? text.indexOf(from, idx + 1) : idx;
  const out = b.slice();
  out.set(Uint8Array.from(to, (c) => c.charCodeAt(0) & 0xff).subarray(0, from.length), idx);
  return out;
}

/** Replaces one decimal number in the text with a huge, negative or zero one (lengths may change). */
function textNumber(r: Rng, b: Uint8Array): Uint8Array {
  const text = dec.decode(b);
  const nums = [...text.matchAll(/\d+/g)];
  if (!nums.length) return bitFlips(r, b);
  const m = pick(r, nums);
  const v = pick(r, ["-1", "0", "4294967296", "9007199254740993", "99999999999999999999", "1e308", "-0"]);
  return Uint8Array.from(
    text.slice(0, m.index) + v + text.slice(m.index! + m[0].length),
    (c) => c.charCodeAt(0),
  );
}

// ---- pickle bombs ----

const PROTO2 = [0x80, 0x02];

function pickleOf(...ops: (number | number[])[]): Uint8Array {
  return Uint8Array.from(ops.flat());
}

/** Nested lists `[[[...]]]` n deep, or n MARKs, or one MARK with n items appended at once. */
function pickleBomb(r: Rng): [string, Uint8Array] {
  const kind = int(r, 4);
  const n = pick(r, [1000, 10_000, 100_000]);
  if (kind === 0) {
    const body = new Array(n).fill(0x5d).concat(new Array(n - 1).fill(0x61));
    return [`nest-lists-${n}`, pickleOf(PROTO2, body, 0x2e)];
  }
  if (kind === 1) return [`marks-${n}`, pickleOf(PROTO2, new Array(n).fill(0x28), 0x4e, 0x2e)];
  if (kind === 2) {
    return [`wide-appends-${n}`, pickleOf(PROTO2, 0x5d, 0x28, new Array(n).fill(0x4e), 0x65, 0x2e)];
  }
  // Shared references: each level is a list holding the previous level twice (2^depth leaves as a tree).
  const depth = pick(r, [30, 60]);
  const ops: number[] = [0x5d, 0x71, 0];
  for (let i = 0; i < depth; i++) ops.push(0x28, 0x68, 0, 0x68, 0, 0x6c, 0x71, 0);
  return [`shared-refs-${depth}`, pickleOf(PROTO2, ops, 0x2e)];
}

/** An SGA-style snapshot dict whose non-network entry is a bomb (the reader converts it to JSON). */
function sgaBomb(r: Rng): [string, Uint8Array] {
  const [name, bomb] = pickleBomb(r);
  const key = [0x8c, 1, 0x6b]; // SHORT_BINUNICODE "k"
  return [`sga-${name}`, pickleOf(PROTO2, 0x7d, key, [...bomb.subarray(2, bomb.length - 1)], 0x73, 0x2e)];
}

// ---- npy ----

function npyHeader(r: Rng, b: Uint8Array): [string, Uint8Array] {
  const descr = pick(r, ["<f4", "<f8", ">i8", "|b1", "|O", "<c8", "<U3", "<f4', 'x': ('", "V8", "<f16"]);
  const shapes = [
    "()",
    "(3,)",
    "(-1,)",
    "(4294967296, 4294967296)",
    "(2, 3, 4, 5, 6, 7, 8)",
    "(0,)",
    "(9007199254740993,)",
    "(1, -2)",
    "[3]",
    "(3.5,)",
  ];
  const depth = int(r, 2) ? 0 : pick(r, [100, 10_000, 100_000]);
  const shape = depth ? "(".repeat(depth) + ")".repeat(depth) : pick(r, shapes);
  const fortran = pick(r, ["False", "True", "0", "None"]);
  const dict = `{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': ${shape}, }`;
  const header = enc.encode(dict + " ".repeat(int(r, 16)) + "\n");
  const data = b.subarray(Math.min(b.length, 128));
  const major = header.length + 10 > 0xffff ? 2 : 1;
  const pre = new Uint8Array(major === 1 ? 10 : 12);
  pre.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]);
  writeInt(pre, 8, major === 1 ? 2 : 4, BigInt(header.length), true);
  return [`npy-header ${descr} ${depth ? `nest-${depth}` : shape} ${fortran}`, concat(pre, header, data)];
}

// ---- safetensors ----

function safetensorsHeader(r: Rng, b: Uint8Array): [string, Uint8Array] {
  const n = Number(new DataView(b.buffer, b.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(b.subarray(8, 8 + n))) as Record<string, any>;
  const names = Object.keys(header).filter((k) => k !== "__metadata__");
  const t = pick(r, names);
  const kind = int(r, 6);
  let text: string, what: string;
  if (kind === 0) {
    header[t].dtype = pick(r, ["F16", "I64", "U16", "F8_E4M3", 7, null, "F32"]);
    text = JSON.stringify(header), what = `dtype ${header[t].dtype}`;
  } else if (kind === 1) {
    header[t].shape = pick(r, [
      [-1],
      [2 ** 53],
      [1e300],
      [2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2],
      ["3"],
      [],
      5,
    ]);
    text = JSON.stringify(header), what = `shape ${JSON.stringify(header[t].shape)}`;
  } else if (kind === 2) {
    const big = [-1, 0, 2 ** 32, 2 ** 53, 1e300, 1.5];
    header[t].data_offsets = [pick(r, big), pick(r, big)];
    text = JSON.stringify(header), what = `data_offsets ${JSON.stringify(header[t].data_offsets)}`;
  } else if (kind === 3) {
    // Duplicated key: the same tensor name twice in the JSON text.
    const body = JSON.stringify(header);
    text = body.slice(0, -1) + `,${JSON.stringify(t)}:${JSON.stringify(header[names[0]])}}`;
    what = `duplicate key ${t}`;
  } else if (kind === 4) {
    const d = pick(r, [1000, 10_000]);
    header.__metadata__ = "[".repeat(d) + "]".repeat(d);
    text = JSON.stringify(header).replace(`"${header.__metadata__}"`, header.__metadata__);
    what = `nested metadata ${d}`;
  } else {
    const out = b.slice();
    writeInt(out, 0, 8, interesting(r, b.length), true);
    return ["header-length", out];
  }
  const hb = enc.encode(text);
  const pre = new Uint8Array(8);
  writeInt(pre, 0, 8, BigInt(hb.length), true);
  return [`safetensors ${what}`, concat(pre, hb, b.subarray(8 + n))];
}

// ---- zip archives ----

/** Offsets of central-directory records and the end record, for field-level lies. */
function zipFieldLie(r: Rng, b: Uint8Array): [string, Uint8Array] {
  const out = b.slice();
  const view = new DataView(out.buffer);
  const central: number[] = [];
  for (let p = 0; p + 4 <= out.length; p++) if (view.getUint32(p, true) === 0x02014b50) central.push(p);
  let eocd = -1;
  for (let p = out.length - 22; p >= 0; p--) {
    if (view.getUint32(p, true) === 0x06054b50) {
      eocd = p;
      break;
    }
  }
  const fields: [string, number, number][] = [];
  for (const c of central) {
    fields.push(["compressed-size", c + 20, 4], ["size", c + 24, 4], ["local-offset", c + 42, 4]);
    fields.push(["name-length", c + 28, 2], ["extra-length", c + 30, 2], ["method", c + 10, 2]);
  }
  if (eocd >= 0) fields.push(["count", eocd + 10, 2], ["cd-size", eocd + 12, 4], ["cd-offset", eocd + 16, 4]);
  if (!fields.length) return ["zip-bitflip", bitFlips(r, b)];
  const [name, at, width] = pick(r, fields);
  const v = interesting(r, b.length);
  writeInt(out, at, width, v, true);
  return [`zip ${name}=${v}`, out];
}

/** A real bomb: one entry of zeros that deflates ~1000:1, beside or instead of the archive's entries. */
function zipBomb(r: Rng, files: Record<string, Uint8Array>): [string, Uint8Array] {
  const mb = pick(r, [1, 8]);
  const name = pick(r, Object.keys(files));
  const zeros = new Uint8Array(mb << 20);
  const bombed = { ...files, [name]: zeros };
  return [`zip-bomb ${name} ${mb} MiB`, zipSync(bombed, { level: 9, mtime: new Date(1980, 0, 1) })];
}

/** The same entry name twice (fflate cannot write that, so the archive is built by hand). */
function zipDuplicate(files: Record<string, Uint8Array>): [string, Uint8Array] {
  const names = Object.keys(files);
  const entries: [string, Uint8Array][] = names.map((n) => [n, files[n]]);
  entries.push([names[0], files[names[0]]]);
  return [`zip duplicate ${names[0]}`, storedZip(entries)];
}

function storedZip(entries: [string, Uint8Array][]): Uint8Array {
  const locals: Uint8Array[] = [], centrals: Uint8Array[] = [];
  let offset = 0;
  for (const [name, data] of entries) {
    const nb = enc.encode(name), crc = crc32(data);
    const lh = new Uint8Array(30 + nb.length);
    const lv = new DataView(lh.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(4, 20, true);
    lv.setUint32(14, crc, true);
    lv.setUint32(18, data.length, true);
    lv.setUint32(22, data.length, true);
    lv.setUint16(26, nb.length, true);
    lh.set(nb, 30);
    const ch = new Uint8Array(46 + nb.length);
    const cv = new DataView(ch.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(4, 20, true);
    cv.setUint16(6, 20, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, data.length, true);
    cv.setUint32(24, data.length, true);
    cv.setUint16(28, nb.length, true);
    cv.setUint32(42, offset, true);
    ch.set(nb, 46);
    locals.push(lh, data);
    centrals.push(ch);
    offset += lh.length + data.length;
  }
  const cd = concat(...centrals);
  const end = new Uint8Array(22);
  const ev = new DataView(end.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, entries.length, true);
  ev.setUint16(10, entries.length, true);
  ev.setUint32(12, cd.length, true);
  ev.setUint32(16, offset, true);
  return concat(...locals, cd, end);
}

function innerFormat(entry: string): Format | "raw" | "json" {
  if (entry.endsWith(".pkl")) return "pickle";
  if (entry.endsWith(".npy")) return "npy";
  if (entry.endsWith(".png")) return "png";
  if (entry.endsWith(".jpg")) return "jpeg";
  if (entry.endsWith(".json")) return "json";
  return "raw";
}

function jsonMutation(r: Rng, b: Uint8Array): [string, Uint8Array] {
  const kind = int(r, 4);
  const text = new TextDecoder().decode(b);
  if (kind === 0) {
    const d = pick(r, [1000, 100_000]);
    return [`json nest-${d}`, enc.encode(`{"labels": ${"[".repeat(d)}${"]".repeat(d)}}`)];
  }
  if (kind === 1) {
    const j = JSON.parse(text);
    if (Array.isArray(j.labels) && j.labels.length) j.labels.push(j.labels[0]); // duplicate label
    return ["json duplicate label", enc.encode(JSON.stringify(j))];
  }
  if (kind === 2) {
    const v = pick(r, ['"3"', "-1", "1.5", "null", "[1,2]", "1e400", "{}"]);
    return [
      `json label=${v}`,
      enc.encode(text.replace(/, (\d+)\]/, `, ${v}]`).replace(/,(\d+)\]/, `,${v}]`)),
    ];
  }
  return [`json ${"text-number"}`, textNumber(r, b)];
}

function mutateBytes(r: Rng, format: Format | "raw" | "json", b: Uint8Array): [string, Uint8Array] {
  const roll = r();
  if (format === "json") return roll < 0.6 ? jsonMutation(r, b) : ["json truncate", truncate(r, b)];
  if (format === "npy" && roll < 0.3) return npyHeader(r, b);
  if (format === "pickle" && roll < 0.1) return pickleBomb(r);
  if (format === "sga" && roll < 0.1) return sgaBomb(r);
  if (format === "safetensors" && roll < 0.35) return safetensorsHeader(r, b);
  if (
    (format === "pickle" || format === "sga" || format === "npy" || format === "safetensors") && roll < 0.5
  ) {
    return r() < 0.5 ? ["swap-name", swapName(r, b)] : ["text-number", textNumber(r, b)];
  }
  if ((format === "png" || format === "jpeg") && roll < 0.4) return imageMutation(r, format, b);
  const [name, fn] = pick(r, GENERIC);
  return [name, fn(r, b)];
}

// ---- images ----

function imageMutation(r: Rng, format: "png" | "jpeg", b: Uint8Array): [string, Uint8Array] {
  const w = pick(r, [0, 1, 65535, 0x7fffffff, 0xffffffff, 100_000]);
  const h = pick(r, [0, 1, 65535, 0x7fffffff, 100_000]);
  const out = b.slice();
  const view = new DataView(out.buffer);
  if (format === "jpeg") {
    for (let p = 2; p + 9 < out.length;) {
      const m = out[p + 1];
      if (m >= 0xc0 && m <= 0xc2) {
        view.setUint16(p + 5, h & 0xffff);
        view.setUint16(p + 7, w & 0xffff);
        return [`jpeg size ${w & 0xffff}x${h & 0xffff}`, out];
      }
      p += 2 + view.getUint16(p + 2);
    }
    return ["jpeg bitflip", bitFlips(r, b)];
  }
  // PNG: IHDR at byte 8 (length, "IHDR", width, height, depth, colour type, ...); the CRC is fixed so
  // the decoder reaches the lie.
  const kind = int(r, 3);
  if (kind === 0) {
    view.setUint32(16, w);
    view.setUint32(20, h);
  } else if (kind === 1) {
    out[24] = pick(r, [0, 3, 7, 16, 255]);
    out[25] = pick(r, [1, 5, 6, 7, 255]);
  } else {
    // A pixel bomb: a huge, valid IHDR and an IDAT of deflated zeros that fills it.
    const side = pick(r, [4096, 16384, 65535]);
    view.setUint32(16, side);
    view.setUint32(20, side);
    const idat = zerosIdat(Math.min(side * (side * 4 + 1), 16 << 20));
    view.setUint32(29, crc32(out.subarray(12, 29)));
    return [
      `png bomb ${side}x${side}`,
      concat(out.subarray(0, 33), chunk("IDAT", idat), chunk("IEND", new Uint8Array())),
    ];
  }
  view.setUint32(29, crc32(out.subarray(12, 29)));
  return [`png ihdr ${view.getUint32(16)}x${view.getUint32(20)} depth ${out[24]} type ${out[25]}`, out];
}

const idatCache = new Map<number, Uint8Array>();
function zerosIdat(n: number): Uint8Array {
  let d = idatCache.get(n);
  if (!d) idatCache.set(n, d = zlibSync(new Uint8Array(n), { level: 9 }));
  return d;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  out.set(enc.encode(type), 4);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

// ---- cases ----

const isZipBytes = (b: Uint8Array) => b[0] === 0x50 && b[1] === 0x4b && b[2] === 3 && b[3] === 4;

/** Case `index` of the run seeded with `seed`: a seed file and one mutation, both from (seed, index). */
export function makeCase(seeds: readonly Seed[], seed: number, index: number): FuzzCase {
  const r = mulberry32((seed * 0x9e3779b1) ^ (index * 0x85ebca77));
  const s = seeds[int(r, seeds.length)];
  let mutation: string, bytes: Uint8Array;
  if (isZipBytes(s.bytes) && r() < 0.7) {
    const files = unzipSync(s.bytes);
    const roll = r();
    if (roll < 0.15) [mutation, bytes] = zipFieldLie(r, s.bytes);
    else if (roll < 0.2) [mutation, bytes] = zipBomb(r, files);
    else if (roll < 0.25) [mutation, bytes] = zipDuplicate(files);
    else {
      const names = Object.keys(files).filter((n) => files[n].length > 0);
      const entry = pick(r, names);
      const [m, mutated] = mutateBytes(r, innerFormat(entry), files[entry]);
      mutation = `entry ${entry}: ${m}`;
      bytes = zipSync({ ...files, [entry]: mutated }, {
        level: r() < 0.5 ? 0 : 6,
        mtime: new Date(1980, 0, 1),
      });
    }
  } else [mutation, bytes] = mutateBytes(r, s.format, s.bytes);
  return { index, seed: s.name, format: s.format, mutation, bytes };
}

/** Bytes a case may allocate at once: proportional to the file (deflate's ratio) plus a fixed cap. */
export const boundFor = (size: number): number => 1100 * size + (64 << 20);

/** Why an error is not a clear one: a built-in error type, or an engine message leaking out. */
export function unclearError(e: unknown): string | null {
  if (!(e instanceof Error)) return `threw a non-Error ${String(e)}`;
  if (e.constructor !== Error) return `${e.constructor.name}: ${e.message}`;
  if (!e.message) return "Error without a message";
  const leak =
    /Cannot read prop|is not a function|is not iterable|of undefined|of null|Invalid typed array length|Array buffer allocation failed|Maximum call stack|out of memory|Invalid array length|outside the bounds|is not defined|Invalid string length/;
  if (leak.test(e.message)) return `engine error leaked: ${e.message}`;
  return null;
}
