// `study transfer` and `study dissect`: the 2-D experiments of the pretrained-GAN study (REFERENCE.md 7).
// Defaults are the protocol's; smaller budgets are flags, and the output says when they were used.
// `study profile`: where a step's time goes on this adapter (dispatch overhead, kernels, read-back).

import { initGPU } from "../kernels/runtime.ts";
import { runDissectStudy } from "../gan/toy2d/dissect.ts";
import { runTransferStudy } from "../gan/toy2d/transfer.ts";
import { profileToy2d } from "../gan/toy2d/profile.ts";
import type { Progress as StudyProgress } from "../gan/toy2d/train.ts";
import { writeFileAtomic } from "../nn/checkpoint.ts";
import { num, parse } from "./args.ts";
import { Progress } from "./progress.ts";

function progressPrinter(): (p: StudyProgress) => void {
  let bar: Progress | null = null;
  let stage = "";
  return (p) => {
    if (p.stage !== stage) {
      bar?.done();
      stage = p.stage;
      bar = new Progress(p.stage.padEnd(18), p.total, "G steps");
    }
    bar!.update(p.step, p.w1 !== undefined ? { W1: p.w1 } : {});
  };
}

const USAGE =
  `usage: cli.ts study transfer --out DIR [--seeds N] [--seed S] [--g-steps N] [--source1 ring|mixture]
                          [--json FILE]
       cli.ts study dissect --out DIR [--checkpoints N] [--every S] [--finetune-steps S] [--json FILE]
       cli.ts study profile [--json FILE]

transfer: for each of N seeds (default 3), trains source I (the wide ring) and source II, then fine-tunes
  on the 10-Gaussian target from each source (G and D) and from random initialisation; writes
  DIR/transfer.png and DIR/transfer.json (headline score = min of the raw G's W1 including step 0)
  after every seed; resumes where a killed run stopped. --source1 mixture: the earlier, wrong source I.
dissect: 101 checkpoints (steps 0..5000) along source I's training, each fine-tuned on the target;
  recall (k=5), gradient similarity (ascent convention) and W1 scores per checkpoint, Pearson
  correlations, scatter plots; resumes where a killed run stopped.
profile: one G step's cost on this adapter split into dispatch overhead, kernel families and read-back
  (sampling, W1, recall), with projections of the full transfer and dissect runs.
Protocol defaults (REFERENCE.md 7): 5000 G steps, 4 D steps per G step, batch 64, Adam 2e-4 (0.5, 0.999).`;

export async function study(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  if (sub !== "transfer" && sub !== "dissect" && sub !== "profile") {
    console.log(USAGE);
    if (sub === "--help" || sub === "-h") return;
    throw new Error(`study needs 'transfer', 'dissect' or 'profile', got '${sub ?? ""}'`);
  }
  const { values } = parse(rest, USAGE, {
    out: { type: "string", help: "output directory", default: `runs/study-${sub}` },
    "g-steps": { type: "string", help: "generator steps per training run (transfer)", default: "5000" },
    checkpoints: {
      type: "string",
      help: "checkpoints along source I, step 0 included (dissect)",
      default: "101",
    },
    seeds: { type: "string", help: "seeds, from --seed on (transfer)", default: "3" },
    source1: { type: "string", help: "source I: ring (protocol) or mixture (old reading)", default: "ring" },
    every: { type: "string", help: "G steps between checkpoints (dissect)", default: "50" },
    "finetune-steps": {
      type: "string",
      help: "fine-tuning G steps per checkpoint (dissect)",
      default: "1000",
    },
    seed: { type: "string", help: "random seed (transfer: the first seed)", default: "0" },
    json: { type: "string", help: "also write the result JSON to this file" },
  });
  await initGPU();
  const out = String(values.out);
  const seed = num(values.seed, "seed");
  const onProgress = progressPrinter();
  let result: unknown;
  if (sub === "profile") {
    const r = await profileToy2d();
    result = r;
    const f = (c: { wall: number; cpu: number }) => `${c.wall} ms wall, ${c.cpu} ms CPU`;
    console.log(`adapter ${r.adapter} (load average ${r.loadAverage.toFixed(1)})`);
    console.log(`one G step (4 D steps + 1 G step): ${f(r.gStepMs)}, ${r.dispatchesPerGStep} dispatches`);
    console.log(
      `  dispatch overhead: ${f(r.overheadMsPerGStep)} (${r.dispatchUs.eightWorkgroups.wall} us each)`,
    );
    for (const [k, c] of Object.entries(r.familiesMs)) console.log(`  ${k.padEnd(16)} ${f(c)}`);
    console.log(
      `the same step through the engine (nn/): ${f(r.engine.gStepMs)}, ${r.engine.dispatchesPerGStep} ` +
        `dispatches; ${r.engine.ratio.wall}x the fused trainer's wall time (${r.engine.ratio.cpu}x CPU), ` +
        `medians of ${r.engine.blocks} alternating blocks (the fused trainer in the same blocks: ` +
        `${f(r.engine.fusedGStepMs)})`,
    );
    console.log(
      `read-back per evaluation: sample 2048 points ${r.evalMs.sample2048} ms, W1 ${r.evalMs.w1} ms; ` +
        `recall ${r.evalMs.recall} ms per start`,
    );
    console.log(
      `projected full runs: transfer ${r.projection.transferMin.wall} min, dissect ` +
        `${r.projection.dissectMin.wall} min (wall, at this load)`,
    );
  } else if (sub === "transfer") {
    const gSteps = num(values["g-steps"], "g-steps");
    if (gSteps !== 5000) console.log(`note: ${gSteps} G steps per run instead of the protocol's 5000`);
    const seeds = num(values.seeds, "seeds");
    const source1 = String(values.source1);
    if (source1 !== "ring" && source1 !== "mixture") {
      throw new Error(`--source1 must be "ring" or "mixture", got "${source1}"`);
    }
    if (source1 === "mixture") {
      console.log("note: source I is the old mixture reading, not the protocol's ring");
    }
    const r = await runTransferStudy({ out, gSteps, seed, seeds, source1, onProgress });
    result = r;
    console.log(
      `\nheadline score (min raw-G W1 incl. step 0), mean +- sd over seeds ${r.seeds.join(", ")}:`,
    );
    for (const k of ["source1", "source2", "random"] as const) {
      const per = r.perSeed.map((s) => s.finetune[k]);
      const f = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(" ");
      console.log(
        `  from ${k.padEnd(8)} ${r.w1[k].toFixed(3)} +- ${r.w1Sd[k].toFixed(3)}  final raw ` +
          `${f(per.map((p) => p.finalRaw))}  final EMA ${f(per.map((p) => p.finalEma))}  recall ` +
          `${f(per.map((p) => p.recall))}  grad similarity (ascent) ${f(per.map((p) => p.gradSimilarity))}`,
      );
    }
    console.log(`wrote ${r.files.png} and ${r.files.json} in ${(r.wallMs / 1000).toFixed(0)} s`);
  } else {
    const checkpoints = num(values.checkpoints, "checkpoints");
    const every = num(values.every, "every");
    const finetuneSteps = num(values["finetune-steps"], "finetune-steps");
    if (checkpoints !== 101 || every !== 50 || finetuneSteps !== 1000) {
      console.log(
        `note: ${checkpoints} checkpoints every ${every} steps, ${finetuneSteps} fine-tuning steps ` +
          `(protocol: 101 every 50, 1000)`,
      );
    }
    const r = await runDissectStudy({ out, checkpoints, every, finetuneSteps, seed, onProgress });
    result = r;
    console.log(
      `\nPearson correlation of the headline score with recall ${r.pearson.recall.toFixed(3)}, ` +
        `with gradient similarity (ascent) ${r.pearson.gradSimilarity.toFixed(3)}; of the final W1: ` +
        `${r.pearsonFinal.recall.toFixed(3)}, ${r.pearsonFinal.gradSimilarity.toFixed(3)} over ` +
        `${r.checkpoints.length} checkpoints`,
    );
    console.log(`wrote ${r.files.png} and ${r.files.json} in ${(r.wallMs / 1000).toFixed(0)} s`);
  }
  if (values.json) await writeFileAtomic(String(values.json), JSON.stringify(result, null, 2));
}
