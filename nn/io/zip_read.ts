// Reading zip archives from untrusted bytes. The central directory is walked here, not by fflate, so every
// declared count, offset and size is checked against the file before anything is allocated: an entry's
// data must lie inside the file, a stored entry's size must equal its compressed size, a deflated entry
// cannot claim more than deflate's maximum ratio allows, and the archive's total inflated size has a cap.
// Each entry's CRC-32 is verified, so a header that lies about sizes cannot pass silently.

import { inflateSync } from "fflate";

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

/** Unzips `bytes`; `what` names the archive in every error. Entries not ending in '/' only. */
export function unzipChecked(
  bytes: Uint8Array,
  what: string,
  opts: UnzipOptions = {},
): Record<string, Uint8Array> {
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

  const maxBytes = opts.maxBytes ?? MAX_INFLATED_BYTES;
  const out: Record<string, Uint8Array> = {};
  let inflated = 0;
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
    if (Object.hasOwn(out, name)) fail(`duplicate entry '${name}'`);
    if (opts.filter && !opts.filter(name)) continue;
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
    inflated += fullSize;
    if (inflated > maxBytes) {
      fail(`inflates past the limit of ${maxBytes} bytes (at entry '${name}'; a zip bomb or too large)`);
    }
    const raw = bytes.subarray(start, start + compSize);
    let data: Uint8Array;
    if (method === 0) data = raw.slice();
    else {
      try {
        data = inflateSync(raw, { out: new Uint8Array(fullSize) });
      } catch (err) {
        fail(`entry '${name}' does not inflate: ${(err as Error).message}`);
      }
    }
    if (data!.length !== fullSize || crc32(data!) !== crc) {
      fail(`entry '${name}' is corrupt (size or CRC-32 does not match its header)`);
    }
    out[name] = data!;
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
