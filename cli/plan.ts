// `plan`: writes a job directory that runs a merge, a comparison, a dissection, a selection or the transfer
// study on an existing cluster scheduler: Slurm (sbatch scripts, job arrays, afterok dependencies,
// submit.sh) or Kubernetes (Indexed Jobs, apply.sh). Nothing runs here; `collect DIR` joins the results.

import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { writeFileAtomic } from "../nn/checkpoint.ts";
import { buildStages, takeOption } from "./plan/build.ts";
import { k8sFiles } from "./plan/k8s.ts";
import { type Plan, PLAN_KINDS, type PlanKind } from "./plan/model.ts";
import { slurmFiles } from "./plan/slurm.ts";
import { taskScript } from "./plan/task_script.ts";

const USAGE = `usage: cli.ts plan merge|compare|dissect|select|transfer [the command's options]
                    --scheduler slurm|k8s --out JOBDIR [resources]

Writes JOBDIR with one job per stage; independent tasks of a stage run in parallel:
  merge     rooting runs (one per non-root source) -> averaging + merge fine-tuning -> evaluation
  compare   methods x seeds (--methods m1,m2 --seeds 0,1), each trained and evaluated by one task
  dissect   source I with its checkpoints -> one fine-tune per checkpoint
  select    one scoring task per candidate (--candidates A B ...)
  transfer  the 2-D transfer study as one task
The command's own options (--sources, --kimg, ...) go to every task unchanged. Every task is a cli.ts
command writing a resumable run directory under JOBDIR/runs, so a requeued task continues where it stopped.
JOBDIR and the directory you run this from must be on storage every node sees (same path).
Slurm: JOBDIR/submit.sh submits the stages (--dependency=afterok) and prints the job ids.
Kubernetes: JOBDIR/k8s/apply.sh applies the Indexed Jobs in order (Kubernetes has no job dependencies).
Then: cli.ts collect JOBDIR.

resources (per task):
  --gpus-per-task N   (default 1; 0: none)     --cpus-per-task N (default 4)
  --time T            Slurm time limit, e.g. 4:00:00 (Kubernetes: the Job's activeDeadlineSeconds)
  --partition P       Slurm partition          --mem M    memory per task, e.g. 32G
Kubernetes: --image IMG (default gan-cocktail:latest) with deno and this repository at --image-repo
  (default /app), --pvc CLAIM (default gan-cocktail-shared) mounted at --shared DIR (default: the current
  directory; JOBDIR must be inside it), --namespace NS.
Other: --deno PATH (default: this Deno), --cli PATH (default: this checkout's cli.ts).`;

const PLAN_OPTIONS = [
  "scheduler",
  "out",
  "gpus-per-task",
  "cpus-per-task",
  "time",
  "partition",
  "mem",
  "image",
  "image-repo",
  "pvc",
  "shared",
  "namespace",
  "deno",
  "cli",
];

function count(v: string | undefined, name: string, fallback: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer, got '${v}'`);
  return n;
}

/** Builds the plan and writes the job directory; returns the plan. */
export async function writePlan(args: string[]): Promise<Plan> {
  const [kind, ...rest] = args;
  if (kind === "--help" || kind === "-h") {
    console.log(USAGE);
    Deno.exit(0);
  }
  if (!(PLAN_KINDS as string[]).includes(kind)) {
    throw new Error(
      `plan needs one of ${PLAN_KINDS.join(", ")} first, got '${kind ?? ""}' (see plan --help)`,
    );
  }
  if (rest.includes("--help")) {
    console.log(USAGE);
    Deno.exit(0);
  }
  const own = [...rest];
  const o: Record<string, string | undefined> = {};
  for (const n of PLAN_OPTIONS) {
    const v = takeOption(own, n);
    o[n] = v === undefined ? undefined : String(v);
  }
  const scheduler = o.scheduler ?? "slurm";
  if (scheduler !== "slurm" && scheduler !== "k8s") {
    throw new Error(`--scheduler must be slurm or k8s, got '${scheduler}'`);
  }
  if (!o.out) throw new Error("plan: --out JOBDIR is required");
  const jobDir = resolve(o.out);
  try {
    const existing = [...Deno.readDirSync(jobDir)];
    if (existing.some((e) => e.name === "plan.json")) {
      throw new Error(`${jobDir} already holds a plan (plan.json); use another --out or remove it`);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const built = buildStages(kind as PlanKind, own, jobDir);
  const plan: Plan = {
    kind: kind as PlanKind,
    scheduler,
    jobDir,
    cwd: Deno.cwd(),
    cli: o.cli ? resolve(o.cli) : resolve(dirname(fileURLToPath(import.meta.url)), "..", "cli.ts"),
    deno: o.deno ?? Deno.execPath(),
    created: new Date().toISOString(),
    command: ["plan", ...args],
    resources: {
      gpusPerTask: count(o["gpus-per-task"], "gpus-per-task", 1),
      cpusPerTask: count(o["cpus-per-task"], "cpus-per-task", 4),
      time: o.time ?? "",
      partition: o.partition ?? "",
      mem: o.mem ?? "",
    },
    stages: built.stages,
    settings: built.settings,
  };
  if (plan.resources.cpusPerTask < 1) throw new Error("--cpus-per-task must be at least 1");
  const files = scheduler === "slurm" ? slurmFiles(plan) : k8sFiles(plan, {
    image: o.image ?? "gan-cocktail:latest",
    pvc: o.pvc ?? "gan-cocktail-shared",
    sharedDir: resolve(o.shared ?? Deno.cwd()),
    cli: `${(o["image-repo"] ?? "/app").replace(/\/$/, "")}/cli.ts`,
    deno: "deno",
    namespace: o.namespace,
  });
  files.set("run_task.sh", taskScript(plan));
  files.set("plan.json", JSON.stringify(plan, null, 2) + "\n");
  for (const d of ["", "/slurm", "/k8s", "/logs", "/status", "/runs"]) {
    await Deno.mkdir(`${jobDir}${d}`, { recursive: true });
  }
  for (const [name, text] of files) {
    const path = `${jobDir}/${name}`;
    await writeFileAtomic(path, text);
    if (name.endsWith(".sh")) await Deno.chmod(path, 0o755);
  }
  return plan;
}

export async function planCommand(args: string[]): Promise<void> {
  const plan = await writePlan(args);
  for (const [k, s] of plan.stages.entries()) {
    console.log(
      `stage ${k + 1}: ${s.name.padEnd(9)} ${String(s.tasks.length).padStart(4)} task(s)  ${s.what}`,
    );
  }
  const next = plan.scheduler === "slurm" ? `${plan.jobDir}/submit.sh` : `${plan.jobDir}/k8s/apply.sh`;
  console.log(`then: deno run -A ${plan.cli} collect ${plan.jobDir}`);
  console.log(next);
}
