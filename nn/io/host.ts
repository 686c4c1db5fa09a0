// Host (CPU-side) arrays: the common currency of every file reader and writer in nn/io.
// Data is always C-order (row-major) and native little-endian; f16/bf16 keep their raw 16-bit patterns.

export type HostDType = "f32" | "f64" | "f16" | "bf16" | "i64" | "i32" | "i16" | "i8" | "u8" | "bool";

export type HostData =
  | Float32Array
  | Float64Array
  | Int32Array
  | Uint8Array
  | Int8Array
  | Int16Array
  | Uint16Array
  | BigInt64Array;

export interface HostArray {
  dtype: HostDType;
  shape: number[];
  data: HostData;
}

/** Bytes per element of each dtype. */
export const DTYPE_BYTES: Readonly<Record<HostDType, number>> = {
  f32: 4,
  f64: 8,
  f16: 2,
  bf16: 2,
  i64: 8,
  i32: 4,
  i16: 2,
  i8: 1,
  u8: 1,
  bool: 1,
};

type HostDataCtor = { new (n: number): HostData; new (b: ArrayBuffer): HostData };

const CTORS: Record<HostDType, HostDataCtor> = {
  f32: Float32Array,
  f64: Float64Array,
  f16: Uint16Array,
  bf16: Uint16Array,
  i64: BigInt64Array,
  i32: Int32Array,
  i16: Int16Array,
  i8: Int8Array,
  u8: Uint8Array,
  bool: Uint8Array,
};

export function isHostDType(s: unknown): s is HostDType {
  return typeof s === "string" && Object.hasOwn(DTYPE_BYTES, s);
}

/** Number of elements of a shape; throws on negative or non-integer dimensions. */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new Error(`invalid dimension ${d} in shape [${shape}]`);
    n *= d;
  }
  if (!Number.isSafeInteger(n)) throw new Error(`shape [${shape}] has too many elements`);
  return n;
}

/** A zero-filled typed array of the right kind for `dtype`. */
export function allocData(dtype: HostDType, n: number): HostData {
  return new CTORS[dtype](n);
}

/** Builds a HostArray, checking that data kind and length match dtype and shape. Zero-filled without data. */
export function hostArray(dtype: HostDType, shape: number[], data?: HostData): HostArray {
  if (!isHostDType(dtype)) throw new Error(`unknown host dtype '${dtype}'`);
  const n = numel(shape);
  const d = data ?? allocData(dtype, n);
  if (!(d instanceof CTORS[dtype])) {
    throw new Error(`dtype ${dtype} needs ${CTORS[dtype].name} data, got ${d.constructor.name}`);
  }
  if (d.length !== n) throw new Error(`shape [${shape}] needs ${n} elements, data has ${d.length}`);
  return { dtype, shape: [...shape], data: d };
}

export function isHostArray(x: unknown): x is HostArray {
  if (typeof x !== "object" || x === null) return false;
  const a = x as HostArray;
  return isHostDType(a.dtype) && Array.isArray(a.shape) && ArrayBuffer.isView(a.data);
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Copies raw bytes into a fresh typed array of `dtype` (copying also fixes alignment).
 * `littleEndian` says how the bytes are ordered in the source.
 */
export function decodeBytes(dtype: HostDType, bytes: Uint8Array, littleEndian = true): HostData {
  const size = DTYPE_BYTES[dtype];
  if (bytes.length % size !== 0) {
    throw new Error(`${bytes.length} bytes is not a whole number of ${dtype} elements`);
  }
  const copy = bytes.slice();
  if (size > 1 && littleEndian !== LITTLE_ENDIAN_HOST) swapBytesInPlace(copy, size);
  return new CTORS[dtype](copy.buffer);
}

/** The array's elements as bytes in the requested byte order (a copy). */
export function encodeBytes(a: HostArray, littleEndian = true): Uint8Array {
  const out = new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength).slice();
  const size = DTYPE_BYTES[a.dtype];
  if (size > 1 && littleEndian !== LITTLE_ENDIAN_HOST) swapBytesInPlace(out, size);
  return out;
}

function swapBytesInPlace(b: Uint8Array, size: number): void {
  for (let i = 0; i < b.length; i += size) {
    for (let lo = i, hi = i + size - 1; lo < hi; lo++, hi--) {
      const t = b[lo];
      b[lo] = b[hi];
      b[hi] = t;
    }
  }
}

/**
 * Gathers a strided view (element strides, element offset) of `src` into a new C-order array.
 * Used for Fortran-order npy data and non-contiguous torch tensors.
 */
export function gatherStrided(
  src: HostData,
  shape: readonly number[],
  strides: readonly number[],
  offset: number,
): HostData {
  if (shape.length !== strides.length) {
    throw new Error(`shape [${shape}] and strides [${strides}] differ in rank`);
  }
  const n = numel(shape);
  const out = new (src.constructor as HostDataCtor)(n);
  if (n === 0) return out;
  // Bounds: the lowest and highest element the view touches must lie inside src.
  let lo = offset, hi = offset;
  for (let k = 0; k < shape.length; k++) {
    const span = (shape[k] - 1) * strides[k];
    if (span < 0) lo += span;
    else hi += span;
  }
  if (lo < 0 || hi >= src.length) {
    throw new Error(
      `strided view (offset ${offset}, shape [${shape}], strides [${strides}]) reads outside a storage of ${src.length} elements`,
    );
  }
  const rank = shape.length;
  const idx = new Array<number>(rank).fill(0);
  let pos = offset;
  // deno-lint-ignore no-explicit-any
  const o = out as any, s = src as any;
  for (let i = 0; i < n; i++) {
    o[i] = s[pos];
    // Odometer increment over the C-order index, updating the source position incrementally.
    for (let k = rank - 1; k >= 0; k--) {
      if (++idx[k] < shape[k]) {
        pos += strides[k];
        break;
      }
      pos -= (shape[k] - 1) * strides[k];
      idx[k] = 0;
    }
  }
  return out;
}

/** C-order element strides of a shape. */
export function contiguousStrides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let k = shape.length - 1; k >= 0; k--) {
    s[k] = acc;
    acc *= shape[k];
  }
  return s;
}

// ---- 16-bit floats ----

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** IEEE half bits -> number. */
export function f16BitsToNumber(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** number -> IEEE half bits (round to nearest even, overflow to infinity). */
export function numberToF16Bits(x: number): number {
  f32Scratch[0] = x;
  const b = u32Scratch[0];
  const sign = (b >>> 16) & 0x8000;
  const e = (b >>> 23) & 0xff;
  let m = b & 0x7fffff;
  if (e === 0xff) return sign | 0x7c00 | (m ? 0x200 : 0);
  const he = e - 127 + 15;
  if (he >= 31) return sign | 0x7c00;
  if (he <= 0) {
    if (he < -10) return sign;
    m |= 0x800000;
    const shift = 14 - he;
    let hm = m >>> shift;
    const rem = m & ((1 << shift) - 1), half = 1 << (shift - 1);
    if (rem > half || (rem === half && hm & 1)) hm++;
    return sign | hm;
  }
  let out = sign | (he << 10) | (m >>> 13);
  const rem = m & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && out & 1)) out++; // may carry into the exponent: still correct
  return out;
}

/** bf16 bits -> number. */
export function bf16BitsToNumber(h: number): number {
  u32Scratch[0] = h << 16;
  return f32Scratch[0];
}

/** number -> bf16 bits (round to nearest even; NaN stays NaN). */
export function numberToBf16Bits(x: number): number {
  f32Scratch[0] = x;
  const b = u32Scratch[0];
  if (Number.isNaN(x)) return (b >>> 16) | 0x40;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Converts any HostArray's data to float32 (f16/bf16 decoded, int64 via Number). */
export function toFloat32(a: HostArray): Float32Array {
  const n = a.data.length;
  const out = new Float32Array(n);
  if (a.dtype === "f16") {
    const d = a.data as Uint16Array;
    for (let i = 0; i < n; i++) out[i] = f16BitsToNumber(d[i]);
  } else if (a.dtype === "bf16") {
    const d = a.data as Uint16Array;
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < n; i++) bits[i] = d[i] << 16;
  } else if (a.dtype === "i64") {
    const d = a.data as BigInt64Array;
    for (let i = 0; i < n; i++) out[i] = Number(d[i]);
  } else {
    out.set(a.data as Exclude<HostData, BigInt64Array>);
  }
  return out;
}

/** Converts any HostArray's data to float64 (exact for every dtype except huge int64). */
export function toFloat64(a: HostArray): Float64Array {
  if (a.dtype === "f16" || a.dtype === "bf16") return Float64Array.from(toFloat32(a));
  if (a.dtype === "i64") return Float64Array.from(a.data as BigInt64Array, Number);
  return Float64Array.from(a.data as Exclude<HostData, BigInt64Array>);
}

/** Wraps float32 data as an f32 HostArray. */
export function fromFloat32(shape: number[], data: Float32Array): HostArray {
  return hostArray("f32", shape, data);
}

/** Converts numbers into a HostArray of any dtype (f16/bf16 rounded to nearest even). */
export function fromNumbers(dtype: HostDType, shape: number[], values: ArrayLike<number>): HostArray {
  const n = numel(shape);
  if (values.length !== n) throw new Error(`shape [${shape}] needs ${n} values, got ${values.length}`);
  const data = allocData(dtype, n);
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (dtype === "f16") (data as Uint16Array)[i] = numberToF16Bits(v);
    else if (dtype === "bf16") (data as Uint16Array)[i] = numberToBf16Bits(v);
    else if (dtype === "i64") (data as BigInt64Array)[i] = BigInt(Math.trunc(v));
    else if (dtype === "bool") (data as Uint8Array)[i] = v ? 1 : 0;
    else (data as Float32Array)[i] = v;
  }
  return { dtype, shape: [...shape], data };
}
