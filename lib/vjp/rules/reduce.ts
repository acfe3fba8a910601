/**
 * VJP rules of reductions and softmax.
 *
 * @module
 */
import { attrInt, attrInts, numel } from "../_graph.ts";
import { normAxis, type RuleContext, type VjpRule } from "./_rule.ts";

/** Reduced axes of a Reduce* node (attribute before opset 18, input after; ReduceSum 13). */
function reducedAxes(ctx: RuleContext): number[] {
  const rank = ctx.shape(ctx.node.input![0]).length;
  const axes = attrInts(ctx.node, "axes") ??
    (ctx.node.input![1] ? ctx.values(ctx.node.input![1]) : []);
  if (axes.length === 0) {
    if (attrInt(ctx.node, "noop_with_empty_axes", 0) === 1) return [];
    return Array.from({ length: rank }, (_, i) => i);
  }
  return axes.map((a) => normAxis(a, rank)).sort((a, b) => a - b);
}

/** Shape of the input with reduced axes set to 1. */
function keptShape(ctx: RuleContext, axes: number[]): number[] {
  return ctx.shape(ctx.node.input![0]).map((d, i) => (axes.includes(i) ? 1 : d));
}

/** A reduced value (cotangent or output) broadcast back to the input's shape. */
function spread(ctx: RuleContext, v: string, axes: number[]): string {
  const { b } = ctx;
  const x = ctx.node.input![0];
  return b.op("Expand", [b.reshape(v, keptShape(ctx, axes)), b.int64(ctx.shape(x))]);
}

/** `gx = spread(gy) · f(x, y_kept)`. */
function reduction(
  weight: (ctx: RuleContext, axes: number[], gSpread: string) => string,
): VjpRule {
  return (ctx) => {
    const axes = reducedAxes(ctx);
    const g = spread(ctx, ctx.gy[0]!, axes);
    return [weight(ctx, axes, g), null];
  };
}

function softmaxAxis(ctx: RuleContext): number {
  const rank = ctx.shape(ctx.node.input![0]).length;
  return normAxis(attrInt(ctx.node, "axis", -1), rank);
}

/** Rules of reductions and (log-)softmax, by op type. */
export const reduceRules: Record<string, VjpRule> = {
  ReduceSum: reduction((_ctx, _axes, g) => g),
  ReduceMean: reduction((ctx, axes, g) => {
    const x = ctx.node.input![0];
    const n = numel(axes.map((a) => ctx.shape(x)[a]));
    return ctx.b.op("Mul", [g, ctx.b.scalar(1 / n, ctx.dtype(x))]);
  }),
  ReduceSumSquare: reduction((ctx, _axes, g) => {
    const x = ctx.node.input![0];
    return ctx.b.op("Mul", [g, ctx.b.op("Mul", [x, ctx.b.scalar(2, ctx.dtype(x))])]);
  }),
  ReduceL2: reduction((ctx, axes, g) => {
    const x = ctx.node.input![0];
    const y = spread(ctx, ctx.node.output![0], axes);
    return ctx.b.op("Mul", [g, ctx.b.op("Div", [x, y])]);
  }),
  ReduceLogSumExp: reduction((ctx, axes, g) => {
    const x = ctx.node.input![0];
    const y = spread(ctx, ctx.node.output![0], axes);
    return ctx.b.op("Mul", [g, ctx.b.op("Exp", [ctx.b.op("Sub", [x, y])])]);
  }),
  ReduceMax: reduction(argExtremum),
  ReduceMin: reduction(argExtremum),
  Softmax: (ctx) => {
    const { b } = ctx;
    const y = ctx.node.output![0];
    const g = ctx.gy[0]!;
    const s = b.reduceSum(b.op("Mul", [g, y]), [softmaxAxis(ctx)], true);
    return [b.op("Mul", [y, b.op("Sub", [g, s])])];
  },
  LogSoftmax: (ctx) => {
    const { b } = ctx;
    const y = ctx.node.output![0];
    const g = ctx.gy[0]!;
    const s = b.reduceSum(g, [softmaxAxis(ctx)], true);
    return [b.op("Sub", [g, b.op("Mul", [b.op("Exp", [y]), s])])];
  },
};

/** ReduceMax/ReduceMin: the cotangent goes to the entries equal to the extremum. */
function argExtremum(ctx: RuleContext, axes: number[], g: string): string {
  const { b } = ctx;
  const x = ctx.node.input![0];
  const y = spread(ctx, ctx.node.output![0], axes);
  return b.op("Where", [b.op("Equal", [x, y]), g, b.scalar(0, ctx.dtype(x))]);
}
