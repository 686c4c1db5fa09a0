// The command line: `deno run -A cli.ts <command> [options]`; `--help` on each says what it does.
// Each command lives in cli/ and is imported only when it runs, so start-up stays quick.

interface Command {
  summary: string;
  run: (args: string[]) => Promise<void>;
}

const commands: Record<string, Command> = {
  info: {
    summary: "print the WebGPU adapter, its limits and the engine's configuration",
    run: async (a) => (await import("./cli/info.ts")).info(a),
  },
  demo: {
    summary: "the main job on the embedded default data (see README)",
    run: async (a) => (await import("./cli/demo.ts")).demo(a),
  },
  train: {
    summary: "train a StyleGAN2 (or fine-tune from a snapshot) on a dataset; resumable run directory",
    run: async (a) => (await import("./cli/train.ts")).trainCommand(a),
  },
  generate: {
    summary: "write a PNG grid of images from a snapshot (seeds, class, truncation, noise mode)",
    run: async (a) => (await import("./cli/generate.ts")).generateCommand(a),
  },
  import: {
    summary:
      "convert an SGA network pickle or a torch.save zip of state dicts into a snapshot (read as data)",
    run: async (a) => (await import("./cli/import.ts")).importCommand(a),
  },
  merge: {
    summary:
      "merge N pretrained generators (GAN Cocktail) or run a baseline: scratch, transfer, ewc, freezed",
    run: async (a) => (await import("./cli/merge.ts")).mergeCommand(a),
  },
  compare: {
    summary: "all methods on the same sources and budget; HTML report with FID/KID/PR per class and union",
    run: async (a) => (await import("./cli/compare.ts")).compareCommand(a),
  },
  fidelity: {
    summary: "class fidelity of a merged snapshot: does class c look like source c? (source classifier)",
    run: async (a) => (await import("./cli/fidelity.ts")).fidelityCommand(a),
  },
  w1: {
    summary: "exact Wasserstein-1 between two equal-size 2-D point sets (.npy, [n,2])",
    run: async (a) => (await import("./cli/metrics.ts")).w1Command(a),
  },
  fid: {
    summary: "FID between statistics (.npz), features (.npy), generator snapshots or datasets",
    run: async (a) => (await import("./cli/fid.ts")).fidCommand(a),
  },
  kid: {
    summary: "KID (polynomial kernel, unbiased, subsets) between two feature sets or image sources",
    run: async (a) => (await import("./cli/fid.ts")).kidCommand(a),
  },
  pr: {
    summary: "improved precision and recall (k-NN manifolds) of FAKE against REAL",
    run: async (a) => (await import("./cli/fid.ts")).prCommand(a),
  },
  metrics: {
    summary: "FID, KID, precision and recall of a generator snapshot against a dataset",
    run: async (a) => (await import("./cli/fid.ts")).metricsCommand(a),
  },
  edit: {
    summary: "a merged model's shared latent space: interpolate, mix (style mixing), direction (SVM edit)",
    run: async (a) => (await import("./cli/edit.ts")).editCommand(a),
  },
  select: {
    summary: "rank candidate pretrained checkpoints for a target dataset by FID, KID, precision and recall",
    run: async (a) => (await import("./cli/select.ts")).selectCommand(a),
  },
  features: {
    summary: "train the project's own MNIST feature network (`features train-mnist`)",
    run: async (a) => (await import("./cli/features.ts")).featuresCommand(a),
  },
  plan: {
    summary: "write Slurm or Kubernetes jobs for a merge, compare, dissect, select or transfer run",
    run: async (a) => (await import("./cli/plan.ts")).planCommand(a),
  },
  collect: {
    summary: "join a plan's finished tasks into the single-process reports; list missing/failed tasks",
    run: async (a) => (await import("./cli/collect.ts")).collectCommand(a),
  },
  task: {
    summary: "one task of a plan: `task root` (one rooting run), `task dissect` (some checkpoints)",
    run: async (a) => (await import("./cli/task.ts")).taskCommand(a),
  },
  serve: {
    summary: "the web page on 127.0.0.1: a snapshot's generator on the browser's WebGPU, with controls",
    run: async (a) => (await import("./cli/serve.ts")).serveCommand(a),
  },
  study: {
    summary: "the pretrained-GAN study's 2-D experiments: `study transfer` and `study dissect`",
    run: async (a) => (await import("./cli/study.ts")).study(a),
  },
};

function usage(): string {
  const rows = Object.entries(commands).map(([n, c]) => `  ${n.padEnd(10)} ${c.summary}`);
  return `GAN Cocktail: merge pretrained GANs without their data, on a WebGPU engine.

usage: deno run -A cli.ts <command> [options]     (each command takes --help)

commands:
${rows.join("\n")}`;
}

if (import.meta.main) {
  const [name, ...rest] = Deno.args;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    console.log(usage());
    Deno.exit(name ? 0 : 1);
  }
  const cmd = commands[name];
  if (!cmd) {
    console.error(`unknown command '${name}'\n\n${usage()}`);
    Deno.exit(2);
  }
  try {
    (await import("./cli/gemm_env.ts")).applyGemmEnv();
    await cmd.run(rest);
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    if (Deno.env.get("GC_DEBUG")) console.error((e as Error).stack);
    Deno.exit(1);
  }
}
