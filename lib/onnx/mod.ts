/**
 * The ONNX runtime layer: model configs, loading an exported network as a
 * {@linkcode Denoiser}, execution devices, sessions and signatures, external-data weights,
 * building small ONNX graphs, and the config-against-network check.
 *
 * @module
 */
export * from "./config.ts";
export * from "./model.ts";
export * from "./model_check.ts";
export * from "./gmm_onnx.ts";
export * from "./workers.ts";
export type { OnnxSignature, TensorSignature } from "./session.ts";
export type { Dim } from "./build.ts";
