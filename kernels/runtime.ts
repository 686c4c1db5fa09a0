// The WebGPU runtime: one device per process, a pipeline cache, a buffer pool, a uniform arena and a
// command batcher. Kernels record dispatches here; nothing waits on the GPU except an explicit read-back.

export interface DeviceInfo {
  description: string;
  vendor: string;
  architecture: string;
  isFallbackAdapter: boolean;
  limits: Record<string, number>;
  features: string[];
}

/**
 * A binding of a dispatch: a storage buffer (and whether the kernel writes it), a sampled float
 * texture read with textureLoad (`texture_2d<f32>`), or a write-only rgba32float storage texture
 * (`texture_storage_2d<rgba32float, write>`).
 */
export type Binding =
  | { buffer: GPUBuffer; write?: boolean }
  | { texture: GPUTextureView }
  | { storageTexture: GPUTextureView };

/** How a binding slot is declared in a pipeline's layout. */
type BindingKind = "read" | "write" | "texture" | "storage-texture";

function bindingKind(b: Binding): BindingKind {
  if ("texture" in b) return "texture";
  if ("storageTexture" in b) return "storage-texture";
  return b.write ? "write" : "read";
}

/** The format of pooled textures: four f32 per texel (textureLoad of one texel = one vec4 load). */
export const TEXTURE_FORMAT: GPUTextureFormat = "rgba32float";

/** A compiled pipeline, its layout, its profile family and its bind groups by bound resources. */
interface PipelineEntry {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  family: string;
  groups: Map<string, GPUBindGroup>;
}

const BIND_GROUP_CACHE = 16384;
const SUBMIT_EVERY = 48; // dispatches per submitted command buffer
const UNIFORM_ARENA_BYTES = 1 << 20;
const TEXTURE_FLUSH_BYTES = 64 << 20; // released texture bytes that trigger an early submit

class Runtime {
  device!: GPUDevice;
  info!: DeviceInfo;
  private pipelines = new Map<string, PipelineEntry>();
  /** Cached bind groups over all pipelines (cleared past BIND_GROUP_CACHE or when buffers are destroyed). */
  private bindGroupCount = 0;
  private resourceIds = new WeakMap<object, number>();
  private nextResourceId = 0;
  // Pool of free storage buffers keyed by byte size class.
  private free = new Map<number, GPUBuffer[]>();
  // Buffers released while commands that use them are still being recorded: pooled after submit.
  private releasedSinceSubmit: GPUBuffer[] = [];
  // The same for textures, keyed by "width x height" (one format).
  private freeTextures = new Map<string, GPUTexture[]>();
  private texturesReleasedSinceSubmit: GPUTexture[] = [];
  private textureBytesSinceSubmit = 0;
  private views = new WeakMap<GPUTexture, GPUTextureView>();
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private dispatchesInBatch = 0;
  private kernelsInBatch = new Set<string>();
  private arena: GPUBuffer | null = null;
  private arenaData = new ArrayBuffer(UNIFORM_ARENA_BYTES);
  private arenaUsed = 0;
  private uniformAlign = 256;
  private pendingError: Error | null = null;
  /** Live buffers owned by tensors (not pooled) and their bytes: the leak test watches these. */
  liveBuffers = 0;
  liveBytes = 0;
  /** The most liveBytes seen since the last resetPeakBytes() (memory footprints: the f16 test). */
  peakLiveBytes = 0;
  pooledBuffers = 0;
  /** Buffers ever created (a pool that works stops growing this during a steady loop). */
  createdBuffers = 0;
  totalDispatches = 0;
  totalSubmits = 0;
  /** Bytes of the resources bound by every dispatch and copy so far (a proxy for memory traffic). */
  totalBoundBytes = 0;
  /** When set, dispatches are counted here by kernel family (the key's first field): for profiles. */
  dispatchCounts: Map<string, number> | null = null;
  /** While set (startTiming), every dispatch runs in its own timed pass: GPU time by kernel family. */
  private timing: KernelTiming | null = null;
  /** Buffer and texture copies recorded so far (they end the compute pass: dispatch-like cost). */
  totalCopies = 0;
  /** Textures handed out by allocTexture and not yet released (GEMM operands are transient). */
  liveTextures = 0;
  liveTextureBytes = 0;
  pooledTextures = 0;
  createdTextures = 0;

  async init(): Promise<void> {
    if (!("gpu" in navigator) || !navigator.gpu) {
      throw new Error(
        "WebGPU is not available in this runtime: run Deno with --unstable-webgpu (deno.json sets it).",
      );
    }
    const adapter = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
    if (!adapter) {
      throw new Error(
        "No WebGPU adapter found. Install a Vulkan driver: `apt-get install mesa-vulkan-drivers` " +
          "runs WebGPU on the CPU (lavapipe); on a GPU server install the GPU's driver and Vulkan loader.",
      );
    }
    // Read the adapter's info and limits first, then ask for its maximum limits.
    const limits: Record<string, number> = {};
    for (const key in adapter.limits) {
      const v = (adapter.limits as unknown as Record<string, unknown>)[key];
      if (typeof v === "number") limits[key] = v;
    }
    const ai = adapter.info;
    this.info = {
      description: ai.description,
      vendor: ai.vendor,
      architecture: ai.architecture,
      isFallbackAdapter: (ai as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter ?? false,
      limits,
      features: [...adapter.features] as string[],
    };
    const requiredLimits: Record<string, number> = {};
    for (const [k, v] of Object.entries(limits)) {
      if (k.startsWith("max") || k.startsWith("min")) requiredLimits[k] = v;
    }
    // shader-f16 is enabled where offered; probeShaderF16() decides whether to trust it.
    const requiredFeatures: GPUFeatureName[] = adapter.features.has("shader-f16") ? ["shader-f16"] : [];
    // timestamp-query only serves startTiming(); nothing else depends on it.
    if (adapter.features.has("timestamp-query")) requiredFeatures.push("timestamp-query");
    this.device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
    this.uniformAlign = Math.max(this.device.limits.minUniformBufferOffsetAlignment, 16);
    this.device.addEventListener("uncapturederror", (e) => {
      const ev = e as GPUUncapturedErrorEvent;
      const kernels = [...this.kernelsInBatch].join(", ");
      this.pendingError ??= new Error(`GPU error near kernel(s) [${kernels}]: ${ev.error.message}`);
    });
    this.device.lost.then((l) => {
      this.pendingError ??= new Error(`GPU device lost: ${l.reason} ${l.message}`);
    });
    this.arena = this.device.createBuffer({
      size: UNIFORM_ARENA_BYTES,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
  }

  /** Throws the first GPU error seen so far (validation errors surface asynchronously). */
  checkError(): void {
    if (this.pendingError) {
      const e = this.pendingError;
      this.pendingError = null;
      throw e;
    }
  }

  get maxWorkgroups(): number {
    return this.device.limits.maxComputeWorkgroupsPerDimension;
  }

  // ---- buffers ----

  private sizeClass(bytes: number): number {
    const b = Math.max(16, Math.ceil(bytes / 16) * 16);
    if (b <= 4096) return b;
    // Round to a quarter of a power of two: at most 25% waste, few classes.
    const p = 2 ** Math.floor(Math.log2(b));
    const q = p / 4;
    return Math.ceil(b / q) * q;
  }

  /** A storage buffer of at least `bytes`; contents are undefined. */
  alloc(bytes: number): GPUBuffer {
    const size = this.sizeClass(bytes);
    const maxBinding = this.device.limits.maxStorageBufferBindingSize;
    if (size > maxBinding) {
      throw new Error(
        `tensor of ${bytes} bytes exceeds this adapter's maxStorageBufferBindingSize (${maxBinding})`,
      );
    }
    const list = this.free.get(size);
    let buf = list?.pop();
    if (buf) this.pooledBuffers--;
    else {
      this.createdBuffers++;
      buf = this.device.createBuffer({
        size,
        usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
      });
    }
    this.liveBuffers++;
    this.liveBytes += size;
    if (this.liveBytes > this.peakLiveBytes) this.peakLiveBytes = this.liveBytes;
    return buf;
  }

  /** Starts a new peak of live buffer bytes from what is live now. */
  resetPeakBytes(): void {
    this.peakLiveBytes = this.liveBytes;
  }

  /** Gives a buffer back; it is reused only after the commands recorded so far are submitted. */
  release(buf: GPUBuffer): void {
    this.liveBuffers--;
    this.liveBytes -= buf.size;
    this.releasedSinceSubmit.push(buf);
  }

  /** Frees every pooled buffer (GPU memory goes back to the driver). */
  trimPool(): void {
    this.flush();
    this.clearBindGroups();
    for (const list of this.free.values()) for (const b of list) b.destroy();
    this.free.clear();
    this.pooledBuffers = 0;
    for (const list of this.freeTextures.values()) for (const t of list) t.destroy();
    this.freeTextures.clear();
    this.pooledTextures = 0;
  }

  /** Copies host data into a buffer (queue-ordered before the next submit). */
  upload(buf: GPUBuffer, data: ArrayBufferView, offset = 0): void {
    // writeBuffer runs before any recorded-but-unsubmitted command: submit those first so the order holds.
    if (this.dispatchesInBatch > 0) this.flush();
    this.device.queue.writeBuffer(buf, offset, data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
  }

  // ---- textures ----

  /** Texture extent class: exact up to 64, then a multiple of an eighth of the power of two below. */
  private textureClass(v: number): number {
    if (v <= 64) return v;
    const q = 2 ** Math.floor(Math.log2(v)) / 8;
    return Math.min(Math.ceil(v / q) * q, this.device.limits.maxTextureDimension2D);
  }

  /**
   * An rgba32float texture of at least width x height texels (usable with textureLoad, as a
   * write-only storage texture and as a copy source/destination); contents are undefined.
   */
  allocTexture(width: number, height: number): GPUTexture {
    const max = this.device.limits.maxTextureDimension2D;
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
      throw new Error(`allocTexture: width and height must be positive integers, got ${width} x ${height}`);
    }
    if (width > max || height > max) {
      throw new Error(`allocTexture: ${width} x ${height} texels exceed maxTextureDimension2D (${max})`);
    }
    const w = this.textureClass(width), h = this.textureClass(height);
    let tex = this.freeTextures.get(`${w}x${h}`)?.pop();
    if (tex) this.pooledTextures--;
    else {
      this.createdTextures++;
      tex = this.device.createTexture({
        size: [w, h],
        format: TEXTURE_FORMAT,
        usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.STORAGE_BINDING |
          GPUTextureUsage.COPY_DST | GPUTextureUsage.COPY_SRC,
      });
    }
    this.liveTextures++;
    this.liveTextureBytes += w * h * 16;
    return tex;
  }

  /**
   * Gives a texture back; like buffers, it is reused only after the recorded commands are submitted.
   * GEMM operand textures are transient (one per GEMM), so a long batch would otherwise hold many:
   * past TEXTURE_FLUSH_BYTES released in one batch, the batch is submitted early.
   */
  releaseTexture(tex: GPUTexture): void {
    const bytes = tex.width * tex.height * 16;
    this.liveTextures--;
    this.liveTextureBytes -= bytes;
    this.texturesReleasedSinceSubmit.push(tex);
    this.textureBytesSinceSubmit += bytes;
    if (this.textureBytesSinceSubmit > TEXTURE_FLUSH_BYTES) this.flush();
  }

  /** The (cached) default view of a texture, for bindings. */
  view(tex: GPUTexture): GPUTextureView {
    let v = this.views.get(tex);
    if (!v) this.views.set(tex, v = tex.createView());
    return v;
  }

  /**
   * Records a copy of `height` rows of `width` texels from a buffer (rows `bytesPerRow` apart, a
   * multiple of 256) into the texture at texel (x, y).
   */
  copyToTexture(
    src: GPUBuffer,
    srcOffset: number,
    bytesPerRow: number,
    tex: GPUTexture,
    x: number,
    y: number,
    width: number,
    height: number,
  ): void {
    if (bytesPerRow % 256 !== 0 || srcOffset % 16 !== 0) {
      throw new Error(
        `copyToTexture: bytesPerRow (${bytesPerRow}) must be a multiple of 256, offset (${srcOffset}) of 16`,
      );
    }
    if (width === 0 || height === 0) return;
    this.outsidePass().copyBufferToTexture(
      { buffer: src, offset: srcOffset, bytesPerRow, rowsPerImage: height },
      { texture: tex, origin: { x, y } },
      { width, height },
    );
    this.totalBoundBytes += 2 * width * height * 16;
    this.totalCopies++;
    this.dispatchesInBatch++;
  }

  // ---- pipelines and dispatch ----

  /** Compiles (once per key) a compute pipeline with the given bindings and optional uniform. */
  pipeline(key: string, code: () => string, access: BindingKind[], hasUniform: boolean): PipelineEntry {
    let p = this.pipelines.get(key);
    if (p) return p;
    const entries: GPUBindGroupLayoutEntry[] = access.map((a, i) => {
      const e: GPUBindGroupLayoutEntry = { binding: i, visibility: GPUShaderStage.COMPUTE };
      if (a === "texture") e.texture = { sampleType: "unfilterable-float" };
      else if (a === "storage-texture") {
        e.storageTexture = { access: "write-only", format: TEXTURE_FORMAT };
      } else e.buffer = { type: a === "read" ? "read-only-storage" : "storage" };
      return e;
    });
    if (hasUniform) {
      entries.push({
        binding: access.length,
        visibility: GPUShaderStage.COMPUTE,
        // A dynamic offset: one bind group serves every dispatch over the same buffers.
        buffer: { type: "uniform", hasDynamicOffset: true },
      });
    }
    const src = withF16Directive(code(), key, this.device);
    this.device.pushErrorScope("validation");
    const module = this.device.createShaderModule({ code: src, label: key });
    const layout = this.device.createBindGroupLayout({ entries, label: key });
    const pipeline = this.device.createComputePipeline({
      layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: "main" },
      label: key,
    });
    this.device.popErrorScope().then((err) => {
      if (err) this.pendingError ??= new Error(`kernel ${key} failed to compile: ${err.message}\n${src}`);
    });
    p = { pipeline, layout, family: key.split("|")[0], groups: new Map() };
    this.pipelines.set(key, p);
    return p;
  }

  /** Splits a workgroup count into a grid that fits the per-dimension limit. */
  grid(workgroups: number): [number, number, number] {
    const max = this.maxWorkgroups;
    if (workgroups <= max) return [Math.max(1, workgroups), 1, 1];
    const y = Math.ceil(workgroups / max);
    if (y > max) throw new Error(`dispatch of ${workgroups} workgroups is too large`);
    return [Math.ceil(workgroups / y), y, 1];
  }

  /**
   * Records one dispatch. `uniform` is copied into the batch's uniform arena (written once at submit).
   * A buffer must not be bound twice in one dispatch as both input and output.
   */
  dispatch(
    key: string,
    code: () => string,
    bindings: Binding[],
    uniform: ArrayBufferView | null,
    workgroups: [number, number, number],
  ): void {
    const p = this.pipelines.get(key) ??
      this.pipeline(key, code, bindings.map(bindingKind), uniform !== null);
    const usize = uniform ? Math.ceil(uniform.byteLength / 16) * 16 : 0;
    // Bind groups are cached by the resources they bind (the uniform's slice is a dynamic offset).
    let gkey = `${usize}`;
    for (const b of bindings) {
      const r = "buffer" in b ? b.buffer : "texture" in b ? b.texture : b.storageTexture;
      if ("buffer" in b) this.totalBoundBytes += b.buffer.size;
      let id = this.resourceIds.get(r);
      if (id === undefined) this.resourceIds.set(r, id = this.nextResourceId++);
      gkey += `,${id}`;
    }
    let bindGroup = p.groups.get(gkey);
    if (!bindGroup) {
      const entries: GPUBindGroupEntry[] = bindings.map((b, i) => ({
        binding: i,
        resource: "buffer" in b ? { buffer: b.buffer } : "texture" in b ? b.texture : b.storageTexture,
      }));
      if (uniform) {
        entries.push({ binding: bindings.length, resource: { buffer: this.arena!, offset: 0, size: usize } });
      }
      bindGroup = this.device.createBindGroup({ layout: p.layout, entries });
      if (this.bindGroupCount >= BIND_GROUP_CACHE) this.clearBindGroups();
      p.groups.set(gkey, bindGroup);
      this.bindGroupCount++;
    }
    let off = 0;
    if (uniform) {
      if (this.arenaUsed + usize > UNIFORM_ARENA_BYTES) this.flush();
      off = this.arenaUsed;
      new Uint8Array(this.arenaData, off, uniform.byteLength).set(
        new Uint8Array(uniform.buffer, uniform.byteOffset, uniform.byteLength),
      );
      this.arenaUsed = Math.ceil((off + usize) / this.uniformAlign) * this.uniformAlign;
    }
    if (!this.encoder) this.encoder = this.device.createCommandEncoder();
    const t = this.timing;
    if (t) {
      // One pass per dispatch, its begin and end time stamped (passes end anyway at copies and submits).
      this.pass?.end();
      const slot = t.families.length;
      t.families.push(t.byKey ? `${key} [${workgroups}]` : p.family);
      this.pass = this.encoder.beginComputePass({
        timestampWrites: {
          querySet: t.querySet,
          beginningOfPassWriteIndex: 2 * slot,
          endOfPassWriteIndex: 2 * slot + 1,
        },
      });
    }
    if (!this.pass) this.pass = this.encoder.beginComputePass();
    this.pass.setPipeline(p.pipeline);
    if (uniform) this.pass.setBindGroup(0, bindGroup, [off]);
    else this.pass.setBindGroup(0, bindGroup);
    this.pass.dispatchWorkgroups(workgroups[0], workgroups[1], workgroups[2]);
    if (t) {
      this.pass.end();
      this.pass = null;
    }
    this.kernelsInBatch.add(p.family);
    if (this.dispatchCounts) this.dispatchCounts.set(p.family, (this.dispatchCounts.get(p.family) ?? 0) + 1);
    this.dispatchesInBatch++;
    this.totalDispatches++;
    if (this.dispatchesInBatch >= SUBMIT_EVERY) this.flush();
  }

  /** Forgets every cached bind group (they may name buffers that are about to be destroyed). */
  private clearBindGroups(): void {
    for (const p of this.pipelines.values()) p.groups.clear();
    this.bindGroupCount = 0;
  }

  /** The open command encoder, with no compute pass open (copies and clears are recorded outside passes). */
  private outsidePass(): GPUCommandEncoder {
    if (!this.encoder) this.encoder = this.device.createCommandEncoder();
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
    return this.encoder;
  }

  /** Records a buffer-to-buffer copy. */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    this.outsidePass().copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
    this.totalBoundBytes += 2 * bytes;
    this.totalCopies++;
    this.dispatchesInBatch++;
  }

  /** Records zeroing the first `bytes` (a multiple of 4) of a buffer: no kernel. */
  clear(buffer: GPUBuffer, bytes: number): void {
    this.outsidePass().clearBuffer(buffer, 0, bytes);
    this.totalBoundBytes += bytes;
    this.totalCopies++;
    this.dispatchesInBatch++;
  }

  /** Submits everything recorded so far; released buffers become reusable. */
  flush(): void {
    if (this.encoder) {
      if (this.pass) this.pass.end();
      this.pass = null;
      if (this.arenaUsed > 0) {
        this.device.queue.writeBuffer(this.arena!, 0, this.arenaData, 0, this.arenaUsed);
      }
      if (this.timing && this.timing.families.length > 0) this.resolveTimestamps(this.encoder, this.timing);
      this.device.queue.submit([this.encoder.finish()]);
      this.totalSubmits++;
      this.encoder = null;
    }
    this.arenaUsed = 0;
    this.dispatchesInBatch = 0;
    this.kernelsInBatch.clear();
    for (const b of this.releasedSinceSubmit) {
      let list = this.free.get(b.size);
      if (!list) this.free.set(b.size, list = []);
      list.push(b);
      this.pooledBuffers++;
    }
    this.releasedSinceSubmit.length = 0;
    for (const t of this.texturesReleasedSinceSubmit) {
      const key = `${t.width}x${t.height}`;
      let list = this.freeTextures.get(key);
      if (!list) this.freeTextures.set(key, list = []);
      list.push(t);
      this.pooledTextures++;
    }
    this.texturesReleasedSinceSubmit.length = 0;
    this.textureBytesSinceSubmit = 0;
  }

  private staging: GPUBuffer[] = [];

  /**
   * From now until stopTiming(), every dispatch is timed on the GPU (timestamp-query): one compute pass
   * per dispatch, so batching is lost and the totals are for comparing kernel families, not iterations.
   * `byKey` totals by pipeline key and workgroup grid instead, to find the costly shapes.
   */
  startTiming(byKey = false): void {
    if (!this.device.features.has("timestamp-query")) {
      throw new Error("this adapter has no timestamp-query: kernel timing is not available here");
    }
    if (this.timing) throw new Error("kernel timing is already running");
    this.flush();
    const querySet = this.device.createQuerySet({ type: "timestamp", count: 2 * SUBMIT_EVERY });
    this.timing = { querySet, byKey, families: [], pending: [] };
  }

  /** Ends kernel timing: per kernel family, its dispatches and their summed GPU milliseconds. */
  async stopTiming(): Promise<Map<string, { dispatches: number; ms: number }>> {
    const t = this.timing;
    if (!t) throw new Error("kernel timing is not running: startTiming() first");
    this.flush();
    this.timing = null;
    const out = new Map<string, { dispatches: number; ms: number }>();
    for (const { buffer, resolved, families } of t.pending) {
      await buffer.mapAsync(GPUMapMode.READ);
      const stamps = new BigUint64Array(buffer.getMappedRange());
      families.forEach((f, i) => {
        const e = out.get(f) ?? { dispatches: 0, ms: 0 };
        e.dispatches++;
        // Stamps are nanoseconds; an end before its begin (a reset counter) counts as zero.
        if (stamps[2 * i + 1] > stamps[2 * i]) e.ms += Number(stamps[2 * i + 1] - stamps[2 * i]) / 1e6;
        out.set(f, e);
      });
      buffer.destroy();
      resolved.destroy();
    }
    t.querySet.destroy();
    this.checkError();
    return out;
  }

  /** Resolves this batch's timestamps into a readable buffer (read by stopTiming). */
  private resolveTimestamps(encoder: GPUCommandEncoder, t: KernelTiming): void {
    const bytes = 16 * t.families.length;
    const resolved = this.device.createBuffer({
      size: bytes,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
    const readable = this.device.createBuffer({
      size: bytes,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    encoder.resolveQuerySet(t.querySet, 0, 2 * t.families.length, resolved, 0);
    encoder.copyBufferToBuffer(resolved, 0, readable, 0, bytes);
    t.pending.push({ buffer: readable, resolved, families: t.families });
    t.families = [];
  }

  /** Reads `bytes` from a buffer; the only place the host waits on the GPU. */
  async read(src: GPUBuffer, bytes: number, offset = 0): Promise<ArrayBuffer> {
    const size = Math.max(16, Math.ceil(bytes / 16) * 16);
    const idx = this.staging.findIndex((s) => s.size >= size && s.size <= 4 * size);
    const st = idx >= 0 ? this.staging.splice(idx, 1)[0] : this.device.createBuffer({
      size,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    this.copy(src, offset, st, 0, Math.ceil(bytes / 4) * 4);
    this.flush();
    try {
      await st.mapAsync(GPUMapMode.READ);
    } catch (e) {
      this.checkError();
      throw e;
    }
    this.checkError();
    const out = st.getMappedRange(0, Math.ceil(bytes / 4) * 4).slice(0, bytes);
    st.unmap();
    this.staging.push(st);
    if (this.staging.length > 8) this.staging.shift()!.destroy();
    return out;
  }

  private f16Probe: Promise<F16Probe> | null = null;

  /**
   * Whether f16 shaders can be trusted here: the adapter offers shader-f16 AND a known-answer kernel
   * (f16 storage loads, f32 <-> f16 conversion rounding, f16 multiply and add) gives the exact answers.
   * Run once per device; never throws.
   */
  probeShaderF16(): Promise<F16Probe> {
    this.f16Probe ??= this.runF16Probe();
    return this.f16Probe;
  }

  private async runF16Probe(): Promise<F16Probe> {
    if (!this.device.features.has("shader-f16")) {
      return { offered: false, ok: false, detail: "the adapter does not offer shader-f16" };
    }
    // f16 inputs 0.1 (stored as 0.0999755859375), 1.5, 1.25, 2048, 2.5; f32 inputs 1/3 and 65519.
    const halves = new Uint16Array([0x2e66, 0x3e00, 0x3d00, 0x6800, 0x4100, 0, 0, 0]);
    const floats = new Float32Array([1 / 3, 65519, 0, 0]);
    // 1.5 * 1.25 = 1.875 exactly; 2048 + 2.5 rounds to 2050 (f16 spacing is 2 there); f16(1/3) is
    // 0.333251953125; 65519 rounds down to 65504, the largest f16.
    const expected = [0.0999755859375, 1.875, 2050, 0.333251953125, 65504];
    const code = () =>
      `enable f16;
@group(0) @binding(0) var<storage, read> h: array<f16>;
@group(0) @binding(1) var<storage, read> f: array<f32>;
@group(0) @binding(2) var<storage, read_write> o: array<f32>;
@compute @workgroup_size(1) fn main() {
  o[0] = f32(h[0]);
  o[1] = f32(h[1] * h[2]);
  o[2] = f32(h[3] + h[4]);
  o[3] = f32(f16(f[0]));
  o[4] = f32(f16(f[1]));
}`;
    const bufs = [this.alloc(halves.byteLength), this.alloc(floats.byteLength), this.alloc(32)];
    try {
      this.upload(bufs[0], halves);
      this.upload(bufs[1], floats);
      this.dispatch(
        "probe_f16",
        code,
        [{ buffer: bufs[0] }, { buffer: bufs[1] }, { buffer: bufs[2], write: true }],
        null,
        [
          1,
          1,
          1,
        ],
      );
      const got = Array.from(new Float32Array(await this.read(bufs[2], 4 * expected.length)));
      const bad = got.findIndex((v, i) => v !== expected[i]);
      if (bad >= 0) {
        return {
          offered: true,
          ok: false,
          detail: `known-answer kernel gave [${got}], expected [${expected}] (first wrong: #${bad})`,
        };
      }
      return { offered: true, ok: true, detail: "known-answer kernel exact" };
    } catch (e) {
      return { offered: true, ok: false, detail: `known-answer kernel failed: ${(e as Error).message}` };
    } finally {
      for (const b of bufs) this.release(b);
    }
  }

  /** Waits until the GPU has finished all submitted work (benchmarks use this). */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.checkError();
  }
}

/**
 * WGSL of a kernel that uses f16 types gets the `enable f16;` directive at its top: directives must
 * precede every declaration, and f16 bindings come from several places (elementwise operands, prologues
 * pasted into a consumer, GEMM outputs), so it is added here once. Without shader-f16 on the device such
 * a kernel is a clear error instead of a compile failure.
 */
function withF16Directive(src: string, key: string, device: GPUDevice): string {
  if (!/\bf16\b/.test(src) || /^\s*enable f16;/.test(src)) return src;
  if (!device.features.has("shader-f16")) {
    throw new Error(`kernel ${key} uses f16, but this device has no shader-f16 (use f32 tensors here)`);
  }
  return `enable f16;\n${src}`;
}

/** State of Runtime.startTiming(): the query set of the open batch and the batches waiting to be read. */
interface KernelTiming {
  querySet: GPUQuerySet;
  /** Totals by the whole pipeline key and grid instead of by family (to find the costly shapes). */
  byKey: boolean;
  /** Kernel family of each timed dispatch in the open batch (query slots 2i and 2i + 1). */
  families: string[];
  pending: { buffer: GPUBuffer; resolved: GPUBuffer; families: string[] }[];
}

/** The outcome of Runtime.probeShaderF16(). */
export interface F16Probe {
  /** The adapter offers the shader-f16 feature. */
  offered: boolean;
  /** ...and the known-answer kernel gave exact answers: f16 may be used. */
  ok: boolean;
  detail: string;
}

let runtime: Runtime | null = null;
let initPromise: Promise<Runtime> | null = null;
const initHooks: ((rt: Runtime) => Promise<void>)[] = [];

/** Initialises the runtime (once per process), then runs the afterGpuInit hooks. */
export function initGPU(): Promise<Runtime> {
  initPromise ??= (async () => {
    const r = new Runtime();
    await r.init();
    runtime = r;
    for (const hook of initHooks) await hook(r);
    return r;
  })();
  return initPromise;
}

/**
 * Runs `hook` once the runtime has started (now, if it has), before initGPU() resolves: how the Deno
 * side applies settings that need the adapter (cli/gemm_tiles.ts's tuned tiles) without kernels/
 * reading files.
 */
export async function afterGpuInit(hook: (rt: Runtime) => Promise<void>): Promise<void> {
  if (runtime) await hook(runtime);
  else initHooks.push(hook);
}

/**
 * Whether WebGPU runs on the CPU (lavapipe/llvmpipe, SwiftShader): kernels pick CPU-tuned tiles and
 * workgroup sizes there (a barrier costs a coroutine switch per SIMD group on llvmpipe).
 */
export function onCpuAdapter(): boolean {
  if (!runtime) return true; // not initialised (host-side planning): assume the CPU adapter
  const info = runtime.info;
  return info.isFallbackAdapter ||
    /llvmpipe|lavapipe|swiftshader/i.test(`${info.description} ${info.vendor}`);
}

/** The runtime; tensor ops are synchronous, so `await initGPU()` must have run first. */
export function gpu(): Runtime {
  if (!runtime) {
    throw new Error("the GPU runtime is not initialised: `await initGPU()` (or `await ready()`) first");
  }
  return runtime;
}

export type { Runtime };
