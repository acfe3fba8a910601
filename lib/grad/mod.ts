/**
 * Gradients for LD3: reverse mode through solver plans (`backprop.ts`) and differentiable ONNX
 * denoisers and decoders (`model_grad.ts`), whose vector–Jacobian products come from the VJP
 * graphs of `lib/vjp/`.
 *
 * @module
 */
export * from "./backprop.ts";
export * from "./model_grad.ts";
