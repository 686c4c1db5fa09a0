// Class fidelity of the trained G and of G_ema of snapshots (MNIST demo sources), to see how far the EMA lags.
// Usage: deno run -A scripts/cocktail_fidelity_g.ts SNAPSHOT...
import { initGPU } from "../kernels/runtime.ts";
import { loadNetworks } from "../gan/train/networks.ts";
import { openSources } from "../gan/cocktail/sources.ts";
import { FidelityJudge } from "../gan/cocktail/fidelity.ts";
await initGPU();
const sources = await openSources(["assets/demo_sources/mnist04", "assets/demo_sources/mnist59"]);
const judge = await FidelityJudge.create(sources, {
  resolution: 16,
  channels: 1,
  seed: 0,
  steps: 100,
  batch: 32,
  samplesPerClass: 200,
});
for (const p of Deno.args) {
  const n = await loadNetworks(p);
  console.log(
    p,
    "G",
    JSON.stringify(await judge.score(n.G)),
    "Gema",
    JSON.stringify(await judge.score(n.Gema)),
  );
  for (const m of new Set([n.G, n.D, n.Gema])) m?.dispose();
}
judge.dispose();
