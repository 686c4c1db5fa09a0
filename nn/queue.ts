// The GPU work queue and device as science code sees it: submit what is recorded, wait for it to finish,
// how much GPU memory is live, and which adapter runs it. Loops that record many steps without reading
// back call these to keep the queue (and memory) bounded.

import { gpu } from "../kernels/runtime.ts";

/** Submits the recorded commands now (released buffers become reusable). */
export function submitQueued(): void {
  gpu().flush();
}

/** Waits until the GPU has finished everything submitted so far. */
export function waitForQueue(): Promise<void> {
  return gpu().sync();
}

/** Bytes of GPU buffers currently allocated by the engine (pooled ones included). */
export function liveGpuBytes(): number {
  return gpu().liveBytes;
}

/** The most bytes of GPU buffers live at once since resetPeakGpuBytes() (a forward's footprint). */
export function peakGpuBytes(): number {
  return gpu().peakLiveBytes;
}

/** Restarts peakGpuBytes() from the bytes live now. */
export function resetPeakGpuBytes(): void {
  gpu().resetPeakBytes();
}

/** The adapter's description as the driver reports it (e.g. "llvmpipe (LLVM 15.0.6, 256 bits)"). */
export function adapterDescription(): string {
  return gpu().info.description;
}
