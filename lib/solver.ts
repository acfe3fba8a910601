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
import type { Denoiser } from "./denoiser.ts";

/** Step grid `t1` (where the state lives) and evaluation grid `t2` (where the network is called). */
export interface Grid {
  /** N+1 strictly decreasing times from T to eps. */
  readonly t1: Float64Array;
  /** N+1 times; `t2[k]` replaces `t1[k]` as the network's time input. Endpoints equal t1's. */
  readonly t2: Float64Array;
}

/** `registers[out] = D(registers[input], t)` with `t = grid.t2[evalIndex]`. */
export interface EvalOp {
  readonly kind: "eval";
  readonly out: number;
  readonly input: number;
  /** Grid index whose evaluation time is used. */
  readonly evalIndex: number;
  /** The evaluation time, `grid.t2[evalIndex]`. */
  readonly t: number;
}

/** `registers[out] = Σ coef_j · registers[reg_j]`. */
export interface CombineOp {
  readonly kind: "combine";
  readonly out: number;
  readonly terms: ReadonlyArray<{ readonly coef: number; readonly reg: number }>;
}

/** One instruction of a solver plan. */
export type PlanOp = EvalOp | CombineOp;

/** A solver unrolled on one grid. Register 0 holds `x_T` on entry. */
export interface SolverPlan {
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

/** `Σ coef_j · x_j` over equally long float64 vectors. */
function linearCombination(
  terms: ReadonlyArray<{ readonly coef: number; readonly reg: number }>,
  registers: (Float64Array | undefined)[],
): Float64Array {
  const first = registers[terms[0].reg]!;
  const out = new Float64Array(first.length);
  for (const { coef, reg } of terms) {
    const x = registers[reg];
    if (x === undefined) throw new RangeError(`Plan reads register ${reg} before writing it`);
    if (x.length !== out.length) {
      throw new RangeError(`Register ${reg} has length ${x.length}: expected ${out.length}`);
    }
    for (let k = 0; k < out.length; k++) out[k] += coef * x[k];
  }
  return out;
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
