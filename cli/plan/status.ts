// The state of every task of a plan, from the status files run_task.sh leaves (task_script.ts).

import { existsSync, readFileSync } from "node:fs";
import { type Plan, type PlanTask, statusPath } from "./model.ts";

export type TaskState = "done" | "failed" | "unfinished" | "not started";

export interface TaskStatus {
  stage: string;
  index: number;
  task: PlanTask;
  state: TaskState;
  /** Attempts started (a requeued or retried task has more than one). */
  attempts: number;
  exitCode?: number;
}

export function taskStatuses(p: Plan): TaskStatus[] {
  return p.stages.flatMap((s) =>
    s.tasks.map((task, index) => {
      const base = statusPath(p.jobDir, s.name, index);
      const started = existsSync(`${base}.started`)
        ? readFileSync(`${base}.started`, "utf8").trim().split("\n").filter((l) => l).length
        : 0;
      const st: TaskStatus = { stage: s.name, index, task, state: "not started", attempts: started };
      if (existsSync(`${base}.done`)) st.state = "done";
      else if (existsSync(`${base}.failed`)) {
        st.state = "failed";
        st.exitCode = Number(readFileSync(`${base}.failed`, "utf8").trim());
      } else if (started) st.state = "unfinished";
      return st;
    })
  );
}

/** One line per task that is not done, naming its log and run directory. */
export function describeMissing(p: Plan, sts: TaskStatus[]): string[] {
  return sts.filter((s) => s.state !== "done").map((s) => {
    const what = s.state === "failed"
      ? `failed (exit ${s.exitCode}, ${s.attempts} attempt(s))`
      : s.state === "unfinished"
      ? `started ${s.attempts} time(s), not finished (running, or killed: requeue it)`
      : "not started";
    const meta = Object.entries(s.task.meta).map(([k, v]) => `${k} ${v}`).join(", ");
    return `${s.stage}[${s.index}]${
      meta ? ` (${meta})` : ""
    }: ${what}; logs in ${p.jobDir}/logs, run ${s.task.out}`;
  });
}
