/**
 * VJP rules of elementwise ops. Binary ops broadcast (numpy rules), so each operand's
 * cotangent is summed back to its own shape.
 *
 * @module
 */
import { attrFloat, attrString } from "../_graph.ts";
import type { RuleContext, VjpRule } from "./_rule.ts";

function io(ctx: RuleContext) {
  const { node, b } = ctx;
  const x = node.input![0];
  const y = node.output![0];
  const g = ctx.gy[0]!;
  const dt = ctx.dtype(y);
  return { b, x, y, g, dt };
}

/** A unary op whose derivative is `f(x, y)`: `gx = gy · f`. */
function unary(derivative: (ctx: RuleContext, x: string, y: string) => string): VjpRule {
  return (ctx) => {
    const { b, x, y, g } = io(ctx);
    return [b.op("Mul", [g, derivative(ctx, x, y)])];
  };
}

/** A cotangent masked by a boolean: `where(mask, gy, 0)`. */
function masked(ctx: RuleContext, mask: string): string {
  const { b, g, dt } = io(ctx);
  return b.op("Where", [mask, g, b.scalar(0, dt)]);
}

/** Sums `g` (shaped like the output) back to input `i`'s shape. */
function unb(ctx: RuleContext, g: string, i: number): string {
  return ctx.b.unbroadcast(g, ctx.shape(ctx.node.output![0]), ctx.shape(ctx.node.input![i]));
}

/** Casts `v` to element type `dt` if it has another. */
function castTo(ctx: RuleContext, v: string, dt: number): string {
  return ctx.dtype(v) === dt ? v : ctx.b.op("Cast", [v], { to: dt });
}

/**
 * Which input of a `Mul` node is `x` when the node is SiLU, `x · Sigmoid(x)`, and the
 * sigmoid's output is used by this node alone (so its cotangent can be folded into `x`'s);
 * `null` otherwise.
 */
function siluInput(ctx: RuleContext): 0 | 1 | null {
  const [a, c] = ctx.node.input!;
  for (const [k, x, s] of [[0, a, c], [1, c, a]] as const) {
    const p = ctx.producer(s);
    if (p?.opType === "Sigmoid" && p.input?.[0] === x && ctx.uses(s) === 1 && ctx.needs[k]) {
      return k;
    }
  }
  return null;
}

const zeroRule: VjpRule = (ctx) => ctx.node.input!.map(() => null);

/** Rules of elementwise ops, by op type. */
export const elementwiseRules: Record<string, VjpRule> = {
  Identity: (ctx) => [ctx.gy[0]],
  Dropout: (ctx) => [ctx.gy[0], null, null],
  Neg: (ctx) => [ctx.b.op("Neg", [ctx.gy[0]!])],
  Floor: zeroRule,
  Ceil: zeroRule,
  Round: zeroRule,
  Sign: zeroRule,
  Cast: (ctx) => [ctx.b.op("Cast", [ctx.gy[0]!], { to: ctx.dtype(ctx.node.input![0]) })],
  Add: (ctx) => {
    const g = ctx.gy[0]!;
    return [ctx.needs[0] ? unb(ctx, g, 0) : null, ctx.needs[1] ? unb(ctx, g, 1) : null];
  },
  Sub: (ctx) => {
    const g = ctx.gy[0]!;
    return [
      ctx.needs[0] ? unb(ctx, g, 0) : null,
      ctx.needs[1] ? unb(ctx, ctx.b.op("Neg", [g]), 1) : null,
    ];
  },
  Sum: (ctx) => ctx.node.input!.map((_, i) => ctx.needs[i] ? unb(ctx, ctx.gy[0]!, i) : null),
  Mean: (ctx) => {
    const { b, g, dt } = io(ctx);
    const n = ctx.node.input!.length;
    const gs = b.op("Mul", [g, b.scalar(1 / n, dt)]);
    return ctx.node.input!.map((_, i) => ctx.needs[i] ? unb(ctx, gs, i) : null);
  },
  Mul: (ctx) => {
    const { b, g } = io(ctx);
    const [a, c] = ctx.node.input!;
    const silu = siluInput(ctx);
    if (silu !== null) {
      // x·σ(x) whose σ feeds nothing else: d/dx = σ + y(1 − σ), one pass and no Sum
      const s = silu === 0 ? c : a;
      const y = ctx.node.output![0];
      const one = b.scalar(1, ctx.dtype(y));
      const d = b.op("Add", [s, b.op("Mul", [y, b.op("Sub", [one, s])])]);
      const gx = b.op("Mul", [g, d]);
      return silu === 0 ? [gx, null] : [null, gx];
    }
    return [
      ctx.needs[0] ? unb(ctx, b.op("Mul", [g, c]), 0) : null,
      ctx.needs[1] ? unb(ctx, b.op("Mul", [g, a]), 1) : null,
    ];
  },
  Div: (ctx) => {
    const { b, g, y } = io(ctx);
    const [, c] = ctx.node.input!;
    return [
      ctx.needs[0] ? unb(ctx, b.op("Div", [g, c]), 0) : null,
      // ∂(a/c)/∂c = −y/c
      ctx.needs[1] ? unb(ctx, b.op("Neg", [b.op("Mul", [g, b.op("Div", [y, c])])]), 1) : null,
    ];
  },
  Pow: (ctx) => {
    const { b, g, y, dt } = io(ctx);
    const [a, e] = ctx.node.input!;
    const ef = castTo(ctx, e, dt);
    const ga = ctx.needs[0]
      ? unb(
        ctx,
        b.op("Mul", [g, b.op("Mul", [ef, b.op("Pow", [a, b.op("Sub", [ef, b.scalar(1, dt)])])])]),
        0,
      )
      : null;
    // ∂(a^e)/∂e = y · log a
    const ge = ctx.needs[1]
      ? unb(ctx, b.op("Mul", [g, b.op("Mul", [y, b.op("Log", [a])])]), 1)
      : null;
    return [ga, ge];
  },
  Sqrt: unary((ctx, _x, y) => ctx.b.op("Div", [ctx.b.scalar(0.5, ctx.dtype(y)), y])),
  Exp: unary((_ctx, _x, y) => y),
  Log: (ctx) => [ctx.b.op("Div", [ctx.gy[0]!, ctx.node.input![0]])],
  Reciprocal: unary((ctx, _x, y) => ctx.b.op("Neg", [ctx.b.op("Mul", [y, y])])),
  Sigmoid: unary((ctx, _x, y) =>
    ctx.b.op("Mul", [y, ctx.b.op("Sub", [ctx.b.scalar(1, ctx.dtype(y)), y])])
  ),
  Tanh: unary((ctx, _x, y) =>
    ctx.b.op("Sub", [ctx.b.scalar(1, ctx.dtype(y)), ctx.b.op("Mul", [y, y])])
  ),
  Erf: unary((ctx, x, y) => {
    const { b } = ctx;
    const dt = ctx.dtype(y);
    const e = b.op("Exp", [b.op("Neg", [b.op("Mul", [x, x])])]);
    return b.op("Mul", [e, b.scalar(2 / Math.sqrt(Math.PI), dt)]);
  }),
  Sin: unary((ctx, x) => ctx.b.op("Cos", [x])),
  Cos: unary((ctx, x) => ctx.b.op("Neg", [ctx.b.op("Sin", [x])])),
  Abs: unary((ctx, x) => ctx.b.op("Sign", [x])),
  Softplus: unary((ctx, x) => ctx.b.op("Sigmoid", [x])),
  Relu: (ctx) => {
    const { b, x, dt } = io(ctx);
    return [masked(ctx, b.op("Greater", [x, b.scalar(0, dt)]))];
  },
  LeakyRelu: (ctx) => {
    const { b, x, g, dt } = io(ctx);
    const alpha = attrFloat(ctx.node, "alpha", 0.01);
    const pos = b.op("Greater", [x, b.scalar(0, dt)]);
    return [b.op("Where", [pos, g, b.op("Mul", [g, b.scalar(alpha, dt)])])];
  },
  Clip: (ctx) => {
    const { b, x } = io(ctx);
    const [, lo, hi] = ctx.node.input!;
    let mask: string | null = null;
    if (lo) mask = b.op("GreaterOrEqual", [x, lo]);
    if (hi) {
      const m = b.op("LessOrEqual", [x, hi]);
      mask = mask ? b.op("And", [mask, m]) : m;
    }
    return [mask ? masked(ctx, mask) : ctx.gy[0], null, null];
  },
  Max: minMax,
  Min: minMax,
  Where: (ctx) => {
    const { b, g, dt } = io(ctx);
    const [cond] = ctx.node.input!;
    const zero = b.scalar(0, dt);
    return [
      null,
      ctx.needs[1] ? unb(ctx, b.op("Where", [cond, g, zero]), 1) : null,
      ctx.needs[2] ? unb(ctx, b.op("Where", [cond, zero, g]), 2) : null,
    ];
  },
  Gelu: unary((ctx, x, y) => {
    const { b } = ctx;
    const dt = ctx.dtype(y);
    const c = (v: number) => b.scalar(v, dt);
    if (attrString(ctx.node, "approximate", "none") === "tanh") {
      // y = x/2 (1 + tanh u), u = √(2/π)(x + 0.044715 x³)
      const k = Math.sqrt(2 / Math.PI);
      const x2 = b.op("Mul", [x, x]);
      const u = b.op("Mul", [
        b.op("Mul", [x, b.op("Add", [c(1), b.op("Mul", [x2, c(0.044715)])])]),
        c(k),
      ]);
      const t = b.op("Tanh", [u]);
      const du = b.op("Mul", [b.op("Add", [c(1), b.op("Mul", [x2, c(3 * 0.044715)])]), c(k)]);
      const sech2 = b.op("Sub", [c(1), b.op("Mul", [t, t])]);
      const left = b.op("Mul", [b.op("Add", [c(1), t]), c(0.5)]);
      return b.op("Add", [left, b.op("Mul", [b.op("Mul", [x, c(0.5)]), b.op("Mul", [sech2, du])])]);
    }
    // y = x Φ(x): y' = Φ(x) + x φ(x)
    const cdf = b.op("Mul", [
      b.op("Add", [c(1), b.op("Erf", [b.op("Mul", [x, c(Math.SQRT1_2)])])]),
      c(0.5),
    ]);
    const pdf = b.op("Mul", [
      b.op("Exp", [b.op("Mul", [b.op("Mul", [x, x]), c(-0.5)])]),
      c(1 / Math.sqrt(2 * Math.PI)),
    ]);
    return b.op("Add", [cdf, b.op("Mul", [x, pdf])]);
  }),
};

/** Elementwise Max/Min: the cotangent goes to every operand equal to the result. */
function minMax(ctx: RuleContext): (string | null)[] {
  const { b, g, y, dt } = io(ctx);
  const zero = b.scalar(0, dt);
  return ctx.node.input!.map((a, i) =>
    ctx.needs[i] ? unb(ctx, b.op("Where", [b.op("Equal", [a, y]), g, zero]), i) : null
  );
}
