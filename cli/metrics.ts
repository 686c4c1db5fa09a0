// Metric commands on files: w1 (2-D point sets). FID/KID/PR commands are in cli/fid.ts.

import { parseNpy } from "../nn/io/npy.ts";
import { toFloat64 } from "../nn/io/host.ts";
import { w1 } from "../metrics/w1.ts";
import { parse, report } from "./args.ts";

async function readPoints(path: string): Promise<{ data: Float64Array; n: number }> {
  let a;
  try {
    a = parseNpy(await Deno.readFile(path));
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
  if (a.shape.length !== 2 || a.shape[1] !== 2) {
    throw new Error(`${path}: expected an [n, 2] array of 2-D points, got shape [${a.shape}]`);
  }
  const data = toFloat64(a);
  if (data.some((v) => !Number.isFinite(v))) throw new Error(`${path}: contains non-finite values`);
  return { data, n: a.shape[0] };
}

export async function w1Command(args: string[]): Promise<void> {
  const { values, positionals } = parse(
    args,
    "usage: cli.ts w1 A.npy B.npy [--json]\n\nExact Wasserstein-1 (Euclidean cost, uniform weights) between two equal-size\n" +
      "2-D point sets, by an optimal assignment (no Sinkhorn approximation).",
    { json: { type: "boolean", help: "print one JSON object as the last line" } },
  );
  if (positionals.length !== 2) throw new Error("w1 needs two .npy files (see --help)");
  const [a, b] = await Promise.all(positionals.map(readPoints));
  if (a.n !== b.n) throw new Error(`w1 needs equal-size sets: ${a.n} vs ${b.n} points`);
  const t0 = performance.now();
  const value = w1(a.data, b.data, a.n);
  const ms = performance.now() - t0;
  report({ w1: value, n: a.n, ms }, !!values.json, `W1 = ${value} (${a.n} points, ${ms.toFixed(0)} ms)`);
}
