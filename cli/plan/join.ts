// Joins finished tasks' run directories into the files the single-process command writes: compare's
// report.json + index.html per seed (the methods' entries and reference rows of every task, the figures
// copied beside them), dissect's dissect.json + figure (dissect.ts summarises the joined records), select's
// ranking, and the merge's and transfer study's own outputs copied into JOB/collected.

import { basename } from "node:path";
import { type CompareReport, writeReport } from "../../gan/cocktail/report.ts";
import { type CheckpointResult, runDissectStudy } from "../../gan/toy2d/dissect.ts";
import { writeFileAtomic } from "../../nn/checkpoint.ts";
import type { Plan, PlanTask } from "./model.ts";
import type { TaskStatus } from "./status.ts";

export interface Joined {
  /** Files written, for the user. */
  outputs: string[];
  /** Groups not written because a task is missing. */
  skipped: string[];
  lines: string[];
}

async function readJsonFile<T>(path: string, what: string): Promise<T> {
  try {
    return JSON.parse(await Deno.readTextFile(path)) as T;
  } catch (e) {
    throw new Error(`collect: cannot read ${what} ${path}: ${(e as Error).message}`);
  }
}

async function copyInto(from: string, dir: string, name = basename(from)): Promise<void> {
  await writeFileAtomic(`${dir}/${name}`, await Deno.readFile(from));
}

const doneSet = (sts: TaskStatus[]) => new Set(sts.filter((s) => s.state === "done").map((s) => s.task));

async function joinCompare(p: Plan, sts: TaskStatus[], out: string): Promise<Joined> {
  const done = doneSet(sts);
  const j: Joined = { outputs: [], skipped: [], lines: [] };
  const seeds = p.settings.seeds as number[], methods = p.settings.methods as string[];
  const tasks = p.stages[0].tasks;
  const summary: Record<string, Record<string, number>> = {};
  for (const seed of seeds) {
    const mine = methods.map((m) => tasks.find((t) => t.meta.seed === seed && t.meta.method === m)!);
    if (mine.some((t) => !done.has(t))) {
      j.skipped.push(
        `seed ${seed}: ${mine.filter((t) => !done.has(t)).map((t) => t.meta.method).join(", ")}`,
      );
      continue;
    }
    const dir = `${out}/seed-${seed}`;
    await Deno.mkdir(dir, { recursive: true });
    let joined: CompareReport | null = null;
    for (const t of mine) {
      const r = await readJsonFile<CompareReport>(`${t.out}/report.json`, "the report of");
      const m = String(t.meta.method);
      const entry = r.methods[m];
      if (!entry) throw new Error(`collect: ${t.out}/report.json has no method ${m}`);
      for (const f of [...entry.grids, entry.interpolation]) await copyInto(`${t.out}/${f}`, dir);
      if (!joined) {
        joined = { ...r, methods: {}, references: {}, notes: [...(r.notes as string[] ?? [])] };
        for (const f of (r.sourceGrids as string[] | undefined) ?? []) await copyInto(`${t.out}/${f}`, dir);
      }
      joined.methods[m] = entry;
      Object.assign(joined.references!, r.references ?? {});
      for (const n of (r.notes as string[] | undefined) ?? []) {
        if (!(joined.notes as string[]).includes(n)) (joined.notes as string[]).push(n);
      }
      if (r.weightDistances) joined.weightDistances = r.weightDistances;
      joined.settings = r.settings;
      (summary[m] ??= {})[seed] = entry.unionFid;
    }
    joined!.scheduled = {
      plan: `${p.jobDir}/plan.json`,
      tasks: Object.fromEntries(mine.map((t) => [t.meta.method, t.out])),
    };
    j.outputs.push(await writeReport(dir, joined!), `${dir}/index.html`);
    j.lines.push(
      `seed ${seed}: ` +
        methods.map((m) => `${m} union FID ${joined!.methods[m].unionFid.toFixed(2)}`).join(", "),
    );
  }
  const stats = Object.fromEntries(
    Object.entries(summary).map(([m, bySeed]) => {
      const xs = Object.values(bySeed);
      const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
      const sd = xs.length > 1
        ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1))
        : null;
      return [m, { unionFidBySeed: bySeed, mean, sd }];
    }),
  );
  await writeFileAtomic(`${out}/summary.json`, JSON.stringify({ methods: stats, seeds }, null, 2) + "\n");
  j.outputs.push(`${out}/summary.json`);
  return j;
}

interface DissectStateFile {
  key: string;
  results: CheckpointResult[];
  sourceMs?: number;
}

async function joinDissect(p: Plan, sts: TaskStatus[], out: string): Promise<Joined> {
  const j: Joined = { outputs: [], skipped: [], lines: [] };
  if (sts.some((s) => s.state !== "done")) {
    j.skipped.push("dissect: the summary needs every checkpoint");
    return j;
  }
  const [source, ...cks] = p.stages.flatMap((s) => s.tasks);
  const src = await readJsonFile<DissectStateFile>(`${source.out}/dissect_state.json`, "source I's state");
  const results: CheckpointResult[] = [];
  for (const t of cks) {
    const st = await readJsonFile<DissectStateFile>(`${t.out}/dissect_state.json`, "the state of");
    if (st.key !== src.key) throw new Error(`collect: ${t.out} ran with other settings than source I's task`);
    const r = st.results.find((x) => x.index === t.meta.checkpoint);
    if (!r) throw new Error(`collect: ${t.out} has no result for checkpoint ${t.meta.checkpoint}`);
    results.push(r);
  }
  const dir = `${out}/dissect`;
  await Deno.mkdir(dir, { recursive: true });
  // dissect.ts resumes from these records (nothing left to train) and writes its summary and figure.
  const state: DissectStateFile = { key: src.key, results, sourceMs: src.sourceMs };
  await writeFileAtomic(`${dir}/dissect_state.json`, JSON.stringify(state, null, 1) + "\n");
  await writeFileAtomic(`${dir}/dissect.jsonl`, results.map((r) => JSON.stringify(r) + "\n").join(""));
  const o = p.settings.options as Record<string, string>;
  const opt = (k: string) => (o[k] === undefined ? undefined : Number(o[k]));
  const { initGPU } = await import("../../kernels/runtime.ts");
  await initGPU();
  const r = await runDissectStudy({
    out: dir,
    checkpointDir: String(p.settings.checkpointDir),
    checkpoints: opt("checkpoints"),
    every: opt("every"),
    finetuneSteps: opt("finetune-steps"),
    seed: opt("seed"),
    batch: opt("batch"),
    dSteps: opt("d-steps"),
    evalEvery: opt("eval-every"),
    evalSamples: opt("eval-samples"),
  });
  j.outputs.push(r.files.json, r.files.png);
  j.lines.push(
    `dissect: Pearson of final W1 with recall ${r.pearson.recall}, with gradient similarity ` +
      `${r.pearson.gradSimilarity} over ${r.checkpoints.length} checkpoints`,
  );
  return j;
}

/** The files a finished single-task stage wrote at the top of its run directory. */
async function copyRunFiles(from: string, to: string, pattern: RegExp): Promise<string[]> {
  await Deno.mkdir(to, { recursive: true });
  const out: string[] = [];
  for (const e of Deno.readDirSync(from)) {
    if (e.isFile && pattern.test(e.name)) {
      await copyInto(`${from}/${e.name}`, to);
      out.push(`${to}/${e.name}`);
    }
  }
  return out.sort();
}

async function joinCopy(sts: TaskStatus[], out: string, task: PlanTask, pattern: RegExp): Promise<Joined> {
  const j: Joined = { outputs: [], skipped: [], lines: [] };
  if (sts.some((s) => s.state !== "done")) {
    j.skipped.push(`${basename(task.out)}: the last stage has not finished`);
    return j;
  }
  j.outputs.push(...await copyRunFiles(task.out, out, pattern));
  return j;
}

async function joinSelect(p: Plan, sts: TaskStatus[], out: string): Promise<Joined> {
  const j: Joined = { outputs: [], skipped: [], lines: [] };
  if (sts.some((s) => s.state !== "done")) {
    j.skipped.push("select: the ranking needs every candidate's scores");
    return j;
  }
  const { rankCandidates, selectionText } = await import("../select.ts");
  const parts = [];
  for (const t of p.stages[0].tasks) parts.push(await readJsonFile<SelectPart>(t.out, "the scores in"));
  const first = parts[0];
  const ranking = rankCandidates(parts.flatMap((x) => x.ranking));
  const result = { ...first, ranking, recommendation: ranking[0].candidate };
  await Deno.mkdir(out, { recursive: true });
  await writeFileAtomic(`${out}/select.json`, JSON.stringify(result, null, 2) + "\n");
  j.outputs.push(`${out}/select.json`);
  j.lines.push(
    selectionText(
      ranking,
      `feature network ${first.featureNetwork}; FID mode ${first.fidMode ?? "n/a"}; resolution ${
        first.resolution ?? "n/a"
      }; covariance ${first.covariance}; k ${first.k}`,
    ),
  );
  return j;
}

interface SelectPart {
  ranking: { candidate: string; fid: number; kid: number; precision: number; recall: number }[];
  featureNetwork: string;
  k: number;
  [key: string]: unknown;
}

export async function joinResults(p: Plan, sts: TaskStatus[]): Promise<Joined> {
  const out = `${p.jobDir}/collected`;
  await Deno.mkdir(out, { recursive: true });
  const last = p.stages[p.stages.length - 1].tasks[0];
  switch (p.kind) {
    case "compare":
      return await joinCompare(p, sts, out);
    case "dissect":
      return await joinDissect(p, sts, out);
    case "select":
      return await joinSelect(p, sts, out);
    case "merge":
      return await joinCopy(sts, out, last, /\.(json|html|png)$/);
    case "transfer":
      return await joinCopy(sts, out, last, /^transfer\.(json|png)$/);
  }
}
