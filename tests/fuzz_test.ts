// The CI slice of the fuzzing harness (`deno task fuzz` runs 20,000+ cases): 300 seeded cases over every
// format, each of which must load or fail with a clear Error, within 1 s (twice), under the memory bound.
// Plus the limits that the random cases cannot reach cheaply: an honest zip bomb past the inflation cap,
// a zip whose header lies about its size, and a PNG that claims more pixels than its data can hold.

import { zipSync } from "fflate";
import { runFuzz } from "./fuzz_runner.ts";
import { LOADERS, loadSeeds, makeCase, unclearError } from "./fuzz_cases.ts";
import { unzipChecked } from "../nn/io/zip_read.ts";
import { decodeImage } from "../data/image_io.ts";

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
