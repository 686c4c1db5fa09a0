// The stages and tasks of each plan kind. Every task is an existing command (compare, merge, select, study)
// or one of `task`'s single-task entry points, writing its resumable run directory under JOB/runs/; the
// options the user gives are passed on to every task unchanged, so a task computes exactly what the
// single-process command computes for its part.

import { METHODS } from "../../gan/cocktail/merge.ts";
import { collectList } from "../merge.ts";
import type { PlanKind, PlanStage, PlanTask } from "./model.ts";

export interface Built {
  stages: PlanStage[];
  settings: Record<string, unknown>;
}

/** Removes `--name VALUE` (or a boolean `--name`) from args; returns its value. */
export function takeOption(args: string[], name: string, boolean = false): string | boolean | undefined {
  const at = args.indexOf(`--${name}`);
  if (at < 0) return undefined;
  if (boolean) {
    args.splice(at, 1);
    return true;
  }
  const v = args[at + 1];
  if (v === undefined || v.startsWith("--")) throw new Error(`--${name} needs a value`);
  args.splice(at, 2);
  return v;
}

function reject(args: string[], names: string[], why: string): void {
  for (const n of names) if (args.includes(`--${n}`)) throw new Error(`plan: --${n} ${why}`);
}

function intList(v: string, what: string): number[] {
  const xs = v.split(",").map((s) => Number(s.trim()));
  if (!xs.length || xs.some((x) => !Number.isInteger(x) || x < 0)) {
    throw new Error(`--${what} must be comma-separated non-negative integers, got '${v}'`);
  }
  if (new Set(xs).size !== xs.length) throw new Error(`--${what} lists a value twice: '${v}'`);
  return xs;
}

const pad3 = (i: number) => String(i).padStart(3, "0");

/** compare: one task per (seed, method): `compare --methods M --seed S`; collect joins each seed's report. */
function compare(args: string[], runs: string): Built {
  const { list: sources, rest } = collectList(args, "sources");
  if (sources.length < 2) throw new Error("plan compare: --sources needs at least two generators");
  if (!rest.includes("--kimg")) throw new Error("plan compare: --kimg is required (budget per stage)");
  reject(rest, ["seed"], "is per task here: give --seeds 0,1,...");
  reject(rest, ["root-study"], "is not split into tasks: run `compare --root-study` as one job");
  const methods = String(takeOption(rest, "methods") ?? METHODS.join(",")).split(",").map((m) => m.trim());
  for (const m of methods) {
    if (!(METHODS as string[]).includes(m)) throw new Error(`plan compare: unknown method '${m}'`);
  }
  const seeds = intList(String(takeOption(rest, "seeds") ?? "0"), "seeds");
  const floor = !rest.includes("--no-floor");
  const tasks: PlanTask[] = [];
  for (const seed of seeds) {
    methods.forEach((method, j) => {
      const out = `${runs}/compare/seed-${seed}/${method}`;
      tasks.push({
        args: [
          "compare",
          "--sources",
          ...sources,
          ...rest,
          "--methods",
          method,
          "--seed",
          String(seed),
          "--out",
          out,
          "--resume",
          // The sampling floor is a property of the seed, not of a method: the seed's first task scores it.
          ...(j > 0 && floor ? ["--no-floor"] : []),
        ],
        out,
        meta: { seed, method },
      });
    });
  }
  return {
    stages: [{
      name: "train",
      what: "every method x seed: train, then evaluate (compare --methods M)",
      tasks,
    }],
    settings: { sources, methods, seeds, floor },
  };
}

/** Options of compare's evaluation that merge does not take. */
const EVAL_ONLY = ["samples", "ddof"];

function splitEvalOptions(args: string[]): { train: string[]; evalOnly: string[] } {
  const train = [...args], evalOnly: string[] = [];
  const real = collectList(train, "real");
  if (real.list.length) evalOnly.push("--real", ...real.list);
  const t = real.rest;
  for (const n of EVAL_ONLY) {
    const v = takeOption(t, n);
    if (v !== undefined) evalOnly.push(`--${n}`, String(v));
  }
  if (takeOption(t, "no-floor", true)) evalOnly.push("--no-floor");
  return { train: t, evalOnly };
}

/** merge: cocktail's rootings in parallel, then averaging + merge fine-tuning, then the evaluation. */
function merge(args: string[], runs: string): Built {
  const { list: sources, rest } = collectList(args, "sources");
  if (sources.length < 2) throw new Error("plan merge: --sources needs at least two generators");
  if (!rest.includes("--kimg")) throw new Error("plan merge: --kimg is required (budget per stage)");
  reject(rest, ["resume"], "is implied: every task resumes its run directory");
  const method = String(takeOption(rest, "method") ?? "cocktail");
  if (!(METHODS as string[]).includes(method)) throw new Error(`plan merge: unknown method '${method}'`);
  const rootV = String(takeOption(rest, "root") ?? "0");
  if (!/^\d+$/.test(rootV) || Number(rootV) >= sources.length) {
    throw new Error(
      `plan merge: --root must be a source index below ${sources.length} (the rooting tasks depend on it), ` +
        `got '${rootV}'; 'auto' is not planned: run \`merge --root auto\` once or pick the root`,
    );
  }
  const root = Number(rootV);
  const { train, evalOnly } = splitEvalOptions(rest);
  const out = `${runs}/merge`;
  const common = ["--sources", ...sources, ...train, "--root", String(root), "--out", out];
  const stages: PlanStage[] = [];
  if (method === "cocktail") {
    stages.push({
      name: "root",
      what: "stage 1 of GAN Cocktail: one rooting run per non-root source",
      tasks: sources.flatMap((_, i) =>
        i === root ? [] : [{
          args: ["task", "root", ...common, "--only", String(i)],
          out: `${out}/cocktail/stage1-root${root}-to-${i}`,
          meta: { source: i },
        }]
      ),
    });
  }
  stages.push({
    name: "merge",
    what: method === "cocktail"
      ? "stage 2: average the root and the rooted models, then the merge fine-tuning"
      : `train the ${method} baseline`,
    tasks: [{ args: ["merge", ...common, "--method", method, "--resume"], out, meta: { method } }],
  });
  stages.push({
    name: "evaluate",
    what: "evaluate the merged model (compare on the finished run directories: no training left)",
    tasks: [{
      args: ["compare", ...common, ...evalOnly, "--methods", method, "--resume"],
      out,
      meta: { method },
    }],
  });
  return { stages, settings: { sources, method, root } };
}

/** Options of the study's dissect passed to every task (the budget and the deviations from the protocol). */
const DISSECT_OPTIONS = ["checkpoints", "every", "finetune-steps", "seed", "batch", "d-steps", "eval-every"]
  .concat(["eval-samples"]);

/** dissect: source I's training with its checkpoints, then one task per checkpoint's fine-tune. */
function dissect(args: string[], runs: string): Built {
  const rest = [...args];
  const given: string[] = [];
  const values: Record<string, string> = {};
  for (const n of DISSECT_OPTIONS) {
    const v = takeOption(rest, n);
    if (v !== undefined) {
      given.push(`--${n}`, String(v));
      values[n] = String(v);
    }
  }
  if (rest.length) throw new Error(`plan dissect: unknown arguments ${rest.join(" ")}`);
  const n = Number(values.checkpoints ?? 101); // as study dissect: steps 0..5000 every 50
  if (!Number.isInteger(n) || n < 1) throw new Error(`--checkpoints must be a positive integer, got ${n}`);
  const dir = `${runs}/dissect`;
  const ckDir = `${dir}/source/dissect_checkpoints`;
  return {
    stages: [
      {
        name: "source",
        what: "train source I, saving a checkpoint every --every G steps",
        tasks: [{
          args: ["task", "dissect", ...given, "--out", `${dir}/source`, "--only", "none"],
          out: `${dir}/source`,
          meta: {},
        }],
      },
      {
        name: "finetune",
        what: "fine-tune each checkpoint on the target, with its start measures",
        tasks: Array.from({ length: n }, (_, k) => ({
          args: ["task", "dissect", ...given, "--out", `${dir}/ck-${pad3(k)}`, "--checkpoint-dir", ckDir]
            .concat(["--only", String(k)]),
          out: `${dir}/ck-${pad3(k)}`,
          meta: { checkpoint: k },
        })),
      },
    ],
    settings: { options: values, checkpointDir: ckDir },
  };
}

/** select: one scoring task per candidate; collect ranks them as `select` does. */
function select(args: string[], runs: string): Built {
  const { list: candidates, rest } = collectList(args, "candidates");
  if (!candidates.length) throw new Error("plan select: --candidates needs at least one snapshot");
  if (!rest.includes("--target")) throw new Error("plan select: --target DATASET is required");
  reject(rest, ["out", "json"], "is set per task by the plan");
  return {
    stages: [{
      name: "score",
      what: "score each candidate against the target (FID, KID, precision, recall)",
      tasks: candidates.map((c, i) => {
        const out = `${runs}/select/candidate-${pad3(i)}.json`;
        return { args: ["select", ...rest, "--candidates", c, "--out", out], out, meta: { candidate: c } };
      }),
    }],
    settings: { candidates },
  };
}

/** transfer: the 2-D transfer study as one task (its five trainings share one process and resume file). */
function transfer(args: string[], runs: string): Built {
  reject(args, ["out"], "is set by the plan (JOB/runs/transfer)");
  const out = `${runs}/transfer`;
  return {
    stages: [{
      name: "transfer",
      what: "the 2-D transfer study (source trainings and fine-tunes in one resumable run)",
      tasks: [{ args: ["study", "transfer", ...args, "--out", out], out, meta: {} }],
    }],
    settings: {},
  };
}

const BUILDERS: Record<PlanKind, (args: string[], runs: string) => Built> = {
  compare,
  merge,
  dissect,
  select,
  transfer,
};

export function buildStages(kind: PlanKind, args: string[], jobDir: string): Built {
  return BUILDERS[kind](args, `${jobDir}/runs`);
}
