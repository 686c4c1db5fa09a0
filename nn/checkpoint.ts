// Tensors to and from files: .npy, .npz and safetensors, through the host formats in nn/io/.
// Every write goes to a temporary file that is renamed into place, so a crash never leaves half a file.
// The byte parsing lives in nn/host_tensor.ts (no file access: the browser page uses it).

import type { HostArray } from "./io/host.ts";
import { encodeNpy, parseNpy } from "./io/npy.ts";
import { encodeNpz, parseNpz } from "./io/npz.ts";
import { encodeSafetensors } from "./io/safetensors.ts";
import { safetensorsFromBytes, tensorFromHost, tensorToHost } from "./host_tensor.ts";
import type { Tensor } from "./tensor.ts";

export { safetensorsFromBytes, tensorFromHost, tensorToHost };

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
  return safetensorsFromBytes(await readBytes(path, "safetensors"), path);
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
