// The training engine: graph builder, ops with their VJPs, autodiff, optimizers, ONNX export, runtime.
export { grad } from "./autodiff.js";
export { matmulFlops } from "./flops.js";
export * from "./graph.js";
export { EXTERNAL_DATA_BYTES, ExternalWeights, initializerBytes, toOnnx } from "./onnx.js";
export * from "./ops.js";
export * from "./optim.js";
export * from "./profile.js";
export * from "./runtime.js";
