// The allow-list of pure data constructors that torch (and numpy) pickles call. Each handler builds
// plain data from its arguments; nothing here resolves a name to code.

import { numpyHandlers } from "./numpy_pickle.ts";
import type { PickleHandler } from "./pickle.ts";
import { globalName, makeTuple, PickleObject } from "./pickle_values.ts";
import { rebuildTensor, retypeStorage, torchDType } from "./torch_tensor.ts";

const orderedDict: PickleHandler = (args) => {
  const m = new Map<unknown, unknown>();
  // OrderedDict(iterable_of_pairs) appears in protocol 0/1 pickles; later protocols use SETITEMS.
  if (Array.isArray(args[0])) {
    for (const kv of args[0]) {
      if (!Array.isArray(kv) || kv.length !== 2) throw new Error("OrderedDict items are not pairs");
      m.set(kv[0], kv[1]);
    }
  }
  return m;
};

const makeSet: PickleHandler = (args) => new Set(Array.isArray(args[0]) ? args[0] : []);

/** `_codecs.encode(text, 'latin1')`: how protocol 2 pickles spell bytes. */
const codecsEncode: PickleHandler = (args) => {
  const [text, enc] = args;
  if (typeof text !== "string") throw new Error("_codecs.encode needs a str");
  if (enc !== "latin1" && enc !== "latin-1" && enc !== "iso-8859-1") {
    throw new Error(`_codecs.encode with encoding ${JSON.stringify(enc)} is not supported`);
  }
  return Uint8Array.from(text, (c) => c.charCodeAt(0) & 0xff);
};

const bytearray: PickleHandler = (args) => {
  if (args.length === 0) return new Uint8Array(0);
  if (args[0] instanceof Uint8Array) return args[0].slice();
  if (typeof args[0] === "string") return codecsEncode([args[0], args[1] ?? "latin1"]);
  throw new Error("bytearray argument is not bytes");
};

const rebuildTensorV2: PickleHandler = (args) => rebuildTensor(args[0], args[1], args[2], args[3]);

/** torch >= 2 for dtypes without a typed storage: (untyped storage, offset, size, stride, grad, hooks, dtype). */
const rebuildTensorV3: PickleHandler = (args) =>
  rebuildTensor(retypeStorage(args[0], torchDType(args[6])), args[1], args[2], args[3]);

/** A Parameter is its data; requires_grad and hooks are training-time state we do not need. */
const rebuildParameter: PickleHandler = (args) => args[0];

/** The shared allow-list for torch.save archives, legacy streams and network pickles. */
export function torchHandlers(extra?: Map<string, PickleHandler>): Map<string, PickleHandler> {
  const m = new Map<string, PickleHandler>([
    ["collections.OrderedDict", orderedDict],
    ["builtins.set", makeSet],
    ["builtins.frozenset", makeSet],
    ["__builtin__.set", makeSet],
    ["__builtin__.frozenset", makeSet],
    ["builtins.bytearray", bytearray],
    ["__builtin__.bytearray", bytearray],
    ["_codecs.encode", codecsEncode],
    ["torch.Size", (args) => makeTuple(Array.isArray(args[0]) ? [...args[0]] : [])],
    // SGA's EasyDict is a dict subclass: data is filled in by SETITEMS.
    ["dnnlib.util.EasyDict", () => new Map()],
    ["dnnlib.EasyDict", () => new Map()],
    ["torch._utils._rebuild_tensor", rebuildTensorV2],
    ["torch._utils._rebuild_tensor_v2", rebuildTensorV2],
    ["torch._utils._rebuild_tensor_v3", rebuildTensorV3],
    ["torch._utils._rebuild_parameter", rebuildParameter],
    ["torch._utils._rebuild_parameter_with_state", rebuildParameter],
    // TorchScript helpers that wrap plain values.
    ["torch.jit._pickle.build_intlist", (args) => args[0]],
    ["torch.jit._pickle.build_doublelist", (args) => args[0]],
    ["torch.jit._pickle.build_boollist", (args) => args[0]],
    ["torch.jit._pickle.build_tensorlist", (args) => args[0]],
    ["torch.jit._pickle.restore_type_tag", (args) => args[0]],
  ]);
  for (const [k, v] of numpyHandlers()) m.set(k, v);
  for (const [k, v] of extra ?? []) m.set(k, v);
  // Tensor subclasses: (func, type, args, state): apply func only when it is itself allow-listed.
  const fromType: PickleHandler = (args) => {
    const [func, , fargs] = args;
    const inner = m.get(globalName(func) ?? "");
    if (!inner || !Array.isArray(fargs)) return new PickleObject(func, Array.isArray(fargs) ? fargs : []);
    return inner(fargs);
  };
  m.set("torch._tensor._rebuild_from_type_v2", fromType);
  m.set("torch._tensor._rebuild_from_type", fromType);
  return m;
}
