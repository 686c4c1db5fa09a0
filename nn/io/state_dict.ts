// Flattens unpickled torch objects into a state dict: tensor -> dotted name, as module.state_dict() names
// them. A module's __dict__ contributes its _parameters, _buffers (minus non-persistent ones) and
// _modules; TorchScript objects and plain containers contribute every attribute / key / index.

import { type HostArray, isHostArray } from "./host.ts";
import { PersistentObject } from "./persistent.ts";
import { PickleObject } from "./pickle_values.ts";

const MAX_DEPTH = 1000;
/** Shared references are walked once per path; cap the walk so a small file cannot expand exponentially. */
const MAX_VISITS = 200_000;

export function flattenTensors(value: unknown, prefix = ""): Map<string, HostArray> {
  const out = new Map<string, HostArray>();
  const ancestors = new Set<unknown>();
  let visits = 0;
  const join = (p: string, k: unknown) => (p ? `${p}.${String(k)}` : String(k));

  const visit = (x: unknown, name: string, depth: number): void => {
    if (typeof x !== "object" || x === null) return;
    if (depth > MAX_DEPTH) throw new Error(`state dict: nesting deeper than ${MAX_DEPTH} at '${name}'`);
    if (++visits > MAX_VISITS) {
      throw new Error(
        `state dict: more than ${MAX_VISITS} objects to visit (shared references expand too far)`,
      );
    }
    if (isHostArray(x)) {
      out.set(name || "tensor", x);
      return;
    }
    if (ancestors.has(x)) return; // cycles (a module referring to a parent) add nothing new
    ancestors.add(x);
    if (x instanceof PersistentObject) visit(x.state, name, depth + 1);
    else if (x instanceof PickleObject) {
      visit(x.$state, name, depth + 1);
      visit(x.$items, name, depth + 1);
      if (x.$list) x.$list.forEach((v, i) => visit(v, join(name, i), depth + 1));
    } else if (x instanceof Map) {
      if (x.has("_parameters") && x.has("_modules")) visitModuleDict(x, name, depth);
      else {for (const [k, v] of x) {
          if (typeof k === "string" || typeof k === "number") visit(v, join(name, k), depth + 1);
        }}
    } else if (Array.isArray(x)) {
      x.forEach((v, i) => visit(v, join(name, i), depth + 1));
    }
    ancestors.delete(x);
  };

  const visitModuleDict = (d: Map<unknown, unknown>, name: string, depth: number) => {
    const skip = d.get("_non_persistent_buffers_set");
    for (const group of ["_parameters", "_buffers", "_modules"]) {
      const entries = d.get(group);
      if (!(entries instanceof Map)) continue;
      for (const [k, v] of entries) {
        if (group === "_buffers" && skip instanceof Set && skip.has(k)) continue;
        visit(v, join(name, k), depth + 1);
      }
    }
  };

  visit(value, prefix, 0);
  return out;
}
