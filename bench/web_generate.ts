// Generation throughput of a snapshot in Deno with the page's own code (web/render.ts benchGenerate), at
// batch 1 and 16, in f32 and (where the adapter's shader-f16 passes its probe) f16 in the same run:
// `deno run -A bench/web_generate.ts SNAPSHOT [REPS] [--rounds R] [--f32-only]`. The two precisions are
// measured alternately (R rounds of f32 then f16 per batch size), so load drifting on a shared machine
// skews both alike; each line gives the median and every round's images/s, and the 1-minute load average
// when they ended.
// The browser test prints the f32 numbers for Chromium on the same machine.

import { initGPU } from "../kernels/runtime.ts";
import { applyGemmEnv } from "../cli/gemm_env.ts";
import { generatorFromSnapshotBytes } from "../gan/train/snapshot_bytes.ts";
import { benchGenerate } from "../web/render.ts";

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const args = [...Deno.args];
const flag = (name: string): string | undefined => {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
};
const f32Only = args.includes("--f32-only");
if (f32Only) args.splice(args.indexOf("--f32-only"), 1);
const rounds = Number(flag("--rounds") ?? 5);
const [path, repsArg] = args;
if (!path) throw new Error("usage: bench/web_generate.ts SNAPSHOT [REPS] [--rounds R] [--f32-only]");
const reps = Number(repsArg ?? 3);
applyGemmEnv();
const rt = await initGPU();
const bytes = await Deno.readFile(path);
const probe = await rt.probeShaderF16();
const gens = [{ precision: "f32", G: generatorFromSnapshotBytes(bytes, path).G }];
if (!f32Only && probe.ok) {
  gens.push({ precision: "f16", G: generatorFromSnapshotBytes(bytes, path).G.toPrecision("f16") });
} else if (!f32Only) console.log(`f16 not measured: shader-f16 is not usable here (${probe.detail})`);
const adapter = rt.info.description || rt.info.vendor;
for (const batch of [1, 16]) {
  const ips = new Map<string, number[]>(gens.map((g) => [g.precision, []]));
  for (let r = 0; r < rounds; r++) {
    for (const { precision, G } of gens) ips.get(precision)!.push(await benchGenerate(G, batch, reps));
  }
  const load = Deno.loadavg()[0].toFixed(2);
  for (const { precision, G } of gens) {
    const v = ips.get(precision)!;
    console.log(
      `${adapter}: ${G.imgResolution}px, ${precision}, batch ${batch}: ${median(v).toFixed(1)} images/s ` +
        `(rounds ${v.map((x) => x.toFixed(1)).join(", ")}; load ${load})`,
    );
  }
  if (gens.length === 2) {
    const m = (p: string) => median(ips.get(p)!);
    console.log(`batch ${batch}: f16 / f32 throughput ${(m("f16") / m("f32")).toFixed(2)}x (medians)`);
  }
}
for (const { G } of gens) G.dispose();
