// Reading zip archives from untrusted bytes. The central directory is walked here, not by fflate, so every
// declared count, offset and size is checked against the file before anything is allocated: an entry's
// data must lie inside the file, a stored entry's size must equal its compressed size, a deflated entry
// cannot claim more than deflate's maximum ratio allows, and the archive's total inflated size has a cap.
// Each entry's CRC-32 is verified, so a header that lies about sizes cannot pass silently.

import { Inflate, inflateSync } from "fflate";

/** Deflate's best case is about 1032:1 (258-byte matches coded in 2 bits); a larger claim is a lie. */
const MAX_DEFLATE_RATIO = 1032;
/** Default cap on the bytes one archive may inflate to. */
export const MAX_INFLATED_BYTES = 2 ** 30;

export interface UnzipOptions {
  /** Entries to inflate; the others are skipped unread (their headers are still checked). */
  filter?: (name: string) => boolean;
  /** Cap on the total inflated bytes of the entries read (default MAX_INFLATED_BYTES). */
  maxBytes?: number;
}

const EOCD = 0x06054b50, ZIP64_LOCATOR = 0x07064b50, ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50, LOCAL = 0x04034b50;
const latin1 = new TextDecoder("latin1");
const utf8 = new TextDecoder("utf-8");

/** One file entry of a zip archive, as its central directory declares it (checked against the file). */
export interface ZipEntry {
  name: string;
  /** Declared uncompressed size. */
  size: number;
  compressedSize: number;
  /** 0 stored, 8 deflated. */
  method: number;
  crc: number;
  /** Offset of the entry's data in the archive. */
  start: number;
}

/**
 * A zip archive opened from untrusted bytes: the central directory is walked and every entry's declared
 * sizes and offsets checked when it is opened; nothing is inflated until an entry is read. So a reader
 * can check an entry's declared size (or its first bytes, `head`) against what it expects before
 * inflating it, and never inflates entries it does not need.
 */
export class ZipArchive {
  private inflated = 0;
  private constructor(
    readonly what: string,
    private readonly bytes: Uint8Array,
    readonly entries: Map<string, ZipEntry>,
    private readonly maxBytes: number,
  ) {}

  /** Opens `bytes`; `what` names the archive in every error. Directory entries (ending in '/') are skipped. */
  static open(bytes: Uint8Array, what: string, opts: { maxBytes?: number } = {}): ZipArchive {
    return new ZipArchive(what, bytes, readDirectory(bytes, what), opts.maxBytes ?? MAX_INFLATED_BYTES);
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  private entry(name: string): ZipEntry {
    const e = this.entries.get(name);
    if (!e) throw new Error(`${this.what}: no entry '${name}'`);
    return e;
  }

  /**
   * Up to the first `n` bytes of an entry, inflating no more than that (plus one deflate block's worth);
   * not CRC-checked (the CRC covers the whole entry), so only for deciding whether to read it.
   */
  head(name: string, n: number): Uint8Array {
    const e = this.entry(name);
    const raw = this.bytes.subarray(e.start, e.start + e.compressedSize);
    n = Math.min(n, e.size);
    if (e.method === 0) return raw.slice(0, n);
    const parts: Uint8Array[] = [];
    let got = 0;
    const inf = new Inflate((chunk) => {
      if (got < n) parts.push(chunk.slice(0, n - got));
      got += chunk.length;
    });
    try {
      // Small pieces: one piece of a zero bomb inflates to at most ~1000x its size.
      for (let p = 0; p < raw.length && got < n; p += 64) inf.push(raw.subarray(p, p + 64), false);
    } catch (err) {
      throw new Error(`${this.what}: entry '${name}' does not inflate: ${(err as Error).message}`);
    }
    const out = new Uint8Array(Math.min(got, n));
    let off = 0;
    for (const part of parts) {
      out.set(part.subarray(0, out.length - off), off);
      off += part.length;
    }
    return out;
  }

  /** Inflates an entry whole, counted against the archive's cap, and checks its size and CRC-32. */
  read(name: string): Uint8Array {
    const e = this.entry(name);
    const fail = (why: string): never => {
      throw new Error(`${this.what}: ${why}`);
    };
    this.inflated += e.size;
    if (this.inflated > this.maxBytes) {
      fail(`inflates past the limit of ${this.maxBytes} bytes (at entry '${name}'; a zip bomb or too large)`);
    }
    const raw = this.bytes.subarray(e.start, e.start + e.compressedSize);
    let data: Uint8Array;
    if (e.method === 0) data = raw.slice();
    else {
      try {
        data = inflateSync(raw, { out: new Uint8Array(e.size) });
      } catch (err) {
        fail(`entry '${name}' does not inflate: ${(err as Error).message}`);
      }
    }
    if (data!.length !== e.size || crc32(data!) !== e.crc) {
      fail(`entry '${name}' is corrupt (size or CRC-32 does not match its header)`);
    }
    return data!;
  }
}

/** Unzips `bytes`; `what` names the archive in every error. Entries not ending in '/' only. */
export function unzipChecked(
  bytes: Uint8Array,
  what: string,
  opts: UnzipOptions = {},
): Record<string, Uint8Array> {
  const zip = ZipArchive.open(bytes, what, opts);
  const out: Record<string, Uint8Array> = {};
  for (const name of zip.names()) if (!opts.filter || opts.filter(name)) out[name] = zip.read(name);
  return out;
}

function readDirectory(bytes: Uint8Array, what: string): Map<string, ZipEntry> {
  const fail = (why: string): never => {
    throw new Error(`${what}: ${why}`);
  };
  const size = bytes.length;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u16 = (p: number) => view.getUint16(p, true);
  const u32 = (p: number) => view.getUint32(p, true);
  const u64 = (p: number) => {
    const v = view.getBigUint64(p, true);
    return v > BigInt(Number.MAX_SAFE_INTEGER) ? Infinity : Number(v);
  };
  if (size < 22 || bytes[0] !== 0x50 || bytes[1] !== 0x4b) fail("bad magic (not a zip archive)");

  // End of central directory: the last 22..65557 bytes.
  let e = size - 22;
  while (e >= 0 && u32(e) !== EOCD) {
    if (size - e > 65557 || e === 0) {
      fail("malformed or truncated zip archive (no end-of-central-directory record)");
    }
    e--;
  }
  let count = u16(e + 10), cdSize = u32(e + 12), cdOffset = u32(e + 16);
  if (e >= 20 && u32(e - 20) === ZIP64_LOCATOR) {
    const z = u64(e - 12);
    if (z + 56 > e) fail(`malformed zip64 record offset ${z}`);
    if (u32(z) !== ZIP64_EOCD) fail("malformed zip64 end-of-central-directory record");
    [count, cdSize, cdOffset] = [u64(z + 32), u64(z + 40), u64(z + 48)];
  }
  if (cdOffset + cdSize > size || count * 46 > cdSize) {
    fail(
      `malformed or truncated zip archive: central directory (${count} entries, ${cdSize} bytes at ${cdOffset}) ` +
        `does not fit the ${size}-byte file`,
    );
  }

  const out = new Map<string, ZipEntry>();
  let p = cdOffset;
  const cdEnd = cdOffset + cdSize;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cdEnd || u32(p) !== CENTRAL) fail(`malformed central directory entry ${i} at byte ${p}`);
    const flags = u16(p + 8), method = u16(p + 10), crc = u32(p + 16);
    let compSize = u32(p + 20), fullSize = u32(p + 24), local = u32(p + 42);
    const nameLen = u16(p + 28), extraLen = u16(p + 30), commentLen = u16(p + 32);
    const next = p + 46 + nameLen + extraLen + commentLen;
    if (next > cdEnd) fail(`central directory entry ${i} runs past the directory`);
    const nameBytes = bytes.subarray(p + 46, p + 46 + nameLen);
    const name = (flags & 0x800 ? utf8 : latin1).decode(nameBytes);
    // Zip64 extra field: the 0xffffffff fields, in order, as 64-bit values.
    for (let x = p + 46 + nameLen; x + 4 <= p + 46 + nameLen + extraLen;) {
      const id = u16(x), len = u16(x + 2);
      if (id === 1) {
        let f = x + 4;
        const take = () => {
          if (f + 8 > x + 4 + len) fail(`entry '${name}': short zip64 extra field`);
          const v = u64(f);
          f += 8;
          return v;
        };
        if (fullSize === 0xffffffff) fullSize = take();
        if (compSize === 0xffffffff) compSize = take();
        if (local === 0xffffffff) local = take();
      }
      x += 4 + len;
    }
    p = next;
    if (name.endsWith("/")) continue;
    if (out.has(name)) fail(`duplicate entry '${name}'`);
    if (flags & 1) fail(`entry '${name}' is encrypted`);
    if (local + 30 > size || u32(local) !== LOCAL) fail(`entry '${name}': bad local header offset ${local}`);
    const start = local + 30 + u16(local + 26) + u16(local + 28);
    if (start + compSize > size) {
      fail(`entry '${name}': ${compSize} compressed bytes at ${start} run past the ${size}-byte file`);
    }
    if (method === 0 && fullSize !== compSize) {
      fail(`stored entry '${name}' declares ${fullSize} bytes but holds ${compSize}`);
    }
    if (method === 8 && fullSize > MAX_DEFLATE_RATIO * compSize + 64) {
      fail(
        `entry '${name}' claims ${fullSize} bytes from ${compSize} compressed: more than deflate can give`,
      );
    }
    if (method !== 0 && method !== 8) fail(`entry '${name}' uses unsupported compression method ${method}`);
    out.set(name, { name, size: fullSize, compressedSize: compSize, method, crc, start });
  }
  return out;
}

let table: Uint32Array | undefined;

/** CRC-32 (IEEE), as zip and PNG use it. */
export function crc32(data: Uint8Array): number {
  if (!table) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = table[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
