// A fixed GPU program for the fused trainer: buffers that may be bound as uniforms, pipelines compiled
// once, bind groups created once, and a step replayed as one compute pass in one submit. The engine's
// runtime batches dispatches too, but binds only storage buffers (plus its own scalar arena) and creates
// a bind group per dispatch; the fused MLP kernels need weights in uniform buffers (kernels/mlp_small.ts).
// Proposed engine change (then this file goes away): a `uniform: true` binding kind in
// runtime.dispatch, UNIFORM usage on pooled buffers, and cached bind groups for replayed op lists.
// Ordering with engine work: the engine's pending commands are submitted before every run() here, and
// read-backs go through the runtime (queue order keeps them after our submits).

import { gpu } from "./runtime.ts";
import type { BindKind, KernelSpec } from "./mlp_small.ts";

export interface Bind {
  buffer: GPUBuffer;
  /** Byte offset (multiple of 256 for portability) and size of the bound range. */
  offset?: number;
  size?: number;
}

export interface Op {
  tag: string;
  key: string;
  pipeline: GPUComputePipeline;
  group: GPUBindGroup;
  workgroups: number;
}

const ALIGN_BYTES = 256;

/** Byte offsets aligned to 256 (the usual minUniform/StorageBufferOffsetAlignment on GPUs). */
export function alignBytes(bytes: number): number {
  return Math.ceil(bytes / ALIGN_BYTES) * ALIGN_BYTES;
}

// Pipelines are shared by every program of the process (one device): trainers made one after another
// (tests, the dissect study) compile each kernel once.
const pipelines = new Map<string, { pipeline: GPUComputePipeline; layout: GPUBindGroupLayout }>();
let pipelineDevice: GPUDevice | null = null;

export class GpuProgram {
  readonly device: GPUDevice;
  private owned: GPUBuffer[] = [];
  private error: Error | null = null;
  /** Dispatches submitted by this program (they are also added to the runtime's totalDispatches). */
  dispatches = 0;
  submits = 0;
  /** Milliseconds spent compiling pipelines. */
  compileMs = 0;

  constructor() {
    this.device = gpu().device;
  }

  /** A zero-filled buffer usable as storage, uniform, copy source and destination. */
  buffer(bytes: number, label: string): GPUBuffer {
    if (!(bytes > 0)) throw new Error(`GpuProgram: buffer ${label} needs a positive size, got ${bytes}`);
    const b = this.device.createBuffer({
      size: alignBytes(bytes),
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_SRC |
        GPUBufferUsage.COPY_DST,
      label,
    });
    this.owned.push(b);
    return b;
  }

  private pipeline(spec: KernelSpec) {
    if (pipelineDevice !== this.device) {
      pipelines.clear();
      pipelineDevice = this.device;
    }
    let p = pipelines.get(spec.key);
    if (p) return p;
    const t0 = performance.now();
    const code = spec.code();
    const entries: GPUBindGroupLayoutEntry[] = spec.kinds.map((k: BindKind, i) => ({
      binding: i,
      visibility: GPUShaderStage.COMPUTE,
      buffer: { type: k === "uniform" ? "uniform" : k === "write" ? "storage" : "read-only-storage" },
    }));
    this.device.pushErrorScope("validation");
    const module = this.device.createShaderModule({ code, label: spec.key });
    const layout = this.device.createBindGroupLayout({ entries, label: spec.key });
    const pipeline = this.device.createComputePipeline({
      layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: "main" },
      label: spec.key,
    });
    this.device.popErrorScope().then((e) => {
      if (e) this.error ??= new Error(`kernel ${spec.key} failed to compile: ${e.message}\n${code}`);
    });
    this.compileMs += performance.now() - t0;
    p = { pipeline, layout };
    pipelines.set(spec.key, p);
    return p;
  }

  /** A dispatch with its bind group, ready to replay. */
  op(tag: string, spec: KernelSpec, binds: Bind[]): Op {
    if (spec.dims) {
      // Run-time sizes: a 16-byte uniform of this op, written once.
      const d = this.buffer(16, `${spec.key} dims`);
      this.write(d, Uint32Array.from(spec.dims));
      binds = [...binds, { buffer: d, size: 16 }];
    }
    if (binds.length !== spec.kinds.length) {
      throw new Error(`GpuProgram: ${spec.key} takes ${spec.kinds.length} bindings, got ${binds.length}`);
    }
    if (spec.workgroups > this.device.limits.maxComputeWorkgroupsPerDimension) {
      throw new Error(
        `GpuProgram: ${spec.key} needs ${spec.workgroups} workgroups, above the adapter's limit`,
      );
    }
    const { pipeline, layout } = this.pipeline(spec);
    this.device.pushErrorScope("validation");
    const group = this.device.createBindGroup({
      layout,
      entries: binds.map((b, i) => ({
        binding: i,
        resource: { buffer: b.buffer, offset: b.offset ?? 0, size: b.size },
      })),
      label: spec.key,
    });
    this.device.popErrorScope().then((e) => {
      if (e) this.error ??= new Error(`bind group of ${spec.key} is invalid: ${e.message}`);
    });
    return { tag, key: spec.key, pipeline, group, workgroups: spec.workgroups };
  }

  /** Submits the ops in order as one compute pass (after the engine's pending work). */
  run(ops: Op[]): void {
    if (ops.length === 0) return;
    const rt = gpu();
    rt.flush();
    const enc = this.device.createCommandEncoder();
    const pass = enc.beginComputePass();
    for (const o of ops) {
      pass.setPipeline(o.pipeline);
      pass.setBindGroup(0, o.group);
      pass.dispatchWorkgroups(o.workgroups);
    }
    pass.end();
    this.device.queue.submit([enc.finish()]);
    this.dispatches += ops.length;
    this.submits++;
    rt.totalDispatches += ops.length;
  }

  /** Writes host data (queue-ordered: lands after earlier submits, before later ones). */
  write(buf: GPUBuffer, data: Float32Array | Uint32Array | Uint8Array, byteOffset = 0): void {
    gpu().flush();
    this.device.queue.writeBuffer(
      buf,
      byteOffset,
      data.buffer as ArrayBuffer,
      data.byteOffset,
      data.byteLength,
    );
  }

  /** Reads `floats` floats from a buffer (waits for the GPU). */
  async read(buf: GPUBuffer, floats: number, byteOffset = 0): Promise<Float32Array> {
    await this.check();
    const out = new Float32Array(await gpu().read(buf, floats * 4, byteOffset));
    await this.check();
    return out;
  }

  /** Throws the first compile or validation error seen so far. */
  async check(): Promise<void> {
    await this.device.queue.onSubmittedWorkDone();
    if (this.error) {
      const e = this.error;
      this.error = null;
      throw e;
    }
    gpu().checkError();
  }

  dispose(): void {
    for (const b of this.owned) b.destroy();
    this.owned = [];
  }
}
