// Kubernetes files of a plan: one Indexed Job per stage (completionMode: Indexed, one completion per task;
// each pod runs `run_task.sh STAGE $JOB_COMPLETION_INDEX` from the job directory on a shared volume), as
// JSON manifests (kubectl reads JSON as it reads YAML). Kubernetes has no dependencies between Jobs, so
// apply.sh applies the stages in order and waits for each Job's Complete condition before the next one,
// stopping at a Failed one. A pod that fails is retried (backoffLimit) and resumes its run directory.

import type { Plan, PlanStage } from "./model.ts";

export interface K8sOptions {
  image: string;
  /** PersistentVolumeClaim holding the shared directory (ReadWriteMany). */
  pvc: string;
  /** Mounted at the same path in every pod: the job directory and the tasks' working directory are inside. */
  sharedDir: string;
  /** cli.ts and deno inside the image. */
  cli: string;
  deno: string;
  namespace?: string;
}

/** A DNS-1123 name (63 characters at most). */
function jobName(p: Plan, s: PlanStage): string {
  const id = [...p.jobDir].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7).toString(36);
  return `gc-${p.kind}-${s.name}-${id}`.slice(0, 63).replace(/-+$/, "");
}

/** Slurm memory (16G, 4000M) as a Kubernetes quantity. */
export function k8sMemory(mem: string): string {
  const m = /^(\d+)([KMGT]?)$/i.exec(mem.trim());
  if (!m) throw new Error(`--mem must look like 16G or 4000M, got '${mem}'`);
  return `${m[1]}${m[2] ? m[2].toUpperCase() + "i" : "Mi"}`;
}

/** Slurm --time ([D-]HH:MM:SS, MM:SS, or minutes) in seconds. */
export function slurmTimeSeconds(t: string): number {
  const m = /^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$/.exec(t.trim());
  if (!m) throw new Error(`--time must be minutes, MM:SS, HH:MM:SS or D-HH:MM:SS, got '${t}'`);
  const [d, a, b, c] = [m[1], m[2], m[3], m[4]].map((x) => (x === undefined ? undefined : Number(x)));
  const days = d ?? 0;
  let secs: number;
  if (c !== undefined) secs = a! * 3600 + b! * 60 + c;
  else if (b !== undefined) secs = d !== undefined ? a! * 3600 + b * 60 : a! * 60 + b;
  else secs = d !== undefined ? a! * 3600 : a! * 60;
  return days * 86400 + secs;
}

export function stageJob(p: Plan, s: PlanStage, k: number, o: K8sOptions): Record<string, unknown> {
  const r = p.resources, n = s.tasks.length;
  const limits: Record<string, string> = {};
  const requests: Record<string, string> = { cpu: String(r.cpusPerTask) };
  if (r.gpusPerTask > 0) limits["nvidia.com/gpu"] = String(r.gpusPerTask);
  if (r.mem) limits.memory = requests.memory = k8sMemory(r.mem);
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: {
      name: jobName(p, s),
      ...(o.namespace ? { namespace: o.namespace } : {}),
      labels: { app: "gan-cocktail", "gan-cocktail/plan": p.kind, "gan-cocktail/stage": s.name },
      annotations: {
        "gan-cocktail/order": `${k + 1} of ${p.stages.length}`,
        "gan-cocktail/after": k > 0 ? jobName(p, p.stages[k - 1]) : "",
        "gan-cocktail/what": s.what,
      },
    },
    spec: {
      completionMode: "Indexed",
      completions: n,
      parallelism: n,
      backoffLimit: 3 * n,
      // The Job's deadline: every index runs at once (parallelism n), so a task's time limit.
      ...(r.time ? { activeDeadlineSeconds: slurmTimeSeconds(r.time) } : {}),
      template: {
        metadata: { labels: { app: "gan-cocktail", "gan-cocktail/stage": s.name } },
        spec: {
          restartPolicy: "Never",
          containers: [{
            name: "task",
            image: o.image,
            command: ["bash", "-c", `exec bash "$GC_JOB_DIR/run_task.sh" ${s.name} "$JOB_COMPLETION_INDEX"`],
            env: [
              { name: "GC_JOB_DIR", value: p.jobDir },
              { name: "GC_CWD", value: p.cwd },
              { name: "GC_CLI", value: o.cli },
              { name: "GC_DENO", value: o.deno },
            ],
            resources: { requests, ...(Object.keys(limits).length ? { limits } : {}) },
            volumeMounts: [{ name: "shared", mountPath: o.sharedDir }],
          }],
          volumes: [{ name: "shared", persistentVolumeClaim: { claimName: o.pvc } }],
        },
      },
    },
  };
}

export function k8sStageFile(k: number, s: PlanStage): string {
  return `k8s/${String(k + 1).padStart(2, "0")}-${s.name}.json`;
}

function applyScript(p: Plan, o: K8sOptions): string {
  const ns = o.namespace ? ` -n ${o.namespace}` : "";
  const steps = p.stages.map((s, k) => `run_stage ${k8sStageFile(k, s)} ${jobName(p, s)}`);
  return `#!/usr/bin/env bash
# Applies the ${p.stages.length} Indexed Job(s) of this \`${p.kind}\` plan in order. Kubernetes has no job
# dependencies, so each stage starts only after the previous Job reports Complete; a Failed Job stops here
# (fix the cause, delete that Job, and run this again: finished stages' Jobs are kept and skipped).
set -euo pipefail
cd "$(dirname "$0")"
run_stage() {
  local file="$1" name="$2" state=""
  if ! kubectl${ns} get job "$name" >/dev/null 2>&1; then kubectl${ns} apply -f "$file"; fi
  while true; do
    state=$(kubectl${ns} get job "$name" -o jsonpath='{range .status.conditions[?(@.status=="True")]}{.type} {end}')
    case "$state" in
      *Complete*) echo "$name complete"; return 0 ;;
      *Failed*) echo "$name failed: kubectl${ns} describe job $name" >&2; exit 1 ;;
    esac
    sleep 20
  done
}
${steps.join("\n")}
echo "all stages complete: deno run -A cli.ts collect ${p.jobDir}"
`;
}

/** The files of a Kubernetes plan, relative to the job directory. */
export function k8sFiles(p: Plan, o: K8sOptions): Map<string, string> {
  for (const [what, dir] of [["job directory", p.jobDir], ["working directory", p.cwd]]) {
    if (dir !== o.sharedDir && !dir.startsWith(o.sharedDir.replace(/\/?$/, "/"))) {
      throw new Error(`the ${what} ${dir} is not inside --shared ${o.sharedDir} (the pods' shared volume)`);
    }
  }
  const files = new Map<string, string>();
  p.stages.forEach((s, k) =>
    files.set(k8sStageFile(k, s), JSON.stringify(stageJob(p, s, k, o), null, 2) + "\n")
  );
  files.set("k8s/apply.sh", applyScript(p, o));
  return files;
}
