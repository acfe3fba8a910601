/**
 * VJP rules of normalisation layers. The usual formula applies:
 * `gx = (g − mean(g) − x̂ · mean(g x̂)) / σ` with `g` the cotangent times the scale. The
 * normalised `x̂` and `1/σ` come from the forward part where possible: InstanceNormalization
 * is expanded into primitives that keep them; otherwise they are recomputed.
 *
 * @module
 */
import { attrFloat, attrInt, numel } from "../_graph.ts";
import {
  type ExpansionContext,
  type ForwardExpansion,
  normAxis,
  type RuleContext,
  type VjpRule,
} from "./_rule.ts";

/** `ReduceMean` (or `ReduceSumSquare`) over the last axis, kept, in the opset's form. */
function reduceLast(
  ctx: ExpansionContext,
  op: "ReduceMean" | "ReduceSumSquare",
  x: string,
): string {
  // axes moved from an attribute to an input at opset 18
  return ctx.opset >= 18
    ? ctx.b.op(op, [x, ctx.b.int64([-1])], { keepdims: 1 })
    : ctx.b.op(op, [x], { axes: [-1], keepdims: 1 });
}

/** Whether `name` is a constant whose every element equals `v`. */
function constantAll(ctx: ExpansionContext, name: string | undefined, v: number): boolean {
  if (!name || !ctx.isConstant(name)) return false;
  let values: number[];
  try {
    values = ctx.values(name);
  } catch {
    return false;
  }
  return values.length > 0 && values.every((u) => u === v);
}

/**
 * InstanceNormalization as primitives over the layout `[N, C, S]`, keeping `x̂` and `1/σ`
 * for the backward pass (which then needs no second pass over `x`). When the affine part
 * is the identity (how PyTorch exports GroupNorm), `x̂` is the output itself.
 */
const expandInstanceNorm: ForwardExpansion = (ctx) => {
  const [x, scale, bias] = ctx.node.input!;
  const y = ctx.node.output![0];
  if (!ctx.needs[0] || !y) return null;
  const { b } = ctx;
  const shape = ctx.shape(x);
  const dt = ctx.dtype(x);
  const s = numel(shape.slice(2));
  const flat = [shape[0], shape[1], s];
  const reshaped = shape.length !== 3;
  const eps = attrFloat(ctx.node, "epsilon", 1e-5);
  const xf = reshaped ? b.reshape(x, flat) : x;
  const xc = b.op("Sub", [xf, reduceLast(ctx, "ReduceMean", xf)]);
  // 1/sqrt(Σxc²/s + ε) = sqrt(s) / sqrt(Σxc² + sε)
  const root = b.op("Sqrt", [
    b.op("Add", [reduceLast(ctx, "ReduceSumSquare", xc), b.scalar(s * eps, dt)]),
  ]);
  const inv = b.op("Div", [b.scalar(Math.sqrt(s), dt), root]);
  const identity = constantAll(ctx, scale, 1) && constantAll(ctx, bias, 0);
  const emit = (opType: string, inputs: string[], output: string) => {
    b.nodes.push({ opType, name: b.fresh(`${opType}_node`), input: inputs, output: [output] });
    return output;
  };
  const xhatName = identity && !reshaped ? y : b.fresh("xhat");
  const xhat = emit("Mul", [xc, inv], xhatName);
  if (!identity) {
    const chan = [shape[1], 1];
    const scaled = b.op("Mul", [xhat, b.reshape(scale, chan)]);
    const affine = emit("Add", [scaled, b.reshape(bias, chan)], reshaped ? b.fresh("affine") : y);
    if (reshaped) emit("Reshape", [affine, b.int64(shape)], y);
  } else if (reshaped) emit("Reshape", [xhat, b.int64(shape)], y);
  return { xhat, inv };
};

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

/** What the normalisation rules read first: operands, the input's shape and type, and ε. */
function normOperands(ctx: RuleContext) {
  const [x, scale, bias] = ctx.node.input!;
  const shape = ctx.shape(x);
  const dt = ctx.dtype(x);
  return { x, scale, bias, shape, dt, eps: attrFloat(ctx.node, "epsilon", 1e-5) };
}

/** Backward of an expanded InstanceNormalization, in the layout `[N, C, S]`. */
const instanceNormSaved: VjpRule = (ctx) => {
  const { b } = ctx;
  const [x, scale] = ctx.node.input!;
  const { xhat, inv } = ctx.saved!;
  const shape = ctx.shape(x);
  const flat = [shape[0], shape[1], numel(shape.slice(2))];
  const g = shape.length === 3 ? ctx.gy[0]! : b.reshape(ctx.gy[0]!, flat);
  const identity = constantAll(ctx, scale, 1);
  const gs = identity ? g : b.op("Mul", [g, b.reshape(scale, [shape[1], 1])]);
  const m1 = reduceLast(ctx, "ReduceMean", gs);
  const m2 = reduceLast(ctx, "ReduceMean", b.op("Mul", [gs, xhat]));
  const centred = b.op("Sub", [b.op("Sub", [gs, m1]), b.op("Mul", [xhat, m2])]);
  const gx = b.op("Mul", [centred, inv]);
  const out: (string | null)[] = [shape.length === 3 ? gx : b.reshape(gx, shape), null, null];
  if (ctx.needs[1]) out[1] = b.reduceSum(b.op("Mul", [g, xhat]), [0, 2], false);
  if (ctx.needs[2]) out[2] = b.reduceSum(g, [0, 2], false);
  return out;
};

const instanceNorm: VjpRule = (ctx) => {
  if (ctx.saved) return instanceNormSaved(ctx);
  const { b } = ctx;
  const { x, scale, shape, dt, eps } = normOperands(ctx);
  const axes = shape.slice(2).map((_, i) => i + 2);
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
  const { x, scale, bias, shape, dt, eps } = normOperands(ctx);
  const axis = normAxis(attrInt(ctx.node, "axis", -1), shape.length);
  const axes = shape.slice(axis).map((_, i) => i + axis);
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
  const { x, scale, bias, shape, dt, eps } = normOperands(ctx);
  const groups = attrInt(ctx.node, "num_groups", 1);
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

/** Forward expansions of normalisation ops, by op type. */
export const normExpansions: Record<string, ForwardExpansion> = {
  InstanceNormalization: expandInstanceNorm,
};
