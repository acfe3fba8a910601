/**
 * VJP rule of Resize (nearest and linear modes). Both are separable linear maps, so each
 * resized axis is an interpolation matrix and the cotangent goes back through its transpose.
 *
 * @module
 */
import { attrInts, attrString } from "../_graph.ts";
import { normAxis, type RuleContext, type VjpRule } from "./_rule.ts";

/** Source coordinate of output index `o` (ONNX `coordinate_transformation_mode`). */
function sourceCoordinate(
  mode: string,
  o: number,
  scale: number,
  inLen: number,
  outLen: number,
): number {
  switch (mode) {
    case "half_pixel":
      return (o + 0.5) / scale - 0.5;
    case "pytorch_half_pixel":
      return outLen > 1 ? (o + 0.5) / scale - 0.5 : 0;
    case "align_corners":
      return outLen === 1 ? 0 : (o * (inLen - 1)) / (outLen - 1);
    case "asymmetric":
      return o / scale;
    default:
      throw new RangeError(`Unsupported Resize coordinate_transformation_mode: ${mode}`);
  }
}

function nearestIndex(rule: string, x: number): number {
  switch (rule) {
    case "floor":
      return Math.floor(x);
    case "ceil":
      return Math.ceil(x);
    case "round_prefer_ceil":
      return Math.round(x);
    default:
      // round_prefer_floor: halves go down
      return x - Math.floor(x) === 0.5 ? Math.floor(x) : Math.round(x);
  }
}

/** Interpolation matrix (`inLen × outLen`, row-major) of one axis. */
function axisMatrix(ctx: RuleContext, inLen: number, outLen: number, scale: number): Float64Array {
  const mode = attrString(ctx.node, "mode", "nearest");
  const ctm = attrString(ctx.node, "coordinate_transformation_mode", "half_pixel");
  const m = new Float64Array(inLen * outLen);
  for (let o = 0; o < outLen; o++) {
    const x = sourceCoordinate(ctm, o, scale, inLen, outLen);
    if (mode === "nearest") {
      const rule = attrString(ctx.node, "nearest_mode", "round_prefer_floor");
      const i = Math.min(Math.max(nearestIndex(rule, x), 0), inLen - 1);
      m[i * outLen + o] += 1;
    } else if (mode === "linear") {
      const xc = Math.min(Math.max(x, 0), inLen - 1);
      const i0 = Math.floor(xc);
      const i1 = Math.min(i0 + 1, inLen - 1);
      const t = xc - i0;
      m[i0 * outLen + o] += 1 - t;
      m[i1 * outLen + o] += t;
    } else {
      throw new RangeError(`Unsupported Resize mode at node "${ctx.node.name}": ${mode}`);
    }
  }
  return m;
}

const resize: VjpRule = (ctx) => {
  const [x, , scalesIn] = ctx.node.input!;
  const inShape = ctx.shape(x);
  const rank = inShape.length;
  const outShape = ctx.shape(ctx.node.output![0]);
  const axesAttr = attrInts(ctx.node, "axes")?.map((a) => normAxis(a, rank));
  const scaleVals = scalesIn ? ctx.values(scalesIn) : [];
  const scaleOf = (ax: number): number => {
    if (scaleVals.length === 0) return outShape[ax] / inShape[ax];
    const k = axesAttr ? axesAttr.indexOf(ax) : ax;
    return k < 0 ? 1 : scaleVals[k];
  };
  let g = ctx.gy[0]!;
  const shape = outShape.slice();
  for (let ax = 0; ax < rank; ax++) {
    if (inShape[ax] === outShape[ax] && scaleOf(ax) === 1) continue;
    const m = axisMatrix(ctx, inShape[ax], outShape[ax], scaleOf(ax));
    g = ctx.b.axisMatrix(g, shape, ax, m, inShape[ax], ctx.dtype(x));
    shape[ax] = inShape[ax];
  }
  return [g, null, null, null];
};

/** Rules of resampling ops, by op type. */
export const resizeRules: Record<string, VjpRule> = { Resize: resize };
