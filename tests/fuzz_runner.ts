// Runs fuzz cases in workers (tests/fuzz_worker.ts) with a time limit per case: a case that overruns is a
// hang, the worker is terminated and replaced, and the run goes on. Shared by `deno task fuzz` and the
// CI slice in tests/fuzz_test.ts.

export interface CaseResult {
  index: number;
  seed: string;
  format: string;
  mutation: string;
  size: number;
  /** loaded | error (clear) | unclear (built-in error type or engine message) | memory | hang | crash */
  outcome: string;
  message: string;
  ms: number;
  largest: number;
  total: number;
}

export interface FuzzReport {
  seed: number;
  cases: number;
  outcomes: Record<string, number>;
  failures: CaseResult[];
  slowestMs: number;
  largestAllocation: number;
  /** Cases that overran once and were run again in a fresh worker. */
  retried: number;
  wallS: number;
}

export interface FuzzOptions {
  seed: number;
  cases: number;
  /** First case index (default 0). */
  start?: number;
  workers?: number;
  timeoutMs?: number;
  onProgress?: (done: number, total: number) => void;
}

const FAILURES = new Set(["unclear", "memory", "hang", "crash"]);

class CaseWorker {
  private worker!: Worker;
  private ready!: Promise<void>;
  private onMessage: (d: any) => void = () => {};
  private onError: (e: ErrorEvent) => void = () => {};

  constructor() {
    this.spawn();
  }

  private spawn(): void {
    this.worker = new Worker(new URL("./fuzz_worker.ts", import.meta.url), { type: "module" });
    this.ready = new Promise((resolve, reject) => {
      this.onMessage = (d) => d.type === "ready" ? resolve() : reject(new Error(`fuzz worker: ${d.type}`));
      this.onError = (e) => reject(new Error(`fuzz worker failed to start: ${e.message}`));
    });
    this.worker.onmessage = (ev) => this.onMessage(ev.data);
    this.worker.onerror = (ev) => {
      ev.preventDefault();
      this.onError(ev);
    };
  }

  /** Runs one case; a timeout or a crash replaces the worker. */
  async run(seed: number, index: number, timeoutMs: number): Promise<CaseResult> {
    await this.ready;
    const base = { index, seed: "?", format: "?", mutation: "?", size: 0, ms: 0, largest: 0, total: 0 };
    const result = await new Promise<CaseResult>((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      this.onMessage = (d) => {
        if (d.type === "start") {
          Object.assign(base, { seed: d.seed, format: d.format, mutation: d.mutation, size: d.size });
          timer = setTimeout(
            () => resolve({ ...base, outcome: "hang", message: `over ${timeoutMs} ms` }),
            timeoutMs,
          );
        } else if (d.type === "done") {
          clearTimeout(timer);
          resolve(d as CaseResult);
        }
      };
      this.onError = (e) => {
        clearTimeout(timer);
        resolve({ ...base, outcome: "crash", message: e.message });
      };
      this.worker.postMessage({ seed, index });
    });
    if (result.outcome === "hang" || result.outcome === "crash") {
      this.worker.terminate();
      this.spawn();
    }
    return result;
  }

  close(): void {
    this.worker.terminate();
  }
}

export async function runFuzz(opts: FuzzOptions): Promise<FuzzReport> {
  const t0 = performance.now();
  const start = opts.start ?? 0, end = start + opts.cases;
  const timeoutMs = opts.timeoutMs ?? 1000;
  const workers = Array.from({ length: opts.workers ?? 1 }, () => new CaseWorker());
  const outcomes: Record<string, number> = {};
  const failures: CaseResult[] = [];
  let next = start, done = 0, slowestMs = 0, largestAllocation = 0, retried = 0;
  await Promise.all(workers.map(async (w) => {
    while (next < end) {
      const index = next++;
      let r = await w.run(opts.seed, index, timeoutMs);
      // On a shared, loaded machine a case can overrun once by bad luck: a hang must repeat in a fresh worker.
      if (r.outcome === "hang") {
        retried++;
        r = await w.run(opts.seed, index, timeoutMs);
      }
      outcomes[r.outcome] = (outcomes[r.outcome] ?? 0) + 1;
      if (FAILURES.has(r.outcome)) failures.push(r);
      slowestMs = Math.max(slowestMs, r.ms);
      if (r.outcome !== "memory") largestAllocation = Math.max(largestAllocation, r.largest);
      opts.onProgress?.(++done, opts.cases);
    }
  }));
  workers.forEach((w) => w.close());
  failures.sort((a, b) => a.index - b.index);
  return {
    seed: opts.seed,
    cases: opts.cases,
    outcomes,
    failures,
    slowestMs,
    largestAllocation,
    retried,
    wallS: (performance.now() - t0) / 1000,
  };
}
