// `task`: single tasks of a scheduled plan (cli/plan.ts) that no other command runs alone. Each calls the
// same library function as the single-process command, restricted to one part, in the same run directory
// layout, so the results are the same numbers.
//   task root    one rooting run of GAN Cocktail (stage 1 for one source), as `merge --method cocktail` does
//   task dissect source I's checkpoints (--only none) or some checkpoints' fine-tunes (--only 3,7)

import { existsSync } from "node:fs";
import { initGPU } from "../kernels/runtime.ts";
import { checkSources, stageSettings } from "../gan/cocktail/merge.ts";
import { rootModels } from "../gan/cocktail/rooting.ts";
import { openSources } from "../gan/cocktail/sources.ts";
import { disposeNetworks } from "../gan/cocktail/stage.ts";
import { runDissectStudy } from "../gan/toy2d/dissect.ts";
import { num, parse } from "./args.ts";
import { collectList, MERGE_OPTIONS, optionalKimg, progressObserver, recipeOverrides } from "./merge.ts";

const USAGE =
  `usage: cli.ts task root --sources A B [...] --root R --only I --out DIR --kimg K [merge options]
       cli.ts task dissect --out DIR --only none|I[,J...] [--checkpoint-dir D] [study dissect options]

One task of a scheduled plan (see 'plan --help'); resumes DIR when it holds a part of the run.
root: trains GAN_{R->I} (cocktail's rooting of source I) into DIR/cocktail/stage1-rootR-to-I exactly as
  'merge --method cocktail --out DIR' would; a later 'merge --resume' finds it finished.
dissect: 'study dissect' restricted to checkpoints I,J (--only none: only source I's training and its
  checkpoints); --checkpoint-dir reads finished checkpoints of another run (which must all exist).`;

async function rootTask(args: string[]): Promise<void> {
  const { list: sourceSpecs, rest } = collectList(args, "sources");
  const { values: v } = parse(rest, USAGE, {
    ...MERGE_OPTIONS,
    only: { type: "string", help: "the source to root (index)" },
  });
  if (!v.out) throw new Error("task root: --out is required");
  const root = num(v.root, "root"), only = num(v.only, "only"), seed = num(v.seed, "seed");
  if (v.method !== "cocktail") {
    throw new Error("task root: rooting is GAN Cocktail's stage 1 (--method cocktail)");
  }
  await initGPU();
  const sources = await openSources(sourceSpecs);
  try {
    checkSources(sources, root);
    if (!Number.isInteger(only) || only < 0 || only >= sources.length || only === root) {
      throw new Error(`task root: --only must be a source index other than the root ${root}, got ${only}`);
    }
    const o = {
      sources,
      method: "cocktail" as const,
      outDir: String(v.out),
      kimg: num(v.kimg, "kimg"),
      root,
      seed,
      resume: true,
      preset: v.preset as string | undefined,
      recipe: recipeOverrides(v),
      observer: progressObserver("cocktail: "),
    };
    const { settings } = await stageSettings(o);
    const rooted = await rootModels({
      sources,
      root,
      outDir: `${o.outDir}/cocktail`,
      kimg: optionalKimg(v["root-kimg"]) ?? o.kimg,
      settings,
      only,
    });
    for (const r of rooted.values()) {
      console.log(`rooted ${root}->${only}: ${r.snapshot}`);
      disposeNetworks(r);
    }
  } finally {
    for (const s of sources) s.dispose();
  }
}

async function dissectTask(args: string[]): Promise<void> {
  const { values: v } = parse(args, USAGE, {
    out: { type: "string", help: "output directory of this task" },
    only: { type: "string", help: "checkpoints to fine-tune (comma-separated), or none" },
    "checkpoint-dir": { type: "string", help: "source I's checkpoints from another task" },
    checkpoints: { type: "string", help: "checkpoints along source I, step 0 included", default: "101" },
    every: { type: "string", help: "G steps between checkpoints", default: "50" },
    "finetune-steps": { type: "string", help: "fine-tuning G steps per checkpoint", default: "1000" },
    seed: { type: "string", help: "random seed", default: "0" },
    batch: { type: "string", help: "batch size (protocol 64)" },
    "d-steps": { type: "string", help: "D steps per G step (protocol 4)" },
    "eval-every": { type: "string", help: "G steps between W1 evaluations (protocol 200)" },
    "eval-samples": { type: "string", help: "points per W1 evaluation (protocol 2048)" },
  });
  if (!v.out || !v.only) throw new Error("task dissect: --out and --only are required");
  const n = num(v.checkpoints, "checkpoints");
  const only = v.only === "none" ? [] : String(v.only).split(",").map((s) => num(s.trim(), "only"));
  for (const i of only) {
    if (!Number.isInteger(i) || i < 0 || i >= n) {
      throw new Error(`task dissect: --only lists checkpoint ${i}, outside 0..${n - 1}`);
    }
  }
  const ckDir = v["checkpoint-dir"] as string | undefined;
  if (ckDir) {
    // Training source I here would race with the other tasks that read the same directory.
    const missing = Array.from({ length: n }, (_, k) => `${ckDir}/source1_${String(k).padStart(3, "0")}`)
      .filter((p) => !existsSync(`${p}.safetensors`));
    if (missing.length) {
      throw new Error(
        `task dissect: ${missing.length} of ${n} checkpoints missing in ${ckDir} (first ${missing[0]})`,
      );
    }
  }
  const opt = (k: string) => (v[k] === undefined ? undefined : num(v[k], k));
  const deviations = ["batch", "d-steps", "eval-every", "eval-samples"].filter((k) => v[k] !== undefined);
  if (deviations.length) {
    console.log(`note: ${deviations.map((k) => `--${k} ${v[k]}`).join(", ")} (not the protocol's)`);
  }
  await Deno.mkdir(String(v.out), { recursive: true });
  await initGPU();
  const r = await runDissectStudy({
    out: String(v.out),
    checkpoints: n,
    every: num(v.every, "every"),
    finetuneSteps: num(v["finetune-steps"], "finetune-steps"),
    seed: num(v.seed, "seed"),
    batch: opt("batch"),
    dSteps: opt("d-steps"),
    evalEvery: opt("eval-every"),
    evalSamples: opt("eval-samples"),
    only,
    checkpointDir: ckDir,
  });
  for (const c of r.checkpoints) {
    console.log(
      `checkpoint ${c.index}: recall ${c.recall} grad similarity ${c.gradSimilarity} final W1 ${c.finalW1}`,
    );
  }
}

export async function taskCommand(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  if (sub === "root") return await rootTask(rest);
  if (sub === "dissect") return await dissectTask(rest);
  console.log(USAGE);
  if (sub === "--help" || sub === "-h") return;
  throw new Error(`task needs 'root' or 'dissect', got '${sub ?? ""}'`);
}
