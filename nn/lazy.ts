// Lazy elementwise fusion. A tensor's value is a node: a leaf (a GPU buffer read with strides) or an
// elementwise op over other nodes. Ops build nodes instead of dispatching; a node is materialised (one
// generated kernel for its whole tree, cached by structure) when something needs its buffer: a GEMM, a
// convolution, a reduction, a read-back, an in-place write to a buffer it reads. A materialised node turns
// into a leaf in place, so every tree that shares it reads the buffer from then on instead of recomputing.
//
// Memory stays deterministic: a node counts its holders (tensors and parent nodes); a leaf holds one
// reference on its storage, and a tree releases its leaves when its last holder lets go.

import {
  computeType,
  type DType,
  elementwise,
  MAX_RANK,
  storageBytes,
  type StridedOperand,
} from "../kernels/elementwise.ts";
import type { ElementwiseProgram } from "../kernels/prologue.ts";
import { gpu } from "../kernels/runtime.ts";

export type { DType };

/** A GPU buffer shared by leaf nodes (views); freed when the last one lets go. */
export class Storage {
  refs = 1;
  /** Leaf nodes reading this buffer (to find the lazy readers before an in-place write). */
  readonly leaves = new Set<Node>();
  constructor(readonly buffer: GPUBuffer, readonly bytes: number) {}
  release(): void {
    if (--this.refs === 0) gpu().release(this.buffer);
  }
}

let nextNodeId = 0;

/** Trees above this many op nodes, or reading more distinct buffers than fit, are cut by materialising. */
export const MAX_TREE_OPS = 40;
/** A shared subtree at least this big is materialised on its second use instead of being recomputed. */
const SHARED_MATERIALISE_OPS = 6;

export class Node {
  readonly id = nextNodeId++;
  refs = 0;
  /** Op nodes that read this one. */
  readonly parents = new Set<Node>();
  // Leaf state.
  storage: Storage | null = null;
  strides: number[] = [];
  offset = 0;
  // Op state: a WGSL expression over in0..inK (the args) and p0..p3 (scalars), with optional helpers.
  expr = "";
  helpers = "";
  scalars: number[] = [];
  args: Node[] = [];
  /** A reshape: the arg has another shape of the same size and is read at the same flat index. */
  reshape = false;
  /** Op nodes in the tree (an upper bound: shared subtrees count once per use). */
  ops = 0;
  /** Distinct buffers the tree reads. */
  buffers = new Set<Storage>();
  readonly size: number;

  constructor(readonly shape: number[], readonly dtype: DType) {
    let n = 1;
    for (const d of shape) n *= d;
    this.size = n;
  }

  get isLeaf(): boolean {
    return this.storage !== null;
  }

  /** A leaf whose strides are the contiguous ones: its buffer can be handed to any kernel. */
  get contiguous(): boolean {
    return this.storage !== null && this.offset === 0 && sameStrides(this.strides, contiguous(this.shape));
  }

  /**
   * Every value of the tree sits at the same flat index as the node's (no broadcasting or strided reads
   * below it): such a tree can always be reshaped without materialising (see `reshapable` for the rest).
   */
  get dense(): boolean {
    if (this.storage) return this.contiguous;
    return this.args.every((a) => a.size === this.size && a.dense);
  }
}

function sameStrides(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

export function contiguous(shape: readonly number[]): number[] {
  const s = new Array(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    s[d] = acc;
    acc *= shape[d];
  }
  return s;
}

export function hold(n: Node): Node {
  n.refs++;
  return n;
}

/** Drops one holder; frees the tree below when none is left. */
export function drop(n: Node): void {
  if (--n.refs > 0) return;
  if (n.storage) {
    n.storage.leaves.delete(n);
    n.storage.release();
    n.storage = null;
    return;
  }
  detachArgs(n);
}

function detachArgs(n: Node): void {
  const args = n.args;
  n.args = [];
  for (const a of args) {
    a.parents.delete(n);
    drop(a);
  }
}

/** A leaf over `storage` (taking one reference on it), read with `strides` from `offset`. */
export function leaf(
  storage: Storage,
  shape: number[],
  dtype: DType,
  strides = contiguous(shape),
  offset = 0,
): Node {
  const n = new Node(shape, dtype);
  storage.refs++;
  n.storage = storage;
  n.strides = strides;
  n.offset = offset;
  n.buffers = new Set([storage]);
  storage.leaves.add(n);
  return n;
}

/**
 * Strides that read the elements of a `from`-shaped tensor, laid out with `strides`, as shape `to` of the
 * same size in row-major order; null when none do (axes merged that are not laid out one after another).
 * Size-1 axes never matter (they get stride 0); a run of axes where each stride is the next one's times its
 * extent acts as one.
 */
export function viewStrides(
  from: readonly number[],
  strides: readonly number[],
  to: readonly number[],
): number[] | null {
  const dims: number[] = [], st: number[] = [];
  for (let i = 0; i < from.length; i++) {
    if (from[i] === 0) return null;
    if (from[i] !== 1) dims.push(from[i]), st.push(strides[i]);
  }
  const out = new Array<number>(to.length).fill(0);
  let j = to.length - 1;
  for (let i = dims.length - 1; i >= 0;) {
    // One run of axes k..i, read with stride st[i] per step of the run's flat index.
    let k = i, extent = dims[i];
    while (k > 0 && st[k - 1] === st[k] * dims[k]) extent *= dims[--k];
    let acc = 1;
    while (j >= 0 && acc < extent) {
      out[j] = to[j] === 1 ? 0 : st[i] * acc;
      acc *= to[j--];
    }
    if (acc !== extent) return null;
    i = k - 1;
  }
  for (; j >= 0; j--) if (to[j] !== 1) return null;
  return out;
}

/**
 * How the buffers below a node are addressed while rendering: node coordinates in `shape` (leaves broadcast
 * into it) become root coordinates through `toRoot`, which is null where a reshape above cannot be followed.
 * A reshape starts a frame of its own; `key` names the chain of reshapes.
 */
interface ReadFrame {
  key: string;
  shape: number[];
  toRoot: (strides: number[]) => number[] | null;
}

function rootFrame(shape: number[]): ReadFrame {
  return { key: "r", shape, toRoot: (s) => s };
}

/** The frame below reshape node `r` (read within `outer`): its arg's coordinates. */
function reshapeFrame(outer: ReadFrame, r: Node): ReadFrame {
  const a = r.args[0];
  return {
    key: `${outer.key}/${r.id}`,
    shape: a.shape,
    toRoot: (s) => {
      const v = viewStrides(a.shape, s, r.shape);
      return v && outer.toRoot(broadcastInto(r.shape, v, outer.shape));
    },
  };
}

/**
 * Whether the tree of `n` can be read as `shape` (same size) without computing it: every buffer below it,
 * broadcast into n's coordinates, has strides for the new shape (e.g. size-1 axes added or dropped).
 */
export function reshapable(n: Node, shape: number[]): boolean {
  if (n.dense) return true;
  const target: ReadFrame = { key: "", shape: n.shape, toRoot: (s) => viewStrides(n.shape, s, shape) };
  const walk = (m: Node, frame: ReadFrame): boolean => {
    if (m.storage) return frame.toRoot(broadcastInto(m.shape, m.strides, frame.shape)) !== null;
    if (m.reshape) return walk(m.args[0], reshapeFrame(frame, m));
    return m.args.every((a) => walk(a, frame));
  };
  return walk(n, target);
}

/**
 * A node below a reshape may have been computed into a contiguous buffer since the reshape was built, and
 * that buffer may not follow the reshape where the tree did: such args are computed before rendering.
 */
function settleReshapes(n: Node, seen = new Set<Node>()): void {
  if (n.storage || seen.has(n)) return;
  seen.add(n);
  for (const a of n.args) settleReshapes(a, seen);
  if (n.reshape && !reshapable(n.args[0], n.shape)) materialise(n.args[0]);
}

/** Storage buffers one kernel may bind (the adapter's limit, capped to keep kernels small). */
export function maxReadBuffers(): number {
  return Math.min(gpu().device.limits.maxStorageBuffersPerShaderStage, 16);
}

function maxBuffers(): number {
  return maxReadBuffers() - 1; // one binding is the output
}

/** An elementwise op node over `args` broadcast to `shape` (cut by materialising args where needed). */
export function op(
  expr: string,
  args: Node[],
  shape: number[],
  dtype: DType,
  scalars: number[] = [],
  helpers = "",
  reshape = false,
): Node {
  if (shape.length > MAX_RANK) throw new Error(`elementwise ops support rank <= ${MAX_RANK}, got [${shape}]`);
  // A shared, non-trivial subtree is computed once: its second consumer materialises it for both.
  for (const a of args) {
    if (!a.isLeaf && a.parents.size > 0 && a.ops >= SHARED_MATERIALISE_OPS) materialise(a);
  }
  const limit = maxBuffers();
  for (;;) {
    const buffers = new Set<Storage>();
    let ops = 1;
    for (const a of args) {
      for (const s of a.buffers) buffers.add(s);
      ops += a.ops;
    }
    if (buffers.size <= limit && ops <= MAX_TREE_OPS) {
      const n = new Node(shape, dtype);
      n.expr = expr;
      n.helpers = helpers;
      n.scalars = scalars;
      n.reshape = reshape;
      n.args = args.map(hold);
      for (const a of args) a.parents.add(n);
      n.ops = ops;
      n.buffers = buffers;
      return n;
    }
    // Cut: materialise the biggest lazy arg and try again.
    let big: Node | null = null;
    for (const a of args) if (!a.isLeaf && (!big || a.ops > big.ops)) big = a;
    if (!big) {
      // Only leaves, and still too many buffers: strided leaves become contiguous copies first.
      const strided = args.find((a) => !a.contiguous);
      if (!strided) throw new Error(`an elementwise op reads ${buffers.size} buffers (at most ${limit})`);
      materialise(strided);
      continue;
    }
    materialise(big);
  }
}

/** Makes `n` a contiguous leaf (recording one fused kernel for its tree); returns its storage. */
export function materialise(n: Node): Storage {
  if (n.contiguous) return n.storage!;
  const bytes = storageBytes(n.size, n.dtype);
  const storage = new Storage(gpu().alloc(bytes), bytes);
  // A zero constant (zeros(), an optimiser's moments, the frame of padInto) needs no kernel: a clear.
  if (isZeroConstant(n)) gpu().clear(storage.buffer, Math.ceil(bytes / 4) * 4);
  else render(n, storage.buffer);
  if (n.storage) {
    n.storage.leaves.delete(n);
    n.storage.release();
  }
  detachArgs(n);
  n.storage = storage;
  n.strides = contiguous(n.shape);
  n.offset = 0;
  n.buffers = new Set([storage]);
  n.ops = 0;
  n.expr = n.helpers = "";
  n.scalars = [];
  n.reshape = false;
  storage.leaves.add(n);
  return storage;
}

function isZeroConstant(n: Node): boolean {
  return !n.storage && n.args.length === 0 && n.expr === "p0" && Object.is(n.scalars[0], 0);
}

/**
 * Before a kernel writes into `storage` in place: lazy values that read it must keep the old contents, as
 * they would have eagerly. Rather than computing them now (most are temporaries that are never used),
 * they are pointed at a snapshot copy of the buffer: one copy, however many readers.
 */
export function beforeOverwrite(storage: Storage): void {
  let snap: Storage | null = null;
  const snapshot = (): Storage => {
    if (!snap) {
      snap = new Storage(gpu().alloc(storage.bytes), storage.bytes);
      gpu().copy(storage.buffer, 0, snap.buffer, 0, storage.bytes);
    }
    return snap;
  };
  for (const l of [...storage.leaves]) {
    if (!l.contiguous) {
      // A lazy view (permute, slice, broadcast) of the buffer: it reads the snapshot instead.
      const s = snapshot();
      storage.leaves.delete(l);
      storage.release();
      s.refs++;
      s.leaves.add(l);
      l.storage = s;
      l.buffers = new Set([s]);
      continue;
    }
    if (l.parents.size === 0) continue;
    // Op nodes reading this leaf read a leaf over the snapshot instead; the leaf itself (the tensor
    // being written, or a view of it) keeps the buffer.
    const copy = leaf(snapshot(), l.shape, l.dtype, l.strides, l.offset);
    for (const p of [...l.parents]) {
      p.args = p.args.map((a) => {
        if (a !== l) return a;
        hold(copy);
        l.refs--; // the parent's hold moves to the copy; the tensor still holds `l`
        return copy;
      });
      p.buffers.add(copy.storage!);
      l.parents.delete(p);
      copy.parents.add(p);
    }
    if (l.refs === 0) drop(hold(l)); // only parents held it
  }
  if (snap) (snap as Storage).release(); // the leaves over it hold it now
}

// ---- rendering one tree into one kernel ----

/** Function names a helper string defines, renamed per kernel so two helpers never clash. */
const helperNames = new Map<string, string[]>();
function namesIn(helpers: string): string[] {
  let names = helperNames.get(helpers);
  if (!names) {
    names = [...helpers.matchAll(/fn\s+(\w+)\s*\(/g)].map((m) => m[1]);
    helperNames.set(helpers, names);
  }
  return names;
}

function renameAll(text: string, names: string[], suffix: string): string {
  if (names.length === 0) return text;
  return text.replace(new RegExp(`\\b(${names.join("|")})\\b`, "g"), `$1${suffix}`);
}

/** Strides over the root's coordinates that read a node of `shape` broadcast to the root's shape. */
function broadcastInto(shape: number[], strides: number[], root: number[]): number[] {
  const off = root.length - shape.length;
  return root.map((_, i) => {
    const j = i - off;
    return j < 0 || shape[j] === 1 ? 0 : strides[j];
  });
}

function render(root: Node, out: GPUBuffer): void {
  const p = program(root);
  elementwise({
    name: "fused",
    expr: p.result,
    body: p.body,
    inputs: p.operands,
    out: { buffer: out, dtype: root.dtype, strides: contiguous(root.shape), offset: 0 },
    shape: root.shape,
    scalars: p.scalars,
    helpers: p.helpers,
  });
}

/**
 * The tree of a lazy tensor's node as a program a consumer kernel can inline (kernels/prologue.ts), or
 * null when the node is a contiguous f32 buffer already or reads more than `maxOperands` buffers. A
 * contiguous f16 buffer is a one-operand program: consumers whose buffer inputs are f32 load it that way.
 */
export function prologueOf(n: Node, maxOperands: number): ElementwiseProgram | null {
  if (n.contiguous) return n.dtype === "f16" ? program(n) : null; // kernels read f16 only through programs
  if (n.buffers.size > maxOperands) return null;
  const p = program(n);
  return p.operands.length <= maxOperands ? p : null;
}

/**
 * What a kernel that takes an f32 buffer or a program (a reduction, a texture pack) reads for `n`: its
 * tree inlined when it fits in `maxOperands` buffers, else its buffer, which f16 values reach only as a
 * one-operand program (the kernel's buffer inputs are f32).
 */
export function sourceOf(n: Node, maxOperands: number): ElementwiseProgram | GPUBuffer {
  const p = prologueOf(n, maxOperands);
  if (p) return p;
  const s = materialise(n);
  return n.dtype === "f16" ? program(n) : s.buffer;
}

/**
 * What a kernel that takes an f32 buffer or an f16 buffer as a one-load program (the storage-path GEMMs,
 * kernels/pack_texture.ts plainOperand) reads for `n`: its value computed into its own buffer first.
 */
export function storedSourceOf(n: Node): ElementwiseProgram | GPUBuffer {
  const s = materialise(n);
  return n.dtype === "f16" ? program(n) : s.buffer;
}

/** The tree under `root` as straight-line code over strided operands (shared subtrees computed once). */
function program(root: Node): ElementwiseProgram {
  const rootShape = root.shape;
  const operands: StridedOperand[] = [];
  const operandIndex = new Map<string, number>();
  const lets: string[] = [];
  const scalars: number[] = [];
  const helperIds = new Map<string, number>();
  const memo = new Map<string, string>();

  settleReshapes(root);
  const visit = (n: Node, frame: ReadFrame): string => {
    const key = `${n.id}|${frame.key}`;
    const done = memo.get(key);
    if (done) return done;
    let name: string;
    if (n.storage) {
      const strides = frame.toRoot(broadcastInto(n.shape, n.strides, frame.shape));
      if (!strides) throw new Error(`internal: a reshape above a [${n.shape}] buffer cannot be followed`);
      const okey = `${operandOf(n.storage)}|${n.offset}|${strides.join(",")}`;
      let k = operandIndex.get(okey);
      if (k === undefined) {
        k = operands.length;
        operands.push({ buffer: n.storage.buffer, dtype: n.dtype, strides, offset: n.offset });
        operandIndex.set(okey, k);
      }
      name = `in${k}`;
    } else if (n.reshape) {
      name = visit(n.args[0], reshapeFrame(frame, n));
    } else {
      const argNames = n.args.map((a) => visit(a, frame));
      const base = scalars.length;
      scalars.push(...n.scalars);
      let expr = n.expr.replace(/\b(in|p)(\d+)\b/g, (_, kind: string, d: string) => {
        const i = Number(d);
        if (kind === "in") return argNames[i];
        return `P(${base + i}u)`;
      });
      if (n.helpers) {
        let h = helperIds.get(n.helpers);
        if (h === undefined) helperIds.set(n.helpers, h = helperIds.size);
        expr = renameAll(expr, namesIn(n.helpers), `_h${h}`);
      }
      name = `t${lets.length}`;
      // f16 values are computed in f32 inside a kernel: only the stored result is rounded.
      lets.push(`let ${name} = ${computeType(n.dtype)}(${expr});`);
    }
    memo.set(key, name);
    return name;
  };
  const result = visit(root, rootFrame(rootShape));
  const helpers = [...helperIds].map(([h, id]) => renameAll(h, namesIn(h), `_h${id}`)).join("\n");
  return { shape: rootShape, operands, body: lets.join("\n  "), result, scalars, helpers };
}

// Buffers have no id: number them once, for the operand keys of a kernel.
const bufferIds = new WeakMap<Storage, number>();
let nextBufferId = 0;
function operandOf(s: Storage): number {
  let id = bufferIds.get(s);
  if (id === undefined) bufferIds.set(s, id = nextBufferId++);
  return id;
}
