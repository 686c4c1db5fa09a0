// SGA's torch_utils.persistence objects, as data: `_reconstruct_persistent_obj(meta)` with
// meta = {type, version, module_src, class_name, state}. The source text is kept, never executed.

import type { PickleHandler } from "./pickle.ts";

export class PersistentObject {
  constructor(
    readonly type: string,
    readonly version: number,
    readonly className: string,
    readonly moduleSrc: string,
    /** The object's __dict__ (for a module: _parameters, _buffers, _modules, _init_kwargs, ...). */
    readonly state: unknown,
  ) {}
}

export const reconstructPersistent: PickleHandler = (args) => {
  const meta = args[0];
  if (!(meta instanceof Map)) throw new Error("persistent object meta is not a dict");
  const field = (k: string) => meta.get(k);
  const className = field("class_name"), moduleSrc = field("module_src");
  if (typeof className !== "string") throw new Error("persistent object meta lacks class_name");
  return new PersistentObject(
    String(field("type") ?? "class"),
    Number(field("version") ?? 0),
    className,
    typeof moduleSrc === "string" ? moduleSrc : "",
    field("state"),
  );
};
