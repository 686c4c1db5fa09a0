// Helpers for the kill -9 fault runs (scripts/faults.ts and tests/faults_test.ts): run cli.ts as a child
// process and SIGKILL it after a delay, check that a run directory holds no half-written file, and read
// a run's final numbers.

import { parseSafetensors } from "../nn/io/safetensors.ts";

export interface FaultCommand {
  name: string;
  args: (out: string) => string[];
  /** Added to the rerun after the kill. */
  resumeArgs: string[];
  /** "train" (newest snapshot's tensors and last stats line) or a JSON file in the output folder. */
  result: string;
}

const CLI = new URL("../cli.ts", import.meta.url).pathname;

/** When to SIGKILL a child: `ms` after its output (stdout and stderr) first matches `after`, or after start. */
export interface KillAt {
  ms: number;
  after?: RegExp;
}

/**
 * Runs `deno run -A cli.ts ...args`; with `kill` (milliseconds after start, or a KillAt), SIGKILLs it then
 * if it is still running. `killed` says whether the kill fired; `markMs` is when the output first matched
 * each of `marks` (null: never), `ms` the child's wall time.
 */
export async function runCli(
  args: string[],
  kill?: number | KillAt,
  marks: RegExp[] = [],
): Promise<{ code: number; killed: boolean; output: string; ms: number; markMs: (number | null)[] }> {
  const t0 = performance.now();
  const markMs: (number | null)[] = marks.map(() => null);
  const at: KillAt | undefined = typeof kill === "number" ? { ms: kill } : kill;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let exited = false, timer: ReturnType<typeof setTimeout> | undefined;
  const arm = () => {
    if (timer !== undefined || !at) return;
    timer = setTimeout(() => {
      if (exited) return;
      try {
        child.kill("SIGKILL");
      } catch { /* already exited */ }
    }, at.ms);
  };
  if (at && !at.after) arm();
  let output = "";
  const read = async (stream: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoder();
    for await (const chunk of stream) {
      output += dec.decode(chunk, { stream: true });
      if (at?.after && timer === undefined && at.after.test(output)) arm();
      marks.forEach((m, i) => {
        if (markMs[i] === null && m.test(output)) markMs[i] = performance.now() - t0;
      });
    }
  };
  const [status] = await Promise.all([child.status, read(child.stdout), read(child.stderr)]);
  exited = true;
  clearTimeout(timer);
  // A kill that raced the exit does not count: only a child that died of the signal was killed.
  const killed = status.signal === "SIGKILL";
  return { code: status.code, killed, output, ms: performance.now() - t0, markMs };
}

/** Every .json parses and every .safetensors parses, anywhere under dir; the names of the broken ones. */
export async function checkRunDir(dir: string): Promise<string[]> {
  const broken: string[] = [];
  const walk = async (d: string) => {
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(d)];
    } catch {
      return;
    }
    for (const e of entries) {
      const p = `${d}/${e.name}`;
      if (e.isDirectory) await walk(p);
      else if (e.name.endsWith(".json")) {
        try {
          JSON.parse(await Deno.readTextFile(p));
        } catch {
          broken.push(p);
        }
      } else if (e.name.endsWith(".safetensors")) {
        try {
          parseSafetensors(await Deno.readFile(p));
        } catch {
          broken.push(p);
        }
      }
    }
  };
  await walk(dir);
  return broken;
}

/** The numbers a run ends with: for train, the newest snapshot's tensors; otherwise the JSON result. */
export async function finalNumbers(dir: string, result: string): Promise<unknown> {
  if (result !== "train") return stripPaths(JSON.parse(await Deno.readTextFile(`${dir}/${result}`)));
  const snaps = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) =>
    /^snapshot-\d+\.safetensors$/.test(n)
  )
    .sort();
  const last = snaps.at(-1);
  if (!last) throw new Error(`${dir}: no snapshot`);
  const st = parseSafetensors(await Deno.readFile(`${dir}/${last}`));
  const tensors: Record<string, number[]> = {};
  for (const [k, v] of st.tensors) tensors[k] = Array.from(v.data as Float32Array, Number);
  return { snapshot: last, tensors };
}

/** Paths, wall times and resume bookkeeping differ between runs by design; numbers must not. */
function stripPaths(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(stripPaths);
  if (x && typeof x === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(x)) {
      if (/path|dir|files|snapshot|wall|seconds|tim(e|ing)|resumed|Ms$|load/i.test(k)) continue;
      out[k] = stripPaths(v);
    }
    return out;
  }
  return x;
}

export function sameNumbers(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
