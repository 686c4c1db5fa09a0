// The GPU work queue as science code sees it: submit what is recorded, or wait for it to finish. Loops
// that record many steps without reading back call these to keep the queue (and memory) bounded.

import { gpu } from "../kernels/runtime.ts";

/** Submits the recorded commands now (released buffers become reusable). */
export function submitQueued(): void {
  gpu().flush();
}

/** Waits until the GPU has finished everything submitted so far. */
export function waitForQueue(): Promise<void> {
  return gpu().sync();
}
