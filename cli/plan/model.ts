// A scale-out plan: stages of independent tasks, each one existing CLI command that writes its own resumable
// run directory under the job directory. Stages run in order (stage k starts when every task of stage k-1
// succeeded); the tasks of a stage run in parallel (a Slurm job array, a Kubernetes Indexed Job). The
// scheduler files (slurm.ts, k8s.ts) and `collect` are written from this one description, plan.json.

export type PlanKind = "merge" | "compare" | "dissect" | "select" | "transfer";
export const PLAN_KINDS: PlanKind[] = ["merge", "compare", "dissect", "select", "transfer"];

export interface PlanTask {
  /** Arguments of cli.ts (the command first). */
  args: string[];
  /** The run directory (or result file) the task writes. */
  out: string;
  /** What collect needs to know about the task (seed, method, checkpoint, candidate). */
  meta: Record<string, string | number>;
}

export interface PlanStage {
  /** Short name: file names, job names, status files. */
  name: string;
  what: string;
  tasks: PlanTask[];
}

export interface Resources {
  gpusPerTask: number;
  cpusPerTask: number;
  /** Slurm time limit (e.g. 4:00:00); empty: the partition's default. */
  time: string;
  partition: string;
  /** Memory per task (Slurm syntax, e.g. 16G); empty: the partition's default. */
  mem: string;
}

export interface Plan {
  kind: PlanKind;
  scheduler: "slurm" | "k8s";
  /** Absolute job directory: plan files, status, logs and every task's run directory. */
  jobDir: string;
  /** Where the tasks start (relative source paths resolve from here); on shared storage. */
  cwd: string;
  /** cli.ts and the Deno binary the tasks run (Kubernetes overrides both with the image's). */
  cli: string;
  deno: string;
  created: string;
  /** The command line that made the plan. */
  command: string[];
  resources: Resources;
  stages: PlanStage[];
  /** Kind-specific settings collect needs (the single-process command's options). */
  settings: Record<string, unknown>;
}

/** One word for a POSIX shell (single quotes). */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_\/.,:=@%+-]+$/.test(s) ? s : `'${s.replaceAll("'", `'"'"'`)}'`;
}

/** Status files of a task: written by run_task.sh, read by collect. */
export function statusPath(jobDir: string, stage: string, index: number): string {
  return `${jobDir}/status/${stage}.${index}`;
}

export function validName(s: string): boolean {
  return /^[a-z][a-z0-9-]*$/.test(s);
}
