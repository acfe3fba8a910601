/**
 * VJP rule of Resize (nearest and linear modes). Both are separable linear maps, so each
 * resized axis is an interpolation matrix and the cotangent goes back through its transpose.
 *
 * @module
 */
import { attrInts, attrString, DataType } from "../_graph.ts";
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

/**
 * The integer factor `s` when `m` (`inLen × outLen`) is nearest upsampling that copies each
 * input index to a contiguous block of `s` outputs; 0 otherwise.
 */
function blockFactor(m: Float64Array, inLen: number, outLen: number): number {
  const s = outLen / inLen;
  if (!Number.isInteger(s) || s < 1) return 0;
  for (let k = 0; k < m.length; k++) {
    const expected = Math.floor((k % outLen) / s) === Math.floor(k / outLen) ? 1 : 0;
    if (m[k] !== expected) return 0;
  }
  return s;
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
  const resized: number[] = [];
  for (let ax = 0; ax < rank; ax++) {
    if (!(inShape[ax] === outShape[ax] && scaleOf(ax) === 1)) resized.push(ax);
  }
  const dt = ctx.dtype(x);
  const matrices = resized.map((ax) => axisMatrix(ctx, inShape[ax], outShape[ax], scaleOf(ax)));
  const factors = resized.map((ax, k) => blockFactor(matrices[k], inShape[ax], outShape[ax]));
  const pooling = rank >= 3 && dt === DataType.FLOAT;
  if (pooling && resized.length > 0 && resized.every((ax) => ax >= 2) && !factors.includes(0)) {
    // nearest upsampling by integer factors of spatial axes: the adjoint sums each block,
    // which is one pooling kernel (far faster in ONNX Runtime than a strided ReduceSum)
    const kernel = inShape.slice(2).map((_, i) => {
      const k = resized.indexOf(i + 2);
      return k < 0 ? 1 : factors[k];
    });
    const pooled = ctx.b.op("AveragePool", [ctx.gy[0]!], { kernel_shape: kernel, strides: kernel });
    const n = kernel.reduce((a, f) => a * f, 1);
    return [ctx.b.op("Mul", [pooled, ctx.b.scalar(n, dt)]), null, null, null];
  }
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
