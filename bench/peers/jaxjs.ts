// jax-js as a peer on the same WebGPU adapter: it opens its own GPUDevice (on the adapter that
// requestAdapter({powerPreference: "high-performance"}) returns, the same call our runtime makes).
// jax-js is lazy: work is recorded as pending kernels and only submitted when something waits on the
// array, and a pending kernel whose output is disposed unwaited is never run. So every run's output is
// kept until the sync, which waits on all of them (blockUntilReady), exactly like our
// "record N runs, then wait once".

import {
  type Array as JaxArray,
  blockUntilReady,
  defaultDevice,
  getWebGPUDevice,
  init,
  jit,
  numpy as np,
} from "@jax-js/jax";
import type { JaxPeer, Timed } from "../harness.ts";

let adapterDescription: string | null = null;

/** Starts jax-js's WebGPU backend and makes it the default device; returns the adapter's description. */
export async function initJaxWebGPU(): Promise<string> {
  if (adapterDescription !== null) return adapterDescription;
  const devices = await init("webgpu");
  if (!devices.includes("webgpu")) {
    throw new Error("jax-js could not start its WebGPU backend (no adapter, or requestDevice failed)");
  }
  defaultDevice("webgpu");
  const info = (getWebGPUDevice() as GPUDevice & { adapterInfo?: GPUAdapterInfo }).adapterInfo;
  adapterDescription = info
    ? [info.description, info.vendor, info.architecture].filter(Boolean).join(", ")
    : "?";
  return adapterDescription;
}

export interface JaxEngine extends Timed {
  /** The result of one run on the original inputs (for the accuracy check). */
  first(): Promise<Float32Array>;
  dispose(): void;
}

/** Uploads the inputs as jax-js device arrays (materialised before returning) and wraps the peer. */
export async function jaxEngine(
  peer: JaxPeer,
  inputs: Float32Array[],
  shapes: number[][],
): Promise<JaxEngine> {
  const arrays = inputs.map((data, i) => np.array(data as Float32Array<ArrayBuffer>).reshape(shapes[i]));
  // A reshape is a view: make each input a plain resident buffer, so no kernel folds the input in.
  await blockUntilReady(arrays);
  const fn = peer.jit ? jit(peer.fn) : peer.fn;
  const call = (first: JaxArray) => fn(first, ...arrays.slice(1).map((a) => a.ref));
  let pending: JaxArray[] = [];
  let state: JaxArray | null = null;
  return {
    async first() {
      const out = call(arrays[0].ref);
      const data = await out.data(); // consumes `out`
      if (!(data instanceof Float32Array)) throw new Error(`jax-js peer returned ${out.dtype}, not float32`);
      return data;
    },
    run() {
      if (peer.chain) state = call(state ?? arrays[0].ref);
      else pending.push(call(arrays[0].ref));
    },
    async sync() {
      if (peer.chain) {
        if (state) await blockUntilReady(state);
        return;
      }
      await blockUntilReady(pending);
      for (const a of pending) a.dispose();
      pending = [];
    },
    dispose() {
      for (const a of pending) a.dispose();
      state?.dispose();
      for (const a of arrays) a.dispose();
      (fn as { dispose?: () => void }).dispose?.();
    },
  };
}
