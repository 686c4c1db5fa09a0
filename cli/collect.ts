// `collect JOBDIR`: after a plan's jobs ran (cli/plan.ts), joins the finished tasks' run directories into
// the files the single-process command writes (JOBDIR/collected/) and says which tasks are missing or
// failed. Exits with an error while any task is not done; what is complete is written anyway.

import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parse } from "./args.ts";
import type { Plan } from "./plan/model.ts";
import { joinResults } from "./plan/join.ts";
import { describeMissing, taskStatuses } from "./plan/status.ts";

const USAGE = `usage: cli.ts collect JOBDIR [--json]

Reads JOBDIR/plan.json and the tasks' status files, then writes into JOBDIR/collected/:
  compare   seed-S/report.json and index.html per seed (as 'compare --seed S'), summary.json over seeds
  dissect   dissect/dissect.json and dissect.png (as 'study dissect')
  select    select.json (the ranking of 'select' over every candidate)
  merge     the evaluation's report.json, index.html, figures and merge-METHOD.json
  transfer  transfer.json and transfer.png
Lists every task that is not done (failed with its exit code, unfinished, or not started).`;

export interface Collected {
  plan: Plan;
  outputs: string[];
  missing: string[];
  attempts: Record<string, number>;
}

export async function collect(jobDir: string): Promise<Collected> {
  const dir = resolve(jobDir);
  let plan: Plan;
  try {
    plan = JSON.parse(readFileSync(`${dir}/plan.json`, "utf8"));
  } catch (e) {
    throw new Error(
      `collect: ${dir}/plan.json is not a plan (${(e as Error).message}); run 'cli.ts plan' first`,
    );
  }
  const sts = taskStatuses(plan);
  const joined = await joinResults(plan, sts);
  for (const l of joined.lines) console.log(l);
  const missing = describeMissing(plan, sts);
  return {
    plan,
    outputs: joined.outputs,
    missing: [...missing, ...joined.skipped.map((s) => `not written: ${s}`)],
    attempts: Object.fromEntries(sts.map((s) => [`${s.stage}.${s.index}`, s.attempts])),
  };
}

export async function collectCommand(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, USAGE, {
    json: { type: "boolean", help: "print the result as one JSON object on the last line" },
  });
  if (positionals.length !== 1) throw new Error("collect needs one job directory (see --help)");
  const r = await collect(positionals[0]);
  const total = r.plan.stages.reduce((a, s) => a + s.tasks.length, 0);
  for (const o of r.outputs) console.log(`wrote ${o}`);
  if (values.json) {
    console.log(JSON.stringify({ outputs: r.outputs, missing: r.missing, attempts: r.attempts }));
  }
  if (r.missing.length) {
    for (const m of r.missing) console.error(m);
    throw new Error(`${r.missing.length} item(s) of ${total} task(s) missing or failed (listed above)`);
  }
  console.log(`all ${total} task(s) done`);
}
