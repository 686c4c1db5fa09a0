// safetensors: 8-byte little-endian header length, a JSON header, then one byte buffer that the
// tensors' data_offsets tile exactly (in range, contiguous, non-overlapping).

import { decodeBytes, DTYPE_BYTES, encodeBytes, type HostArray, type HostDType, numel } from "./host.ts";

/** Headers beyond this are refused as hostile (the reference implementation uses the same bound). */
const MAX_HEADER_BYTES = 100_000_000;

const NAME_TO_DTYPE: Record<string, HostDType> = {
  F32: "f32",
  F64: "f64",
  F16: "f16",
  BF16: "bf16",
  I64: "i64",
  I32: "i32",
  I16: "i16",
  I8: "i8",
  U8: "u8",
  BOOL: "bool",
};
const DTYPE_TO_NAME = Object.fromEntries(Object.entries(NAME_TO_DTYPE).map(([k, v]) => [v, k])) as Record<
  HostDType,
  string
>;

export interface Safetensors {
  tensors: Map<string, HostArray>;
  metadata: Record<string, string>;
}

export function parseSafetensors(bytes: Uint8Array): Safetensors {
  if (bytes.length < 8) throw new Error("safetensors: truncated (no header length)");
  const headerLen = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (headerLen > BigInt(MAX_HEADER_BYTES)) {
    throw new Error(`safetensors: header length ${headerLen} is not sane`);
  }
  const dataStart = 8 + Number(headerLen);
  if (dataStart > bytes.length) {
    throw new Error(`safetensors: truncated (header needs ${headerLen} bytes, file has ${bytes.length - 8})`);
  }
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, dataStart)));
  } catch (e) {
    throw new Error(`safetensors: bad header JSON (${(e as Error).message})`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    throw new Error("safetensors: header is not a JSON object");
  }
  const metadata = parseMetadata((header as Record<string, unknown>).__metadata__);
  const entries = Object.entries(header).filter(([k]) => k !== "__metadata__").map(([name, info]) =>
    parseEntry(name, info)
  );
  checkTiling(entries, bytes.length - dataStart);

  const tensors = new Map<string, HostArray>();
  for (const e of entries) {
    const raw = bytes.subarray(dataStart + e.begin, dataStart + e.end);
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data: decodeBytes(e.dtype, raw, true) });
  }
  return { tensors, metadata };
}

function parseMetadata(m: unknown): Record<string, string> {
  if (m === undefined) return {};
  if (typeof m !== "object" || m === null || Array.isArray(m)) {
    throw new Error("safetensors: __metadata__ must be an object of strings");
  }
  for (const [k, v] of Object.entries(m)) {
    if (typeof v !== "string") throw new Error(`safetensors: __metadata__ value '${k}' is not a string`);
  }
  return { ...(m as Record<string, string>) };
}

interface Entry {
  name: string;
  dtype: HostDType;
  shape: number[];
  begin: number;
  end: number;
}

function parseEntry(name: string, info: unknown): Entry {
  const bad = (why: string): never => {
    throw new Error(`safetensors: tensor '${name}': ${why}`);
  };
  if (typeof info !== "object" || info === null) bad("entry is not an object");
  const { dtype: dname, shape, data_offsets: offs } = info as Record<string, unknown>;
  const dtype = typeof dname === "string" ? NAME_TO_DTYPE[dname] : undefined;
  if (!dtype) bad(`unknown or unsupported dtype ${JSON.stringify(dname)}`);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    bad(`bad shape ${JSON.stringify(shape)}`);
  }
  if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && o >= 0)) {
    bad(`bad data_offsets ${JSON.stringify(offs)}`);
  }
  const [begin, end] = offs as number[];
  if (end < begin) bad(`data_offsets [${begin}, ${end}] end before begin`);
  const want = numel(shape as number[]) * DTYPE_BYTES[dtype!];
  if (end - begin !== want) {
    bad(`data_offsets span ${end - begin} bytes, shape [${shape}] ${dname} needs ${want}`);
  }
  return { name, dtype: dtype!, shape: shape as number[], begin, end };
}

/** The entries, sorted by offset, must cover [0, bufferLen) exactly: in range, contiguous, non-overlapping. */
function checkTiling(entries: Entry[], bufferLen: number): void {
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  for (const e of sorted) {
    if (e.begin < pos) {
      throw new Error(`safetensors: tensor '${e.name}' overlaps the previous tensor at byte ${e.begin}`);
    }
    if (e.begin > pos) {
      throw new Error(`safetensors: gap in the data buffer before tensor '${e.name}' (${pos}..${e.begin})`);
    }
    if (e.end > bufferLen) {
      throw new Error(
        `safetensors: tensor '${e.name}' data_offsets end ${e.end} beyond the data buffer (${bufferLen} bytes)`,
      );
    }
    pos = e.end;
  }
  if (pos !== bufferLen) {
    throw new Error(`safetensors: data buffer has ${bufferLen - pos} trailing bytes no tensor uses`);
  }
}

/**
 * Encodes tensors (largest element size first, then by name, as the reference writer does, so every
 * tensor is aligned) with optional string metadata. The header is space-padded to 8 bytes.
 */
export function encodeSafetensors(
  tensors: Map<string, HostArray>,
  metadata?: Record<string, string>,
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") throw new Error(`safetensors: metadata value '${k}' must be a string`);
    }
    header.__metadata__ = metadata;
  }
  const names = [...tensors.keys()].sort((a, b) =>
    DTYPE_BYTES[tensors.get(b)!.dtype] - DTYPE_BYTES[tensors.get(a)!.dtype] || (a < b ? -1 : a > b ? 1 : 0)
  );
  const bodies: Uint8Array[] = [];
  let offset = 0;
  for (const name of names) {
    if (name === "__metadata__") throw new Error("safetensors: '__metadata__' cannot be a tensor name");
    const a = tensors.get(name)!;
    const n = numel(a.shape);
    if (a.data.length !== n) {
      throw new Error(
        `safetensors: tensor '${name}' shape [${a.shape}] needs ${n} elements, data has ${a.data.length}`,
      );
    }
    const body = encodeBytes(a, true);
    header[name] = {
      dtype: DTYPE_TO_NAME[a.dtype],
      shape: a.shape,
      data_offsets: [offset, offset + body.length],
    };
    bodies.push(body);
    offset += body.length;
  }
  let json = JSON.stringify(header);
  const jsonBytes = new TextEncoder().encode(json);
  json += " ".repeat((8 - (jsonBytes.length % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let pos = 8 + headerBytes.length;
  for (const b of bodies) {
    out.set(b, pos);
    pos += b.length;
  }
  return out;
}
