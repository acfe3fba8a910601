/**
 * VJP rules of ops that move values around without arithmetic: reshapes, transposes,
 * concatenation, splitting, slicing, gathering, padding, broadcasting.
 *
 * Shapes and index inputs are concrete (the VJP graph is specialised to one set of input
 * shapes), so gathers and strided slices become constant selection matrices.
 *
 * @module
 */
import { attrInt, attrInts, attrString } from "../_graph.ts";
import { normAxis, type RuleContext, type VjpRule } from "./_rule.ts";

/** Cotangent reshaped back to the (only differentiable) first input's shape. */
const reshapeBack: VjpRule = (ctx) => [
  ctx.b.reshape(ctx.gy[0]!, ctx.shape(ctx.node.input![0])),
  null,
];

/** The source index on one axis for each output index, or −1 for a padded position. */
type AxisMap = number[];

/** Adjoint of an axis-wise selection `out[o] = in[map[o]]` (zero where `map[o] < 0`). */
function scatterAxis(
  ctx: RuleContext,
  g: string,
  shape: number[],
  axis: number,
  map: AxisMap,
  inLen: number,
): string {
  const outLen = map.length;
  const m = new Float64Array(inLen * outLen);
  map.forEach((src, o) => {
    if (src >= 0) m[src * outLen + o] += 1;
  });
  return ctx.b.axisMatrix(g, shape, axis, m, inLen, ctx.dtype(ctx.node.output![0]));
}

/** Applies per-axis selections in turn, from the output shape back to the input shape. */
function scatterAxes(
  ctx: RuleContext,
  g: string,
  maps: (AxisMap | null)[],
  inShape: number[],
): string {
  const shape = ctx.shape(ctx.node.output![0]).slice();
  for (let ax = 0; ax < maps.length; ax++) {
    const map = maps[ax];
    if (!map) continue;
    g = scatterAxis(ctx, g, shape, ax, map, inShape[ax]);
    shape[ax] = inShape[ax];
  }
  return g;
}

function padSource(i: number, n: number, mode: string): number {
  if (i >= 0 && i < n) return i;
  if (mode === "constant") return -1;
  if (mode === "edge") return Math.min(Math.max(i, 0), n - 1);
  if (mode === "wrap") return ((i % n) + n) % n;
  // reflect (no edge repeat)
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  let j = ((i % period) + period) % period;
  if (j >= n) j = period - j;
  return j;
}

/** Rules of data-movement ops, by op type. */
export const shapeRules: Record<string, VjpRule> = {
  Reshape: reshapeBack,
  Flatten: reshapeBack,
  Squeeze: reshapeBack,
  Unsqueeze: reshapeBack,
  Expand: (ctx) => [
    ctx.b.unbroadcast(ctx.gy[0]!, ctx.shape(ctx.node.output![0]), ctx.shape(ctx.node.input![0])),
    null,
  ],
  Transpose: (ctx) => {
    const rank = ctx.shape(ctx.node.input![0]).length;
    const perm = attrInts(ctx.node, "perm") ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
    const inv = new Array<number>(rank);
    perm.forEach((p, i) => inv[p] = i);
    return [ctx.b.op("Transpose", [ctx.gy[0]!], { perm: inv })];
  },
  Concat: (ctx) => {
    const rank = ctx.shape(ctx.node.output![0]).length;
    const axis = normAxis(attrInt(ctx.node, "axis", 0), rank);
    let offset = 0;
    return ctx.node.input!.map((x, i) => {
      const len = ctx.shape(x)[axis];
      const start = offset;
      offset += len;
      if (!ctx.needs[i]) return null;
      const { b } = ctx;
      return b.op("Slice", [ctx.gy[0]!, b.int64([start]), b.int64([start + len]), b.int64([axis])]);
    });
  },
  Split: (ctx) => {
    const rank = ctx.shape(ctx.node.input![0]).length;
    const axis = normAxis(attrInt(ctx.node, "axis", 0), rank);
    const parts = ctx.node.output!.map((_, i) => ctx.gyOrZeros(i));
    return [ctx.b.op("Concat", parts, { axis }), null];
  },
  Slice: (ctx) => {
    // ends are implied by the (known) output shape
    const [x, starts, , axesIn, stepsIn] = ctx.node.input!;
    const inShape = ctx.shape(x);
    const rank = inShape.length;
    const st = ctx.values(starts);
    const axes = axesIn ? ctx.values(axesIn).map((a) => normAxis(a, rank)) : st.map((_, i) => i);
    const steps = stepsIn ? ctx.values(stepsIn) : st.map(() => 1);
    const outShape = ctx.shape(ctx.node.output![0]);
    const begin = new Array<number>(rank).fill(0);
    const step = new Array<number>(rank).fill(1);
    axes.forEach((ax, k) => {
      const n = inShape[ax];
      let s = st[k] < 0 ? st[k] + n : st[k];
      s = steps[k] > 0 ? Math.min(Math.max(s, 0), n) : Math.min(Math.max(s, 0), n - 1);
      begin[ax] = s;
      step[ax] = steps[k];
    });
    const { b } = ctx;
    const cut = inShape.map((n, i) => n !== outShape[i]);
    if (step.every((s) => s === 1) && cut.filter((c) => c).length === 1) {
      const axis = cut.indexOf(true);
      return [
        b.padAxis(ctx.gy[0]!, inShape, axis, begin[axis], outShape[axis]),
        null,
        null,
        null,
        null,
      ];
    }
    if (step.every((s) => s === 1)) {
      const pads = [...begin, ...inShape.map((n, i) => n - begin[i] - outShape[i])];
      return [b.op("Pad", [ctx.gy[0]!, b.int64(pads)]), null, null, null, null];
    }
    const maps = inShape.map((_, ax) =>
      step[ax] === 1 && begin[ax] === 0 && outShape[ax] === inShape[ax]
        ? null
        : Array.from({ length: outShape[ax] }, (_, o) => begin[ax] + o * step[ax])
    );
    return [scatterAxes(ctx, ctx.gy[0]!, maps, inShape), null, null, null, null];
  },
  Gather: (ctx) => {
    const [x, indices] = ctx.node.input!;
    const inShape = ctx.shape(x);
    const axis = normAxis(attrInt(ctx.node, "axis", 0), inShape.length);
    const n = inShape[axis];
    const idx = ctx.values(indices).map((i) => (i < 0 ? i + n : i));
    const pre = inShape.slice(0, axis);
    const post = inShape.slice(axis + 1);
    const b = ctx.b;
    // view the cotangent as [pre, M, post] with M = number of indices
    const g = b.reshape(ctx.gy[0]!, [...pre, idx.length, ...post]);
    const flatShape = [...pre, idx.length, ...post];
    const m = new Float64Array(n * idx.length);
    idx.forEach((src, o) => m[src * idx.length + o] += 1);
    return [b.axisMatrix(g, flatShape, axis, m, n, ctx.dtype(x)), null];
  },
  Pad: (ctx) => {
    const [x, padsIn, , axesIn] = ctx.node.input!;
    const inShape = ctx.shape(x);
    const rank = inShape.length;
    const mode = attrString(ctx.node, "mode", "constant");
    const raw = padsIn ? ctx.values(padsIn) : attrInts(ctx.node, "pads") ?? [];
    const axes = axesIn
      ? ctx.values(axesIn).map((a) => normAxis(a, rank))
      : inShape.map((_, i) => i);
    const pb = new Array<number>(rank).fill(0);
    const pe = new Array<number>(rank).fill(0);
    axes.forEach((ax, k) => {
      pb[ax] = raw[k];
      pe[ax] = raw[k + axes.length];
    });
    const { b } = ctx;
    const rest = ctx.node.input!.slice(1).map(() => null);
    if (mode === "constant" && pb.every((p) => p >= 0) && pe.every((p) => p >= 0)) {
      const ends = inShape.map((n, i) => pb[i] + n);
      const all = inShape.map((_, i) => i);
      const g = b.op("Slice", [ctx.gy[0]!, b.int64(pb), b.int64(ends), b.int64(all)]);
      return [g, ...rest];
    }
    const outShape = ctx.shape(ctx.node.output![0]);
    const maps = inShape.map((n, ax) =>
      pb[ax] === 0 && pe[ax] === 0
        ? null
        : Array.from({ length: outShape[ax] }, (_, o) => padSource(o - pb[ax], n, mode))
    );
    return [scatterAxes(ctx, ctx.gy[0]!, maps, inShape), ...rest];
  },
  Tile: (ctx) => {
    const [x] = ctx.node.input!;
    const inShape = ctx.shape(x);
    const outShape = ctx.shape(ctx.node.output![0]);
    const { b } = ctx;
    // y viewed as [r0, d0, r1, d1, …]: sum over the repeat axes
    const split = inShape.flatMap((d, i) => [outShape[i] / d, d]);
    const g = b.reshape(ctx.gy[0]!, split);
    const summed = b.reduceSum(g, inShape.map((_, i) => 2 * i), false);
    return [b.reshape(summed, inShape), null];
  },
};
