// `deno task bench [--filter REGEX] [--quick] [--heavy] [--json FILE] [--no-torch] [--no-jax] [--counts]`
// One row per case: our throughput and, in the same run, the peers' on the same inputs, as values and
// as our-speed / peer-speed ratios, plus the largest error between our result and each peer's.
// --heavy adds the GPU-sized cases (minutes each on a CPU adapter). On a GPU machine, GC_TORCH_DEVICE=cuda
// runs the torch peer on CUDA (GC_PYTHON names the interpreter that has torch).

import { parseArgs } from "node:util";
import { gpu, initGPU } from "../kernels/runtime.ts";
import { applyGemmEnv } from "../cli/gemm_env.ts";
import { CASES } from "./cases.ts";
import {
  type Case,
  caseInput,
  fmt,
  MISMATCH,
  numel,
  type OursRun,
  rate,
  speedRatio,
  timeEngine,
  type TimingOptions,
} from "./harness.ts";
import { maxRelError } from "../nn/host_compare.ts";
import { initJaxWebGPU, jaxEngine } from "./peers/jaxjs.ts";
import {
  PYTHON,
  runTorchJobs,
  TORCH_DEVICE,
  type TorchJob,
  torchKey,
  type TorchRun,
  torchVersion,
} from "./peers/torch.ts";

// Torch gets the machine's cores; GC_TORCH_THREADS overrides (on a loaded 2-core machine a 2-thread torch
// stalls on its own threads and looks far slower than it is: use 1 there).
const TORCH_THREADS = Number(Deno.env.get("GC_TORCH_THREADS") ?? navigator.hardwareConcurrency ?? 2);
/** The pinned jax-js version, as deno.json maps it. */
const JAX_VERSION = (JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url))).imports[
  "@jax-js/jax"
] as string).split("@").pop();
const UNIT_KEY = { "GFLOP/s": "gflops", "GB/s": "gbps", "us": "us" } as const;

interface Row {
  name: string;
  group: string;
  unit: Case["unit"];
  ours: number | null;
  peers: Record<string, number | null>;
  maxRelErr: Record<string, number | null>;
  notes: Record<string, string>;
  runsPerSample: Record<string, number>;
  samples: Record<string, number>;
  /** 1-minute load average when each engine's timing ended (other processes skew timings). */
  load: Record<string, number>;
  /** Our dispatches, copies and bound bytes in one run (deterministic: counted, not timed). */
  counts: RunCounts | null;
}

interface RunCounts {
  dispatches: number;
  copies: number;
  boundBytes: number;
}

/** What one more run records: dispatches, copies and the bytes of the buffers they bind. */
function countRun(run: () => void): RunCounts {
  const rt = gpu();
  const d = rt.totalDispatches, c = rt.totalCopies, b = rt.totalBoundBytes;
  run();
  return {
    dispatches: rt.totalDispatches - d,
    copies: rt.totalCopies - c,
    boundBytes: rt.totalBoundBytes - b,
  };
}

function parseCli() {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      filter: { type: "string" },
      quick: { type: "boolean", default: false },
      heavy: { type: "boolean", default: false },
      json: { type: "string" },
      "no-torch": { type: "boolean", default: false },
      "no-jax": { type: "boolean", default: false },
      counts: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(
      "deno task bench [--filter REGEX] [--quick] [--heavy] [--json FILE] [--no-torch] [--no-jax] [--counts]",
    );
    console.log("--counts: only count each case's dispatches, copies and bound bytes per run (no timing)");
    Deno.exit(0);
  }
  let filter: RegExp | null = null;
  if (values.filter !== undefined) {
    try {
      filter = new RegExp(values.filter, "i");
    } catch (e) {
      throw new Error(`--filter: not a valid regular expression: ${(e as Error).message}`);
    }
  }
  return { ...values, filter };
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e)).split("\n")[0].slice(0, 200);

/** Our engine on one case: upload, one checked run, then timing. Returns the first run's result. */
async function runOurs(
  c: Case,
  row: Row,
  opts: TimingOptions,
  countsOnly = false,
): Promise<Float32Array | null> {
  const rt = gpu();
  const inputs = c.inputs.map((shape, i) => {
    const buf = rt.alloc(4 * numel(shape));
    rt.upload(buf, caseInput(c, i));
    return buf;
  });
  const out = rt.alloc(4 * numel(c.output));
  let runner: OursRun | null = null;
  try {
    const made = c.ours(inputs, out);
    runner = typeof made === "function" ? { run: made } : made;
    await rt.sync(); // uploads done before anything is timed
    const t0 = performance.now();
    runner.run();
    const result = new Float32Array(await rt.read(runner.output ?? out, 4 * numel(c.output)));
    const firstMs = performance.now() - t0;
    row.counts = countRun(runner.run);
    await rt.sync();
    if (countsOnly) return result;
    const t = await timeEngine({ run: runner.run, sync: () => rt.sync() }, opts, firstMs);
    row.ours = rate(c, t.seconds);
    row.runsPerSample.ours = t.runsPerSample;
    row.samples.ours = t.samples;
    row.load.ours = Deno.loadavg()[0];
    return result;
  } catch (e) {
    row.notes.ours = message(e);
    return null;
  } finally {
    runner?.dispose?.();
    for (const b of [...inputs, out]) rt.release(b);
    rt.trimPool();
  }
}

async function runJaxPeer(c: Case, name: string, row: Row, ours: Float32Array | null, opts: TimingOptions) {
  const peer = c.peers![name];
  if (peer.kind !== "jax-js") return;
  let engine = null;
  try {
    engine = await jaxEngine(peer, c.inputs.map((_, i) => caseInput(c, i)), c.inputs);
    const t0 = performance.now();
    const result = await engine.first();
    const firstMs = performance.now() - t0;
    if (ours) row.maxRelErr[name] = maxRelError(ours, result);
    const t = await timeEngine(engine, opts, firstMs);
    row.peers[name] = rate(c, t.seconds);
    row.runsPerSample[name] = t.runsPerSample;
    row.samples[name] = t.samples;
    row.load[name] = Deno.loadavg()[0];
  } catch (e) {
    row.notes[name] = message(e);
  } finally {
    try {
      engine?.dispose();
    } catch (e) {
      row.notes[name] ??= `dispose: ${message(e)}`;
    }
  }
}

function takeTorch(c: Case, name: string, row: Row, ours: Float32Array | null, torch: TorchRun | null) {
  const r = torch?.results.get(torchKey(c.name, name));
  if (!r) return;
  if (r.error) {
    row.notes[name] = r.error.slice(0, 200);
    return;
  }
  row.peers[name] = rate(c, r.seconds!);
  row.runsPerSample[name] = r.runsPerSample!;
  row.samples[name] = r.samples!;
  row.load[name] = torch!.loadAfter;
  if (ours && r.output) {
    try {
      row.maxRelErr[name] = maxRelError(ours, r.output);
    } catch (e) {
      row.notes[name] = message(e);
    }
  }
}

function formatRow(row: Row, peerNames: string[], nameWidth: number): string {
  const cells = [row.name.padEnd(nameWidth), (row.ours === null ? "error" : fmt(row.ours)).padStart(8)];
  for (const p of peerNames) {
    const v = row.peers[p];
    const cell = v === undefined || v === null
      ? (p in row.notes ? "error" : "n/a")
      : row.ours === null
      ? fmt(v)
      : `${fmt(v)} (${fmt(speedRatio(row.unit, row.ours, v))}x)`;
    cells.push(cell.padStart(17));
  }
  const errs = Object.entries(row.maxRelErr).map(([p, e]) =>
    `${p} ${e === null ? "-" : e.toExponential(1)}${e !== null && !(e <= MISMATCH) ? " MISMATCH" : ""}`
  );
  const n = row.counts;
  const counts = n
    ? `  [${n.dispatches} dispatches, ${n.copies} copies, ${fmt(n.boundBytes / 1e6)} MB bound]`
    : "";
  return `${cells.join(" ")}  ${row.unit.padEnd(7)} ${errs.join(", ")}${counts}`;
}

async function main() {
  const cli = parseCli();
  const cases = CASES.filter((c) => (cli.heavy || !c.heavy) && (!cli.filter || cli.filter.test(c.name)));
  if (cases.length === 0) {
    throw new Error(`--filter ${cli.filter} matches no case${cli.heavy ? "" : " (--heavy adds more)"}`);
  }
  const opts: TimingOptions = { quick: cli.quick };
  const started = new Date();
  const loadBefore = Deno.loadavg();
  const cores = navigator.hardwareConcurrency;
  if (loadBefore[0] > 0.5 * cores) {
    console.log(
      `WARNING: load average ${loadBefore[0].toFixed(1)} on ${cores} cores: other work skews timings`,
    );
  }

  if (cli.counts) cli["no-torch"] = cli["no-jax"] = true;
  applyGemmEnv();
  await initGPU();
  const rt = gpu();
  let jaxAdapter: string | null = null, jaxNote: string | null = null;
  if (!cli["no-jax"]) {
    try {
      jaxAdapter = await initJaxWebGPU();
    } catch (e) {
      jaxNote = message(e);
    }
  }
  const torchVer = cli["no-torch"] ? null : await torchVersion();
  const adapter = [rt.info.description, rt.info.vendor, rt.info.architecture].filter(Boolean).join(", ");
  console.log(`adapter: ${adapter}`);
  console.log(`jax-js: ${jaxAdapter ?? `not used (${jaxNote ?? "--no-jax"})`}`);

  // torch first, alone: it and lavapipe would otherwise fight over the same CPU cores.
  let torch: TorchRun | null = null;
  const jobs: TorchJob[] = [];
  for (const c of cases) {
    for (const [peerName, peer] of Object.entries(c.peers ?? {})) {
      if (peer.kind === "torch") jobs.push({ case: c, peerName, peer });
    }
  }
  let torchNote = torchVer ? "" : cli["no-torch"] ? "--no-torch" : `${PYTHON} cannot import torch`;
  if (torchVer && jobs.length > 0) {
    const where = TORCH_DEVICE === "cuda" ? "CUDA" : `${TORCH_THREADS} CPU threads`;
    console.log(`torch ${torchVer}: running ${jobs.length} cases on ${where}...`);
    try {
      torch = await runTorchJobs(jobs, { quick: cli.quick, threads: TORCH_THREADS });
    } catch (e) {
      torchNote = message(e);
    }
  }
  if (torchNote) console.log(`torch: not used (${torchNote})`);
  else if (torch) console.log(`torch device: ${torch.device}`);

  const peerNames = [...new Set(cases.flatMap((c) => Object.keys(c.peers ?? {})))];
  const nameWidth = Math.max(...cases.map((c) => c.name.length));
  console.log("\nratio = our speed / peer speed (>1: we are faster); err = max|ours-peer| / max|peer|");
  console.log(
    `${"case".padEnd(nameWidth)} ${"ours".padStart(8)} ${
      peerNames.map((p) => p.padStart(17)).join(" ")
    }  unit`,
  );
  const rows: Row[] = [];
  for (const c of cases) {
    const row: Row = {
      name: c.name,
      group: c.group,
      unit: c.unit,
      ours: null,
      peers: {},
      maxRelErr: {},
      notes: {},
      runsPerSample: {},
      samples: {},
      load: {},
      counts: null,
    };
    const ours = await runOurs(c, row, opts, cli.counts);
    for (const name of Object.keys(c.peers ?? {})) {
      const peer = c.peers![name];
      if (peer.kind === "jax-js" && jaxAdapter) await runJaxPeer(c, name, row, ours, opts);
      if (peer.kind === "torch") takeTorch(c, name, row, ours, torch);
      row.peers[name] ??= null;
    }
    rows.push(row);
    console.log(formatRow(row, peerNames, nameWidth));
    for (const [who, note] of Object.entries(row.notes)) console.log(`    ${who}: ${note}`);
  }

  if (cli.json) {
    const report = {
      date: started.toISOString(),
      adapter: rt.info.description,
      adapterVendor: rt.info.vendor,
      adapterArchitecture: rt.info.architecture,
      deno: Deno.version.deno,
      v8: Deno.version.v8,
      jaxjs: jaxAdapter ? { version: JAX_VERSION, adapter: jaxAdapter } : { note: jaxNote ?? "--no-jax" },
      torch: torch
        ? { version: torch.version, threads: torch.threads, device: torch.device }
        : { note: torchNote },
      quick: cli.quick,
      cores,
      loadavg: { before: loadBefore, after: Deno.loadavg() },
      ratio: "peers hold values in each row's unit; speed ratio = ours / peer (for us: peer / ours)",
      results: rows.map((r) => ({
        name: r.name,
        group: r.group,
        unit: r.unit,
        [UNIT_KEY[r.unit]]: r.ours,
        peers: r.peers,
        maxRelErr: r.maxRelErr,
        runsPerSample: r.runsPerSample,
        samples: r.samples,
        load: r.load,
        ...(r.counts ? { perRun: r.counts } : {}),
        ...(Object.keys(r.notes).length ? { notes: r.notes } : {}),
      })),
    };
    await Deno.writeTextFile(cli.json, JSON.stringify(report, null, 2) + "\n");
    console.log(`\nwrote ${cli.json}`);
  }
}

try {
  await main();
} catch (e) {
  console.error(`bench: ${e instanceof Error ? e.message : e}`);
  Deno.exit(1);
}
