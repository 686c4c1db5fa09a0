// `deno run -A bench/dispatch_overhead.ts [N]`: host cost of one small dispatch through the runtime
// (pipeline lookup, uniform arena, bind group, batching) against raw WebGPU recording the same kernel
// with one pre-made bind group in one pass, in the same run. Both record N dispatches of a one-workgroup
// kernel, submit every 48 as the runtime does, and wait once; reported as microseconds per dispatch.

import { gpu, initGPU } from "../kernels/runtime.ts";
import { elementwise } from "../kernels/elementwise.ts";

const N = Number(Deno.args[0] ?? 4000);
await initGPU();
const rt = gpu();
const dev = rt.device;
const a = rt.alloc(256 * 4), b = rt.alloc(256 * 4);

function viaRuntime(): void {
  for (let i = 0; i < N; i++) {
    const [src, dst] = i % 2 ? [a, b] : [b, a];
    elementwise({
      name: "overhead",
      expr: "in0 * p0",
      inputs: [{ buffer: src, dtype: "f32", strides: [1], offset: 0 }],
      out: { buffer: dst, dtype: "f32", strides: [1], offset: 0 },
      shape: [256],
      scalars: [1.0001],
    });
  }
}

const module = dev.createShaderModule({
  code: `@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(256) fn main(@builtin(global_invocation_id) g: vec3<u32>) { y[g.x] = x[g.x] * 1.0001; }`,
});
const pipeline = dev.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } });
const groups = [[b, a], [a, b]].map(([x, y]) =>
  dev.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [{ binding: 0, resource: { buffer: x } }, { binding: 1, resource: { buffer: y } }],
  })
);
function raw(): void {
  for (let i = 0; i < N; i += 48) {
    const enc = dev.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipeline);
    for (let j = i; j < Math.min(i + 48, N); j++) {
      pass.setBindGroup(0, groups[j % 2]);
      pass.dispatchWorkgroups(1);
    }
    pass.end();
    dev.queue.submit([enc.finish()]);
  }
}

async function time(fn: () => void): Promise<number> {
  fn(); // warm: pipelines compiled, caches filled
  await rt.sync();
  let best = Infinity;
  for (let rep = 0; rep < 3; rep++) {
    const t0 = performance.now();
    fn();
    await rt.sync();
    best = Math.min(best, performance.now() - t0);
  }
  return (best / N) * 1000;
}

const tRaw = await time(raw), tRt = await time(viaRuntime);
console.log(
  `adapter: ${rt.info.description}; load ${
    Deno.loadavg()[0].toFixed(1)
  } on ${navigator.hardwareConcurrency} cores`,
);
console.log(
  `raw WebGPU: ${tRaw.toFixed(1)} us/dispatch; runtime (elementwise): ${tRt.toFixed(1)} us/dispatch; ` +
    `runtime overhead ${(tRt - tRaw).toFixed(1)} us/dispatch (${(tRt / tRaw).toFixed(2)}x)`,
);
