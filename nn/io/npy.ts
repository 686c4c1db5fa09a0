// NumPy .npy files (format versions 1.0, 2.0, 3.0). Object arrays are refused: they would need unpickling.

import {
  contiguousStrides,
  decodeBytes,
  DTYPE_BYTES,
  encodeBytes,
  gatherStrided,
  type HostArray,
  type HostDType,
  numel,
} from "./host.ts";
import { parsePyLiteral } from "./py_literal.ts";

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"

/** Numpy kind+size -> our dtype. Unsigned types beyond u8 and complex types have no HostDType. */
const KIND_TO_DTYPE: Record<string, HostDType> = {
  f2: "f16",
  f4: "f32",
  f8: "f64",
  i1: "i8",
  i2: "i16",
  i4: "i32",
  i8: "i64",
  u1: "u8",
  b1: "bool",
};

const DTYPE_TO_DESCR: Partial<Record<HostDType, string>> = {
  f16: "<f2",
  f32: "<f4",
  f64: "<f8",
  i8: "|i1",
  i16: "<i2",
  i32: "<i4",
  i64: "<i8",
  u8: "|u1",
  bool: "|b1",
};

/** Parses a numpy type string such as '<f4', '>i8', '|b1' into a dtype and byte order. */
export function parseDescr(descr: string): { dtype: HostDType; littleEndian: boolean } {
  if (descr.includes("O")) {
    throw new Error(`npy: object dtype '${descr}' refused (it needs unpickling, which is never done)`);
  }
  const m = /^([<>|=]?)([a-zA-Z?])(\d+)$/.exec(descr);
  const dtype = m ? KIND_TO_DTYPE[m[2] + m[3]] : undefined;
  if (!m || !dtype) throw new Error(`npy: unsupported dtype '${descr}'`);
  return { dtype, littleEndian: m[1] !== ">" };
}

/** What an .npy header says: the dtype, shape, order, where the data starts and how many bytes it needs. */
export interface NpyLayout {
  dtype: HostDType;
  littleEndian: boolean;
  fortran: boolean;
  shape: number[];
  dataStart: number;
  nbytes: number;
}

/** Reads the header of an .npy file; `bytes` needs to hold the header only, not the data. */
export function npyLayout(bytes: Uint8Array): NpyLayout {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new Error("npy: bad magic (not a .npy file)");
  }
  const major = bytes[6], minor = bytes[7];
  if (![1, 2, 3].includes(major) || minor !== 0) {
    throw new Error(`npy: unsupported format version ${major}.${minor}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lenBytes = major === 1 ? 2 : 4;
  if (bytes.length < 8 + lenBytes) throw new Error("npy: truncated header length");
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const dataStart = 8 + lenBytes + headerLen;
  if (dataStart > bytes.length) {
    throw new Error(
      `npy: truncated header (needs ${headerLen} bytes, file has ${bytes.length - 8 - lenBytes})`,
    );
  }
  const headerBytes = bytes.subarray(8 + lenBytes, dataStart);
  const headerText = new TextDecoder(major === 3 ? "utf-8" : "latin1").decode(headerBytes);
  const h = parseHeader(headerText);
  return { ...h, dataStart, nbytes: numel(h.shape) * DTYPE_BYTES[h.dtype] };
}

/** Parses a whole .npy file. Fortran-order data is transposed into C order. */
export function parseNpy(bytes: Uint8Array): HostArray {
  const { dtype, littleEndian, fortran, shape, dataStart, nbytes } = npyLayout(bytes);
  if (bytes.length - dataStart < nbytes) {
    throw new Error(
      `npy: truncated data (shape [${shape}] ${dtype} needs ${nbytes} bytes, file has ${
        bytes.length - dataStart
      })`,
    );
  }
  let data = decodeBytes(dtype, bytes.subarray(dataStart, dataStart + nbytes), littleEndian);
  if (fortran && shape.length > 1) {
    // Fortran strides are the C strides of the reversed shape, reversed.
    const fStrides = contiguousStrides([...shape].reverse()).reverse();
    data = gatherStrided(data, shape, fStrides, 0);
  }
  return { dtype, shape, data };
}

function parseHeader(text: string) {
  let h;
  try {
    h = parsePyLiteral(text.trim());
  } catch (e) {
    throw new Error(`npy: bad header: ${(e as Error).message}`);
  }
  if (typeof h !== "object" || h === null || Array.isArray(h)) throw new Error("npy: header is not a dict");
  const { descr, fortran_order, shape } = h;
  if (typeof descr !== "string") {
    throw new Error(
      `npy: header 'descr' must be a type string, got ${
        JSON.stringify(descr)
      } (structured dtypes are unsupported)`,
    );
  }
  if (typeof fortran_order !== "boolean") throw new Error("npy: header lacks a boolean 'fortran_order'");
  if (
    !Array.isArray(shape) || !shape.every((d) => typeof d === "number" && Number.isSafeInteger(d) && d >= 0)
  ) {
    throw new Error(`npy: header 'shape' must be a tuple of non-negative ints, got ${JSON.stringify(shape)}`);
  }
  return { ...parseDescr(descr), fortran: fortran_order, shape: shape as number[] };
}

/** Encodes a HostArray as a .npy file (little endian, C order, version 1.0 unless the header needs 2.0). */
export function encodeNpy(a: HostArray): Uint8Array {
  const descr = DTYPE_TO_DESCR[a.dtype];
  if (!descr) {
    throw new Error(`npy: dtype ${a.dtype} has no numpy equivalent; convert it (e.g. toFloat32) first`);
  }
  const n = numel(a.shape);
  if (a.data.length !== n) {
    throw new Error(`npy: shape [${a.shape}] needs ${n} elements, data has ${a.data.length}`);
  }
  const shapeText = a.shape.length === 1 ? `(${a.shape[0]},)` : `(${a.shape.join(", ")})`;
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  // Pad with spaces and a final newline so the data starts on a 64-byte boundary.
  let major = 1, prefix = 10;
  if (dict.length + 1 + prefix > 0xffff) [major, prefix] = [2, 12];
  const total = Math.ceil((prefix + dict.length + 1) / 64) * 64;
  const header = dict + " ".repeat(total - prefix - dict.length - 1) + "\n";
  const body = encodeBytes(a, true);
  const out = new Uint8Array(total + body.length);
  out.set(MAGIC, 0);
  out[6] = major;
  out[7] = 0;
  const view = new DataView(out.buffer);
  if (major === 1) view.setUint16(8, header.length, true);
  else view.setUint32(8, header.length, true);
  out.set(new TextEncoder().encode(header), prefix);
  out.set(body, total);
  return out;
}
