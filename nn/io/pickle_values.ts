// The inert values a safe unpickle produces, and helpers to turn them into plain data.
// Python values map to: None -> null, bool -> boolean, int -> number (bigint when beyond 2^53),
// float -> number, str -> string, bytes/bytearray -> Uint8Array, list -> array, tuple -> frozen array,
// dict -> Map, set/frozenset -> Set. A class or function reference is a PickleGlobal; a call that no
// handler covers is a PickleObject recording what would have been called (nothing is ever called).

import { isHostArray, toFloat32 } from "./host.ts";

/** A reference to `module.name` (class or function), never resolved. */
export class PickleGlobal {
  constructor(readonly $global: string) {}
}

/** A recorded call `$reduce(*args, **kwargs)` plus whatever BUILD / SETITEMS / APPENDS then did to it. */
export class PickleObject {
  $state?: unknown;
  $items?: Map<unknown, unknown>;
  $list?: unknown[];
  kwargs?: Map<unknown, unknown>;
  constructor(readonly $reduce: unknown, readonly args: readonly unknown[], readonly $new = false) {}

  /** The dotted name of the callable, when it is a global. */
  get callableName(): string | undefined {
    return globalName(this.$reduce);
  }
}

/** An object carrying this method takes BUILD's state itself (used by handlers that build values in place). */
export const SET_STATE: unique symbol = Symbol("pickle.setState");

export function globalName(x: unknown): string | undefined {
  return x instanceof PickleGlobal ? x.$global : undefined;
}

export function isTuple(x: unknown): x is readonly unknown[] {
  return Array.isArray(x) && Object.isFrozen(x);
}

export function makeTuple(items: unknown[]): readonly unknown[] {
  return Object.freeze(items);
}

/**
 * Converts unpickled data to plain JSON-compatible values: Maps with string/number keys and dict-like
 * objects become objects, tuples and sets become arrays, bigints become numbers (or strings when
 * unsafe), globals become their dotted name, bytes become number arrays, host arrays become
 * `{dtype, shape, values}`, other inert objects `{ $reduce, args, state }`. Cycles become "[cycle]".
 */
export function toPlain(x: unknown): unknown {
  // Count first, over each shared object once: a small pickle sharing references 60 levels deep expands
  // to 2^60 values, found here in 60 steps instead of after converting MAX_PLAIN_NODES of them.
  const size = expandedSize(x, new Map(), new Set());
  if (size > MAX_PLAIN_NODES) {
    throw new Error(`toPlain: data expands to more than ${MAX_PLAIN_NODES} values (shared references)`);
  }
  return plain(x, new Set(), { left: MAX_PLAIN_NODES });
}

/** How many values `plain` visits for x (each shared object counted once per reference, cycles once). */
function expandedSize(x: unknown, memo: Map<object, number>, path: Set<unknown>): number {
  if (x === null || typeof x !== "object") return 1;
  const known = memo.get(x);
  if (known !== undefined) return known;
  if (path.has(x)) return 1;
  if (path.size > 1000) throw new Error("toPlain: data nested deeper than 1000 levels");
  path.add(x);
  let n = 1;
  const add = (v: unknown) => {
    n += expandedSize(v, memo, path);
    if (n > MAX_PLAIN_NODES) n = MAX_PLAIN_NODES + 1; // saturate: no need to count further
  };
  if (x instanceof PickleGlobal || isHostArray(x) || x instanceof Uint8Array) n = 1;
  else if (Array.isArray(x) || x instanceof Set) { for (const v of x) add(v); }
  else if (x instanceof Map) {
    for (const [k, v] of x) {
      add(k);
      add(v);
    }
  } else if (x instanceof PickleObject) {
    for (const v of [x.$reduce, x.args, x.$state, x.$items, x.$list]) if (v !== undefined) add(v);
  } else for (const v of Object.values(x)) add(v);
  path.delete(x);
  memo.set(x, n);
  return n;
}

/** Shared references expand into a tree here, so a small pickle could ask for 2^60 nodes: cap them. */
export const MAX_PLAIN_NODES = 100_000;

function plain(x: unknown, seen: Set<unknown>, budget: { left: number }): unknown {
  if (x === null || x === undefined) return null;
  if (seen.size > 1000) throw new Error("toPlain: data nested deeper than 1000 levels");
  if (--budget.left < 0) {
    throw new Error(`toPlain: data expands to more than ${MAX_PLAIN_NODES} values (shared references)`);
  }
  if (typeof x === "bigint") return Number.isSafeInteger(Number(x)) ? Number(x) : x.toString();
  if (typeof x === "number") return Number.isFinite(x) ? x : String(x);
  if (typeof x !== "object") return x;
  if (seen.has(x)) return "[cycle]";
  seen.add(x);
  try {
    if (x instanceof PickleGlobal) return x.$global;
    if (isHostArray(x)) return { dtype: x.dtype, shape: x.shape, values: Array.from(toFloat32(x)) };
    if (x instanceof Uint8Array) return Array.from(x);
    if (Array.isArray(x) || x instanceof Set) return [...x].map((v) => plain(v, seen, budget));
    if (x instanceof Map) return mapToObject(x, seen, budget);
    if (x instanceof PickleObject) {
      // dict subclasses (EasyDict, defaultdict) keep their content in $items.
      if (x.$items && x.$state === undefined) return mapToObject(x.$items, seen, budget);
      return {
        $reduce: plain(x.$reduce, seen, budget),
        args: plain(x.args, seen, budget),
        ...(x.$state !== undefined ? { state: plain(x.$state, seen, budget) } : {}),
        ...(x.$items ? { items: mapToObject(x.$items, seen, budget) } : {}),
        ...(x.$list ? { list: plain(x.$list, seen, budget) } : {}),
      };
    }
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(x)) out[k] = plain(v, seen, budget);
    return out;
  } finally {
    seen.delete(x);
  }
}

function mapToObject(
  m: Map<unknown, unknown>,
  seen: Set<unknown>,
  budget: { left: number },
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of m) {
    const key = typeof k === "string" ? k : JSON.stringify(plain(k, seen, budget));
    out[key] = plain(v, seen, budget);
  }
  return out;
}
