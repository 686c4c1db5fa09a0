// The CI slice of the fuzzing harness (`deno task fuzz` runs 20,000+ cases): 300 seeded cases over every
// format, each of which must load or fail with a clear Error, within 1 s (twice), under the memory bound.
// Plus the limits that the random cases cannot reach cheaply: an honest zip bomb past the inflation cap,
// a zip whose header lies about its size, and a PNG that claims more pixels than its data can hold.

import { unzipSync, zipSync } from "fflate";
import { runFuzz } from "./fuzz_runner.ts";
import { LOADERS, loadSeeds, makeCase, unclearError } from "./fuzz_cases.ts";
import { unzipChecked } from "../nn/io/zip_read.ts";
import { decodeImage } from "../data/image_io.ts";
import { datasetFromZip } from "../data/zip.ts";
import { encodeNpz, parseNpz } from "../nn/io/npz.ts";
import { readTorchZip } from "../nn/io/torch_zip.ts";
import { toPlain, unpickle } from "../nn/io/pickle.ts";

function assertThrowsMatching(fn: () => unknown, re: RegExp): void {
  try {
    fn();
  } catch (e) {
    if (unclearError(e) !== null || !re.test((e as Error).message)) throw new Error(`wrong error: ${e}`);
    return;
  }
  throw new Error(`expected an error matching ${re}`);
}

Deno.test("fuzz: 300 seeded cases over every format load or fail with a clear error, no hang or big allocation", async () => {
  const report = await runFuzz({ seed: 7, cases: 300, workers: 1, timeoutMs: 1000 });
  const lines = report.failures.map((f) =>
    `#${f.index} [${f.outcome}] ${f.seed} ${f.mutation}: ${f.message}`
  );
  if (lines.length) throw new Error(`fuzz failures:\n${lines.join("\n")}`);
  const total = Object.values(report.outcomes).reduce((a, b) => a + b, 0);
  if (total !== 300) throw new Error(`ran ${total} cases, expected 300`);
  // Both kinds of outcome occur, so the mutations neither all break nor all miss the files.
  if (!report.outcomes.loaded || !report.outcomes.error) {
    throw new Error(`outcomes ${JSON.stringify(report.outcomes)}`);
  }
});

Deno.test("fuzz: cases are rebuilt from (seed, index) alone, and every seed file loads unmutated", () => {
  const seeds = loadSeeds();
  const formats = new Set(seeds.map((s) => s.format));
  for (const f of Object.keys(LOADERS)) if (!formats.has(f as never)) throw new Error(`no seed for ${f}`);
  for (const s of seeds) LOADERS[s.format](s.bytes);
  const a = makeCase(seeds, 3, 41), b = makeCase(seeds, 3, 41);
  if (
    a.mutation !== b.mutation || a.bytes.length !== b.bytes.length || a.bytes.some((v, i) => v !== b.bytes[i])
  ) {
    throw new Error("makeCase is not deterministic");
  }
});

Deno.test("zip: an entry inflating past the cap and a lying size are refused, naming archive and entry", () => {
  const bomb = zipSync({ "x.npy": new Uint8Array(4 << 20) }, { level: 9 });
  if (bomb.length > 20_000) throw new Error(`bomb is ${bomb.length} bytes`);
  assertThrowsMatching(
    () => unzipChecked(bomb, "bomb.zip", { maxBytes: 1 << 20 }),
    /bomb\.zip: inflates past the limit of 1048576 bytes/,
  );
  if (unzipChecked(bomb, "bomb.zip")["x.npy"].length !== 4 << 20) throw new Error("honest entry not read");
  // Central directory size field (offset 24 of the central header) set to 3 GB.
  const lie = bomb.slice();
  const view = new DataView(lie.buffer);
  const cd = view.getUint32(lie.length - 22 + 16, true);
  view.setUint32(cd + 24, 3e9, true);
  assertThrowsMatching(
    () => unzipChecked(lie, "lie.zip"),
    /lie\.zip: entry 'x\.npy' claims 3000000000 bytes .* more than deflate can give/,
  );
  view.setUint32(cd + 24, (4 << 20) - 1, true);
  assertThrowsMatching(() => unzipChecked(lie, "lie.zip"), /entry 'x\.npy' is corrupt/);
});

Deno.test("png: headers claiming more pixels than the data can hold or than the cap are refused before decoding", () => {
  const seeds = loadSeeds();
  const seen = new Set<string>();
  for (let i = 0; i < 20_000 && seen.size < 2; i++) {
    const c = makeCase(seeds, 11, i);
    const m = /^png bomb (4096|65535)x/.exec(c.mutation);
    if (!m || seen.has(m[1])) continue;
    seen.add(m[1]);
    const why = m[1] === "4096"
      ? /more than 256 pixels per byte: .* decompression bomb/
      : /more than the 67108864 pixels allowed/;
    assertThrowsMatching(
      () => decodeImage(c.bytes, "bomb.png"),
      new RegExp(`bomb\\.png: cannot decode PNG: .*${why.source}`),
    );
  }
  if (seen.size < 2) throw new Error(`found png bombs ${[...seen]} only`);
});

// Zip bombs that the caps allow (8 MiB of zeros in place of an entry) are refused from the entry's declared
// size or first bytes, before anything is inflated: each inflated byte would cost time on a slow machine.
Deno.test("zip bombs within the cap are refused before inflating: npz, torch storage, dataset image and json", () => {
  const zeros = new Uint8Array(8 << 20);
  const deflated = (files: Record<string, Uint8Array>) => zipSync(files, { level: 9 });
  const npz = encodeNpz(new Map([["mu", { dtype: "f32" as const, shape: [4], data: new Float32Array(4) }]]));
  const npzFiles = unzipSync(npz);
  const padded = new Uint8Array(8 << 20);
  padded.set(npzFiles["mu.npy"]); // a valid header, an entry far larger than the header says
  const pkl = Uint8Array.from(
    "\x80\x02(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x04tQ.",
    (c) => c.charCodeAt(0),
  );
  const png = Deno.readFileSync(new URL("./fixtures/data/grey_8x6.png", import.meta.url));
  const npzBomb = deflated({ ...npzFiles, "mu.npy": zeros }), npzLie = deflated({ "mu.npy": padded });
  const torchBomb = deflated({ "a/data.pkl": pkl, "a/data/0": zeros });
  const imageBomb = deflated({ "a.png": png, "b.png": zeros }),
    jsonBomb = deflated({ "a.png": png, "dataset.json": zeros });
  const cases: [() => unknown, RegExp][] = [
    [() => parseNpz(npzBomb), /npz entry 'mu\.npy': npy: bad magic/],
    [
      () => parseNpz(npzLie),
      /npz entry 'mu\.npy': declares 8388608 bytes, its header \(shape \[4\] f32\) needs 144/,
    ],
    [
      () => readTorchZip(torchBomb),
      /storage record 'data\/0' declares 8388608 bytes, the pickle's 4 f32 elements are 16 bytes/,
    ],
    [
      () => datasetFromZip(imageBomb, "d.zip"),
      /d\.zip:b\.png: not a PNG or JPEG image \(8388608 bytes, starts with 00 00 00 00\)/,
    ],
    [() => datasetFromZip(jsonBomb, "d.zip"), /d\.zip:dataset\.json is not a JSON object/],
  ];
  // What reading one bomb whole costs (inflate and CRC-32), measured here: each refusal must cost far less.
  const t0 = performance.now();
  unzipChecked(npzBomb, "npz");
  const wholeMs = performance.now() - t0;
  for (const [fn, re] of cases) {
    // The faster of two tries: the first also compiles the code on its path (cold, on a loaded machine).
    let ms = Infinity;
    for (let i = 0; i < 2; i++) {
      const t1 = performance.now();
      assertThrowsMatching(fn, re);
      ms = Math.min(ms, performance.now() - t1);
    }
    if (ms > wholeMs / 3) {
      throw new Error(`refusing ${re} took ${ms.toFixed(0)} ms; inflating takes ${wholeMs.toFixed(0)}`);
    }
  }
});

Deno.test("pickle: nesting and shared-reference bombs stop early (stack cap; expansion counted per object)", () => {
  const nest = Uint8Array.from([
    0x80,
    2,
    ...new Array(100_000).fill(0x5d),
    ...new Array(99_999).fill(0x61),
    0x2e,
  ]);
  assertThrowsMatching(() => unpickle(nest), /more than 10000 values on the stack at once/);
  // Each level is a list holding the previous level twice: 2^60 values as a tree, 61 objects.
  const ops: number[] = [0x80, 2, 0x5d, 0x71, 0];
  for (let i = 0; i < 60; i++) ops.push(0x28, 0x68, 0, 0x68, 0, 0x6c, 0x71, 0);
  ops.push(0x2e);
  const shared = unpickle(Uint8Array.from(ops));
  // Refusing it must cost less than converting a list of 90,000 values (the old way visited 100,000).
  const big = new Array(90_000).fill(0);
  let t0 = performance.now();
  toPlain(big);
  const bigMs = performance.now() - t0;
  t0 = performance.now();
  assertThrowsMatching(() => toPlain(shared), /expands to more than 100000 values/);
  const ms = performance.now() - t0;
  if (ms > bigMs) {
    throw new Error(`shared-reference bomb took ${ms.toFixed(1)} ms, 90,000 values ${bigMs.toFixed(1)}`);
  }
  // A list of 1000 batches of 9 (Python's pickler batches APPENDS by 1000) still loads.
  const wide = [0x80, 2, 0x5d];
  for (let b = 0; b < 9; b++) wide.push(0x28, ...new Array(1000).fill(0x4e), 0x65);
  wide.push(0x2e);
  const list = unpickle(Uint8Array.from(wide)) as unknown[];
  if (list.length !== 9000) throw new Error(`wide list has ${list.length} items`);
});

Deno.test("cases the full run found slow under load are refused by construction", () => {
  const seeds = loadSeeds();
  // Seed-1 cases of `deno task fuzz` that took over 1 s twice at load 25 (2026-12-02).
  const want: [number, RegExp][] = [
    [32, /fuzz\.jpg: cannot decode JPEG: 1x65535 pixels: a side longer than the 16384 pixels allowed/],
    [1382, /dataset\.json nests deeper than 64 levels/],
    [2012, /torch zip data\.pkl: not a protocol 2\+ pickle \(starts with 00 00\)/],
    [16494, /torch zip constants\.pkl: not a protocol 2\+ pickle/],
  ];
  for (const [index, re] of want) {
    const c = makeCase(seeds, 1, index);
    assertThrowsMatching(() => LOADERS[c.format](c.bytes), re);
  }
});
