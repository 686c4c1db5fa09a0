// PyTorch as a peer: one python process runs every torch case of the benchmark (bench/peers/torch_cpu.py),
// on the CPU, or on CUDA with GC_TORCH_DEVICE=cuda (a GPU machine). Inputs travel as raw float32 files (the
// very numbers our engine gets); results come back as files too, for the accuracy check.

import { type Case, caseInput, type TorchPeer } from "../harness.ts";

/** Debian's python3-torch lives under the system interpreter only; GC_PYTHON names another one. */
export const PYTHON = Deno.env.get("GC_PYTHON") ?? "/usr/bin/python3";
/** Where torch runs: "cpu" (default) or "cuda". */
export const TORCH_DEVICE = Deno.env.get("GC_TORCH_DEVICE") ?? "cpu";
if (TORCH_DEVICE !== "cpu" && TORCH_DEVICE !== "cuda") {
  throw new Error(`GC_TORCH_DEVICE must be cpu or cuda, not ${JSON.stringify(TORCH_DEVICE)}`);
}
const SCRIPT = new URL("./torch_cpu.py", import.meta.url).pathname;

/** torch's version when `PYTHON -c "import torch"` works, otherwise null. */
export async function torchVersion(): Promise<string | null> {
  try {
    const out = await new Deno.Command(PYTHON, {
      args: ["-c", "import torch; print(torch.__version__)"],
      stdout: "piped",
      stderr: "null",
    }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : null;
  } catch {
    return null; // no python at that path
  }
}

export interface TorchJob {
  case: Case;
  peerName: string;
  peer: TorchPeer;
}

export interface TorchResult {
  seconds?: number;
  samples?: number;
  runsPerSample?: number;
  error?: string;
  /** Result of the first call, flattened. */
  output?: Float32Array;
}

export interface TorchRun {
  version: string;
  threads: number;
  /** "cpu" or the CUDA device's name. */
  device: string;
  /** Keyed by torchKey(case name, peer name). */
  results: Map<string, TorchResult>;
  /** 1-minute load average when the torch process finished. */
  loadAfter: number;
}

export const torchKey = (caseName: string, peerName: string): string => `${caseName} / ${peerName}`;

/** Runs all jobs in one python process (sequentially, while nothing else runs) and collects results. */
export async function runTorchJobs(
  jobs: TorchJob[],
  opts: { quick: boolean; threads: number },
): Promise<TorchRun> {
  const dir = await Deno.makeTempDir({ prefix: "bench-torch-" });
  try {
    const cases = [];
    for (const [j, job] of jobs.entries()) {
      const inputs = [];
      for (const [i, shape] of job.case.inputs.entries()) {
        const path = `${dir}/${j}_in${i}.f32`;
        const data = caseInput(job.case, i);
        await Deno.writeFile(path, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
        inputs.push({ path, shape });
      }
      cases.push({
        name: torchKey(job.case.name, job.peerName),
        expr: job.peer.expr,
        chain: job.peer.chain ?? false,
        inputs,
        out: `${dir}/${j}_out.f32`,
      });
    }
    const child = new Deno.Command(PYTHON, {
      args: [SCRIPT],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(
      new TextEncoder().encode(
        JSON.stringify({ threads: opts.threads, quick: opts.quick, device: TORCH_DEVICE, cases }),
      ),
    );
    await writer.close();
    const out = await child.output();
    const stderr = new TextDecoder().decode(out.stderr);
    if (!out.success) throw new Error(`torch peer failed (exit ${out.code}): ${stderr.slice(-2000)}`);
    const reply = JSON.parse(new TextDecoder().decode(out.stdout)) as {
      torch: string;
      threads: number;
      device: string;
      results: ({ name: string } & TorchResult)[];
    };
    const results = new Map<string, TorchResult>();
    for (const [j, r] of reply.results.entries()) {
      if (!r.error) {
        const bytes = await Deno.readFile(cases[j].out);
        r.output = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
      }
      results.set(r.name, r);
    }
    return {
      version: reply.torch,
      threads: reply.threads,
      device: reply.device,
      results,
      loadAfter: Deno.loadavg()[0],
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
