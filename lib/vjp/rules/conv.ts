/**
 * VJP rules of convolutions and pooling. The input cotangent of a convolution is the
 * transposed convolution of the output cotangent with the same kernel (and vice versa), with
 * `output_padding` chosen so the shapes match exactly.
 *
 * @module
 */
import { attrInt, attrInts, attrString, numel } from "../_graph.ts";
import type { RuleContext, VjpRule } from "./_rule.ts";

interface Window {
  kernel: number[];
  strides: number[];
  dilations: number[];
  padBegin: number[];
  padEnd: number[];
}

/** The window attributes of a Conv/ConvTranspose/pool node over `n` spatial axes, defaulted. */
function windowAttrs(ctx: RuleContext, n: number) {
  return {
    strides: attrInts(ctx.node, "strides") ?? new Array(n).fill(1),
    dilations: attrInts(ctx.node, "dilations") ?? new Array(n).fill(1),
    pads: attrInts(ctx.node, "pads") ?? new Array(2 * n).fill(0),
    autoPad: attrString(ctx.node, "auto_pad", "NOTSET"),
  };
}

/**
 * The operands and spatial shapes of a Conv or ConvTranspose node (`op`): the VJP flows to the
 * input and the bias, never to the weights.
 */
function convOperands(ctx: RuleContext, op: string) {
  const [x, wt, bias] = ctx.node.input!;
  if (ctx.needs[1]) {
    throw new RangeError(
      `Unsupported gradient with respect to ${op} weights at node "${ctx.node.name}": ${wt}`,
    );
  }
  const xs = ctx.shape(x).slice(2);
  const ys = ctx.shape(ctx.node.output![0]).slice(2);
  return { wt, bias, xs, ys };
}

/** Window geometry of a Conv/pool node on input spatial shape `xs`, auto_pad resolved. */
function window(ctx: RuleContext, kernel: number[], xs: number[]): Window {
  const n = kernel.length;
  const { strides, dilations, pads, autoPad } = windowAttrs(ctx, n);
  let padBegin = pads.slice(0, n);
  let padEnd = pads.slice(n);
  if (autoPad === "SAME_UPPER" || autoPad === "SAME_LOWER") {
    padBegin = [];
    padEnd = [];
    xs.forEach((x, i) => {
      const out = Math.ceil(x / strides[i]);
      const total = Math.max(0, (out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - x);
      const small = Math.floor(total / 2);
      padBegin.push(autoPad === "SAME_UPPER" ? small : total - small);
      padEnd.push(autoPad === "SAME_UPPER" ? total - small : small);
    });
  } else if (autoPad === "VALID") {
    padBegin = new Array(n).fill(0);
    padEnd = new Array(n).fill(0);
  }
  return { kernel, strides, dilations, padBegin, padEnd };
}

/** `output_padding` that makes a ConvTranspose of `ys` come out as `xs`. */
function outputPadding(ctx: RuleContext, w: Window, xs: number[], ys: number[]): number[] {
  return xs.map((x, i) => {
    const natural = w.strides[i] * (ys[i] - 1) + (w.kernel[i] - 1) * w.dilations[i] + 1 -
      w.padBegin[i] - w.padEnd[i];
    const op = x - natural;
    if (op < 0 || op >= Math.max(w.strides[i], w.dilations[i])) {
      throw new RangeError(
        `Unsupported window geometry at node "${ctx.node.name}": output_padding ${op}`,
      );
    }
    return op;
  });
}

const conv: VjpRule = (ctx) => {
  const { b } = ctx;
  const { wt, bias, xs, ys } = convOperands(ctx, "Conv");
  const w = window(ctx, ctx.shape(wt).slice(2), xs);
  const g = ctx.gy[0]!;
  const out: (string | null)[] = [null, null, null];
  const group = attrInt(ctx.node, "group", 1);
  const effK = w.kernel.map((k, i) => (k - 1) * w.dilations[i] + 1);
  const unitStride = w.strides.every((s) => s === 1) &&
    w.padBegin.every((p, i) => p < effK[i]) && w.padEnd.every((p, i) => p < effK[i]);
  if (ctx.needs[0] && unitStride) {
    // stride 1: a plain Conv with the flipped, channel-swapped kernel (ONNX Runtime's Conv
    // is much faster than its ConvTranspose); the kernel transform is constant-folded
    const ws = ctx.shape(wt);
    const [m, cg] = ws;
    const spatial = ws.slice(2);
    const grouped = b.reshape(wt, [group, m / group, cg, ...spatial]);
    const swapped = b.op("Transpose", [grouped], {
      perm: [0, 2, 1, ...spatial.map((_, i) => i + 3)],
    });
    const merged = b.reshape(swapped, [group * cg, m / group, ...spatial]);
    const axes = spatial.map((_, i) => i + 2);
    const flipped = b.op("Slice", [
      merged,
      b.int64(axes.map(() => -1)),
      b.int64(axes.map(() => -(2 ** 62))),
      b.int64(axes),
      b.int64(axes.map(() => -1)),
    ]);
    out[0] = b.op("Conv", [g, flipped], {
      dilations: w.dilations,
      pads: [
        ...w.padBegin.map((p, i) => effK[i] - 1 - p),
        ...w.padEnd.map((p, i) => effK[i] - 1 - p),
      ],
      group,
    });
  } else if (ctx.needs[0]) {
    out[0] = b.op("ConvTranspose", [g, wt], {
      strides: w.strides,
      dilations: w.dilations,
      pads: [...w.padBegin, ...w.padEnd],
      group,
      output_padding: outputPadding(ctx, w, xs, ys),
    });
  }
  if (bias && ctx.needs[2]) {
    out[2] = b.reduceSum(g, [0, ...ys.map((_, i) => i + 2)], false);
  }
  return out;
};

const convTranspose: VjpRule = (ctx) => {
  const { b } = ctx;
  const { wt, bias, xs, ys } = convOperands(ctx, "ConvTranspose");
  const kernel = ctx.shape(wt).slice(2);
  const n = kernel.length;
  const { strides, dilations, autoPad, pads: declared } = windowAttrs(ctx, n);
  let pads = declared;
  if (attrInts(ctx.node, "output_shape") || autoPad !== "NOTSET") {
    // total padding is implied by the actual output size
    const opad = attrInts(ctx.node, "output_padding") ?? new Array(n).fill(0);
    const begin: number[] = [];
    const end: number[] = [];
    xs.forEach((xi, i) => {
      const total = strides[i] * (xi - 1) + opad[i] + (kernel[i] - 1) * dilations[i] + 1 - ys[i];
      const half = Math.floor(total / 2);
      begin.push(autoPad === "SAME_UPPER" ? half : total - half);
      end.push(total - begin[i]);
    });
    pads = [...begin, ...end];
  }
  const g = ctx.gy[0]!;
  const out: (string | null)[] = [null, null, null];
  if (ctx.needs[0]) {
    out[0] = b.op("Conv", [g, wt], {
      strides,
      dilations,
      pads: pads.map((p) => Math.max(p, 0)),
      group: attrInt(ctx.node, "group", 1),
    });
  }
  if (bias && ctx.needs[2]) out[2] = b.reduceSum(g, [0, ...ys.map((_, i) => i + 2)], false);
  return out;
};

/** Number of window positions of output index `o` that count toward the average. */
function windowCount(
  o: number,
  n: number,
  w: Window,
  i: number,
  includePad: boolean,
): number {
  let count = 0;
  for (let k = 0; k < w.kernel[i]; k++) {
    const p = o * w.strides[i] - w.padBegin[i] + k * w.dilations[i];
    if (includePad ? p < n + w.padEnd[i] : p >= 0 && p < n) count++;
  }
  return count;
}

const averagePool: VjpRule = (ctx) => {
  const { b } = ctx;
  const x = ctx.node.input![0];
  const sx = ctx.shape(x);
  const xs = sx.slice(2);
  const ys = ctx.shape(ctx.node.output![0]).slice(2);
  const dt = ctx.dtype(x);
  const kernel = attrInts(ctx.node, "kernel_shape")!;
  const w = window(ctx, kernel, xs);
  const includePad = attrInt(ctx.node, "count_include_pad", 0) === 1;
  // 1/count of each output position, separable over axes
  const inv = new Float64Array(numel(ys));
  inv.fill(1);
  let stride = inv.length;
  ys.forEach((len, i) => {
    stride /= len;
    for (let j = 0; j < inv.length; j++) {
      const o = Math.floor(j / stride) % len;
      inv[j] /= windowCount(o, xs[i], w, i, includePad);
    }
  });
  const scaled = b.op("Mul", [ctx.gy[0]!, b.constant(inv, dt, [1, 1, ...ys])]);
  const channels = sx[1];
  const ones = b.constant(new Float64Array(channels * numel(kernel)).fill(1), dt, [
    channels,
    1,
    ...kernel,
  ]);
  return [b.op("ConvTranspose", [scaled, ones], {
    strides: w.strides,
    dilations: w.dilations,
    pads: [...w.padBegin, ...w.padEnd],
    group: channels,
    output_padding: outputPadding(ctx, w, xs, ys),
  })];
};

const maxPool: VjpRule = (ctx) => {
  const { b, node } = ctx;
  const x = node.input![0];
  const sx = ctx.shape(x);
  const dt = ctx.dtype(x);
  // ask the forward node for its argmax indices (flat over the whole input)
  if (!node.output![1]) node.output![1] = b.fresh("maxpool_indices");
  const idx = b.reshape(node.output![1], [-1]);
  const g = b.reshape(ctx.gy[0]!, [-1]);
  const kernel = attrInts(node, "kernel_shape")!;
  const strides = attrInts(node, "strides") ?? kernel.map(() => 1);
  const dil = attrInts(node, "dilations") ?? kernel.map(() => 1);
  const overlap = kernel.some((k, i) => (k - 1) * dil[i] + 1 > strides[i]);
  if (overlap && ctx.opset < 16) {
    throw new RangeError(
      `Unsupported overlapping MaxPool below opset 16 at node "${node.name}": opset ${ctx.opset}`,
    );
  }
  const scattered = b.op(
    "ScatterElements",
    [b.zeros([numel(sx)], dt), idx, g],
    overlap ? { axis: 0, reduction: "add" } : { axis: 0 },
  );
  return [b.reshape(scattered, sx)];
};

const globalAveragePool: VjpRule = (ctx) => {
  const { b } = ctx;
  const x = ctx.node.input![0];
  const sx = ctx.shape(x);
  const n = numel(sx.slice(2));
  const g = b.op("Mul", [ctx.gy[0]!, b.scalar(1 / n, ctx.dtype(x))]);
  return [b.op("Expand", [g, b.int64(sx)])];
};

/** Rules of convolution and pooling ops, by op type. */
export const convRules: Record<string, VjpRule> = {
  Conv: conv,
  ConvTranspose: convTranspose,
  AveragePool: averagePool,
  MaxPool: maxPool,
  GlobalAveragePool: globalAveragePool,
};
