/**
 * VJP rules of MatMul, Gemm and Einsum.
 *
 * @module
 */
import { attrFloat, attrInt, attrString } from "../_graph.ts";
import type { RuleContext, VjpRule } from "./_rule.ts";

/** Swaps the last two axes of a value of rank `rank`. */
function swapLast(ctx: RuleContext, v: string, rank: number): string {
  const perm = Array.from({ length: rank }, (_, i) => i);
  [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1], perm[rank - 2]];
  return ctx.b.op("Transpose", [v], { perm });
}

const matMul: VjpRule = (ctx) => {
  const { b } = ctx;
  const [a, c] = ctx.node.input!;
  const y = ctx.node.output![0];
  const g = ctx.gy[0]!;
  const sa = ctx.shape(a);
  const sc = ctx.shape(c);
  if (sa.length === 1 && sc.length === 1) {
    return [
      ctx.needs[0] ? b.op("Mul", [g, c]) : null,
      ctx.needs[1] ? b.op("Mul", [g, a]) : null,
    ];
  }
  // promote 1-D operands to matrices as MatMul does, then undo it
  const a2 = sa.length === 1 ? [1, sa[0]] : sa;
  const c2 = sc.length === 1 ? [sc[0], 1] : sc;
  const sy = ctx.shape(y);
  const yb = sy.slice(0, Math.max(a2.length, c2.length) - 2);
  const y2shape = [...yb, a2[a2.length - 2], c2[c2.length - 1]];
  const g2 = b.reshape(g, y2shape);
  const av = sa.length === 1 ? b.reshape(a, a2) : a;
  const cv = sc.length === 1 ? b.reshape(c, c2) : c;
  let ga: string | null = null;
  let gc: string | null = null;
  if (ctx.needs[0]) {
    const full = b.op("MatMul", [g2, swapLast(ctx, cv, c2.length)]);
    const fullShape = [...yb, a2[a2.length - 2], a2[a2.length - 1]];
    ga = b.reshape(b.unbroadcast(full, fullShape, a2), sa);
  }
  if (ctx.needs[1]) {
    const full = b.op("MatMul", [swapLast(ctx, av, a2.length), g2]);
    const fullShape = [...yb, c2[c2.length - 2], c2[c2.length - 1]];
    gc = b.reshape(b.unbroadcast(full, fullShape, c2), sc);
  }
  return [ga, gc];
};

const gemm: VjpRule = (ctx) => {
  const { b } = ctx;
  const [a, c, bias] = ctx.node.input!;
  const g = ctx.gy[0]!;
  const alpha = attrFloat(ctx.node, "alpha", 1);
  const beta = attrFloat(ctx.node, "beta", 1);
  const tA = attrInt(ctx.node, "transA", 0);
  const tB = attrInt(ctx.node, "transB", 0);
  const out: (string | null)[] = [null, null, null];
  if (ctx.needs[0]) {
    // dA' = α g B'ᵀ, and dA = dA'ᵀ when A was transposed
    out[0] = tA === 0
      ? b.op("Gemm", [g, c], { alpha: { f: alpha }, transB: 1 - tB })
      : b.op("Gemm", [c, g], { alpha: { f: alpha }, transA: tB, transB: 1 });
  }
  if (ctx.needs[1]) {
    // dB' = α A'ᵀ g
    out[1] = tB === 0
      ? b.op("Gemm", [a, g], { alpha: { f: alpha }, transA: 1 - tA })
      : b.op("Gemm", [g, a], { alpha: { f: alpha }, transA: 1, transB: tA });
  }
  if (bias && ctx.needs[2]) {
    const gb = beta === 1 ? g : b.op("Mul", [g, b.scalar(beta, ctx.dtype(bias))]);
    out[2] = b.unbroadcast(gb, ctx.shape(ctx.node.output![0]), ctx.shape(bias));
  }
  return out;
};

/** Parses an einsum equation into explicit per-operand and output subscripts. */
function parseEinsum(eq: string, ranks: number[]): { terms: string[]; out: string } {
  const clean = eq.replace(/\s+/g, "");
  const [lhs, rhs] = clean.split("->");
  const terms = lhs.split(",");
  const used = new Set(clean.replace(/[^a-zA-Z]/g, ""));
  const spare = [..."ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"].filter((c) =>
    !used.has(c)
  );
  let ell = 0;
  terms.forEach((t, i) => {
    if (t.includes("...")) ell = Math.max(ell, ranks[i] - t.replace("...", "").length);
  });
  const ellLetters = spare.slice(0, ell).join("");
  const expanded = terms.map((t, i) => {
    if (!t.includes("...")) return t;
    const k = ranks[i] - t.replace("...", "").length;
    return t.replace("...", ellLetters.slice(ell - k));
  });
  let out: string;
  if (rhs !== undefined) {
    out = rhs.replace("...", ellLetters);
  } else {
    const counts = new Map<string, number>();
    for (const t of expanded) for (const ch of t) counts.set(ch, (counts.get(ch) ?? 0) + 1);
    const once = [...counts].filter(([ch, n]) => n === 1 && !ellLetters.includes(ch)).map(([
      ch,
    ]) => ch).sort();
    out = ellLetters + once.join("");
  }
  for (const t of [...expanded, out]) {
    if (new Set(t).size !== t.length) {
      throw new RangeError(`Unsupported einsum equation (repeated subscript): ${eq}`);
    }
  }
  return { terms: expanded, out };
}

const einsum: VjpRule = (ctx) => {
  const { b } = ctx;
  const inputs = ctx.node.input!;
  const eq = attrString(ctx.node, "equation", "");
  const { terms, out } = parseEinsum(eq, inputs.map((x) => ctx.shape(x).length));
  const g = ctx.gy[0]!;
  return inputs.map((x, i) => {
    if (!ctx.needs[i]) return null;
    const others = terms.filter((_, j) => j !== i);
    const avail = new Set([...out, ...others.join("")]);
    const term = terms[i];
    // letters summed only within operand i come back by broadcasting
    const kept = [...term].filter((ch) => avail.has(ch)).join("");
    const eqI = `${[out, ...others].join(",")}->${kept}`;
    let gi = b.op("Einsum", [g, ...inputs.filter((_, j) => j !== i)], { equation: eqI });
    const shape = ctx.shape(x);
    if (kept.length !== term.length) {
      gi = b.reshape(gi, [...term].map((ch, k) => (avail.has(ch) ? shape[k] : 1)));
      gi = b.op("Expand", [gi, b.int64(shape)]);
    }
    return gi;
  });
};

/** Rules of matrix products, by op type. */
export const linalgRules: Record<string, VjpRule> = {
  MatMul: matMul,
  Gemm: gemm,
  Einsum: einsum,
};
