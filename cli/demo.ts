// `demo`: the main job on embedded data. Until the merging demo lands, it trains the 2-D study's MLP GAN on
// the 10-Gaussian ring for a CPU-sized budget and prints its W1 to the target.

import { demo2d } from "../gan/toy2d/demo.ts";
import { initGPU } from "../kernels/runtime.ts";
import { num, parse } from "./args.ts";
import { Progress } from "./progress.ts";

export async function demo(args: string[]): Promise<void> {
  const { values } = parse(args, "usage: cli.ts demo [--out DIR] [--g-steps N] [--seed S]", {
    out: { type: "string", help: "output directory", default: "runs/demo" },
    "g-steps": { type: "string", help: "generator steps", default: "1000" },
    seed: { type: "string", help: "random seed", default: "0" },
  });
  const rt = await initGPU();
  console.log(`adapter: ${rt.info.description || rt.info.vendor}`);
  const gSteps = num(values["g-steps"], "g-steps");
  const bar = new Progress("2-D MLP GAN", gSteps, "G steps");
  const r = await demo2d({
    out: String(values.out),
    gSteps,
    seed: num(values.seed, "seed"),
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
