// Option parsing shared by the commands: node:util's parseArgs with a help text and clear errors.

import { parseArgs } from "node:util";

export interface OptionSpec {
  type: "string" | "boolean";
  help: string;
  default?: string | boolean;
}

/** Parses args; prints help and exits on --help; throws a readable error on unknown options. */
export function parse(
  args: string[],
  usage: string,
  options: Record<string, OptionSpec>,
): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  const all: Record<string, OptionSpec> = { ...options, help: { type: "boolean", help: "show this help" } };
  const help = () =>
    `${usage}\n\noptions:\n` +
    Object.entries(all).map(([k, o]) =>
      `  --${k}${o.type === "string" ? " VALUE" : ""}`.padEnd(26) + o.help +
      ("default" in o && o.default !== undefined ? ` (default ${o.default})` : "")
    ).join("\n");
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: Object.fromEntries(
        Object.entries(all).map((
          [k, o],
        ) => [k, { type: o.type, default: "default" in o ? o.default : undefined }]),
      ),
    });
  } catch (e) {
    throw new Error(`${(e as Error).message}\n\n${help()}`);
  }
  if (parsed.values.help) {
    console.log(help());
    Deno.exit(0);
  }
  return {
    values: parsed.values as Record<string, string | boolean | undefined>,
    positionals: parsed.positionals,
  };
}

/** A numeric option, validated. */
export function num(v: string | boolean | undefined, name: string, fallback?: number): number {
  if (v === undefined || v === false) {
    if (fallback === undefined) throw new Error(`--${name} is required`);
    return fallback;
  }
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`--${name} must be a number, got '${v}'`);
  return n;
}

/** Prints the result; with --json, as one JSON object on the last line. */
export function report(result: unknown, json: boolean, text: string): void {
  if (json) console.log(JSON.stringify(result));
  else console.log(text);
}
