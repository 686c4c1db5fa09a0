// Where the time of a 2-D study step goes on the current adapter: dispatches per G step, ms per G step,
// the cost of one dispatch (a trivial kernel replayed), each kernel family's share (every op of an
// iteration replayed alone), read-back and W1 costs, and projections for the full protocol.

import { gpu } from "../../kernels/runtime.ts";
import { targetRing } from "./distributions.ts";
import type { KernelSpec } from "../../kernels/mlp_small.ts";
import { studySets } from "./study_common.ts";
import { cpuMs, DRAIN_EVERY, freshTrainer, PROTOCOL } from "./train.ts";
import { EngineToyGan } from "./engine_trainer.ts";
import { recall2d, w1Distance } from "./measures.ts";

export interface Cost {
  /** Wall time: depends on the other load of the machine (see loadAverage). */
  wall: number;
  /** CPU time of this process (JS thread plus the adapter's worker threads): robust to other load. */
  cpu: number;
}

export interface ProfileReport {
  adapter: string;
  /** Load average (1 min) when measured: other processes share the 2 cores. */
  loadAverage: number;
  dispatchesPerGStep: number;
  /** One G step (dSteps D steps + 1 G step), ms. */
  gStepMs: Cost;
  /** Host time in iterate() per G step (JS recording is ~0.2 ms; submit blocks while the queue is full). */
  recordMsPerGStep: number;
  /** One dispatch of a trivial kernel inside a long pass, in microseconds, with 1 and with 8 workgroups. */
  dispatchUs: { oneWorkgroup: Cost; eightWorkgroups: Cost };
  /** dispatches x the 8-workgroup trivial cost: the part of a step that is dispatch overhead. */
  overheadMsPerGStep: Cost;
  /** Per kernel family, the sum over one G step of each op replayed alone (includes its dispatch cost). */
  familiesMs: Record<string, Cost>;
  evalMs: { sample2048: number; w1: number; recall: number };
  /**
   * The same protocol step through the engine (engine_trainer.ts: nn/ modules, autograd, Adam), measured in
   * the same run, in alternating blocks with the fused trainer (`fusedGStepMs`, same blocks) so that drift in
   * the machine's speed hits both alike: G-step times are medians over the blocks, ratio the median of the
   * blocks' engine / fused ratios. Issue 11 deletes the fused trainer once the ratio is <= 1.2.
   */
  engine: { dispatchesPerGStep: number; gStepMs: Cost; fusedGStepMs: Cost; ratio: Cost; blocks: number };
  projection: { transferMin: Cost; dissectMin: Cost; assumptions: string };
}

function trivial(workgroups: number): KernelSpec {
  return {
    key: "t2_trivial",
    kinds: ["write"],
    workgroups,
    code: () =>
      `@group(0) @binding(0) var<storage, read_write> o: array<f32>;
@compute @workgroup_size(32) fn main(@builtin(global_invocation_id) g: vec3<u32>) { o[g.x] = o[g.x] + 1.0; }`,
  };
}

async function measure(fn: () => void | Promise<void>, wait: () => Promise<void>): Promise<Cost> {
  const w0 = performance.now(), c0 = cpuMs();
  await fn();
  await wait();
  return { wall: performance.now() - w0, cpu: cpuMs() - c0 };
}

const per = (c: Cost, n: number, scale = 1): Cost => ({
  wall: Number(((c.wall / n) * scale).toFixed(3)),
  cpu: Number(((c.cpu / n) * scale).toFixed(3)),
});

export async function profileToy2d(
  o: { iterations?: number; replays?: number; blocks?: number; blockSteps?: number } = {},
): Promise<ProfileReport> {
  const iters = o.iterations ?? 200, R = o.replays ?? 100;
  const blocks = o.blocks ?? 8, blockSteps = o.blockSteps ?? DRAIN_EVERY;
  const t = await freshTrainer(targetRing(), 1);
  try {
    const p = t.prog, wait = () => p.check();
    t.iterate(2); // compile and warm up
    await p.check();
    let rec = 0;
    // Sustained stepping as trainRun does it (a wait every DRAIN_EVERY steps); a short burst without waits
    // read 51 ms where training sustains 59 ms.
    const step = await measure(async () => {
      for (let i = 0; i < iters; i++) {
        const r0 = performance.now();
        t.iterate(1);
        rec += performance.now() - r0;
        if ((i + 1) % DRAIN_EVERY === 0) await wait();
      }
    }, wait);

    const buf = p.buffer(8 * 32 * 4, "trivial");
    const dispatchUs = { oneWorkgroup: { wall: 0, cpu: 0 }, eightWorkgroups: { wall: 0, cpu: 0 } };
    for (const [k, wg] of [["oneWorkgroup", 1], ["eightWorkgroups", 8]] as const) {
      const op = p.op("profile", trivial(wg), [{ buffer: buf }]);
      p.run([op]);
      await p.check();
      dispatchUs[k] = per(await measure(() => p.run(Array(2000).fill(op)), wait), 2000, 1000);
    }

    const families: Record<string, Cost> = {};
    const byKey = new Map<string, Cost>();
    for (const op of t.iterationOps()) {
      if (!byKey.has(op.key)) {
        p.run(Array(3).fill(op));
        await p.check();
        byKey.set(op.key, per(await measure(() => p.run(Array(R).fill(op)), wait), R));
      }
      const fam = op.key.split("|")[0].replace("t2_", "");
      const c = byKey.get(op.key)!, f = families[fam] ??= { wall: 0, cpu: 0 };
      f.wall = Number((f.wall + c.wall).toFixed(3));
      f.cpu = Number((f.cpu + c.cpu).toFixed(3));
    }

    const sets = studySets(0);
    await t.sample(2048, "ema");
    let t0 = performance.now();
    const pts = await t.sample(2048, "ema");
    const sample2048 = performance.now() - t0;
    t0 = performance.now();
    w1Distance(pts, sets.evalTarget);
    const w1Ms = performance.now() - t0;
    t0 = performance.now();
    recall2d(sets.recallTarget, await t.sample(1000, "live"));
    const recallMs = performance.now() - t0;

    const g = per(step, iters), n = t.dispatchesPerIteration;
    const engine = await compareEngine(t, blocks, blockSteps);
    const evalMin = (sample2048 + w1Ms) / 60000; // minutes per evaluation
    const transferEvals = 5 * (5000 / 250 + 1), dissectEvals = 100 * (1000 / 250 + 1) + 1;
    const project = (ms: number, steps: number, evals: number, starts: number) =>
      Number(((steps * ms) / 60000 + evals * evalMin + (starts * recallMs) / 60000).toFixed(1));
    return {
      adapter: gpu().info.description,
      loadAverage: Deno.loadavg()[0],
      dispatchesPerGStep: n,
      gStepMs: g,
      recordMsPerGStep: Number((rec / iters).toFixed(3)),
      dispatchUs,
      overheadMsPerGStep: per(dispatchUs.eightWorkgroups, 1000, n),
      familiesMs: families,
      evalMs: { sample2048: Math.round(sample2048), w1: Math.round(w1Ms), recall: Math.round(recallMs) },
      engine,
      projection: {
        transferMin: {
          wall: project(g.wall, 25000, transferEvals, 3),
          cpu: project(g.cpu, 25000, transferEvals, 3),
        },
        dissectMin: {
          wall: project(g.wall, 105000, dissectEvals, 100),
          cpu: project(g.cpu, 105000, dissectEvals, 100),
        },
        assumptions:
          "G-step cost measured here x (transfer: 2 sources + 3 fine-tunes x 5000 G steps; dissect: " +
          "5000 source steps + 100 x 1000 fine-tune steps) + one sample-and-W1 per evaluation (every 250 steps " +
          "and at 0; wall time, as measured here) + recall per starting point; gradient similarity and " +
          "checkpoint I/O not included. 'cpu' projects from CPU time per step: on an otherwise idle 2-core " +
          "machine the wall time lies between cpu/2 and cpu",
      },
    };
  } finally {
    t.dispose();
  }
}

const median = (xs: number[]) => {
  const v = [...xs].sort((a, b) => a - b), h = v.length >> 1;
  return v.length % 2 ? v[h] : (v[h - 1] + v[h]) / 2;
};

/**
 * The engine path against the fused trainer `t`, in `blocks` alternating blocks of `steps` G steps each
 * (a wait after every block, as trainRun waits every DRAIN_EVERY steps).
 */
async function compareEngine(
  t: Awaited<ReturnType<typeof freshTrainer>>,
  blocks: number,
  steps: number,
): Promise<ProfileReport["engine"]> {
  const rt = gpu(), e = new EngineToyGan(targetRing(), 1, PROTOCOL);
  try {
    e.iterate(2); // compile and warm up
    await rt.sync();
    const d0 = rt.totalDispatches;
    e.iterate(1);
    const dispatches = rt.totalDispatches - d0;
    await rt.sync();
    const fused: Cost[] = [], engine: Cost[] = [];
    for (let b = 0; b < blocks; b++) {
      fused.push(per(await measure(() => t.iterate(steps), () => t.prog.check()), steps));
      engine.push(per(await measure(() => e.iterate(steps), () => rt.sync()), steps));
    }
    const med = (cs: Cost[], k: keyof Cost) => Number(median(cs.map((c) => c[k])).toFixed(3));
    const ratio = (k: keyof Cost) => Number(median(engine.map((c, i) => c[k] / fused[i][k])).toFixed(2));
    return {
      dispatchesPerGStep: dispatches,
      gStepMs: { wall: med(engine, "wall"), cpu: med(engine, "cpu") },
      fusedGStepMs: { wall: med(fused, "wall"), cpu: med(fused, "cpu") },
      ratio: { wall: ratio("wall"), cpu: ratio("cpu") },
      blocks,
    };
  } finally {
    e.dispose();
  }
}
