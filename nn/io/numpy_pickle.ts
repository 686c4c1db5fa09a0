// Pickled numpy arrays rebuilt as data: `_reconstruct` makes an empty placeholder which BUILD's state
// (version, shape, dtype, is_fortran, raw bytes) fills in place, so memo references see the result.

import {
  bf16BitsToNumber,
  contiguousStrides,
  decodeBytes,
  DTYPE_BYTES,
  f16BitsToNumber,
  gatherStrided,
  type HostArray,
  numel,
} from "./host.ts";
import { parseDescr } from "./npy.ts";
import type { PickleHandler } from "./pickle.ts";
import { SET_STATE } from "./pickle_values.ts";

/** A numpy dtype under construction: numpy.dtype('f8', ...) then BUILD sets the byte order. */
class NumpyDType {
  byteorder = "=";
  constructor(readonly kind: string) {}
  [SET_STATE](state: unknown): void {
    if (!Array.isArray(state) || typeof state[1] !== "string") throw new Error("bad numpy dtype state");
    if (state[2] !== null && state[2] !== undefined) {
      throw new Error("structured numpy dtypes are unsupported");
    }
    this.byteorder = state[1];
  }
  get descr(): string {
    return (this.byteorder === "|" ? "|" : this.byteorder) + this.kind;
  }
}

function rawBytes(x: unknown): Uint8Array {
  if (x instanceof Uint8Array) return x;
  // Python 2 pickles loaded with encoding='latin1' carry raw data as a latin1 str.
  if (typeof x === "string") return Uint8Array.from(x, (c) => c.charCodeAt(0) & 0xff);
  if (Array.isArray(x)) {
    throw new Error("numpy object arrays are refused (their items are arbitrary objects)");
  }
  throw new Error("numpy array data is not bytes");
}

function descrOf(dt: unknown): string {
  if (dt instanceof NumpyDType) return dt.descr;
  throw new Error("numpy array dtype is not a numpy.dtype");
}

function makeArray(shape: unknown, dt: unknown, fortran: boolean, raw: unknown): HostArray {
  if (!Array.isArray(shape)) throw new Error("numpy array shape is not a tuple");
  const dims = shape.map(Number);
  const { dtype, littleEndian } = parseDescr(descrOf(dt));
  const bytes = rawBytes(raw);
  const nbytes = numel(dims) * DTYPE_BYTES[dtype];
  if (bytes.length !== nbytes) {
    throw new Error(`numpy array data has ${bytes.length} bytes, shape needs ${nbytes}`);
  }
  let data = decodeBytes(dtype, bytes, littleEndian);
  if (fortran && dims.length > 1) {
    data = gatherStrided(data, dims, contiguousStrides([...dims].reverse()).reverse(), 0);
  }
  return { dtype, shape: dims, data };
}

function fillArray(target: Record<string | symbol, unknown>, state: unknown): void {
  if (!Array.isArray(state) || state.length !== 5) throw new Error("bad numpy array state");
  const [, shape, dt, fortran, raw] = state;
  delete target[SET_STATE];
  Object.assign(target, makeArray(shape, dt, fortran === true, raw));
}

/** Protocol 5: _frombuffer(buffer, dtype, shape, order). */
const fromBuffer: PickleHandler = (args) => makeArray(args[2], args[1], args[3] === "F", args[0]);

const reconstruct: PickleHandler = () => {
  const placeholder: Record<string | symbol, unknown> = {};
  placeholder[SET_STATE] = (state: unknown) => fillArray(placeholder, state);
  return placeholder;
};

const dtype: PickleHandler = (args) => {
  if (typeof args[0] !== "string") throw new Error("numpy.dtype needs a type string");
  return new NumpyDType(args[0]);
};

/** numpy scalars: scalar(dtype, raw bytes) -> number (bigint for int64 beyond 2^53). */
const scalar: PickleHandler = (args) => {
  const { dtype: dt, littleEndian } = parseDescr(descrOf(args[0]));
  const data = decodeBytes(dt, rawBytes(args[1]), littleEndian);
  if (data.length !== 1) throw new Error("numpy scalar data is not one element");
  const v = data[0];
  if (typeof v === "bigint") return Number.isSafeInteger(Number(v)) ? Number(v) : v;
  if (dt === "f16") return f16BitsToNumber(v);
  if (dt === "bf16") return bf16BitsToNumber(v);
  return dt === "bool" ? v !== 0 : v;
};

export function numpyHandlers(): Map<string, PickleHandler> {
  const m = new Map<string, PickleHandler>();
  for (const core of ["numpy.core.multiarray", "numpy._core.multiarray"]) {
    m.set(`${core}._reconstruct`, reconstruct);
    m.set(`${core}.scalar`, scalar);
  }
  for (const numeric of ["numpy.core.numeric", "numpy._core.numeric"]) {
    m.set(`${numeric}._frombuffer`, fromBuffer);
  }
  m.set("numpy.dtype", dtype);
  return m;
}
