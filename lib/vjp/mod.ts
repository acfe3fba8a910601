/**
 * Reverse-mode differentiation of ONNX models: build vector–Jacobian-product models that
 * ONNX Runtime runs like any other model.
 *
 * @module
 */
export * from "./build_vjp_model.ts";
export * from "./vjp_session.ts";
export { CACHE_DIR_VARIABLE, vjpCacheDir } from "./cache.ts";
export { vjpRules } from "./rules/mod.ts";
export type { RuleContext, VjpRule } from "./rules/mod.ts";
export type { AttrValue, GraphBuilder } from "./_graph.ts";
