// The golden files of tests/golden/make_io_golden.py and the exact comparison both file-format tests use.
import assert from "node:assert/strict";
import { type HostArray, type HostDType, toFloat64 } from "../nn/io/host.ts";

const GOLDEN = new URL("./golden/io/", import.meta.url);

/** Bytes of one golden file. */
export const golden = (name: string): Uint8Array => Deno.readFileSync(new URL(name, GOLDEN));

/** tests/golden/io/expected.json: what numpy/PyTorch wrote into each golden file. */
// deno-lint-ignore no-explicit-any
export const expected: Record<string, any> = JSON.parse(new TextDecoder().decode(golden("expected.json")));

export type Entry = { dtype: HostDType; shape: number[]; values: (number | string)[] };

/** Exact comparison with a golden entry (NaN/inf are strings in JSON). */
export function assertMatches(a: HostArray, e: Entry, what: string): void {
  assert.equal(a.dtype, e.dtype, `${what}: dtype`);
  assert.deepEqual(a.shape, e.shape, `${what}: shape`);
  const got = toFloat64(a);
  assert.equal(got.length, e.values.length, `${what}: length`);
  e.values.forEach((v, i) => {
    const want = typeof v === "string" ? Number(v.replace("inf", "Infinity")) : v;
    assert.ok(Object.is(got[i], want) || got[i] === want, `${what}[${i}]: got ${got[i]}, expected ${v}`);
  });
}
