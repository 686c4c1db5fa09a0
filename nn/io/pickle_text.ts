// Decoders for the text-form operands of protocol 0 pickles (FLOAT, STRING, UNICODE).

export function parseFloatText(t: string, fail: (why: string) => never): number {
  const s = t.trim().toLowerCase();
  if (s === "inf" || s === "+inf") return Infinity;
  if (s === "-inf") return -Infinity;
  if (s === "nan" || s === "-nan") return NaN;
  const v = Number(s);
  if (s === "" || Number.isNaN(v)) fail(`bad float ${JSON.stringify(t)}`);
  return v;
}

/** Decodes a Python 2 str repr ('...' or "...") with backslash escapes, as latin1 text. */
export function decodeQuotedString(t: string, fail: (why: string) => never): string {
  const q = t[0];
  if ((q !== "'" && q !== '"') || t.length < 2 || t[t.length - 1] !== q) {
    fail("STRING argument is not quoted");
  }
  const body = t.slice(1, -1);
  const simple: Record<string, string> = {
    n: "\n",
    t: "\t",
    r: "\r",
    "\\": "\\",
    "'": "'",
    '"': '"',
    a: "\x07",
    b: "\b",
    f: "\f",
    v: "\v",
  };
  let out = "";
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c !== "\\") {
      out += c;
      continue;
    }
    const e = body[++i];
    if (e === undefined) fail("dangling backslash in STRING");
    if (simple[e] !== undefined) out += simple[e];
    else if (e === "x" && /^[0-9a-fA-F]{2}$/.test(body.slice(i + 1, i + 3))) {
      out += String.fromCharCode(parseInt(body.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (/[0-7]/.test(e)) {
      const m = /^[0-7]{1,3}/.exec(body.slice(i))![0];
      out += String.fromCharCode(parseInt(m, 8) & 0xff);
      i += m.length - 1;
    } else out += "\\" + e;
  }
  return out;
}

/** Python's raw-unicode-escape: latin1 text where \uXXXX and \UXXXXXXXX name code points. */
export function decodeRawUnicodeEscape(t: string): string {
  return t.replace(
    /\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g,
    (_, u4, u8) => String.fromCodePoint(parseInt(u4 ?? u8, 16)),
  );
}
