/**
 * Multistep DPM-Solver++ (2M and 3M), Lu et al. 2022, "DPM-Solver++: Fast Solver for Guided
 * Sampling of Diffusion Probabilistic Models", Algorithm 2 (2M) and its third-order extension
 * (3M) from the authors' reference code, in data prediction.
 *
 * Step i uses the model outputs at the last `order` grid points: order 1 is DDIM; 2M is
 * `D' = (1 + 1/(2r))·D_i − 1/(2r)·D_{i−1}` with `r = h_{i−1}/h_i` followed by a DDIM step with
 * `D'`; 3M adds the second difference with the exponential-integrator weights φ_2, φ_3. The
 * first steps warm up at order 1, 2, …; `lowerOrderFinal` lowers the last steps for N < 15.
 * NFE = N.
 *
 * @module
 */
import type { NoiseSchedule } from "../noise_schedule.ts";
import { type Grid, type PlanSampler, planSampler, type SolverPlan } from "./plan.ts";
import {
  checkBoolOption,
  checkGrid,
  checkIntOption,
  type GridValues,
  gridValues,
  multistepOrders,
  phi,
} from "./_coefficients.ts";
import { PlanBuilder } from "./_plan_builder.ts";

/** Options of {@linkcode dpmSolverPPPlan}. */
export interface DpmSolverPPOptions {
  /** Multistep order: 1 (DDIM), 2 (2M) or 3 (3M). @default {3} */
  order?: number;
  /** Use lower orders for the final steps when N < 15 (as the reference code). @default {true} */
  lowerOrderFinal?: boolean;
}

/**
 * Coefficients of one multistep step: `x_{i+1} = x·x_i + Σ_k d[k]·D_{i−k}`
 * (`d[0]` multiplies the newest model output).
 */
export interface MultistepCoefficients {
  /** Weight of the current state `x_i`. */
  readonly x: number;
  /** Weights of the data predictions `D_i`, `D_{i−1}`, …, newest first; one per order. */
  readonly d: readonly number[];
}

/** Order-1 step (DDIM) from grid point i. */
export function dpmSolverPP1Coefficients(values: GridValues, i: number): MultistepCoefficients {
  const h = values.lambda[i + 1] - values.lambda[i];
  return { x: values.sigma[i + 1] / values.sigma[i], d: [-values.alpha[i + 1] * phi(1, h)] };
}

/** DPM-Solver++(2M) step from grid point i (needs i ≥ 1). */
export function dpmSolverPP2MCoefficients(values: GridValues, i: number): MultistepCoefficients {
  const lambda = values.lambda;
  const h = lambda[i + 1] - lambda[i];
  const r = (lambda[i] - lambda[i - 1]) / h;
  const base = -values.alpha[i + 1] * phi(1, h);
  return {
    x: values.sigma[i + 1] / values.sigma[i],
    d: [base * (1 + 1 / (2 * r)), -base / (2 * r)],
  };
}

/** DPM-Solver++(3M) step from grid point i (needs i ≥ 2). */
export function dpmSolverPP3MCoefficients(values: GridValues, i: number): MultistepCoefficients {
  const lambda = values.lambda;
  const h = lambda[i + 1] - lambda[i];
  const r0 = (lambda[i] - lambda[i - 1]) / h;
  const r1 = (lambda[i - 1] - lambda[i - 2]) / h;
  const a = values.alpha[i + 1];
  // Divided differences as coefficient vectors over (D_i, D_{i−1}, D_{i−2}), D' = dD/dλ:
  // D1_0 ≈ h·D' half a step back, D1_1 ≈ h·D' one and a half steps back; D1 ≈ h·D' and
  // D2 ≈ h²·D'' at λ_i are the derivatives of the quadratic through the three outputs. The
  // factor 2 in D2 makes the step exact for outputs quadratic in λ (without it the D'' term
  // gets half its weight and the method drops to second order; see local_orders_test.ts).
  const d10 = [1 / r0, -1 / r0, 0];
  const d11 = [0, 1 / r1, -1 / r1];
  const d1 = d10.map((v, k) => v + (r0 / (r0 + r1)) * (v - d11[k]));
  const d2 = d10.map((v, k) => (2 * (v - d11[k])) / (r0 + r1));
  const p1 = phi(1, h);
  const p2 = phi(2, h);
  const p3 = phi(3, h);
  return {
    x: values.sigma[i + 1] / values.sigma[i],
    d: [0, 1, 2].map((k) => a * ((k === 0 ? -p1 : 0) + p2 * d1[k] - p3 * d2[k])),
  };
}

/** Resolves and validates the options. */
function resolve(options: DpmSolverPPOptions): Required<DpmSolverPPOptions> {
  const order = options.order ?? 3;
  const lowerOrderFinal = options.lowerOrderFinal ?? true;
  checkIntOption("order", order, 1, 3);
  checkBoolOption("lowerOrderFinal", lowerOrderFinal);
  return { order, lowerOrderFinal };
}

/**
 * Unrolls multistep DPM-Solver++ on a grid: one evaluation per step, at `t2[i]`.
 *
 * @throws {RangeError} For an order outside 1–3 or a malformed grid.
 * @example
 * ```ts
 * import { veSchedule } from "../noise_schedule.ts";
 * const t1 = Float64Array.from([80, 10, 1, 0.1, 0.002]);
 * console.log(dpmSolverPPPlan(veSchedule(), { t1, t2: t1.slice() }).nfe); // 4
 * ```
 */
export function dpmSolverPPPlan(
  schedule: NoiseSchedule,
  grid: Grid,
  options: DpmSolverPPOptions = {},
): SolverPlan {
  const { order, lowerOrderFinal } = resolve(options);
  const steps = checkGrid(grid);
  const values = gridValues(schedule, grid.t1);
  const orders = multistepOrders(steps, order, lowerOrderFinal);
  const plan = new PlanBuilder(grid);
  const outputs: number[] = []; // registers of D_0, D_1, … (newest last)
  let x = 0;
  for (let i = 0; i < steps; i++) {
    outputs.push(plan.eval(x, i));
    const c = orders[i] === 1
      ? dpmSolverPP1Coefficients(values, i)
      : orders[i] === 2
      ? dpmSolverPP2MCoefficients(values, i)
      : dpmSolverPP3MCoefficients(values, i);
    x = plan.combine([
      { coef: c.x, reg: x },
      ...c.d.map((coef, k) => ({ coef, reg: outputs[i - k] })),
    ]);
  }
  return plan.build(x);
}

/** Samples with multistep DPM-Solver++: `runPlan(dpmSolverPPPlan(...), denoiser, xT)`. */
export const dpmSolverPP: PlanSampler<DpmSolverPPOptions> = planSampler(dpmSolverPPPlan);
