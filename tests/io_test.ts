// File formats over host arrays: npy, npz, safetensors and the safe unpickler, against golden files
// written by numpy/PyTorch (tests/golden/make_io_golden.py) and against malformed input.
import assert from "node:assert/strict";
import { zipSync } from "fflate";
import {
  bf16BitsToNumber,
  f16BitsToNumber,
  fromNumbers,
  gatherStrided,
  type HostArray,
  hostArray,
  type HostDType,
  numberToBf16Bits,
  numberToF16Bits,
  toFloat32,
} from "../nn/io/host.ts";
import { encodeNpy, parseNpy } from "../nn/io/npy.ts";
import { encodeNpz, parseNpz } from "../nn/io/npz.ts";
import { encodeSafetensors, parseSafetensors } from "../nn/io/safetensors.ts";
import { isTuple, PickleGlobal, PickleObject, toPlain, unpickle, unpickleAt } from "../nn/io/pickle.ts";
import { torchHandlers } from "../nn/io/torch_handlers.ts";
import { assertMatches, type Entry, expected, golden } from "./io_golden.ts";

function assertThrowsMatching(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: Error) => {
    assert.match(e.message, re);
    return true;
  });
}

const ALL_DTYPES: HostDType[] = ["f32", "f64", "f16", "bf16", "i64", "i32", "i16", "i8", "u8", "bool"];
const sample = (dtype: HostDType, shape: number[]) => {
  const n = shape.reduce((a, b) => a * b, 1);
  return fromNumbers(
    dtype,
    shape,
    Array.from({ length: n }, (_, i) => (i % 7) - 3 + (dtype[0] === "f" ? 0.5 : 0)),
  );
};

// ---------------- host arrays ----------------

Deno.test("host: f16 and bf16 conversions round-trip and round to nearest even", () => {
  for (const x of [0, -0, 1, -2.5, 65504, 6.103515625e-5, 5.960464477539063e-8, Infinity, -Infinity]) {
    assert.ok(Object.is(f16BitsToNumber(numberToF16Bits(x)), x), `f16 ${x}`);
  }
  assert.equal(numberToF16Bits(1 + 2 ** -11), numberToF16Bits(1)); // tie -> even
  assert.equal(f16BitsToNumber(numberToF16Bits(1 + 3 * 2 ** -11)), 1 + 2 ** -9);
  assert.equal(f16BitsToNumber(numberToF16Bits(70000)), Infinity);
  assert.ok(Number.isNaN(f16BitsToNumber(numberToF16Bits(NaN))));
  for (const x of [0, 1, -0.5, 3.140625, -Infinity]) assert.equal(bf16BitsToNumber(numberToBf16Bits(x)), x);
  assert.equal(bf16BitsToNumber(numberToBf16Bits(1 + 2 ** -8)), 1); // tie -> even
  const a = fromNumbers("bf16", [3], [1, -2, 0.5]);
  assert.deepEqual(Array.from(toFloat32(a)), [1, -2, 0.5]);
  assert.deepEqual(Array.from(toFloat32(fromNumbers("i64", [2], [-5, 2 ** 40]))), [-5, 2 ** 40]);
});

Deno.test("host: hostArray validates, gatherStrided copies views and rejects out-of-range strides", () => {
  assertThrowsMatching(() => hostArray("f32", [2, 3], new Float32Array(5)), /needs 6 elements/);
  assertThrowsMatching(() => hostArray("f32", [2], new Float64Array(2)), /needs Float32Array/);
  assertThrowsMatching(() => hostArray("f32", [-1]), /invalid dimension/);
  const src = Float32Array.from({ length: 12 }, (_, i) => i);
  assert.deepEqual(Array.from(gatherStrided(src, [4, 3], [1, 4], 0) as Float32Array), [
    0,
    4,
    8,
    1,
    5,
    9,
    2,
    6,
    10,
    3,
    7,
    11,
  ]);
  assert.deepEqual(Array.from(gatherStrided(src, [2, 2], [6, 2], 1) as Float32Array), [1, 3, 7, 9]);
  assertThrowsMatching(() => gatherStrided(src, [3, 3], [4, 2], 1), /outside a storage/);
});

// ---------------- npy ----------------

Deno.test("npy: golden files of every dtype, both endiannesses, Fortran order and header versions", () => {
  for (const name of Object.keys(expected).filter((n) => n.endsWith(".npy"))) {
    assertMatches(parseNpy(golden(name)), expected[name], name);
  }
});

Deno.test("npy: round trip of every supported dtype and awkward shapes", () => {
  for (const dtype of ALL_DTYPES.filter((d) => d !== "bf16")) {
    for (const shape of [[], [0], [7], [3, 5], [2, 1, 3]]) {
      const a = sample(dtype, shape);
      const b = parseNpy(encodeNpy(a));
      assert.equal(b.dtype, dtype);
      assert.deepEqual(b.shape, shape);
      assert.deepEqual(Array.from(b.data as ArrayLike<unknown>), Array.from(a.data as ArrayLike<unknown>));
    }
  }
  // numpy requires the data to start on a 64-byte boundary.
  const bytes = encodeNpy(sample("f32", [3]));
  assert.equal((10 + (bytes[8] | (bytes[9] << 8))) % 64, 0);
  assertThrowsMatching(() => encodeNpy(sample("bf16", [2])), /no numpy equivalent/);
});

Deno.test("npy: malformed input gives clear errors", () => {
  const good = encodeNpy(sample("f32", [4]));
  assertThrowsMatching(() => parseNpy(new Uint8Array([1, 2, 3])), /bad magic/);
  assertThrowsMatching(() => parseNpy(good.slice(0, 20)), /truncated header/);
  assertThrowsMatching(() => parseNpy(good.slice(0, good.length - 1)), /truncated data/);
  const badVersion = good.slice();
  badVersion[6] = 9;
  assertThrowsMatching(() => parseNpy(badVersion), /unsupported format version 9\.0/);
  const withHeader = (h: string) => {
    const text = new TextEncoder().encode(h.padEnd(118) + "\n");
    const out = new Uint8Array(10 + text.length);
    out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, text.length & 0xff, text.length >> 8]);
    out.set(text, 10);
    return out;
  };
  assertThrowsMatching(
    () => parseNpy(withHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (2,")),
    /bad header/,
  );
  assertThrowsMatching(
    () => parseNpy(withHeader("{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }")),
    /unsupported dtype '<c8'/,
  );
  assertThrowsMatching(() => parseNpy(withHeader("{'descr': '<f4', 'shape': (2,), }")), /fortran_order/);
  assertThrowsMatching(
    () => parseNpy(withHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }")),
    /shape/,
  );
  assertThrowsMatching(() => parseNpy(withHeader("__import__('os')")), /bad header/);
  assertThrowsMatching(() => parseNpy(golden("object.npy")), /object dtype '\|O' refused/);
  assertThrowsMatching(() => parseNpy(golden("u2.npy")), /unsupported dtype '<u2'/);
});

// ---------------- npz ----------------

Deno.test("npz: golden compressed (pytorch-fid style mu/sigma) and stored archives", () => {
  for (const file of ["stats_compressed.npz", "stored.npz"]) {
    const m = parseNpz(golden(file));
    assert.deepEqual([...m.keys()].sort(), Object.keys(expected[file]).sort());
    for (const [k, e] of Object.entries(expected[file])) assertMatches(m.get(k)!, e as Entry, `${file}:${k}`);
  }
});

Deno.test("npz: round trip stored and compressed; malformed archives give clear errors", () => {
  const arrays = new Map([["mu", sample("f64", [5])], ["sigma", sample("f64", [5, 5])], [
    "n",
    sample("i64", []),
  ]]);
  for (const compress of [false, true]) {
    const back = parseNpz(encodeNpz(arrays, { compress }));
    assert.deepEqual([...back.keys()], [...arrays.keys()]);
    for (const [k, a] of arrays) {
      assert.deepEqual(Array.from(back.get(k)!.data as Float64Array), Array.from(a.data as Float64Array));
    }
  }
  assertThrowsMatching(() => parseNpz(new Uint8Array(30)), /bad magic/);
  const good = encodeNpz(arrays);
  assertThrowsMatching(() => parseNpz(good.slice(0, good.length - 30)), /malformed or truncated zip/);
  const badEntry = zipSync({ "x.npy": new Uint8Array([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 200, 0]) });
  assertThrowsMatching(() => parseNpz(badEntry), /npz entry 'x\.npy': npy: truncated header/);
});

// ---------------- safetensors ----------------

Deno.test("safetensors: golden file written by an independent writer", () => {
  const { tensors, metadata } = parseSafetensors(golden("tensors.safetensors"));
  const e = expected["tensors.safetensors"];
  assert.deepEqual(metadata, e.metadata);
  assert.deepEqual([...tensors.keys()].sort(), Object.keys(e.tensors).sort());
  for (const [k, v] of Object.entries(e.tensors)) assertMatches(tensors.get(k)!, v as Entry, k);
});

Deno.test("safetensors: round trip of every dtype with metadata, aligned offsets", () => {
  const m = new Map(ALL_DTYPES.map((d, i) => [`t.${d}`, sample(d, i % 2 ? [3, 2] : [5])]));
  m.set("empty", sample("f32", [0, 3]));
  const bytes = encodeSafetensors(m, { arch: "test" });
  const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal(headerLen % 8, 0);
  const back = parseSafetensors(bytes);
  assert.deepEqual(back.metadata, { arch: "test" });
  for (const [k, a] of m) {
    const b = back.tensors.get(k)!;
    assert.equal(b.dtype, a.dtype);
    assert.deepEqual(b.shape, a.shape);
    assert.deepEqual(Array.from(b.data as ArrayLike<unknown>), Array.from(a.data as ArrayLike<unknown>), k);
    const off = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLen)))[k].data_offsets[0];
    assert.equal(off % (b.data.BYTES_PER_ELEMENT), 0, `${k} aligned`);
  }
});

function safetensorsWith(header: unknown, dataLen: number, rawHeader?: string): Uint8Array {
  const h = new TextEncoder().encode(rawHeader ?? JSON.stringify(header));
  const out = new Uint8Array(8 + h.length + dataLen);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  return out;
}

Deno.test("safetensors: malformed headers and offsets give clear errors", () => {
  const t = (offs: number[], extra = {}) => ({ dtype: "F32", shape: [2], data_offsets: offs, ...extra });
  assertThrowsMatching(() => parseSafetensors(new Uint8Array(4)), /truncated \(no header length\)/);
  const huge = new Uint8Array(16);
  new DataView(huge.buffer).setBigUint64(0, 1n << 40n, true);
  assertThrowsMatching(() => parseSafetensors(huge), /not sane/);
  const short = safetensorsWith({ a: t([0, 8]) }, 8).slice(0, 20);
  assertThrowsMatching(() => parseSafetensors(short), /truncated \(header needs/);
  assertThrowsMatching(() => parseSafetensors(safetensorsWith(null, 0, "{not json")), /bad header JSON/);
  assertThrowsMatching(() => parseSafetensors(safetensorsWith([1, 2], 0)), /not a JSON object/);
  assertThrowsMatching(
    () => parseSafetensors(safetensorsWith({ a: t([0, 8], { dtype: "F8_E4M3" }) }, 8)),
    /unknown or unsupported dtype "F8_E4M3"/,
  );
  assertThrowsMatching(
    () => parseSafetensors(safetensorsWith({ a: t([0, 8]) }, 4)),
    /beyond the data buffer/,
  );
  assertThrowsMatching(() => parseSafetensors(safetensorsWith({ a: t([0, 12]) }, 12)), /needs 8/);
  assertThrowsMatching(
    () => parseSafetensors(safetensorsWith({ a: t([0, 8]), b: t([4, 12]) }, 12)),
    /overlaps/,
  );
  assertThrowsMatching(
    () => parseSafetensors(safetensorsWith({ a: t([0, 8]), b: t([12, 20]) }, 20)),
    /gap in the data buffer/,
  );
  assertThrowsMatching(() => parseSafetensors(safetensorsWith({ a: t([0, 8]) }, 12)), /4 trailing bytes/);
  assertThrowsMatching(() => parseSafetensors(safetensorsWith({ a: t([8, 0]) }, 8)), /end before begin/);
  assertThrowsMatching(
    () => parseSafetensors(safetensorsWith({ a: t([0, 8], { shape: [-2] }) }, 8)),
    /bad shape/,
  );
  assertThrowsMatching(
    () => parseSafetensors(safetensorsWith({ __metadata__: { a: 1 } }, 0)),
    /not a string/,
  );
  assertThrowsMatching(
    () => encodeSafetensors(new Map([["__metadata__", sample("f32", [1])]])),
    /cannot be a tensor name/,
  );
});

// ---------------- pickle ----------------

Deno.test("pickle: protocols 0-5 golden data pickles decode to the same values", () => {
  for (let p = 0; p <= 5; p++) {
    const v = unpickle(golden(`data_p${p}.pkl`), { handlers: torchHandlers() }) as Map<unknown, unknown>;
    const plain = toPlain(v) as Record<string, unknown>;
    for (const k of ["set", "frozenset"]) plain[k] = (plain[k] as number[]).sort();
    assert.deepEqual(plain, expected["data.pkl"], `protocol ${p}`);
    assert.ok(isTuple(v.get("tuple")), `protocol ${p}: tuples stay tuples`);
    const shared = v.get("shared") as unknown[];
    assert.equal(shared[0], shared[1], `protocol ${p}: memo keeps shared references`);
    assert.ok(v.get("bytes") instanceof Uint8Array);
  }
});

Deno.test("pickle: numpy arrays inside pickles (protocol 2 reconstruct, protocol 5 frombuffer)", () => {
  for (const file of ["numpy_p2.pkl", "numpy_p5.pkl"]) {
    const v = unpickle(golden(file), { handlers: torchHandlers() }) as Map<string, unknown>;
    const e = expected["numpy.pkl"];
    for (const k of ["a", "f", "h"]) assertMatches(v.get(k) as HostArray, e[k], `${file}:${k}`);
    assert.equal(v.get("s"), 2.5);
  }
});

Deno.test("pickle: malicious globals stay inert and nothing runs", () => {
  try {
    Deno.removeSync("/tmp/io_golden_pwned");
  } catch { /* absent */ }
  const v = unpickle(golden("malicious_p2.pkl")) as Map<string, PickleObject>;
  const evil = v.get("x")!;
  assert.ok(evil instanceof PickleObject);
  assert.equal(evil.callableName, "posix.system");
  assert.deepEqual([...evil.args], ["touch /tmp/io_golden_pwned"]);
  const list = unpickle(golden("malicious_p4.pkl"), { handlers: torchHandlers() }) as PickleObject[];
  assert.deepEqual(list.map((o) => o.callableName), ["builtins.eval", "posix.system"]);
  assert.throws(() => Deno.statSync("/tmp/io_golden_pwned"), "no side effect happened");
});

/** Builds a pickle from opcodes (strings are latin1 bytes). */
const pk = (...parts: (string | number[])[]) =>
  new Uint8Array(parts.flatMap((p) => typeof p === "string" ? [...p].map((c) => c.charCodeAt(0)) : p));

Deno.test("pickle: opcode semantics (globals, reduce, build, newobj_ex, persistent ids, pop/dup, handlers)", () => {
  // GLOBAL + REDUCE without a handler -> inert record; BUILD records state; SETITEMS/APPENDS recorded too.
  const obj = unpickle(pk("\x80\x02cmod\nKls\n)R}X\x01\x00\x00\x00aK\x05sb(K\x01K\x02u(K\x07e."));
  assert.ok(obj instanceof PickleObject);
  assert.equal(obj.callableName, "mod.Kls");
  assert.deepEqual([...(obj.$state as Map<string, number>)], [["a", 5]]);
  assert.deepEqual([...obj.$items!], [[1, 2]]);
  assert.deepEqual(obj.$list, [7]);
  // With a handler the call becomes data.
  const handlers = new Map([["mod.Kls", (args: readonly unknown[]) => ({ made: args })]]);
  assert.deepEqual(unpickle(pk("cmod\nKls\nK\x03\x85R."), { handlers }), { made: [3] });
  // NEWOBJ_EX passes kwargs; STACK_GLOBAL builds names from strings.
  const ex = unpickle(pk("\x80\x04\x8c\x01m\x8c\x01C\x93)}\x8c\x01kK\x01s\x92.")) as PickleObject;
  assert.equal(ex.callableName, "m.C");
  assert.equal(ex.$new, true);
  assert.deepEqual([...ex.kwargs!], [["k", 1]]);
  // Persistent ids go to the caller.
  assert.deepEqual(unpickle(pk("Pabc\n."), { persistentLoad: (id) => ["got", id] }), ["got", "abc"]);
  assert.deepEqual(unpickle(pk("K\x09\x85Q."), { persistentLoad: (id) => ["got", id] }), ["got", [9]]);
  // POP, POP_MARK, DUP, LONG_BINPUT/GET, INST/OBJ, text INT/LONG/FLOAT/STRING.
  assert.deepEqual(unpickle(pk("K\x01K\x020(K\x0312\x86.")), [1, 1]);
  assert.equal((unpickle(pk("]r\x05\x00\x00\x00j\x05\x00\x00\x00\x86.")) as unknown[]).length, 2);
  assert.ok(unpickle(pk("(K\x01imod\nF\n.")) instanceof PickleObject);
  assert.equal((unpickle(pk("(cmod\nF\nK\x02o.")) as PickleObject).args[0], 2);
  assert.deepEqual(unpickle(pk("(I42\nL-7L\nF2.5\nS'a\\n\\x41'\nI01\nt.")), [42, -7, 2.5, "a\nA", true]);
  assert.equal(unpickle(pk("L123456789012345678901234567890L\n.")), 123456789012345678901234567890n);
  assert.equal(unpickle(pk("\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x80.")), -(2n ** 71n));
  assert.equal(unpickle(pk("\x8b\x02\x00\x00\x00\xff\x7f.")), 32767);
  // Frames, memoize, sets, bytearray8.
  const framed = unpickle(
    pk("\x80\x04\x95\x0c\x00\x00\x00\x00\x00\x00\x00\x8f\x94(K\x01K\x02\x90h\x00\x86."),
  );
  assert.deepEqual((framed as unknown[]).map((s) => [...(s as Set<number>)]), [[1, 2], [1, 2]]);
  assert.deepEqual(Array.from(unpickle(pk("\x96\x02\x00\x00\x00\x00\x00\x00\x00hi.")) as Uint8Array), [
    104,
    105,
  ]);
  // Python 2 strings, 8-byte-length forms, READONLY_BUFFER.
  assert.deepEqual(unpickle(pk("(T\x02\x00\x00\x00\xe9aU\x01bt.")), ["\xe9a", "b"]);
  assert.equal(unpickle(pk("\x8d\x02\x00\x00\x00\x00\x00\x00\x00\xc3\xa9.")), "\xe9");
  assert.deepEqual(Array.from(unpickle(pk("\x8e\x01\x00\x00\x00\x00\x00\x00\x00z\x98.")) as Uint8Array), [
    122,
  ]);
  assert.equal(unpickle(pk("Vcaf\xe9 \\u2713\n.")), "caf\xe9 \u2713");
  // unpickleAt reports where the pickle ended, so streams of pickles can be read in turn.
  const two = pk("K\x01.K\x02.");
  const first = unpickleAt(two, 0);
  assert.deepEqual([first.value, unpickleAt(two, first.end).value], [1, 2]);
  assert.ok(unpickle(pk("cos\nsystem\n.")) instanceof PickleGlobal);
});

Deno.test("pickle: malformed input gives clear errors naming opcode and byte offset", () => {
  assertThrowsMatching(() => unpickle(pk("\x80\x02K\x01\xff.")), /unknown opcode 0xff .*at byte 4/);
  assertThrowsMatching(() => unpickle(pk("\x80\x02K\x01")), /truncated input: no STOP/);
  assertThrowsMatching(
    () => unpickle(pk("X\x10\x00\x00\x00abc")),
    /truncated input: needs 16 bytes.*BINUNICODE at byte 0/,
  );
  assertThrowsMatching(() => unpickle(pk("J\x01\x00")), /truncated input.*BININT at byte 0/);
  assertThrowsMatching(() => unpickle(pk("\x95\xff\x00\x00\x00\x00\x00\x00\x00K\x01.")), /FRAME at byte 0/);
  assertThrowsMatching(() => unpickle(pk("\x80\x09.")), /unsupported pickle protocol 9/);
  assertThrowsMatching(() => unpickle(pk(".")), /stack underflow.*STOP/);
  assertThrowsMatching(() => unpickle(pk("K\x01t.")), /no MARK.*TUPLE/);
  assertThrowsMatching(() => unpickle(pk("h\x07.")), /memo key 7 not found.*BINGET/);
  assertThrowsMatching(() => unpickle(pk("Pabc\n.")), /no persistentLoad/);
  assertThrowsMatching(() => unpickle(pk("\x82\x01.")), /extension registry.*EXT1/);
  assertThrowsMatching(() => unpickle(pk("\x97.")), /out-of-band.*NEXT_BUFFER/);
  assertThrowsMatching(() => unpickle(pk(")K\x01a.")), /not a list.*APPEND/);
  assertThrowsMatching(() => unpickle(pk("K\x01K\x02K\x03s.")), /not a dict.*SETITEM/);
  assertThrowsMatching(() => unpickle(pk("K\x01}b.")), /BUILD on a value that is not an object/);
  assertThrowsMatching(() => unpickle(pk("X\x02\x00\x00\x00\xff\xfe.")), /invalid UTF-8/);
  assertThrowsMatching(() => unpickle(pk("I12x\n.")), /bad integer/);
  assertThrowsMatching(() => unpickle(pk("Fabc\n.")), /bad float/);
  assertThrowsMatching(() => unpickle(pk("Sabc\n.")), /not quoted/);
  const deep = unpickle(pk("]".repeat(1500) + "a".repeat(1499) + "."));
  assertThrowsMatching(() => toPlain(deep), /nested deeper than 1000/);
  const handlers = new Map([["m.f", () => {
    throw new Error("boom");
  }]]);
  assertThrowsMatching(
    () => unpickle(pk("cm\nf\n)R."), { handlers }),
    /handler for 'm\.f' failed: boom.*REDUCE at byte 6/,
  );
});
