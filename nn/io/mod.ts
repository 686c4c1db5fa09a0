// File formats over host arrays: npy/npz, safetensors, a safe unpickler, and PyTorch/SGA checkpoints.

export * from "./host.ts";
export { encodeNpy, parseNpy } from "./npy.ts";
export { encodeNpz, parseNpz } from "./npz.ts";
export { encodeSafetensors, parseSafetensors, type Safetensors } from "./safetensors.ts";
export {
  globalName,
  isTuple,
  PickleGlobal,
  type PickleHandler,
  PickleObject,
  SET_STATE,
  toPlain,
  unpickle,
  unpickleAt,
  type UnpickleOptions,
} from "./pickle.ts";
export { torchHandlers } from "./torch_handlers.ts";
export { PersistentObject } from "./persistent.ts";
export * from "./torch.ts";
