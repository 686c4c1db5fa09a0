// Torch storages and tensors rebuilt as host data: a storage is a typed array of one dtype; a tensor
// is (storage, element offset, size, stride), copied into a C-order HostArray.

import {
  contiguousStrides,
  decodeBytes,
  DTYPE_BYTES,
  gatherStrided,
  type HostArray,
  type HostData,
  type HostDType,
  numel,
} from "./host.ts";
import { globalName } from "./pickle_values.ts";

/** A rebuilt torch storage: flat elements of one dtype. */
export class TorchStorage {
  constructor(readonly dtype: HostDType, readonly data: HostData) {}

  static fromBytes(dtype: HostDType, bytes: Uint8Array, littleEndian = true): TorchStorage {
    if (bytes.length % DTYPE_BYTES[dtype] !== 0) {
      throw new Error(`storage of ${bytes.length} bytes is not a whole number of ${dtype} elements`);
    }
    return new TorchStorage(dtype, decodeBytes(dtype, bytes, littleEndian));
  }
}

const STORAGE_DTYPES: Record<string, HostDType> = {
  FloatStorage: "f32",
  DoubleStorage: "f64",
  HalfStorage: "f16",
  BFloat16Storage: "bf16",
  LongStorage: "i64",
  IntStorage: "i32",
  ShortStorage: "i16",
  CharStorage: "i8",
  ByteStorage: "u8",
  BoolStorage: "bool",
  UntypedStorage: "u8",
};

/** `torch.FloatStorage` (or `torch.cuda.FloatStorage`) -> f32, etc. */
export function storageDType(storageType: unknown): HostDType {
  const name = globalName(storageType);
  const short = name?.replace(/^torch\.(cuda\.)?(storage\.)?/, "");
  const dtype = short !== undefined ? STORAGE_DTYPES[short] : undefined;
  if (!dtype) {
    throw new Error(`unsupported torch storage type ${name ?? JSON.stringify(String(storageType))}`);
  }
  return dtype;
}

export interface StoragePid {
  dtype: HostDType;
  key: string;
  location: string;
  numel: number;
  /** Legacy saves may reference a view of a root storage: (viewKey, element offset, element count). */
  view?: { key: string; offset: number; size: number };
}

/** Parses a persistent id `('storage', type, key, location, numel[, view_metadata])`. */
export function parseStoragePid(pid: unknown): StoragePid {
  if (!Array.isArray(pid) || pid[0] !== "storage" || pid.length < 5) {
    throw new Error(`unsupported persistent id ${describe(pid)} (expected a ('storage', ...) tuple)`);
  }
  const [, type, key, location, n, view] = pid;
  if (typeof key !== "string" && typeof key !== "number") throw new Error(`bad storage key ${describe(key)}`);
  const out: StoragePid = {
    dtype: storageDType(type),
    key: String(key),
    location: String(location),
    numel: Number(n),
  };
  if (Array.isArray(view) && view.length === 3) {
    out.view = { key: String(view[0]), offset: Number(view[1]), size: Number(view[2]) };
  }
  return out;
}

const TORCH_DTYPES: Record<string, HostDType> = {
  float32: "f32",
  float: "f32",
  float64: "f64",
  double: "f64",
  float16: "f16",
  half: "f16",
  bfloat16: "bf16",
  int64: "i64",
  long: "i64",
  int32: "i32",
  int: "i32",
  int16: "i16",
  short: "i16",
  int8: "i8",
  uint8: "u8",
  bool: "bool",
};

/** `torch.float32` (a pickled global) -> f32, etc. */
export function torchDType(dtype: unknown): HostDType {
  const name = globalName(dtype);
  const d = name?.startsWith("torch.") ? TORCH_DTYPES[name.slice(6)] : undefined;
  if (!d) throw new Error(`unsupported torch dtype ${name ?? describe(dtype)}`);
  return d;
}

/** Views an untyped (byte) storage as `dtype`, as torch >= 2 does for _rebuild_tensor_v3. */
export function retypeStorage(storage: unknown, dtype: HostDType): TorchStorage {
  if (!(storage instanceof TorchStorage)) {
    throw new Error(`tensor storage is not a storage: ${describe(storage)}`);
  }
  if (storage.dtype === dtype) return storage;
  if (storage.dtype !== "u8") throw new Error(`cannot view a ${storage.dtype} storage as ${dtype}`);
  return TorchStorage.fromBytes(dtype, storage.data as Uint8Array);
}

function toIntList(x: unknown, what: string): number[] {
  if (!Array.isArray(x)) throw new Error(`tensor ${what} is not a tuple: ${describe(x)}`);
  return x.map((v) => {
    const n = typeof v === "bigint" ? Number(v) : v;
    if (typeof n !== "number" || !Number.isSafeInteger(n)) {
      throw new Error(`tensor ${what} has a non-integer ${describe(v)}`);
    }
    return n;
  });
}

/** Rebuilds `storage[offset:]` viewed with (size, stride) as a C-order HostArray (a copy). */
export function rebuildTensor(storage: unknown, offset: unknown, size: unknown, stride: unknown): HostArray {
  if (!(storage instanceof TorchStorage)) {
    throw new Error(`tensor storage is not a storage: ${describe(storage)}`);
  }
  const shape = toIntList(size, "size");
  const strides = toIntList(stride, "stride");
  const off = Number(offset);
  if (!Number.isSafeInteger(off) || off < 0) throw new Error(`bad storage offset ${describe(offset)}`);
  if (strides.length !== shape.length) {
    throw new Error(`tensor size [${shape}] and stride [${strides}] differ in rank`);
  }
  const n = numel(shape);
  const contiguous = contiguousStrides(shape).every((s, k) => s === strides[k] || shape[k] <= 1);
  let data: HostData;
  if (contiguous) {
    if (off + n > storage.data.length) {
      throw new Error(
        `tensor of ${n} elements at offset ${off} overruns its storage of ${storage.data.length}`,
      );
    }
    data = storage.data.slice(off, off + n);
  } else {
    data = gatherStrided(storage.data, shape, strides, off);
  }
  return { dtype: storage.dtype, shape, data };
}

function describe(x: unknown): string {
  if (x === null || typeof x !== "object") return String(x);
  const name = globalName(x);
  if (name) return name;
  return x.constructor?.name ?? "object";
}
