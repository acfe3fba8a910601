/**
 * iPNDM, the "improved PNDM" of Zhang & Chen 2023 ("Fast Sampling of Diffusion Models with
 * Exponential Integrator", DEIS): explicit Adams–Bashforth on the EDM ODE
 * `dx̃/dσ̃ = (x̃ − D)/σ̃` in `x̃ = x/α`, `σ̃ = σ/α`, with orders warming up 1, 2, 3, 4 and the
 * fixed (uniform-step) coefficients (1), (3/2, −1/2), (23/12, −16/12, 5/12),
 * (55/24, −59/24, 37/24, −9/24) applied to the last slopes, as used by the LD3 and GITS
 * baselines. NFE = N.
 *
 * The coefficients do not adapt to unequal steps, so on a grid that is not uniform in σ̃ the
 * method is second order (the first two moment conditions of every Adams–Bashforth rule still
 * hold, the third does not).
 *
 * @module
 */
import type { NoiseSchedule } from "../noise_schedule.ts";
import { type Grid, type PlanSampler, planSampler, type SolverPlan } from "./plan.ts";
import { checkGrid, checkIntOption, type GridValues, gridValues } from "./_coefficients.ts";
import { PlanBuilder } from "./_plan_builder.ts";

/** Options of {@linkcode ipndmPlan}. */
export interface IpndmOptions {
  /** Highest Adams–Bashforth order (1–4). @default {4} */
  order?: number;
}

/** Adams–Bashforth weights of orders 1–4, newest slope first. */
export const ADAMS_BASHFORTH: readonly (readonly number[])[] = [
  [1],
  [3 / 2, -1 / 2],
  [23 / 12, -16 / 12, 5 / 12],
  [55 / 24, -59 / 24, 37 / 24, -9 / 24],
];

/**
 * The slope `d_i = (x̃_i − D_i)/σ̃_i` as a combination of `x_i` and `D_i`:
 * `d_i = x·x_i + d·D_i` with `x = 1/σ_i`, `d = −α_i/σ_i`.
 */
export function ipndmSlopeCoefficients(values: GridValues, i: number): { x: number; d: number } {
  return { x: 1 / values.sigma[i], d: -values.alpha[i] / values.sigma[i] };
}

/**
 * The Adams–Bashforth step `x_{i+1} = x·x_i + Σ_k slopes[k]·d_{i−k}` of order `order`, i.e.
 * `x̃_{i+1} = x̃_i + (σ̃_{i+1} − σ̃_i)·Σ_k c_k·d_{i−k}` written back in x.
 */
export function ipndmCoefficients(
  values: GridValues,
  i: number,
  order: number,
): { x: number; slopes: number[] } {
  const a = values.alpha[i + 1];
  const dSigma = values.sigma[i + 1] / a - values.sigma[i] / values.alpha[i];
  return {
    x: a / values.alpha[i],
    slopes: ADAMS_BASHFORTH[order - 1].map((c) => a * dSigma * c),
  };
}

/**
 * Unrolls iPNDM on a grid: one evaluation per step, at `t2[i]`.
 *
 * @throws {RangeError} For an order outside 1–4 or a malformed grid.
 * @example
 * ```ts
 * import { veSchedule } from "../noise_schedule.ts";
 * const t1 = Float64Array.from([80, 10, 1, 0.1, 0.002]);
 * console.log(ipndmPlan(veSchedule(), { t1, t2: t1.slice() }).nfe); // 4
 * ```
 */
export function ipndmPlan(
  schedule: NoiseSchedule,
  grid: Grid,
  options: IpndmOptions = {},
): SolverPlan {
  const maxOrder = options.order ?? 4;
  checkIntOption("order", maxOrder, 1, 4);
  const steps = checkGrid(grid);
  const values = gridValues(schedule, grid.t1);
  const plan = new PlanBuilder(grid);
  const slopes: number[] = []; // registers of d_0, d_1, … (newest last)
  let x = 0;
  for (let i = 0; i < steps; i++) {
    const d = plan.eval(x, i);
    const s = ipndmSlopeCoefficients(values, i);
    slopes.push(plan.combine([{ coef: s.x, reg: x }, { coef: s.d, reg: d }]));
    const c = ipndmCoefficients(values, i, Math.min(maxOrder, i + 1));
    x = plan.combine([
      { coef: c.x, reg: x },
      ...c.slopes.map((coef, k) => ({ coef, reg: slopes[i - k] })),
    ]);
  }
  return plan.build(x);
}

/** Samples with iPNDM: `runPlan(ipndmPlan(denoiser.schedule, grid, options), denoiser, xT)`. */
export const ipndm: PlanSampler<IpndmOptions> = planSampler(ipndmPlan);
