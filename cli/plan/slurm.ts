// Slurm files of a plan: one sbatch script per stage (a job array when the stage has several tasks, each
// array task `run_task.sh STAGE $SLURM_ARRAY_TASK_ID`), and submit.sh, which submits the stages in order,
// each with --dependency=afterok on the previous stage's job (all of its array tasks), and prints the ids.
// --requeue lets Slurm restart a preempted or failed node's task; the task resumes its run directory.

import { type Plan, type PlanStage, shellQuote } from "./model.ts";

export function sbatchScript(p: Plan, s: PlanStage, k: number): string {
  const r = p.resources, n = s.tasks.length;
  const lines = [
    `--job-name=gc-${p.kind}-${s.name}`,
    ...(n > 1 ? [`--array=0-${n - 1}`] : []),
    "--ntasks=1",
    `--cpus-per-task=${r.cpusPerTask}`,
    ...(r.gpusPerTask > 0 ? [`--gpus-per-task=${r.gpusPerTask}`] : []),
    ...(r.time ? [`--time=${r.time}`] : []),
    ...(r.partition ? [`--partition=${r.partition}`] : []),
    ...(r.mem ? [`--mem=${r.mem}`] : []),
    "--requeue",
    "--open-mode=append",
    `--output=${p.jobDir}/logs/${String(k + 1).padStart(2, "0")}-${s.name}-%A_%a.out`,
  ];
  return `#!/usr/bin/env bash
# Stage ${k + 1} of ${p.stages.length} of a \`${p.kind}\` plan: ${s.what}; ${n} task${n > 1 ? "s" : ""}.
${lines.map((l) => `#SBATCH ${l}`).join("\n")}
exec bash ${shellQuote(`${p.jobDir}/run_task.sh`)} ${s.name} "\${SLURM_ARRAY_TASK_ID:-0}"
`;
}

export function stageFile(k: number, s: PlanStage): string {
  return `slurm/${String(k + 1).padStart(2, "0")}-${s.name}.sbatch`;
}

export function submitScript(p: Plan): string {
  const steps = p.stages.map((s, k) => {
    const dep = k === 0 ? "" : ` --dependency=afterok:$prev`;
    return `prev=$(sbatch --parsable${dep} ${stageFile(k, s)} | cut -d';' -f1)
echo "${s.name} $prev" | tee -a jobs.txt`;
  });
  return `#!/usr/bin/env bash
# Submits the ${p.stages.length} stage(s) of this \`${p.kind}\` plan in order; each waits (afterok) for the
# previous stage's tasks to succeed. Prints "STAGE JOBID" per stage (also appended to jobs.txt).
# After the last stage: deno run -A ${p.cli} collect ${p.jobDir}
set -euo pipefail
cd ${shellQuote(p.jobDir)}
mkdir -p logs status
${steps.join("\n")}
`;
}

/** The files of a Slurm plan, relative to the job directory. */
export function slurmFiles(p: Plan): Map<string, string> {
  const files = new Map<string, string>();
  p.stages.forEach((s, k) => files.set(stageFile(k, s), sbatchScript(p, s, k)));
  files.set("submit.sh", submitScript(p));
  return files;
}
