// The public API: tensors, ops, autograd, modules, optimisers and file formats.

export { gpu, initGPU } from "./kernels/runtime.ts";
export { keep, scope, scopeAsync, Tensor } from "./nn/tensor.ts";
export type { DType, Shape } from "./nn/tensor.ts";
export {
  arange,
  full,
  Generator,
  manualSeed,
  ones,
  onesLike,
  rand,
  randint,
  randn,
  scalar,
  tensor,
  zeros,
  zerosLike,
} from "./nn/creation.ts";
export {
  abs,
  add,
  axpby,
  cast,
  clamp,
  detach,
  div,
  equal,
  exp,
  greater,
  isFiniteMask,
  leakyRelu,
  lerp,
  less,
  log,
  maximum,
  minimum,
  mul,
  neg,
  pow,
  reciprocal,
  relu,
  rsqrt,
  sigmoid,
  sign,
  softplus,
  sqrt,
  square,
  sub,
  tanh,
  where,
} from "./nn/ops.ts";
export { max, mean, min, sum, variance } from "./nn/reduce.ts";
export {
  broadcastTo,
  concat,
  flatten,
  flip,
  narrow,
  pad,
  permute,
  reshape,
  slice,
  squeeze,
  stack,
  sumTo,
  transpose,
  unsqueeze,
} from "./nn/shape.ts";
export { matmul, matmulT } from "./nn/linalg.ts";
export { conv2d, conv2dTranspose } from "./nn/conv.ts";
export type { Conv2dOptions } from "./nn/conv.ts";
export { backward, grad, noGrad } from "./nn/autograd.ts";
export { downsample2d, filter2d, setupFilter, upfirdn2d, upsample2d } from "./nn/upfirdn2d.ts";
export { biasAct } from "./nn/bias_act.ts";
export { conv2dResample, modulatedConv2d } from "./nn/modulated_conv.ts";
export { minibatchStd } from "./nn/mbstd.ts";
export { copyInto, Module } from "./nn/module.ts";
export { Act, activate, BatchNorm, Linear, oneHot, Sequential } from "./nn/layers.ts";
export { Adam, SGD } from "./nn/optim.ts";
export { loadNpy, loadNpz, loadSafetensors, saveNpy, saveNpz, saveSafetensors } from "./nn/checkpoint.ts";

/** Initialises the GPU runtime; call once before using tensors. */
export async function ready(): Promise<void> {
  const { initGPU } = await import("./kernels/runtime.ts");
  await initGPU();
}
