/**
 * Heun's second-order method, Karras et al. 2022 ("Elucidating the Design Space of
 * Diffusion-Based Generative Models", EDM), Algorithm 1, deterministic.
 *
 * It integrates `dx̃/dσ̃ = (x̃ − D)/σ̃` in the EDM variables `x̃ = x/α`, `σ̃ = σ/α = e^{−λ}`,
 * which makes it apply unchanged to every schedule (for VE it is exactly EDM's sampler). Each
 * step is an Euler predictor plus a trapezoidal corrector whose evaluation, for step i, is at
 * grid index i+1; the final step is plain Euler. NFE = 2N − 1.
 *
 * @module
 */
import type { NoiseSchedule } from "../noise_schedule.ts";
import { type Grid, type PlanSampler, planSampler, type SolverPlan } from "./plan.ts";
import { checkGrid, type GridValues, gridValues } from "./_coefficients.ts";
import { PlanBuilder } from "./_plan_builder.ts";
import { ddimCoefficients } from "./euler.ts";

/**
 * Coefficients of Heun's corrector for step i, written back in x:
 * `x_{i+1} = x·x_i + d·D_i + xPred·x' + dPred·D'` with `x'` the Euler predictor and
 * `D' = D(x', t_{i+1})`. With `Δσ̃/σ̃_i = e^{−h} − 1` and `Δσ̃/σ̃_{i+1} = 1 − e^{h}`.
 */
export interface HeunCoefficients {
  /** Weight of the state `x_i`. */
  readonly x: number;
  /** Weight of the data prediction `D_i = D(x_i, t_i)`. */
  readonly d: number;
  /** Weight of the Euler predictor `x'`. */
  readonly xPred: number;
  /** Weight of the second evaluation `D' = D(x', t_{i+1})`. */
  readonly dPred: number;
}

/** Heun's corrector coefficients for the step from grid point `i` to `i + 1`. */
export function heunCoefficients(values: GridValues, i: number): HeunCoefficients {
  const h = values.lambda[i + 1] - values.lambda[i];
  const a = values.alpha[i + 1];
  const down = Math.expm1(-h); // Δσ̃/σ̃_i
  const up = -Math.expm1(h); // Δσ̃/σ̃_{i+1}
  return {
    x: (a / values.alpha[i]) * (1 + down / 2),
    d: -a * down / 2,
    xPred: up / 2,
    dPred: -a * up / 2,
  };
}

/** Number of network evaluations of Heun with `steps` steps. */
export function heunNfe(steps: number): number {
  return 2 * steps - 1;
}

/**
 * Unrolls Heun (EDM Algorithm 1) on a grid.
 *
 * @example
 * ```ts
 * import { veSchedule } from "../noise_schedule.ts";
 * const t1 = Float64Array.from([80, 1, 0.002]);
 * console.log(heunPlan(veSchedule(), { t1, t2: t1.slice() }).nfe); // 3
 * ```
 */
export function heunPlan(
  schedule: NoiseSchedule,
  grid: Grid,
): SolverPlan {
  const steps = checkGrid(grid);
  const values = gridValues(schedule, grid.t1);
  const plan = new PlanBuilder(grid);
  let x = 0;
  for (let i = 0; i < steps; i++) {
    const d = plan.eval(x, i);
    // Euler step (EDM Alg. 1 line 5, in x = α·x̃ it is the DDIM step).
    const e = ddimCoefficients(values, i);
    const xPred = plan.combine([{ coef: e.x, reg: x }, { coef: e.d, reg: d }]);
    if (i === steps - 1) {
      x = xPred;
      break;
    }
    // Second-order correction (lines 7–8).
    const dPred = plan.eval(xPred, i + 1);
    const c = heunCoefficients(values, i);
    x = plan.combine([
      { coef: c.x, reg: x },
      { coef: c.d, reg: d },
      { coef: c.xPred, reg: xPred },
      { coef: c.dPred, reg: dPred },
    ]);
  }
  return plan.build(x);
}

/** Samples with Heun: `runPlan(heunPlan(denoiser.schedule, grid), denoiser, xT)`. */
export const heun: PlanSampler<Record<never, never>> = planSampler(heunPlan);
