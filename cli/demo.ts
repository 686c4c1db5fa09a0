// `demo`: the main job on embedded data. By default the GAN Cocktail demo: merges the two small MNIST
// generators shipped in assets/demo_sources/ with GAN Cocktail and TransferGAN on the same budget and
// writes the report; its path is the last line printed. `--toy2d` runs the 2-D study's MLP GAN instead.

import { existsSync, readdirSync } from "node:fs";
import { cocktailDemo, DEMO_KIMG, DEMO_ROOT_KIMG } from "../gan/cocktail/demo.ts";
import { demo2d } from "../gan/toy2d/demo.ts";
import { initGPU } from "../kernels/runtime.ts";
import { num, parse } from "./args.ts";
import { progressObserver } from "./merge.ts";
import { Progress } from "./progress.ts";

/** The newest runs/cocktail-demo-* directory (names sort by time). */
function newestDemoRun(): string {
  const runs = existsSync("runs")
    ? readdirSync("runs").filter((d) => d.startsWith("cocktail-demo-")).sort()
    : [];
  if (!runs.length) throw new Error("--resume: no runs/cocktail-demo-* to resume; give --out DIR");
  return `runs/${runs.at(-1)}`;
}

export async function demo(args: string[]): Promise<void> {
  const { values } = parse(
    args,
    "usage: cli.ts demo [--out DIR] [--resume] [--kimg K] [--root-kimg R] [--seed S]\n" +
      "       cli.ts demo --toy2d [--out DIR] [--g-steps N]\n\n" +
      "A killed demo continues where it stopped when rerun with the same --out (or with --resume: the\n" +
      "newest runs/cocktail-demo-*); finished stages and evaluations are not redone.",
    {
      out: { type: "string", help: "output directory (default runs/cocktail-demo-<time> or runs/demo)" },
      resume: { type: "boolean", help: "continue --out, or the newest runs/cocktail-demo-* without --out" },
      kimg: {
        type: "string",
        help: `merge budget in kimg (cocktail demo; default ${DEMO_KIMG}; alone, also the rooting budget)`,
      },
      "root-kimg": { type: "string", help: `rooting budget in kimg (default ${DEMO_ROOT_KIMG}, or --kimg)` },
      seed: { type: "string", help: "random seed", default: "0" },
      toy2d: { type: "boolean", help: "run the 2-D MLP GAN job instead of the merging demo" },
      "g-steps": { type: "string", help: "generator steps (--toy2d)", default: "1000" },
    },
  );
  const rt = await initGPU();
  const adapter = rt.info.description || rt.info.vendor;
  console.log(`adapter: ${adapter}`);
  const seed = num(values.seed, "seed");
  if (!values.toy2d) {
    const out = values.out ? String(values.out) : values.resume ? newestDemoRun() : undefined;
    if (values.resume && out) console.log(`resuming ${out}`);
    await cocktailDemo({
      out,
      resume: values.resume ? true : undefined,
      kimg: values.kimg === undefined ? undefined : num(values.kimg, "kimg"),
      rootKimg: values["root-kimg"] === undefined ? undefined : num(values["root-kimg"], "root-kimg"),
      seed,
      adapter,
      observer: progressObserver("demo: "),
    });
    return;
  }
  const gSteps = num(values["g-steps"], "g-steps");
  const bar = new Progress("2-D MLP GAN", gSteps, "G steps");
  const r = await demo2d({
    out: values.out ? String(values.out) : "runs/demo",
    gSteps,
    seed,
    onProgress: (p) => bar.update(p.step, p.w1 !== undefined ? { W1: p.w1 } : {}),
  });
  bar.done();
  console.log(
    `W1 to the 10-Gaussian target: ${r.w1.toFixed(3)} (start ${r.startW1.toFixed(3)}, best ${
      r.bestW1.toFixed(3)
    })`,
  );
  console.log(`${r.msPerGStep.toFixed(1)} ms per G step; picture: ${r.files.png}`);
  console.log(r.files.json);
}
