// Tensors to and from files: .npy, .npz and safetensors, through the host formats in nn/io/.
// Every write goes to a temporary file that is renamed into place, so a crash never leaves half a file.

import { type HostArray, toFloat32 } from "./io/host.ts";
import { encodeNpy, parseNpy } from "./io/npy.ts";
import { encodeNpz, parseNpz } from "./io/npz.ts";
import { encodeSafetensors, parseSafetensors } from "./io/safetensors.ts";
import { fromHost, type Tensor } from "./tensor.ts";

/**
 * Writes bytes atomically: temporary file in the same directory, then rename. Any failure (missing or
 * unwritable folder, disk full) names the destination, not the temporary file, and leaves no temporary behind.
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array | string): Promise<void> {
  const tmp = `${path}.${Deno.pid}.${Date.now()}.tmp`;
  try {
    if (typeof bytes === "string") await Deno.writeTextFile(tmp, bytes);
    else await Deno.writeFile(tmp, bytes);
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw new Error(`cannot write ${path}: ${writeFailure(e, path)}`, { cause: e });
  }
}

function writeFailure(e: unknown, path: string): string {
  const dir = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) || "/" : ".";
  if (e instanceof Deno.errors.NotFound) return `the folder ${dir} does not exist`;
  if (e instanceof Deno.errors.PermissionDenied) return `permission denied (folder ${dir})`;
  const msg = (e as Error)?.message ?? String(e);
  if (/ENOSPC|No space left/i.test(msg)) return "the disk is full (no space left on device)";
  if (e instanceof Deno.errors.IsADirectory) return "it is a directory";
  // Deno's own messages quote the temporary file's name; the caller knows only `path`.
  return msg.replaceAll(tmpPattern(path), path);
}

function tmpPattern(path: string): RegExp {
  return new RegExp(`${path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\.\\d+\\.\\d+\\.tmp`, "g");
}

async function readBytes(path: string, what: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    throw new Error(`cannot read ${what} file ${path}: ${(e as Error).message}`);
  }
}

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

export async function loadNpy(path: string): Promise<Tensor> {
  const bytes = await readBytes(path, ".npy");
  try {
    return tensorFromHost(parseNpy(bytes));
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
}

export async function saveNpy(path: string, t: Tensor): Promise<void> {
  await writeFileAtomic(path, encodeNpy(await tensorToHost(t)));
}

export async function loadNpz(path: string): Promise<Map<string, Tensor>> {
  const bytes = await readBytes(path, ".npz");
  let arrays: Map<string, HostArray>;
  try {
    arrays = parseNpz(bytes);
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
  return new Map([...arrays].map(([k, a]) => [k, tensorFromHost(a)]));
}

export async function saveNpz(
  path: string,
  tensors: Map<string, Tensor>,
  { compress = true } = {},
): Promise<void> {
  const arrays = new Map<string, HostArray>();
  for (const [k, t] of tensors) arrays.set(k, await tensorToHost(t));
  await writeFileAtomic(path, encodeNpz(arrays, { compress }));
}

export async function loadSafetensors(
  path: string,
): Promise<{ tensors: Map<string, Tensor>; metadata: Record<string, string> }> {
  const bytes = await readBytes(path, "safetensors");
  let parsed: ReturnType<typeof parseSafetensors>;
  try {
    parsed = parseSafetensors(bytes);
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
  return {
    tensors: new Map([...parsed.tensors].map(([k, a]) => [k, tensorFromHost(a)])),
    metadata: parsed.metadata,
  };
}

export async function saveSafetensors(
  path: string,
  tensors: Map<string, Tensor>,
  metadata: Record<string, string> = {},
): Promise<void> {
  const arrays = new Map<string, HostArray>();
  for (const [k, t] of tensors) arrays.set(k, await tensorToHost(t));
  await writeFileAtomic(path, encodeSafetensors(arrays, metadata));
}
