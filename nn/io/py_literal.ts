// A tiny parser for the Python literal subset that .npy headers use:
// dicts, tuples, lists, single/double-quoted strings, integers, True/False/None.
// It evaluates nothing; anything else is a clear error.

export type PyLiteral = string | number | boolean | null | PyLiteral[] | { [k: string]: PyLiteral };

export function parsePyLiteral(text: string): PyLiteral {
  const p = new LiteralParser(text);
  const v = p.value();
  p.skipSpace();
  if (p.pos !== text.length) p.fail("unexpected trailing text");
  return v;
}

/** npy headers nest two levels; anything deeper is hostile (and would overflow the recursion). */
const MAX_DEPTH = 32;

class LiteralParser {
  pos = 0;
  depth = 0;
  constructor(readonly text: string) {}

  fail(why: string): never {
    const near = JSON.stringify(this.text.slice(this.pos, this.pos + 20));
    throw new Error(`python literal: ${why} at character ${this.pos} (near ${near})`);
  }

  skipSpace(): void {
    while (this.pos < this.text.length && /\s/.test(this.text[this.pos])) this.pos++;
  }

  value(): PyLiteral {
    this.skipSpace();
    const c = this.text[this.pos];
    if (c === undefined) this.fail("unexpected end");
    if (c === "{" || c === "(" || c === "[") {
      if (++this.depth > MAX_DEPTH) this.fail(`nested deeper than ${MAX_DEPTH} levels`);
      const v = c === "{" ? this.dict() : this.sequence(c === "(" ? ")" : "]");
      this.depth--;
      return v;
    }
    if (c === "'" || c === '"') return this.string();
    if (/[-+0-9]/.test(c)) return this.number();
    for (const [word, v] of [["True", true], ["False", false], ["None", null]] as const) {
      if (this.text.startsWith(word, this.pos)) {
        this.pos += word.length;
        return v;
      }
    }
    this.fail("unsupported token");
  }

  private dict(): { [k: string]: PyLiteral } {
    const out: { [k: string]: PyLiteral } = {};
    this.pos++;
    for (;;) {
      this.skipSpace();
      if (this.text[this.pos] === "}") {
        this.pos++;
        return out;
      }
      const key = this.value();
      if (typeof key !== "string") this.fail("dict keys must be strings");
      this.skipSpace();
      if (this.text[this.pos] !== ":") this.fail("expected ':'");
      this.pos++;
      out[key] = this.value();
      this.skipSpace();
      if (this.text[this.pos] === ",") this.pos++;
      else if (this.text[this.pos] !== "}") this.fail("expected ',' or '}'");
    }
  }

  private sequence(close: string): PyLiteral[] {
    const out: PyLiteral[] = [];
    this.pos++;
    for (;;) {
      this.skipSpace();
      if (this.text[this.pos] === close) {
        this.pos++;
        return out;
      }
      out.push(this.value());
      this.skipSpace();
      if (this.text[this.pos] === ",") this.pos++;
      else if (this.text[this.pos] !== close) this.fail(`expected ',' or '${close}'`);
    }
  }

  private string(): string {
    const quote = this.text[this.pos++];
    let out = "";
    while (this.pos < this.text.length) {
      const c = this.text[this.pos++];
      if (c === quote) return out;
      if (c === "\\") {
        const e = this.text[this.pos++];
        const simple: Record<string, string> = { n: "\n", t: "\t", r: "\r", "\\": "\\", "'": "'", '"': '"' };
        if (e !== undefined && simple[e] !== undefined) out += simple[e];
        else this.fail(`unsupported escape '\\${e}'`);
      } else out += c;
    }
    this.fail("unterminated string");
  }

  private number(): number {
    const m = /^[-+]?\d+L?/.exec(this.text.slice(this.pos));
    if (!m) this.fail("bad number");
    this.pos += m[0].length;
    const v = Number(m[0].replace("L", ""));
    if (!Number.isSafeInteger(v)) this.fail("integer out of range");
    return v;
  }
}
