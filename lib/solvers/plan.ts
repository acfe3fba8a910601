/**
 * The solver contract.
 *
 * A solver turns a step grid `t1` and an evaluation grid `t2` into a {@linkcode SolverPlan}: a
 * straight-line program of network evaluations and linear combinations with scalar
 * coefficients computed from the grid. The plan's *structure* (which registers each op reads
 * and writes) depends only on the number of steps and the solver options, never on grid
 * values; only the coefficients and evaluation times do. That makes every solver:
 *
 * - runnable forwards by one generic executor ({@linkcode runPlan}), and
 * - runnable backwards (reverse mode) by walking the ops in reverse: a `combine` is linear in
 *   its registers, an `eval` needs one vector–Jacobian product of the network, and the
 *   derivative of the coefficients with respect to `t1` comes from re-planning.
 *
 * @module
 */
import type { Denoiser } from "../denoiser.ts";
import type { NoiseSchedule } from "../noise_schedule.ts";

/** Step grid `t1` (where the state lives) and evaluation grid `t2` (where the network is called). */
export interface Grid {
  /** N+1 strictly decreasing times from T to eps. */
  readonly t1: Float64Array;
  /** N+1 times; `t2[k]` replaces `t1[k]` as the network's time input. Endpoints equal t1's. */
  readonly t2: Float64Array;
}

/** `registers[out] = D(registers[input], t)` with `t = grid.t2[evalIndex]`. */
export interface EvalOp {
  /** Discriminant: a network evaluation. */
  readonly kind: "eval";
  /** Register that receives the data prediction. */
  readonly out: number;
  /** Register holding the state the network sees. */
  readonly input: number;
  /** Grid index whose evaluation time is used. */
  readonly evalIndex: number;
  /** The evaluation time, `grid.t2[evalIndex]`. */
  readonly t: number;
}

/** `registers[out] = Σ coef_j · registers[reg_j]`. */
export interface CombineOp {
  /** Discriminant: a linear combination of registers. */
  readonly kind: "combine";
  /** Register that receives the sum. */
  readonly out: number;
  /** The terms `coef · registers[reg]` of the sum. */
  readonly terms: ReadonlyArray<{ readonly coef: number; readonly reg: number }>;
}

/** One instruction of a solver plan. */
export type PlanOp = EvalOp | CombineOp;

/** A solver unrolled on one grid. Register 0 holds `x_T` on entry. */
export interface SolverPlan {
  /** The instructions, in execution order; their eval ops are the NFE. */
  readonly ops: readonly PlanOp[];
  /** Number of registers used (including register 0). */
  readonly registers: number;
  /** Register holding the final sample `x_eps`. */
  readonly output: number;
  /** Number of network evaluations (eval ops). */
  readonly nfe: number;
}

/** What {@linkcode runPlan} reports after each network evaluation. */
export interface EvalInfo {
  /** Network evaluations done so far, this one included (1-based). */
  readonly nfe: number;
  /** Network evaluations the whole plan makes. */
  readonly totalNfe: number;
  /** Grid index of this evaluation's time. */
  readonly evalIndex: number;
  /** The time passed to the network, `grid.t2[evalIndex]`. */
  readonly t: number;
}

/** Options of {@linkcode runPlan}. */
export interface RunPlanOptions {
  /** Conditioning for the batch, handed to every denoiser call untouched. @default {undefined} */
  condition?: Float32Array;
  /** Called after every network evaluation (progress bars, logging). @default {undefined} */
  onEval?: (info: EvalInfo) => void;
}

/**
 * For every register, the index of the last op that reads it (−1 when no op reads it).
 *
 * {@linkcode runPlan} uses it to free states as soon as they are dead; a reverse-mode walker can
 * use it to know which adjoints are complete.
 */
export function registerLastUse(plan: SolverPlan): Int32Array {
  const last = new Int32Array(plan.registers).fill(-1);
  plan.ops.forEach((op, j) => {
    if (op.kind === "eval") last[op.input] = j;
    else for (const term of op.terms) last[term.reg] = j;
  });
  return last;
}

/**
 * `Σ coef_j · x_j` over equally long float64 vectors, into a new array.
 *
 * The sum is accumulated left to right from 0, `((0 + c₀x₀) + c₁x₁) + …`, exactly as a loop
 * of `out[k] += c_j·x_j[k]` per term would, so the fused loops below give bit-identical
 * results; fusing up to four terms reads each input once and writes `out` once instead of
 * once per term.
 */
function linearCombination(
  terms: ReadonlyArray<{ readonly coef: number; readonly reg: number }>,
  registers: (Float64Array | undefined)[],
): Float64Array {
  if (terms.length === 0) throw new RangeError("Combine op has no terms: expected at least 1");
  const xs: Float64Array[] = new Array(terms.length);
  for (let j = 0; j < terms.length; j++) {
    const reg = terms[j].reg;
    const x = registers[reg];
    if (x === undefined) throw new RangeError(`Plan reads register ${reg} before writing it`);
    if (j > 0 && x.length !== xs[0].length) {
      throw new RangeError(`Register ${reg} has length ${x.length}: expected ${xs[0].length}`);
    }
    xs[j] = x;
  }
  const n = xs[0].length;
  const out = new Float64Array(n);
  const c0 = terms[0].coef;
  const x0 = xs[0];
  switch (terms.length) {
    case 1:
      for (let k = 0; k < n; k++) out[k] = 0 + c0 * x0[k];
      return out;
    case 2: {
      const c1 = terms[1].coef;
      const x1 = xs[1];
      for (let k = 0; k < n; k++) out[k] = 0 + c0 * x0[k] + c1 * x1[k];
      return out;
    }
    case 3: {
      const c1 = terms[1].coef;
      const c2 = terms[2].coef;
      const x1 = xs[1];
      const x2 = xs[2];
      for (let k = 0; k < n; k++) out[k] = 0 + c0 * x0[k] + c1 * x1[k] + c2 * x2[k];
      return out;
    }
    default: {
      // Four terms fused, then any further terms one pass each (same order of additions).
      const c1 = terms[1].coef;
      const c2 = terms[2].coef;
      const c3 = terms[3].coef;
      const x1 = xs[1];
      const x2 = xs[2];
      const x3 = xs[3];
      for (let k = 0; k < n; k++) {
        out[k] = 0 + c0 * x0[k] + c1 * x1[k] + c2 * x2[k] + c3 * x3[k];
      }
      for (let j = 4; j < terms.length; j++) {
        const c = terms[j].coef;
        const x = xs[j];
        for (let k = 0; k < n; k++) out[k] += c * x[k];
      }
      return out;
    }
  }
}

/**
 * Executes a {@linkcode SolverPlan} in float64: register 0 starts as `xT`, `eval` ops call
 * `denoiser.denoise(x, t, {step, condition})`, `combine` ops form linear combinations.
 *
 * The executor computes nothing of its own: every coefficient and time comes from the plan.
 * Registers are dropped right after their last reader, so only the few states a solver really
 * keeps (e.g. the last three model outputs of a third-order multistep method) stay alive.
 *
 * @param plan The unrolled solver, e.g. from `planSolver`.
 * @param denoiser The data-prediction model.
 * @param xT Initial state `x_T` (batch × sample size values); it is not modified.
 * @param options Conditioning and a progress callback.
 * @returns The final state `x_eps`, a new array.
 * @throws {RangeError} When the plan reads a register nobody wrote.
 */
export async function runPlan(
  plan: SolverPlan,
  denoiser: { denoise: Denoiser["denoise"] },
  xT: Float64Array,
  options: RunPlanOptions = {},
): Promise<Float64Array> {
  const lastUse = registerLastUse(plan);
  const registers: (Float64Array | undefined)[] = new Array(plan.registers);
  registers[0] = xT;
  let nfe = 0;
  for (let j = 0; j < plan.ops.length; j++) {
    const op = plan.ops[j];
    if (op.kind === "eval") {
      const x = registers[op.input];
      if (x === undefined) {
        throw new RangeError(`Plan reads register ${op.input} before writing it`);
      }
      registers[op.out] = await denoiser.denoise(x, op.t, {
        step: nfe,
        condition: options.condition,
      });
      nfe++;
      options.onEval?.({ nfe, totalNfe: plan.nfe, evalIndex: op.evalIndex, t: op.t });
      if (lastUse[op.input] === j && op.input !== plan.output) registers[op.input] = undefined;
    } else {
      registers[op.out] = linearCombination(op.terms, registers);
      for (const { reg } of op.terms) {
        if (lastUse[reg] === j && reg !== plan.output) registers[reg] = undefined;
      }
    }
  }
  const out = registers[plan.output];
  if (out === undefined) throw new RangeError(`Plan output register ${plan.output} is empty`);
  // A plan whose output is x_T itself (zero steps) must still hand back a fresh array.
  return out === xT ? xT.slice() : out;
}

/**
 * A solver as a sampler, the same shape for every solver (k-diffusion's
 * `sample_x(model, x, sigmas, ...)`): from `x_T` on the grid to the sample.
 */
export type PlanSampler<O> = (
  denoiser: Denoiser,
  xT: Float64Array,
  grid: Grid,
  options?: O & RunPlanOptions,
) => Promise<Float64Array>;

/** The sampler of a plan builder: it unrolls the solver on the grid, then runs the plan. */
export function planSampler<O>(
  planner: (schedule: NoiseSchedule, grid: Grid, options: O) => SolverPlan,
): PlanSampler<O> {
  return (denoiser, xT, grid, options) =>
    runPlan(planner(denoiser.schedule, grid, options ?? {} as O), denoiser, xT, options);
}
