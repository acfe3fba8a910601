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
import type { NoiseSchedule } from "./schedule.ts";

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
