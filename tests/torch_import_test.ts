// PyTorch files read as data: torch.save zip and legacy streams, TorchScript archives and SGA network
// pickles, against golden files from tests/golden/make_io_golden.py, plus hostile and broken input.
import assert from "node:assert/strict";
import { zipSync } from "fflate";
import type { HostArray } from "../nn/io/host.ts";
import { encodeNpz } from "../nn/io/npz.ts";
import { PickleObject } from "../nn/io/pickle.ts";
import { encodeSafetensors } from "../nn/io/safetensors.ts";
import {
  flattenTensors,
  loadStateDict,
  readLegacyTorchSave,
  readNetworkPickle,
  readTorchZip,
  type TorchNetwork,
  TorchStorage,
} from "../nn/io/torch.ts";
import { assertMatches, type Entry, expected, golden } from "./io_golden.ts";

/** Bytes from a string of latin1 characters (pickle opcodes). */
const bytesOf = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

function assertState(state: Map<string, HostArray>, want: Record<string, Entry>, what: string): void {
  assert.deepEqual([...state.keys()].sort(), Object.keys(want).sort(), `${what}: names`);
  for (const [k, e] of Object.entries(want)) assertMatches(state.get(k)!, e, `${what}:${k}`);
}

function assertThrowsMatching(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: Error) => {
    assert.match(e.message, re);
    return true;
  });
}

Deno.test("torch zip: state dict with non-contiguous, offset, half, bf16, int64, bool and nested tensors", () => {
  const sd = readTorchZip(golden("state_zip.pt"));
  assert.ok(sd instanceof Map);
  assertState(flattenTensors(sd), expected["state.pt"], "state_zip");
  assertState(loadStateDict(golden("state_zip.pt")), expected["state.pt"], "loadStateDict(zip)");
});

Deno.test("torch legacy: the same state dict from a _use_new_zipfile_serialization=False stream", () => {
  assertState(flattenTensors(readLegacyTorchSave(golden("state_legacy.pt"))), expected["state.pt"], "legacy");
  assertState(loadStateDict(golden("state_legacy.pt")), expected["state.pt"], "loadStateDict(legacy)");
});

Deno.test("torch: a storage saved as a zip blob, as newer _load_from_bytes blobs are", () => {
  const s = readLegacyTorchSave(golden("storage_zip.pt"));
  assert.ok(s instanceof TorchStorage);
  assert.deepEqual(Array.from(s.data as Float32Array), [1, 2, 3]);
});

Deno.test("torch zip: a whole pickled nn.Module flattens to its state_dict names", () => {
  assertState(loadStateDict(golden("module_zip.pt")), expected["module_zip.pt"], "module");
});

Deno.test("TorchScript: parameters and buffers by dotted attribute path", () => {
  const state = loadStateDict(golden("script.pt"));
  assertState(state, expected["script.pt"], "script");
  const top = readTorchZip(golden("script.pt"));
  assert.ok(top instanceof PickleObject);
  assert.equal(top.callableName, "__torch__.ScriptTop");
});

Deno.test("TorchScript (traced): captured tensors come from the constants table as CONSTANTS.c<i>", () => {
  assertState(loadStateDict(golden("traced.pt")), expected["traced.pt"], "traced");
});

Deno.test("SGA network pickle: networks, init kwargs and state dicts match PyTorch's state_dict()", () => {
  try {
    Deno.removeSync("/tmp/io_golden_src_executed");
  } catch { /* absent */ }
  const nets = readNetworkPickle(golden("sga_snapshot.pkl"));
  const want = expected["sga_snapshot.pkl"];
  for (const name of ["G", "D", "G_ema"]) {
    const net = nets[name] as TorchNetwork;
    assert.equal(net.className, want[name].className, name);
    assert.deepEqual(net.initKwargs, want[name].initKwargs, `${name} init kwargs`);
    assertState(net.state, want[name].state, name);
    assert.match(net.moduleSrc, /os\.system/); // kept as text ...
  }
  assert.throws(() => Deno.statSync("/tmp/io_golden_src_executed")); // ... and never run
  assert.deepEqual(nets.training_set_kwargs, want.training_set_kwargs);
  assert.equal(nets.augment_pipe, null);
  // The non-persistent buffer is left out, as state_dict() does; the persistent one is kept.
  const g = nets.G as TorchNetwork;
  assert.ok(g.state.has("mapping.w_avg") && !g.state.has("mapping.scratch"));
  assert.ok(g.state.has("synthesis.b8.conv0.weight"));

  const ema = loadStateDict(golden("sga_snapshot.pkl"), { network: "G_ema" });
  assertState(ema, want.G_ema.state, "loadStateDict G_ema");
  const all = loadStateDict(golden("sga_snapshot.pkl"));
  assert.ok(
    all.has("G.mapping.fc0.weight") && all.has("D.out.weight") && all.has("G_ema.synthesis.b4.const"),
  );
  assertThrowsMatching(() => loadStateDict(golden("sga_snapshot.pkl"), { network: "X" }), /no network 'X'/);
});

Deno.test("loadStateDict also reads npz and safetensors; refuses unknown formats", () => {
  const a: HostArray = { dtype: "f32", shape: [2], data: new Float32Array([1, 2]) };
  assert.deepEqual([...loadStateDict(encodeNpz(new Map([["x", a]])))].map(([k, v]) => [k, v.shape]), [["x", [
    2,
  ]]]);
  assert.deepEqual([...loadStateDict(encodeSafetensors(new Map([["y", a]])))].map(([k]) => k), ["y"]);
  assertThrowsMatching(
    () => loadStateDict(new TextEncoder().encode("hello world")),
    /unrecognised checkpoint format/,
  );
});

Deno.test("torch zip: _rebuild_tensor_v3 views an untyped byte storage as the tensor's dtype", () => {
  const pkl = bytesOf(
    "\x80\x02ctorch._utils\n_rebuild_tensor_v3\n((X\x07\x00\x00\x00storagectorch\nUntypedStorage\nX\x01\x00\x00\x000" +
      "X\x03\x00\x00\x00cpuK\x08tQK\x00K\x02\x85K\x01\x85\x89Nctorch\nfloat32\ntR.",
  );
  const data = new Uint8Array(new Float32Array([1.5, -2]).buffer);
  const t = readTorchZip(zipSync({ "a/data.pkl": pkl, "a/data/0": data })) as HostArray;
  assert.equal(t.dtype, "f32");
  assert.deepEqual(Array.from(t.data as Float32Array), [1.5, -2]);
});

Deno.test("torch: hostile and broken files give clear errors or inert data, never execution", () => {
  // A pickle that is not a network snapshot (its REDUCE of os.system stays inert).
  assertThrowsMatching(() => readNetworkPickle(golden("malicious_p2.pkl")), /no persistent networks/);
  assertThrowsMatching(() => readNetworkPickle(golden("data_p4.pkl")), /no persistent networks/);
  // Truncated network pickle and legacy stream.
  const sga = golden("sga_snapshot.pkl");
  assertThrowsMatching(() => readNetworkPickle(sga.slice(0, 5000)), /network pickle: .*truncated/);
  const legacy = golden("state_legacy.pt");
  assertThrowsMatching(
    () => readLegacyTorchSave(legacy.slice(0, legacy.length - 10)),
    /truncated (storage|before the size of storage)/,
  );
  assertThrowsMatching(
    () => readLegacyTorchSave(legacy.slice(0, 300)),
    /legacy torch\.save: object: pickle: truncated/,
  );
  const badMagic = legacy.slice();
  badMagic[5] ^= 0xff;
  assertThrowsMatching(() => readLegacyTorchSave(badMagic), /bad magic number/);
  assertThrowsMatching(() => readLegacyTorchSave(new Uint8Array([0x1f, 0x8b])), /bad magic/);
  // Zip archives: no data.pkl, a missing storage record, a storage with the wrong size, a truncated zip.
  assertThrowsMatching(() => readTorchZip(zipSync({ "a/x.txt": new Uint8Array(1) })), /no data\.pkl/);
  const zipped = golden("state_zip.pt");
  assertThrowsMatching(() => readTorchZip(zipped.slice(0, 200)), /malformed or truncated zip/);
  const pkl = bytesOf(
    "\x80\x02(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x04tQ.",
  );
  assertThrowsMatching(
    () => readTorchZip(zipSync({ "a/data.pkl": pkl })),
    /missing storage record 'data\/0'/,
  );
  assertThrowsMatching(
    () => readTorchZip(zipSync({ "a/data.pkl": pkl, "a/data/0": new Uint8Array(7) })),
    /storage record 'data\/0' declares 7 bytes, the pickle's 4 f32 elements are 16 bytes/,
  );
  // A tensor view that overruns its storage.
  const view = bytesOf(
    "\x80\x02ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x02tQK\x00K\x05\x85K\x01\x85\x89NtR.",
  );
  assertThrowsMatching(
    () => readTorchZip(zipSync({ "a/data.pkl": view, "a/data/0": new Uint8Array(8) })),
    /overruns its storage/,
  );
  // Unsupported storage type.
  const complex = bytesOf(
    "\x80\x02(X\x07\x00\x00\x00storagectorch\nComplexFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x01tQ.",
  );
  assertThrowsMatching(
    () => readTorchZip(zipSync({ "a/data.pkl": complex, "a/data/0": new Uint8Array(8) })),
    /unsupported torch storage type torch\.ComplexFloatStorage/,
  );
});
