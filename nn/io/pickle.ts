// A safe unpickler: it reads pickle protocols 0-5 as data and never executes anything.
// Globals stay inert (PickleGlobal); calls become PickleObject records unless the caller's allow-list
// maps that global name to a pure data constructor. Persistent ids go to a caller-supplied function.

import { decodeQuotedString, decodeRawUnicodeEscape, parseFloatText } from "./pickle_text.ts";
import { makeTuple, PickleGlobal, PickleObject, SET_STATE } from "./pickle_values.ts";

export { globalName, isTuple, PickleGlobal, PickleObject, SET_STATE, toPlain } from "./pickle_values.ts";

/** Builds a value from a call's positional args (and NEWOBJ_EX keyword args). Must not have side effects. */
export type PickleHandler = (args: readonly unknown[], kwargs?: Map<unknown, unknown>) => unknown;

export interface UnpickleOptions {
  /** Allow-list: global name ("collections.OrderedDict") -> data constructor used by REDUCE/NEWOBJ/INST/OBJ. */
  handlers?: Map<string, PickleHandler>;
  /** Resolves PERSID / BINPERSID ids; without it a persistent id is an error. */
  persistentLoad?: (pid: unknown) => unknown;
}

/** Opcode byte -> name, for error messages. */
const OPCODE_NAMES: Record<number, string> = Object.fromEntries(
  (
    "28 MARK 2e STOP 30 POP 31 POP_MARK 32 DUP 46 FLOAT 49 INT 4a BININT 4b BININT1 4c LONG 4d BININT2 " +
    "4e NONE 50 PERSID 51 BINPERSID 52 REDUCE 53 STRING 54 BINSTRING 55 SHORT_BINSTRING 56 UNICODE " +
    "58 BINUNICODE 61 APPEND 62 BUILD 63 GLOBAL 64 DICT 7d EMPTY_DICT 65 APPENDS 67 GET 68 BINGET 69 INST " +
    "6a LONG_BINGET 6c LIST 5d EMPTY_LIST 6f OBJ 70 PUT 71 BINPUT 72 LONG_BINPUT 73 SETITEM 74 TUPLE " +
    "29 EMPTY_TUPLE 75 SETITEMS 47 BINFLOAT 80 PROTO 81 NEWOBJ 82 EXT1 83 EXT2 84 EXT4 85 TUPLE1 " +
    "86 TUPLE2 87 TUPLE3 88 NEWTRUE 89 NEWFALSE 8a LONG1 8b LONG4 42 BINBYTES 43 SHORT_BINBYTES " +
    "8c SHORT_BINUNICODE 8d BINUNICODE8 8e BINBYTES8 8f EMPTY_SET 90 ADDITEMS 91 FROZENSET 92 NEWOBJ_EX " +
    "93 STACK_GLOBAL 94 MEMOIZE 95 FRAME 96 BYTEARRAY8 97 NEXT_BUFFER 98 READONLY_BUFFER "
  ).trim().split(/ (?=[0-9a-f]{2} )/).map((p) => [parseInt(p, 16), p.slice(3)]),
);

/** Unpickles one pickle from the start of `bytes` (trailing bytes are ignored, as Python does). */
export function unpickle(bytes: Uint8Array, opts: UnpickleOptions = {}): unknown {
  return unpickleAt(bytes, 0, opts).value;
}

/** Unpickles one pickle starting at `offset`; `end` is the offset just after its STOP opcode. */
export function unpickleAt(bytes: Uint8Array, offset: number, opts: UnpickleOptions = {}): {
  value: unknown;
  end: number;
} {
  return new Unpickler(bytes, offset, opts).run();
}

/**
 * The most values (and open MARKs) the stack may hold at once. Python's pickler batches list and dict
 * items by 1000, so a pickle it writes stays far below this unless it nests deeper than toPlain's 1000
 * levels or holds one tuple of over 10,000 items; a 200 KB file could otherwise make 100,000 nested lists.
 */
export const MAX_STACK = 10_000;

const latin1 = new TextDecoder("latin1");
const utf8 = new TextDecoder("utf-8", { fatal: true });

class Unpickler {
  private pos: number;
  private opStart = 0;
  private op = 0;
  private stack: unknown[] = [];
  /** Stack heights at each open MARK (one array, not a list per MARK, so MARK bombs stay cheap). */
  private marks: number[] = [];
  private memo = new Map<number, unknown>();
  private view: DataView;

  constructor(private bytes: Uint8Array, offset: number, private opts: UnpickleOptions) {
    this.pos = offset;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  private fail(why: string): never {
    const name = OPCODE_NAMES[this.op] ?? `0x${this.op.toString(16)}`;
    throw new Error(`pickle: ${why} (opcode ${name} at byte ${this.opStart})`);
  }

  // ---- input ----
  private need(n: number): void {
    if (this.pos + n > this.bytes.length) {
      this.fail(`truncated input: needs ${n} bytes, ${this.bytes.length - this.pos} left`);
    }
  }
  private u8(): number {
    this.need(1);
    return this.bytes[this.pos++];
  }
  private u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }
  private u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  private i32(): number {
    this.need(4);
    const v = this.view.getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }
  private u64(): number {
    this.need(8);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    const left = this.bytes.length - this.pos;
    if (v > BigInt(left)) this.fail(`truncated input: length ${v} exceeds the ${left} bytes left`);
    return Number(v);
  }
  private take(n: number): Uint8Array {
    this.need(n);
    const b = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  private line(): string {
    const nl = this.bytes.indexOf(0x0a, this.pos);
    if (nl < 0) this.fail("truncated input: missing newline");
    const s = latin1.decode(this.bytes.subarray(this.pos, nl));
    this.pos = nl + 1;
    return s;
  }
  private text(n: number): string {
    try {
      return utf8.decode(this.take(n));
    } catch (e) {
      if ((e as Error).message.startsWith("pickle:")) throw e;
      this.fail("invalid UTF-8 in string");
    }
  }

  // ---- stack ----
  private push(v: unknown): void {
    if (this.stack.length >= MAX_STACK) {
      this.fail(`more than ${MAX_STACK} values on the stack at once (a nesting bomb, or a tuple too long)`);
    }
    this.stack.push(v);
  }
  /** Items below the innermost MARK are out of reach until POP_MARK / a MARK-consuming opcode. */
  private fence(): number {
    return this.marks.length ? this.marks[this.marks.length - 1] : 0;
  }
  private pop(): unknown {
    if (this.stack.length <= this.fence()) this.fail("stack underflow");
    return this.stack.pop();
  }
  private top(): unknown {
    if (this.stack.length <= this.fence()) this.fail("stack underflow");
    return this.stack[this.stack.length - 1];
  }
  private popMark(): unknown[] {
    const mark = this.marks.pop();
    if (mark === undefined) this.fail("no MARK on the stack");
    return this.stack.splice(mark);
  }

  // ---- values ----
  private int(text: string): number | bigint {
    const t = text.trim().replace(/L$/, "");
    // Python itself refuses to convert longer decimal strings (sys.int_info.default_max_str_digits).
    if (t.length > 4300) this.fail(`integer text of ${t.length} digits (more than Python's 4300)`);
    if (!/^[-+]?\d+$/.test(t)) this.fail(`bad integer ${JSON.stringify(text)}`);
    return shrink(BigInt(t));
  }
  private long(n: number): number | bigint {
    const b = this.take(n);
    if (n === 0) return 0;
    // Through one hex string: shifting byte by byte is quadratic in n.
    let hex = "";
    for (let i = n - 1; i >= 0; i--) hex += b[i].toString(16).padStart(2, "0");
    let v = BigInt(`0x${hex}`);
    if (b[n - 1] & 0x80) v -= 1n << BigInt(8 * n);
    return shrink(v);
  }
  private memoKey(n: number): number {
    if (!this.memo.has(n)) this.fail(`memo key ${n} not found`);
    return n;
  }

  /** Applies a call: the allow-listed handler when there is one, otherwise an inert record. */
  private call(callable: unknown, args: unknown, isNew: boolean, kwargs?: Map<unknown, unknown>): unknown {
    if (!Array.isArray(args)) this.fail("call arguments are not a tuple");
    const name = callable instanceof PickleGlobal ? callable.$global : undefined;
    const handler = name !== undefined ? this.opts.handlers?.get(name) : undefined;
    if (handler) {
      try {
        return handler(args, kwargs);
      } catch (e) {
        this.fail(`handler for '${name}' failed: ${(e as Error).message}`);
      }
    }
    const obj = new PickleObject(callable, args, isNew);
    if (kwargs) obj.kwargs = kwargs;
    return obj;
  }

  private persistent(pid: unknown): unknown {
    if (!this.opts.persistentLoad) this.fail("persistent id found but no persistentLoad was given");
    try {
      return this.opts.persistentLoad(pid);
    } catch (e) {
      this.fail(`persistentLoad failed: ${(e as Error).message}`);
    }
  }

  private build(obj: unknown, state: unknown): void {
    if (typeof obj !== "object" || obj === null) this.fail("BUILD on a value that is not an object");
    const setter = (obj as { [SET_STATE]?: (s: unknown) => void })[SET_STATE];
    if (typeof setter === "function") {
      try {
        setter.call(obj, state);
      } catch (e) {
        this.fail(`setting state failed: ${(e as Error).message}`);
      }
    } else if (!Object.isExtensible(obj)) this.fail("BUILD on an immutable value (a tuple)");
    else (obj as { $state?: unknown }).$state = state;
  }

  private setItems(target: unknown, kv: unknown[]): void {
    if (kv.length % 2) this.fail("odd number of items for a dict");
    let m: Map<unknown, unknown>;
    if (target instanceof Map) m = target;
    else if (target instanceof PickleObject) m = target.$items ??= new Map();
    else this.fail("setting items on a value that is not a dict");
    for (let i = 0; i < kv.length; i += 2) m.set(kv[i], kv[i + 1]);
  }

  private listOf(target: unknown): unknown[] {
    if (Array.isArray(target) && !Object.isFrozen(target)) return target;
    if (target instanceof PickleObject) return target.$list ??= [];
    this.fail("appending to a value that is not a list");
  }

  private global(module: string, name: string): PickleGlobal {
    if (!module || !name) this.fail("empty global name");
    return new PickleGlobal(`${module}.${name}`);
  }

  run(): { value: unknown; end: number } {
    for (;;) {
      this.opStart = this.pos;
      if (this.pos >= this.bytes.length) {
        throw new Error(`pickle: truncated input: no STOP opcode before the end (byte ${this.pos})`);
      }
      this.op = this.bytes[this.pos++];
      switch (this.op) {
        case 0x80: { // PROTO
          const v = this.u8();
          if (v > 5) this.fail(`unsupported pickle protocol ${v}`);
          break;
        }
        case 0x95: { // FRAME: framing is only a buffering hint, but the frame must be present
          const n = this.u64();
          this.need(n);
          break;
        }
        case 0x2e: { // STOP
          const value = this.pop();
          return { value, end: this.pos };
        }
        case 0x28: // MARK
          if (this.marks.length >= MAX_STACK) this.fail(`more than ${MAX_STACK} open MARKs`);
          this.marks.push(this.stack.length);
          break;
        case 0x30: // POP
          if (this.stack.length > this.fence()) this.stack.pop();
          else this.popMark();
          break;
        case 0x31: // POP_MARK
          this.popMark();
          break;
        case 0x32: // DUP
          this.push(this.top());
          break;
        // ---- scalars ----
        case 0x4e:
          this.push(null);
          break;
        case 0x88:
          this.push(true);
          break;
        case 0x89:
          this.push(false);
          break;
        case 0x49: { // INT (text); "00"/"01" are protocol 0's False/True
          const t = this.line();
          this.push(t === "00" ? false : t === "01" ? true : this.int(t));
          break;
        }
        case 0x4a:
          this.push(this.i32());
          break;
        case 0x4b:
          this.push(this.u8());
          break;
        case 0x4d:
          this.push(this.u16());
          break;
        case 0x4c:
          this.push(this.int(this.line()));
          break;
        case 0x8a:
          this.push(this.long(this.u8()));
          break;
        case 0x8b: {
          const n = this.i32();
          if (n < 0) this.fail("negative LONG4 length");
          this.push(this.long(n));
          break;
        }
        case 0x46: // FLOAT (text)
          this.push(parseFloatText(this.line(), (w) => this.fail(w)));
          break;
        case 0x47: { // BINFLOAT: big-endian double
          this.need(8);
          this.push(this.view.getFloat64(this.pos, false));
          this.pos += 8;
          break;
        }
        // ---- strings and bytes ----
        case 0x53: // STRING: a quoted Python 2 str literal
          this.push(decodeQuotedString(this.line(), (w) => this.fail(w)));
          break;
        case 0x54: {
          const n = this.i32();
          if (n < 0) this.fail("negative BINSTRING length");
          this.push(latin1.decode(this.take(n)));
          break;
        }
        case 0x55:
          this.push(latin1.decode(this.take(this.u8())));
          break;
        case 0x56: // UNICODE: raw-unicode-escape text
          this.push(decodeRawUnicodeEscape(this.line()));
          break;
        case 0x58:
          this.push(this.text(this.u32()));
          break;
        case 0x8c:
          this.push(this.text(this.u8()));
          break;
        case 0x8d:
          this.push(this.text(this.u64()));
          break;
        case 0x42:
          this.push(this.take(this.u32()).slice());
          break;
        case 0x43:
          this.push(this.take(this.u8()).slice());
          break;
        case 0x8e:
        case 0x96: // BYTEARRAY8
          this.push(this.take(this.u64()).slice());
          break;
        case 0x97:
          this.fail("out-of-band buffers (NEXT_BUFFER) are not supported");
          break;
        case 0x98: // READONLY_BUFFER: no effect on our copies
          this.top();
          break;
        // ---- containers ----
        case 0x5d:
          this.push([]);
          break;
        case 0x6c:
          this.push(this.popMark());
          break;
        case 0x29:
          this.push(makeTuple([]));
          break;
        case 0x74:
          this.push(makeTuple(this.popMark()));
          break;
        case 0x85:
          this.push(makeTuple([this.pop()]));
          break;
        case 0x86: {
          const b = this.pop(), a = this.pop();
          this.push(makeTuple([a, b]));
          break;
        }
        case 0x87: {
          const c = this.pop(), b = this.pop(), a = this.pop();
          this.push(makeTuple([a, b, c]));
          break;
        }
        case 0x7d:
          this.push(new Map());
          break;
        case 0x64: {
          const m = new Map();
          this.setItems(m, this.popMark());
          this.push(m);
          break;
        }
        case 0x8f:
          this.push(new Set());
          break;
        case 0x91:
          this.push(new Set(this.popMark()));
          break;
        case 0x61: {
          const v = this.pop();
          this.listOf(this.top()).push(v);
          break;
        }
        case 0x65: {
          const items = this.popMark();
          const list = this.listOf(this.top());
          for (const v of items) list.push(v); // a loop: push(...items) overflows the stack for big batches
          break;
        }
        case 0x73: {
          const v = this.pop(), k = this.pop();
          this.setItems(this.top(), [k, v]);
          break;
        }
        case 0x75: {
          const kv = this.popMark();
          this.setItems(this.top(), kv);
          break;
        }
        case 0x90: {
          const items = this.popMark();
          const s = this.top();
          if (!(s instanceof Set)) this.fail("ADDITEMS on a value that is not a set");
          for (const v of items) s.add(v);
          break;
        }
        // ---- memo ----
        case 0x67:
          this.push(this.memo.get(this.memoKey(Number(this.int(this.line())))));
          break;
        case 0x68:
          this.push(this.memo.get(this.memoKey(this.u8())));
          break;
        case 0x6a:
          this.push(this.memo.get(this.memoKey(this.u32())));
          break;
        case 0x70:
          this.memo.set(Number(this.int(this.line())), this.top());
          break;
        case 0x71:
          this.memo.set(this.u8(), this.top());
          break;
        case 0x72:
          this.memo.set(this.u32(), this.top());
          break;
        case 0x94:
          this.memo.set(this.memo.size, this.top());
          break;
        // ---- globals, calls, objects ----
        case 0x63: {
          const module = this.line(), name = this.line();
          this.push(this.global(module, name));
          break;
        }
        case 0x93: {
          const name = this.pop(), module = this.pop();
          if (typeof module !== "string" || typeof name !== "string") {
            this.fail("STACK_GLOBAL needs two strings");
          }
          this.push(this.global(module, name));
          break;
        }
        case 0x52: {
          const args = this.pop(), callable = this.pop();
          this.push(this.call(callable, args, false));
          break;
        }
        case 0x81: {
          const args = this.pop(), cls = this.pop();
          this.push(this.call(cls, args, true));
          break;
        }
        case 0x92: {
          const kwargs = this.pop(), args = this.pop(), cls = this.pop();
          if (!(kwargs instanceof Map)) this.fail("NEWOBJ_EX keyword arguments are not a dict");
          this.push(this.call(cls, args, true, kwargs));
          break;
        }
        case 0x69: { // INST: class from the text operands, args from the mark
          const module = this.line(), name = this.line();
          this.push(this.call(this.global(module, name), makeTuple(this.popMark()), false));
          break;
        }
        case 0x6f: { // OBJ: class is the first item after the mark
          const items = this.popMark();
          if (items.length === 0) this.fail("OBJ without a class");
          this.push(this.call(items[0], makeTuple(items.slice(1)), false));
          break;
        }
        case 0x62: {
          const state = this.pop();
          this.build(this.top(), state);
          break;
        }
        case 0x50:
          this.push(this.persistent(this.line()));
          break;
        case 0x51:
          this.push(this.persistent(this.pop()));
          break;
        case 0x82:
        case 0x83:
        case 0x84:
          this.fail("extension registry codes are not supported");
          break;
        default:
          this.fail(
            `unknown opcode 0x${this.op.toString(16).padStart(2, "0")} ${
              JSON.stringify(String.fromCharCode(this.op))
            }`,
          );
      }
    }
  }
}

function shrink(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}
