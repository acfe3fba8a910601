/**
 * VJP rules of normalisation layers. Statistics are recomputed in the backward graph (ONNX
 * Runtime does not expose them), then the usual formula applies:
 * `gx = (g − mean(g) − x̂ · mean(g x̂)) / σ` with `g` the cotangent times the scale.
 *
 * @module
 */
import { attrFloat, attrInt, numel } from "../_graph.ts";
import { normAxis, type RuleContext, type VjpRule } from "./_rule.ts";

/** Normalised value `x̂` and `1/σ` of `x` (shape `shape`) over `axes`. */
function standardize(
  ctx: RuleContext,
  x: string,
  shape: number[],
  axes: number[],
  eps: number,
  dt: number,
): { xhat: string; inv: string } {
  const { b } = ctx;
  const xc = b.op("Sub", [x, b.reduceMean(x, shape, axes, dt)]);
  const variance = b.reduceMean(b.op("Mul", [xc, xc]), shape, axes, dt);
  const inv = b.op("Reciprocal", [b.op("Sqrt", [b.op("Add", [variance, b.scalar(eps, dt)])])]);
  return { xhat: b.op("Mul", [xc, inv]), inv };
}

/** `(gs − mean(gs) − x̂ · mean(gs x̂)) / σ`. */
function normBackward(
  ctx: RuleContext,
  gs: string,
  xhat: string,
  inv: string,
  shape: number[],
  axes: number[],
  dt: number,
): string {
  const { b } = ctx;
  const m1 = b.reduceMean(gs, shape, axes, dt);
  const m2 = b.reduceMean(b.op("Mul", [gs, xhat]), shape, axes, dt);
  const centred = b.op("Sub", [b.op("Sub", [gs, m1]), b.op("Mul", [xhat, m2])]);
  return b.op("Mul", [centred, inv]);
}

const instanceNorm: VjpRule = (ctx) => {
  const { b } = ctx;
  const [x, scale] = ctx.node.input!;
  const shape = ctx.shape(x);
  const dt = ctx.dtype(x);
  const axes = shape.slice(2).map((_, i) => i + 2);
  const eps = attrFloat(ctx.node, "epsilon", 1e-5);
  const g = ctx.gy[0]!;
  const chanShape = shape.map((d, i) => (i === 1 ? d : 1));
  const { xhat, inv } = standardize(ctx, x, shape, axes, eps, dt);
  const out: (string | null)[] = [null, null, null];
  if (ctx.needs[0]) {
    const gs = b.op("Mul", [g, b.reshape(scale, chanShape)]);
    out[0] = normBackward(ctx, gs, xhat, inv, shape, axes, dt);
  }
  if (ctx.needs[1]) out[1] = b.reduceSum(b.op("Mul", [g, xhat]), [0, ...axes], false);
  if (ctx.needs[2]) out[2] = b.reduceSum(g, [0, ...axes], false);
  return out;
};

const layerNorm: VjpRule = (ctx) => {
  const { b } = ctx;
  const [x, scale, bias] = ctx.node.input!;
  const shape = ctx.shape(x);
  const dt = ctx.dtype(x);
  const axis = normAxis(attrInt(ctx.node, "axis", -1), shape.length);
  const axes = shape.slice(axis).map((_, i) => i + axis);
  const eps = attrFloat(ctx.node, "epsilon", 1e-5);
  const g = ctx.gy[0]!;
  const { xhat, inv } = standardize(ctx, x, shape, axes, eps, dt);
  const out: (string | null)[] = [null, null, null];
  if (ctx.needs[0]) {
    out[0] = normBackward(ctx, b.op("Mul", [g, scale]), xhat, inv, shape, axes, dt);
  }
  if (ctx.needs[1]) out[1] = b.unbroadcast(b.op("Mul", [g, xhat]), shape, ctx.shape(scale));
  if (bias && ctx.needs[2]) out[2] = b.unbroadcast(g, shape, ctx.shape(bias));
  return out;
};

const groupNorm: VjpRule = (ctx) => {
  const { b } = ctx;
  const [x, scale, bias] = ctx.node.input!;
  const shape = ctx.shape(x);
  const dt = ctx.dtype(x);
  const groups = attrInt(ctx.node, "num_groups", 1);
  const eps = attrFloat(ctx.node, "epsilon", 1e-5);
  const c = shape[1];
  // group layout [N, G, C/G, S]
  const gshape = [shape[0], groups, c / groups, numel(shape.slice(2))];
  const axes = [2, 3];
  const xg = b.reshape(x, gshape);
  const gg = b.reshape(ctx.gy[0]!, gshape);
  const perChannel = ctx.shape(scale)[0] === c && !(c === groups && ctx.opset < 21);
  const scaleShape = perChannel ? [1, groups, c / groups, 1] : [1, groups, 1, 1];
  const { xhat, inv } = standardize(ctx, xg, gshape, axes, eps, dt);
  const out: (string | null)[] = [null, null, null];
  if (ctx.needs[0]) {
    const gs = b.op("Mul", [gg, b.reshape(scale, scaleShape)]);
    out[0] = b.reshape(normBackward(ctx, gs, xhat, inv, gshape, axes, dt), shape);
  }
  if (ctx.needs[1]) {
    out[1] = b.reshape(
      b.unbroadcast(b.op("Mul", [gg, xhat]), gshape, scaleShape),
      ctx.shape(scale),
    );
  }
  if (bias && ctx.needs[2]) {
    out[2] = b.reshape(b.unbroadcast(gg, gshape, scaleShape), ctx.shape(bias));
  }
  return out;
};

const batchNorm: VjpRule = (ctx) => {
  const { b } = ctx;
  const [x, scale, , , variance] = ctx.node.input!;
  if (attrInt(ctx.node, "training_mode", 0) === 1) {
    throw new RangeError(
      `Unsupported BatchNormalization in training mode at node "${ctx.node.name}": training_mode 1`,
    );
  }
  const shape = ctx.shape(x);
  const dt = ctx.dtype(x);
  const eps = attrFloat(ctx.node, "epsilon", 1e-5);
  const chanShape = shape.map((d, i) => (i === 1 ? d : 1));
  const inv = b.op("Reciprocal", [b.op("Sqrt", [b.op("Add", [variance, b.scalar(eps, dt)])])]);
  const factor = b.reshape(b.op("Mul", [scale, inv]), chanShape);
  return [ctx.needs[0] ? b.op("Mul", [ctx.gy[0]!, factor]) : null, null, null, null, null];
};

/** Rules of normalisation ops, by op type. */
export const normRules: Record<string, VjpRule> = {
  InstanceNormalization: instanceNorm,
  LayerNormalization: layerNorm,
  GroupNormalization: groupNorm,
  BatchNormalization: batchNorm,
};
