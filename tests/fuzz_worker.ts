// One fuzzing worker: it meters every typed-array and ArrayBuffer allocation (the constructors are wrapped
// before any loader is imported), then runs the cases the runner sends, one at a time, and reports each
// outcome. The runner times each case from the "start" message, so a hang is a timeout, not a stuck run.

/// <reference lib="deno.worker" />

const meter = { limit: Infinity, largest: 0, total: 0, over: "" };

function metered<T extends abstract new (...args: any[]) => unknown>(ctor: T, bytesPer: number): T {
  return new Proxy(ctor, {
    construct(target, args, newTarget) {
      const n = args[0];
      if (typeof n === "number") {
        const bytes = n * bytesPer;
        meter.total += bytes;
        if (bytes > meter.largest) meter.largest = bytes;
        if (bytes > meter.limit && !meter.over) {
          meter.over = `allocation of ${bytes} bytes (bound ${meter.limit})`;
          throw new Error(`fuzz meter: ${meter.over}`);
        }
      }
      return Reflect.construct(target, args, newTarget);
    },
  });
}

const g = globalThis as any;
for (
  const ctor of [
    Uint8Array,
    Int8Array,
    Uint8ClampedArray,
    Uint16Array,
    Int16Array,
    Uint32Array,
    Int32Array,
    Float32Array,
    Float64Array,
    BigInt64Array,
    BigUint64Array,
  ]
) g[ctor.name] = metered(ctor, ctor.BYTES_PER_ELEMENT);
g.ArrayBuffer = metered(ArrayBuffer, 1);

const { boundFor, LOADERS, loadSeeds, makeCase, unclearError } = await import("./fuzz_cases.ts");
const seeds = loadSeeds();

self.onmessage = (ev: MessageEvent<{ seed: number; index: number }>) => {
  const { seed, index } = ev.data;
  const c = makeCase(seeds, seed, index);
  Object.assign(meter, { limit: boundFor(c.bytes.length), largest: 0, total: 0, over: "" });
  self.postMessage({
    type: "start",
    index,
    seed: c.seed,
    format: c.format,
    mutation: c.mutation,
    size: c.bytes.length,
  });
  const t0 = performance.now();
  let outcome = "loaded", message = "";
  try {
    LOADERS[c.format](c.bytes);
  } catch (e) {
    const why = unclearError(e);
    outcome = why ? "unclear" : "error";
    message = why ?? (e as Error).message;
  }
  if (meter.over) [outcome, message] = ["memory", meter.over];
  meter.limit = Infinity;
  self.postMessage({
    type: "done",
    index,
    seed: c.seed,
    format: c.format,
    mutation: c.mutation,
    size: c.bytes.length,
    outcome,
    message: message.slice(0, 300),
    ms: performance.now() - t0,
    largest: meter.largest,
    total: meter.total,
  });
};
self.postMessage({ type: "ready" });
