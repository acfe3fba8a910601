/**
 * Every VJP rule, by ONNX op type (default domain).
 *
 * @module
 */
import type { ForwardExpansion, VjpRule } from "./_rule.ts";
import { convRules } from "./conv.ts";
import { elementwiseRules } from "./elementwise.ts";
import { linalgRules } from "./linalg.ts";
import { normExpansions, normRules } from "./norm.ts";
import { reduceRules } from "./reduce.ts";
import { resizeRules } from "./resize.ts";
import { shapeRules } from "./shape.ts";

export type { ExpansionContext, ForwardExpansion, RuleContext, VjpRule } from "./_rule.ts";

/** The VJP rule of each supported op type. */
export const vjpRules: Readonly<Record<string, VjpRule>> = {
  ...elementwiseRules,
  ...shapeRules,
  ...reduceRules,
  ...linalgRules,
  ...convRules,
  ...normRules,
  ...resizeRules,
};

/** Forward expansions whose intermediates the matching VJP rules reuse, by op type. */
export const forwardExpansions: Readonly<Record<string, ForwardExpansion>> = {
  ...normExpansions,
};
