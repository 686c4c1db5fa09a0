// `import`: turns a reference network pickle (SGA network-snapshot-*.pkl) or a torch.save zip of state
// dicts into this project's snapshot (.safetensors). Files are read strictly as data (no Python code runs).
// A state-dict zip does not record the architecture, so it must come from --arch or --preset.

import {
  discriminatorInitKwargs,
  generatorInitKwargs,
  presetConfig,
  type StyleGAN2Config,
} from "../gan/stylegan2/config.ts";
import { Discriminator } from "../gan/stylegan2/discriminator.ts";
import { Generator } from "../gan/stylegan2/generator.ts";
import { cloneGenerator } from "../gan/train/networks.ts";
import { saveSnapshot, untrainedState } from "../gan/train/snapshot.ts";
import { initGPU } from "../kernels/runtime.ts";
import { tensorFromHost } from "../nn/checkpoint.ts";
import { type HostArray, isZip, loadStateDict, readNetworkPickle, type TorchNetwork } from "../nn/io/mod.ts";
import type { Module } from "../nn/module.ts";
import { num, parse, report } from "./args.ts";

const USAGE = `usage: cli.ts import FILE --out SNAPSHOT.safetensors [--arch JSON | --preset NAME [overrides]]

FILE is an SGA network pickle (network-snapshot-*.pkl: the architecture is read from it) or a torch.save
zip of state dicts ({"G", "D", "G_ema"} or a single generator's): give the architecture with --arch
(JSON text or a .json file: {"G_init_kwargs", "D_init_kwargs"} as SGA names them) or --preset.`;

type Json = Record<string, unknown>;

/** The architecture of a state-dict file, as SGA init kwargs. */
export interface ImportArch {
  G: Json;
  D: Json | null;
}

export interface ImportResult {
  out: string;
  source: "network-pickle" | "state-dict-zip";
  /** Which networks came from the file; the others were derived ("G_ema copy", "fresh D"). */
  fromFile: string[];
  notes: string[];
  G_init_kwargs: Json;
  D_init_kwargs: Json;
}

/** Networks read from a file: any of them may be missing. */
interface Found {
  G: Generator | null;
  D: Discriminator | null;
  Gema: Generator | null;
  source: ImportResult["source"];
  notes: string[];
}

function build<M extends Module>(make: () => M, state: Map<string, HostArray>, what: string): M {
  const m = make();
  const tensors = new Map([...state].map(([k, a]) => [k, tensorFromHost(a)]));
  try {
    m.loadStateDict(tensors, { strict: true });
  } catch (e) {
    m.dispose();
    throw new Error(`${what}: ${(e as Error).message}`);
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
  return m;
}

function fromPickle(bytes: Uint8Array): Found {
  const nets = readNetworkPickle(bytes);
  const net = (key: string): TorchNetwork | null => {
    const n = nets[key] as TorchNetwork | null | undefined;
    return n && typeof n === "object" && n.state instanceof Map && n.initKwargs ? n : null;
  };
  const found: Found = { G: null, D: null, Gema: null, source: "network-pickle", notes: [] };
  try {
    for (const key of ["G", "G_ema"] as const) {
      const n = net(key);
      if (n) {
        const g = build(() => Generator.fromInitKwargs(n.initKwargs), n.state, key);
        if (key === "G") found.G = g;
        else found.Gema = g;
      }
    }
    const d = net("D");
    if (d) found.D = build(() => Discriminator.fromInitKwargs(d.initKwargs), d.state, "D");
  } catch (e) {
    disposeFound(found);
    throw e;
  }
  if (!found.G && !found.Gema) {
    disposeFound(found);
    throw new Error(
      `the pickle holds no G or G_ema network (keys: ${Object.keys(nets).join(", ") || "none"})`,
    );
  }
  return found;
}

const isGeneratorKey = (k: string) => k.startsWith("mapping.") || k.startsWith("synthesis.");

function fromStateDicts(bytes: Uint8Array, arch: ImportArch | null): Found {
  const flat = loadStateDict(bytes);
  if (flat.size === 0) throw new Error("the file holds no tensors");
  const parts = new Map<string, Map<string, HostArray>>();
  const ignored: string[] = [];
  const single = [...flat.keys()].every(isGeneratorKey);
  for (const [k, a] of flat) {
    const m = single ? ["", "G_ema", k] : /^(G_ema|G|D)\.(.+)$/.exec(k);
    if (!m) {
      ignored.push(k);
      continue;
    }
    if (!parts.has(m[1])) parts.set(m[1], new Map());
    parts.get(m[1])!.set(m[2], a);
  }
  if (!parts.has("G") && !parts.has("G_ema")) {
    throw new Error(
      `no generator state dict found: expected keys 'G.*' / 'G_ema.*' / 'D.*' or a single generator's ` +
        `('mapping.*', 'synthesis.*'); first keys: ${[...flat.keys()].slice(0, 5).join(", ")}`,
    );
  }
  if (!arch) {
    throw new Error(
      "this is a state-dict file: it does not record the architecture. Give it with --arch " +
        '\'{"G_init_kwargs": {...}, "D_init_kwargs": {...}}\' (or a .json file) or --preset NAME ' +
        "(with --res/--cbase/--cmax/--map-layers/--zdim/--wdim/--cdim/--conv-clamp overrides)",
    );
  }
  const found: Found = { G: null, D: null, Gema: null, source: "state-dict-zip", notes: [] };
  if (single) found.notes.push("the file holds a single generator: imported as G_ema");
  if (ignored.length) {
    found.notes.push(`ignored ${ignored.length} tensor(s) outside G/D/G_ema (e.g. ${ignored[0]})`);
  }
  try {
    const g = parts.get("G"), ge = parts.get("G_ema"), d = parts.get("D");
    if (g) found.G = build(() => Generator.fromInitKwargs(arch.G), g, "G");
    if (ge) found.Gema = build(() => Generator.fromInitKwargs(arch.G), ge, "G_ema");
    if (d) {
      if (!arch.D) throw new Error("the file holds D but the architecture gives no D_init_kwargs");
      found.D = build(() => Discriminator.fromInitKwargs(arch.D!), d, "D");
    }
  } catch (e) {
    disposeFound(found);
    throw e;
  }
  return found;
}

function disposeFound(f: Found): void {
  for (const m of [f.G, f.D, f.Gema]) m?.dispose();
}

/** D's architecture matching a generator, for files without a D (its weights are freshly initialised). */
function discriminatorFor(G: Generator): Json {
  const g = G.initKwargs();
  const s = g.synthesis_kwargs;
  return {
    c_dim: g.c_dim,
    img_resolution: g.img_resolution,
    img_channels: g.img_channels,
    channel_base: s.channel_base,
    channel_max: s.channel_max,
    conv_clamp: s.conv_clamp,
  };
}

/**
 * Reads FILE (network pickle or state-dict zip) and writes a snapshot to `out`. Nothing is written when
 * anything fails. `arch` is required for state-dict files and ignored for pickles.
 */
export async function importNetworks(
  file: string,
  out: string,
  arch: ImportArch | null = null,
): Promise<ImportResult> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(file);
  } catch (e) {
    throw new Error(`cannot read ${file}: ${(e as Error).message}`);
  }
  await initGPU();
  let found: Found;
  try {
    if (isZip(bytes)) found = fromStateDicts(bytes, arch);
    else if (bytes.length > 1 && bytes[0] === 0x80) found = fromPickle(bytes);
    else {
      throw new Error(
        "not a network pickle or a torch.save zip (a .safetensors snapshot needs no import)",
      );
    }
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message}`);
  }
  const fromFile = (["G", "D", "G_ema"] as const).filter((k) => found[k === "G_ema" ? "Gema" : k]);
  const notes = found.notes;
  const Gema = found.Gema ?? cloneGenerator(found.G!);
  const G = found.G ?? cloneGenerator(Gema);
  if (!found.Gema) notes.push("no G_ema in the file: G_ema is a copy of G");
  if (!found.G) notes.push("no G in the file: G is a copy of G_ema");
  let D = found.D;
  try {
    if (!D) {
      const dKwargs = found.source === "state-dict-zip" && arch?.D ? arch.D : discriminatorFor(Gema);
      D = Discriminator.fromInitKwargs(dKwargs);
      notes.push(
        "no D in the file: D is freshly initialised (fine for generating and merging, not for resuming)",
      );
    }
    await saveSnapshot(out, { G, D, Gema }, untrainedState());
    return {
      out,
      source: found.source,
      fromFile: [...fromFile],
      notes,
      G_init_kwargs: Gema.initKwargs() as unknown as Json,
      D_init_kwargs: D.initKwargs() as unknown as Json,
    };
  } finally {
    for (const m of new Set([G, Gema, D])) m?.dispose();
  }
}

/** --arch: JSON text or a path to a .json file holding {G_init_kwargs, D_init_kwargs?}. */
async function readArch(text: string): Promise<ImportArch> {
  let raw = text.trim();
  if (!raw.startsWith("{")) {
    try {
      raw = await Deno.readTextFile(text);
    } catch (e) {
      throw new Error(`--arch: not JSON and not a readable file: ${(e as Error).message}`);
    }
  }
  let j: unknown;
  try {
    j = JSON.parse(raw);
  } catch (e) {
    throw new Error(`--arch: invalid JSON: ${(e as Error).message}`);
  }
  const o = j as Json;
  if (!o || typeof o !== "object" || typeof o.G_init_kwargs !== "object" || o.G_init_kwargs === null) {
    throw new Error(`--arch: expected {"G_init_kwargs": {...}, "D_init_kwargs": {...}}`);
  }
  return { G: o.G_init_kwargs as Json, D: (o.D_init_kwargs ?? null) as Json | null };
}

function presetArch(values: Record<string, string | boolean | undefined>): ImportArch {
  const o: Partial<StyleGAN2Config> = {};
  const set = (flag: string, key: keyof StyleGAN2Config) => {
    if (values[flag] !== undefined) (o as Record<string, number>)[key] = num(values[flag], flag);
  };
  set("res", "resolution");
  set("cbase", "channelBase");
  set("cmax", "channelMax");
  set("map-layers", "mappingLayers");
  set("zdim", "zDim");
  set("wdim", "wDim");
  set("cdim", "cDim");
  if (values["conv-clamp"] !== undefined) {
    o.convClamp = values["conv-clamp"] === "none" ? null : num(values["conv-clamp"], "conv-clamp");
  }
  const c = presetConfig(String(values.preset), o);
  return {
    G: generatorInitKwargs(c) as unknown as Json,
    D: discriminatorInitKwargs(c) as unknown as Json,
  };
}

export async function importCommand(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, USAGE, {
    out: { type: "string", help: "output snapshot (.safetensors)" },
    arch: { type: "string", help: "architecture for state-dict files: JSON or a .json file" },
    preset: { type: "string", help: "architecture preset for state-dict files" },
    res: { type: "string", help: "preset override: resolution" },
    cbase: { type: "string", help: "preset override: channel_base" },
    cmax: { type: "string", help: "preset override: channel_max" },
    "map-layers": { type: "string", help: "preset override: mapping layers" },
    zdim: { type: "string", help: "preset override: z_dim" },
    wdim: { type: "string", help: "preset override: w_dim" },
    cdim: { type: "string", help: "preset override: number of classes" },
    "conv-clamp": { type: "string", help: "preset override: conv clamp (number or 'none')" },
    json: { type: "boolean", help: "print the result as JSON" },
  });
  if (positionals.length !== 1) throw new Error(`expected one input FILE\n\n${USAGE}`);
  if (typeof values.out !== "string") throw new Error(`--out SNAPSHOT.safetensors is required\n\n${USAGE}`);
  if (!values.out.toLowerCase().endsWith(".safetensors")) {
    throw new Error(`--out must end in .safetensors, got ${values.out}`);
  }
  if (values.arch !== undefined && values.preset !== undefined) {
    throw new Error("give either --arch or --preset, not both");
  }
  const arch = typeof values.arch === "string"
    ? await readArch(values.arch)
    : values.preset !== undefined
    ? presetArch(values)
    : null;
  const overrides = ["res", "cbase", "cmax", "map-layers", "zdim", "wdim", "cdim", "conv-clamp"];
  const stray = overrides.find((k) => values[k] !== undefined);
  if (stray && values.preset === undefined) {
    throw new Error(`--${stray} overrides a preset: give --preset too`);
  }
  const r = await importNetworks(positionals[0], values.out, arch);
  report(
    r,
    values.json === true,
    `imported ${positionals[0]} (${r.source}: ${r.fromFile.join(", ")}) -> ${r.out}` +
      r.notes.map((n) => `\n  note: ${n}`).join(""),
  );
}
