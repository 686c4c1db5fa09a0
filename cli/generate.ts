// `generate`: images from a generator as one PNG grid, one image per seed; each image depends on its seed
// alone (its latent and its noise come from a stream keyed by the seed). The generator is named as every
// command names one (cli/inputs.ts openGenerator): snapshot, run directory, SGA .pkl, DCGAN snapshot, PATH#CLASS.

import { initGPU, type Runtime } from "../kernels/runtime.ts";
import { saveImageGrid } from "../data/mod.ts";
import { Generator as Rng } from "../nn/creation.ts";
import { concat } from "../nn/shape.ts";
import { scopeAsync } from "../nn/tensor.ts";
import { loadNetworks } from "../gan/train/networks.ts";
import { parseSourceSpec } from "../gan/cocktail/sources.ts";
import { num, parse, report } from "./args.ts";
import { openGenerator } from "./inputs.ts";

const USAGE = `usage: cli.ts generate --snapshot PATH --out grid.png [--seeds 0-15] [options]

Generates images with a trained generator: a training snapshot (.safetensors), a run directory (its latest
snapshot), an SGA network .pkl, a DCGAN snapshot, or PATH#CLASS (that class of a conditional generator).`;

const OPTIONS = {
  snapshot: {
    type: "string",
    help: "generator: snapshot, run directory, SGA .pkl, DCGAN snapshot, PATH#CLASS",
  },
  out: { type: "string", help: "output PNG" },
  seeds: { type: "string", help: "seeds: '0-15', '1,5,9' or a mix", default: "0-15" },
  class: { type: "string", help: "class index or name (conditional models; default: cycle through classes)" },
  trunc: { type: "string", help: "truncation psi", default: "1" },
  "trunc-cutoff": { type: "string", help: "truncate only the first N ws" },
  "noise-mode": { type: "string", help: "noise: random, const or none", default: "const" },
  network: { type: "string", help: "G_ema or G", default: "G_ema" },
  cols: { type: "string", help: "images per row of the grid" },
  precision: {
    type: "string",
    help: "f32, or f16 (weights and activations; f32 where the adapter lacks shader-f16, with a note)",
    default: "f32",
  },
  json: { type: "boolean", help: "print the result as JSON" },
} as const;

/** "0-3,7,9-10" -> [0, 1, 2, 3, 7, 9, 10]. */
export function parseSeeds(spec: string): number[] {
  const out: number[] = [];
  for (const part of spec.split(",").map((s) => s.trim()).filter((s) => s !== "")) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new Error(`--seeds: '${part}' is not a seed or a range like 0-15`);
    const a = Number(m[1]), b = m[2] === undefined ? a : Number(m[2]);
    if (b < a) throw new Error(`--seeds: range '${part}' runs backwards`);
    if (b - a > 100000) throw new Error(`--seeds: range '${part}' is too long`);
    for (let s = a; s <= b; s++) out.push(s);
  }
  if (!out.length) throw new Error("--seeds: no seeds given");
  return out;
}

/**
 * --precision: f32, or f16 where the adapter's shader-f16 passes its known-answer check
 * (probeShaderF16); elsewhere a note saying why, then f32. The f16 run is the same generator code with
 * its parameters stored as f16 (Module.toPrecision): f16 weights and activations in GPU memory, f32
 * arithmetic inside the kernels.
 */
export async function resolvePrecision(
  p: string,
  rt: Runtime,
): Promise<{ precision: "f32" | "f16"; note: string | null }> {
  if (p === "f32") return { precision: "f32", note: null };
  if (p !== "f16") throw new Error(`--precision must be f32 or f16, got '${p}'`);
  const probe = await rt.probeShaderF16();
  if (probe.ok) return { precision: "f16", note: null };
  const note =
    `--precision f16: shader-f16 is not usable on this adapter (${probe.detail}); generating in f32`;
  console.error(`note: ${note}`);
  return { precision: "f32", note };
}

export async function generateCommand(args: string[]): Promise<void> {
  const { values: v } = parse(args, USAGE, OPTIONS);
  if (!v.snapshot) throw new Error("--snapshot is required");
  if (!v.out) throw new Error("--out is required (a .png path)");
  const seeds = parseSeeds(String(v.seeds));
  const psi = num(v.trunc, "trunc");
  const cutoff = v["trunc-cutoff"] === undefined ? null : num(v["trunc-cutoff"], "trunc-cutoff");
  const noiseMode = String(v["noise-mode"]);
  if (noiseMode !== "random" && noiseMode !== "const" && noiseMode !== "none") {
    throw new Error(`--noise-mode must be random, const or none, got '${noiseMode}'`);
  }
  const which = String(v.network);
  if (which !== "G_ema" && which !== "G") throw new Error(`--network must be G_ema or G, got '${which}'`);
  const rt = await initGPU();
  const { precision, note: precisionNote } = await resolvePrecision(String(v.precision), rt);
  const spec = String(v.snapshot);
  const src = await openGenerator(spec, { allClasses: true });
  const out = String(v.out);
  const cols = v.cols === undefined ? undefined : num(v.cols, "cols");
  if (src.kind === "dcgan") {
    try {
      if (psi !== 1 || cutoff !== null) throw new Error("--trunc: a DCGAN generator has no truncation");
      if (v.class !== undefined) throw new Error("--class: a DCGAN generator is unconditional");
      if (which !== "G_ema") throw new Error("--network: a DCGAN snapshot holds one generator");
      if (precision === "f16") throw new Error("--precision f16: only StyleGAN2 generators run in f16");
      await scopeAsync(async () => {
        const imgs = seeds.map((s) => src.sample(1, new Rng(s)));
        await saveImageGrid(out, concat(imgs, 0), { cols });
      });
      report(
        {
          out,
          seeds: seeds.length,
          resolution: src.resolution,
          classes: 0,
          generator: src.path,
          kind: "dcgan",
        },
        !!v.json,
        `wrote ${seeds.length} images (${src.resolution}px, DCGAN ${src.path}) to ${out}`,
      );
    } finally {
      src.dispose();
    }
    return;
  }
  src.dispose();
  const nets = await loadNetworks(src.path);
  const G = which === "G" ? nets.G : nets.Gema;
  try {
    if (precision === "f16") G.toPrecision("f16");
    const classNames = nets.state?.classNames ?? [];
    const specClass = parseSourceSpec(spec).classLabel;
    let classOf: (i: number) => number | null = () => null;
    if (G.cDim > 0) {
      const wanted = v.class !== undefined
        ? String(v.class)
        : specClass !== null
        ? String(specClass)
        : undefined;
      if (wanted === undefined) classOf = (i) => i % G.cDim;
      else {
        const byName = classNames.indexOf(wanted);
        const k = byName >= 0 ? byName : Number(wanted);
        if (!Number.isInteger(k) || k < 0 || k >= G.cDim) {
          throw new Error(
            `--class '${wanted}' is not a class index in [0, ${G.cDim})` +
              (classNames.length ? ` or one of ${classNames.join(", ")}` : ""),
          );
        }
        classOf = () => k;
      }
    } else if (v.class !== undefined) throw new Error("--class: this generator is unconditional");
    await scopeAsync(async () => {
      const imgs = seeds.map((s, i) => {
        const k = classOf(i);
        return G.sample(1, k === null ? null : [k], {
          generator: new Rng(s),
          truncationPsi: psi,
          truncationCutoff: cutoff,
          noiseMode,
        });
      });
      await saveImageGrid(out, concat(imgs, 0), { cols });
    });
    report(
      {
        out,
        seeds: seeds.length,
        resolution: G.imgResolution,
        classes: G.cDim,
        truncationPsi: psi,
        noiseMode,
        generator: src.path,
        precision,
        ...(precisionNote ? { precisionNote } : {}),
      },
      !!v.json,
      `wrote ${seeds.length} images (${G.imgResolution}px, ${which} of ${src.path}, ${precision}) to ${out}`,
    );
  } finally {
    nets.G.dispose();
    nets.Gema.dispose();
    nets.D?.dispose();
  }
}
