// Class fidelity along a cocktail merge of the demo sources (root 0), to choose a budget from
// measurements (docs/cocktail/): the rooted model's G and G_ema after every KSTEP kimg of rooting up to
// ROOT_MAX, then the merged model's after every KSTEP kimg of merging (from the rooted model at ROOT_KIMG)
// up to MERGE_MAX. Every point extends the same run (a resumed stage continues the same iterations), so
// the curve is one run read at several budgets.
// Usage: deno run -A scripts/cocktail_fidelity_curve.ts OUT ROOT_MAX ROOT_KIMG MERGE_MAX [KSTEP] [SEED]
// [MERGE_FROM] (MERGE_FROM: the first merge budget scored, to extend an earlier curve; default KSTEP).
// Prints one JSON line per point and writes OUT/fidelity_curve.json.

import { existsSync } from "node:fs";
import { initGPU } from "../kernels/runtime.ts";
import { writeFileAtomic } from "../nn/checkpoint.ts";
import { mergeSources } from "../gan/cocktail/merge.ts";
import { rootedDir, rootModels } from "../gan/cocktail/rooting.ts";
import { openSources } from "../gan/cocktail/sources.ts";
import { disposeNetworks, type Networks } from "../gan/cocktail/stage.ts";
import { stageSettings } from "../gan/cocktail/merge.ts";
import { FidelityJudge } from "../gan/cocktail/fidelity.ts";

/** Copies a run directory (flat: config, stats, grids, snapshots). */
function copySync(from: string, to: string): void {
  Deno.mkdirSync(to, { recursive: true });
  for (const e of Deno.readDirSync(from)) {
    if (e.isFile) Deno.copyFileSync(`${from}/${e.name}`, `${to}/${e.name}`);
  }
}

const [out, rootMaxArg, rootKimgArg, mergeMaxArg, stepArg, seedArg, mergeFromArg] = Deno.args;
if (!out || !rootMaxArg || !rootKimgArg || !mergeMaxArg) {
  throw new Error("usage: cocktail_fidelity_curve.ts OUT ROOT_MAX ROOT_KIMG MERGE_MAX [KSTEP] [SEED]");
}
const rootMax = Number(rootMaxArg), rootKimg = Number(rootKimgArg), mergeMax = Number(mergeMaxArg);
const kstep = Number(stepArg ?? 1), seed = Number(seedArg ?? 0);
const rt = await initGPU();
const sources = await openSources(["assets/demo_sources/mnist04", "assets/demo_sources/mnist59"]);
const judge = await FidelityJudge.create(sources, {
  resolution: 16,
  channels: 1,
  seed,
  samplesPerClass: 500,
});
const points: Record<string, unknown>[] = [];
const record = async (stage: string, kimg: number, seconds: number, nets: Networks) => {
  const p = { stage, kimg, seconds, G: await judge.score(nets.G), Gema: await judge.score(nets.Gema) };
  points.push(p);
  console.log(JSON.stringify(p));
};
const { settings } = await stageSettings({
  sources,
  method: "cocktail",
  outDir: out,
  kimg: 1,
  root: 0,
  seed,
});
settings.resume = true;
const rootOut = `${out}/rooting`;
for (let k = kstep; k <= rootMax + 1e-9; k += kstep) {
  const r = (await rootModels({ sources, root: 0, outDir: rootOut, kimg: k, settings })).get(1)!;
  await record("rooting", k, r.seconds, r);
  disposeNetworks(r);
  // Keep the rooted model at this budget for merges that start from it.
  const keep = `${out}/rooted-${k}`;
  if (!existsSync(keep)) copySync(rootedDir(`${rootOut}`, 0, 1), keep);
}
const mergeOut = `${out}/merge-from-${rootKimg}`;
if (!existsSync(`${mergeOut}/cocktail`)) {
  copySync(`${out}/rooted-${rootKimg}`, rootedDir(`${mergeOut}/cocktail`, 0, 1));
}
for (let m = Number(mergeFromArg ?? kstep); m <= mergeMax + 1e-9; m += kstep) {
  const r = await mergeSources({
    sources,
    method: "cocktail",
    outDir: mergeOut,
    kimg: m,
    rootKimg,
    root: 0,
    seed,
    resume: true,
  });
  await record(`merge from rooting ${rootKimg}`, m, r.stages.at(-1)!.seconds, r);
  disposeNetworks(r);
}
const result = { adapter: rt.info.description || rt.info.vendor, seed, classifier: judge.describe(), points };
judge.dispose();
for (const s of sources) s.dispose();
await writeFileAtomic(`${out}/fidelity_curve.json`, JSON.stringify(result, null, 2) + "\n");
