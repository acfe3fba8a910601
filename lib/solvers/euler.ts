/**
 * Euler / DDIM: the first-order exponential integrator in data prediction (Song et al. 2021,
 * "Denoising Diffusion Implicit Models"; equal to first-order DPM-Solver++, Lu et al. 2022).
 *
 * `x_{i+1} = (σ_{i+1}/σ_i)·x_i − α_{i+1}·(e^{−h_i} − 1)·D_i`, `h_i = λ_{i+1} − λ_i`. NFE = N.
 *
 * @module
 */
import type { NoiseSchedule } from "../noise_schedule.ts";
import { type Grid, type PlanSampler, planSampler, type SolverPlan } from "./plan.ts";
import { checkGrid, type GridValues, gridValues, phi } from "./_coefficients.ts";
import { PlanBuilder } from "./_plan_builder.ts";

/** Coefficients of one DDIM step `x_{i+1} = x·x_i + d·D_i`. */
export interface DdimCoefficients {
  /** Coefficient of the state, σ_{i+1}/σ_i. */
  readonly x: number;
  /** Coefficient of the model output, −α_{i+1}·(e^{−h} − 1). */
  readonly d: number;
}

/** The DDIM step from grid point `i` to `i + 1`. */
export function ddimCoefficients(values: GridValues, i: number): DdimCoefficients {
  const h = values.lambda[i + 1] - values.lambda[i];
  return { x: values.sigma[i + 1] / values.sigma[i], d: -values.alpha[i + 1] * phi(1, h) };
}

/**
 * Unrolls Euler/DDIM on a grid: one evaluation per step, at `t2[i]`.
 *
 * @example
 * ```ts
 * import { veSchedule } from "../noise_schedule.ts";
 * const t1 = Float64Array.from([80, 1, 0.002]);
 * const plan = eulerPlan(veSchedule(), { t1, t2: t1.slice() });
 * console.log(plan.nfe); // 2
 * ```
 */
export function eulerPlan(
  schedule: NoiseSchedule,
  grid: Grid,
): SolverPlan {
  const steps = checkGrid(grid);
  const values = gridValues(schedule, grid.t1);
  const plan = new PlanBuilder(grid);
  let x = 0;
  for (let i = 0; i < steps; i++) {
    const d = plan.eval(x, i);
    const c = ddimCoefficients(values, i);
    x = plan.combine([{ coef: c.x, reg: x }, { coef: c.d, reg: d }]);
  }
  return plan.build(x);
}

/** Samples with Euler/DDIM: `runPlan(eulerPlan(denoiser.schedule, grid), denoiser, xT)`. */
export const euler: PlanSampler<Record<never, never>> = planSampler(eulerPlan);
