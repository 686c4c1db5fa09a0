// Tensors to and from host arrays, and the byte formats parsed into tensors. No file access here (that is
// nn/checkpoint.ts), so the browser page can parse the bytes of a file it was given.

import { type HostArray, toFloat32 } from "./io/host.ts";
import { parseSafetensors } from "./io/safetensors.ts";
import { fromHost, type Tensor } from "./tensor.ts";

/** A host array as a tensor: integer types become i32, everything else f32. */
export function tensorFromHost(a: HostArray): Tensor {
  const isInt = a.dtype === "i32" || a.dtype === "i16" || a.dtype === "i8" || a.dtype === "u8" ||
    a.dtype === "i64" || a.dtype === "bool";
  if (isInt) return fromHost(Int32Array.from(toFloat32(a)), a.shape, "i32");
  return fromHost(toFloat32(a), a.shape, "f32");
}

/** Reads a tensor back into a host array. */
export async function tensorToHost(t: Tensor): Promise<HostArray> {
  return t.dtype === "i32"
    ? { dtype: "i32", shape: [...t.shape], data: await t.ints() }
    : { dtype: "f32", shape: [...t.shape], data: await t.data() };
}

/** Parses safetensors bytes into tensors; errors name `what` (a path or a file name). */
export function safetensorsFromBytes(
  bytes: Uint8Array,
  what: string,
): { tensors: Map<string, Tensor>; metadata: Record<string, string> } {
  let parsed: ReturnType<typeof parseSafetensors>;
  try {
    parsed = parseSafetensors(bytes);
  } catch (e) {
    throw new Error(`${what}: ${(e as Error).message}`);
  }
  return {
    tensors: new Map([...parsed.tensors].map(([k, a]) => [k, tensorFromHost(a)])),
    metadata: parsed.metadata,
  };
}
