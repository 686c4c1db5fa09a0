// Reading PyTorch files as data: torch.save zip archives, TorchScript archives, legacy torch.save
// streams and SGA network pickles. One entry point, loadStateDict, detects which it was given.

import type { HostArray } from "./host.ts";
import { parseNpz } from "./npz.ts";
import { parseSafetensors } from "./safetensors.ts";
import { readNetworkPickle, type TorchNetwork } from "./sga_pickle.ts";
import { flattenTensors } from "./state_dict.ts";
import { isLegacyTorchSave, isZip, readLegacyTorchSave } from "./torch_legacy.ts";
import { readTorchZipArchive, torchZipPrefix } from "./torch_zip.ts";
import { ZipArchive } from "./zip_read.ts";

export { readNetworkPickle, type TorchNetwork } from "./sga_pickle.ts";
export { flattenTensors } from "./state_dict.ts";
export { isLegacyTorchSave, isZip, readLegacyTorchSave } from "./torch_legacy.ts";
export { readTorchZip } from "./torch_zip.ts";
export { TorchStorage } from "./torch_tensor.ts";

export interface LoadStateDictOptions {
  /** For network pickles: return only this network's state (e.g. "G_ema") with unprefixed names. */
  network?: string;
}

/**
 * Loads tensors by dotted name from a torch.save zip (state dict or whole module), a TorchScript archive
 * (parameters by attribute path, constants as `CONSTANTS.c<i>`), a legacy torch.save stream, an SGA network
 * pickle (`G.mapping.w_avg`, ... or one network with opts.network), an .npz or a safetensors file.
 */
export function loadStateDict(bytes: Uint8Array, opts: LoadStateDictOptions = {}): Map<string, HostArray> {
  if (isZip(bytes)) {
    const zip = ZipArchive.open(bytes, "checkpoint zip");
    const prefix = torchZipPrefix(zip);
    if (prefix === undefined) return parseNpz(bytes); // numpy's npz (its errors name the problem)
    const out = flattenTensors(readTorchZipArchive(zip));
    // TorchScript keeps some tensors in its constants table, referenced by code as CONSTANTS.c<i>.
    const isScript = zip.names().some((n) => n.startsWith(`${prefix}code/`));
    if (isScript && zip.has(`${prefix}constants.pkl`)) {
      const constants = readTorchZipArchive(zip, { record: "constants" });
      if (Array.isArray(constants)) {
        constants.forEach((c, i) => {
          for (const [k, v] of flattenTensors(c, `CONSTANTS.c${i}`)) out.set(k, v);
        });
      }
    }
    return out;
  }
  if (looksLikeSafetensors(bytes)) return parseSafetensors(bytes).tensors;
  if (bytes.length > 0 && bytes[0] === 0x80) {
    if (isLegacyTorchSave(bytes)) return flattenTensors(readLegacyTorchSave(bytes));
    const nets = readNetworkPickle(bytes);
    if (opts.network !== undefined) {
      const net = nets[opts.network] as TorchNetwork | undefined;
      if (!net || !(net.state instanceof Map)) {
        throw new Error(
          `network pickle has no network '${opts.network}' (has ${Object.keys(nets).join(", ")})`,
        );
      }
      return net.state;
    }
    const out = new Map<string, HostArray>();
    for (const [name, net] of Object.entries(nets)) {
      const state = (net as TorchNetwork)?.state;
      if (state instanceof Map) { for (const [k, v] of state) out.set(`${name}.${k}`, v); }
    }
    return out;
  }
  throw new Error(
    "unrecognised checkpoint format (expected a torch zip, legacy torch.save, network pickle, npz or safetensors)",
  );
}

function looksLikeSafetensors(bytes: Uint8Array): boolean {
  if (bytes.length < 10) return false;
  const n = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  return n > 1n && n <= BigInt(bytes.length - 8) && bytes[8] === 0x7b; // '{'
}
