/**
 * Private helper that emits {@linkcode SolverPlan} ops in SSA form: every op writes a fresh
 * register, so reverse mode can walk the ops backwards without tracking overwrites.
 *
 * @module
 */
import type { Grid, PlanOp, SolverPlan } from "./plan.ts";

/** One term of a linear combination. */
export interface Term {
  readonly coef: number;
  readonly reg: number;
}

/** Accumulates ops; register 0 is `x_T`. */
export class PlanBuilder {
  #ops: PlanOp[] = [];
  #registers = 1;
  #nfe = 0;
  #grid: Grid;

  constructor(grid: Grid) {
    this.#grid = grid;
  }

  /** Emits `D(registers[input], grid.t2[evalIndex])` and returns its register. */
  eval(input: number, evalIndex: number): number {
    const out = this.#registers++;
    this.#ops.push({ kind: "eval", out, input, evalIndex, t: this.#grid.t2[evalIndex] });
    this.#nfe++;
    return out;
  }

  /** Emits `Σ coef·register` and returns its register. */
  combine(terms: readonly Term[]): number {
    const out = this.#registers++;
    this.#ops.push({ kind: "combine", out, terms: terms.map((t) => ({ ...t })) });
    return out;
  }

  /** Finishes the plan with `output` as the result register. */
  build(output: number): SolverPlan {
    return { ops: this.#ops, registers: this.#registers, output, nfe: this.#nfe };
  }
}
