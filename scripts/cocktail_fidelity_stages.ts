// Class fidelity of every stage of a cocktail merge (rooted models, the average, the merged model), for
// the before/after measurement of the conditional conversion (docs/cocktail/).
// Usage: deno run -A scripts/cocktail_fidelity_stages.ts OUT_DIR KIMG_PER_STAGE [SEED] [SOURCE...]
// (default sources: the demo's, assets/demo_sources/mnist04 and mnist59; root 0). Prints one JSON object
// as its last line and writes it to OUT_DIR/fidelity_stages.json.

import { initGPU } from "../kernels/runtime.ts";
import { writeFileAtomic } from "../nn/checkpoint.ts";
import { loadNetworks } from "../gan/train/networks.ts";
import { mergeSources } from "../gan/cocktail/merge.ts";
import { conditionalRoot } from "../gan/cocktail/rooting.ts";
import { openSources } from "../gan/cocktail/sources.ts";
import { disposeNetworks } from "../gan/cocktail/stage.ts";
import { FidelityJudge } from "../gan/cocktail/fidelity.ts";

const [out, kimgArg, seedArg, ...rest] = Deno.args;
if (!out || !kimgArg) {
  throw new Error("usage: cocktail_fidelity_stages.ts OUT_DIR KIMG_PER_STAGE [SEED] [SOURCE...]");
}
const kimg = Number(kimgArg), seed = Number(seedArg ?? 0);
const specs = rest.length ? rest : ["assets/demo_sources/mnist04", "assets/demo_sources/mnist59"];
const rt = await initGPU();
const t0 = performance.now();
const sources = await openSources(specs);
const r = await mergeSources({ sources, method: "cocktail", outDir: out, kimg, root: 0, seed, resume: true });
const trainSeconds = (performance.now() - t0) / 1000;
const res = sources[0].resolution, ch = sources[0].channels;
const judge = await FidelityJudge.create(sources, {
  resolution: res,
  channels: ch,
  seed,
  samplesPerClass: 500,
});
const models: Record<string, unknown> = { sources: await judge.scoreSources() };
const score = async (name: string, path: string) => {
  const nets = await loadNetworks(path);
  try {
    models[name] = await judge.score(nets.Gema);
  } finally {
    for (const m of [nets.G, nets.D, nets.Gema]) m?.dispose();
  }
};
const root = await conditionalRoot(sources[0], sources.length, seed, 0);
models["root, converted"] = await judge.score(root.Gema);
disposeNetworks(root);
for (const [i, path] of Object.entries(r.rooted ?? {})) await score(`rooted 0->${i}`, path);
await score("averaged", r.averaged!);
models.merged = await judge.score(r.Gema);
disposeNetworks(r);
const result = {
  kimgPerStage: kimg,
  seed,
  sources: specs,
  adapter: rt.info.description || rt.info.vendor,
  classifier: judge.describe(),
  trainSeconds,
  totalSeconds: (performance.now() - t0) / 1000,
  models,
};
judge.dispose();
for (const s of sources) s.dispose();
await writeFileAtomic(`${out}/fidelity_stages.json`, JSON.stringify(result, null, 2) + "\n");
console.log(JSON.stringify(result));
