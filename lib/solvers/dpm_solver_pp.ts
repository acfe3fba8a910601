/**
 * Multistep DPM-Solver++ (2M and 3M), Lu et al. 2022, "DPM-Solver++: Fast Solver for Guided
 * Sampling of Diffusion Probabilistic Models", Algorithm 2 (2M) and its third-order extension
 * (3M) from the authors' reference code, in data prediction.
 *
 * Step i uses the model outputs at the last `order` grid points: order 1 is DDIM; 2M is
 * `D' = (1 + 1/(2r))·D_i − 1/(2r)·D_{i−1}` with `r = h_{i−1}/h_i` followed by a DDIM step with
 * `D'`; 3M adds the second difference with the exponential-integrator weights φ_2, φ_3. The
 * first steps warm up at order 1, 2, …; `lowerOrderFinal` lowers the last steps at every step
 * count (the LD3 reference's samplers; `lowerOrderFinalBelow: 15` is DPM-Solver's and
 * diffusers' rule). NFE = N.
 *
 * 3M comes in two forms ({@linkcode Dpm3MVariant}). By default it is the form of DPM-Solver's
 * and LD3's code, which weights the second divided difference by `1/(r0 + r1)`: only second
 * order asymptotically, but closer to the exact solution than the third-order form from 4 to
 * ~40 steps on the solver tests' mixture (docs/solver-orders.md). `variant3M: "exact"` weights it
 * by `2/(r0 + r1)`, which makes the step exact for outputs quadratic in λ (third order).
 *
 * @module
 */
import type { NoiseSchedule } from "../noise_schedule.ts";
import { type Grid, type PlanSampler, planSampler, type SolverPlan } from "./plan.ts";
import {
  checkBoolOption,
  checkGrid,
  checkIntOption,
  checkLowerOrderFinalBelow,
  type GridValues,
  gridValues,
  multistepOrders,
  phi,
} from "./_coefficients.ts";
import { PlanBuilder } from "./_plan_builder.ts";

/**
 * The two forms of DPM-Solver++(3M): `reference` weights the second divided difference by
 * `1/(r0 + r1)` (DPM-Solver's and LD3's code), `exact` by `2/(r0 + r1)` (third order).
 */
export type Dpm3MVariant = "reference" | "exact";

/** Every {@linkcode Dpm3MVariant}. */
export const DPM_3M_VARIANTS: readonly Dpm3MVariant[] = ["reference", "exact"];

/** Options of {@linkcode dpmSolverPPPlan}. */
export interface DpmSolverPPOptions {
  /** Multistep order: 1 (DDIM), 2 (2M) or 3 (3M). @default {3} */
  order?: number;
  /** Use lower orders for the final steps (as the reference code). @default {true} */
  lowerOrderFinal?: boolean;
  /**
   * Lower the final orders only when N is below this (15: DPM-Solver's and diffusers' rule).
   * @default {Infinity (every step count, as the LD3 reference's samplers)}
   */
  lowerOrderFinalBelow?: number;
  /** The form of the third-order step. @default {"reference"} */
  variant3M?: Dpm3MVariant;
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

/**
 * DPM-Solver++(3M) step from grid point i (needs i ≥ 2), in the form `variant` (see
 * {@linkcode Dpm3MVariant}).
 */
export function dpmSolverPP3MCoefficients(
  values: GridValues,
  i: number,
  variant: Dpm3MVariant = "reference",
): MultistepCoefficients {
  const lambda = values.lambda;
  const h = lambda[i + 1] - lambda[i];
  const r0 = (lambda[i] - lambda[i - 1]) / h;
  const r1 = (lambda[i - 1] - lambda[i - 2]) / h;
  const a = values.alpha[i + 1];
  // Divided differences as coefficient vectors over (D_i, D_{i−1}, D_{i−2}), D' = dD/dλ:
  // D1_0 ≈ h·D' half a step back, D1_1 ≈ h·D' one and a half steps back; D1 ≈ h·D' and
  // D2 ≈ h²·D'' at λ_i are the derivatives of the quadratic through the three outputs. The
  // factor 2 of "exact" makes the step exact for outputs quadratic in λ; the reference form
  // gives the D'' term half its weight and is second order (see local_orders_test.ts).
  const weight = variant === "exact" ? 2 : 1;
  const d10 = [1 / r0, -1 / r0, 0];
  const d11 = [0, 1 / r1, -1 / r1];
  const d1 = d10.map((v, k) => v + (r0 / (r0 + r1)) * (v - d11[k]));
  const d2 = d10.map((v, k) => (weight * (v - d11[k])) / (r0 + r1));
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
  const lowerOrderFinalBelow = options.lowerOrderFinalBelow ?? Infinity;
  const variant3M = options.variant3M ?? "reference";
  checkIntOption("order", order, 1, 3);
  checkBoolOption("lowerOrderFinal", lowerOrderFinal);
  checkLowerOrderFinalBelow(lowerOrderFinalBelow);
  if (!DPM_3M_VARIANTS.includes(variant3M)) {
    throw new RangeError(
      `Option variant3M must be one of ${DPM_3M_VARIANTS.join(", ")}: got ${String(variant3M)}`,
    );
  }
  return { order, lowerOrderFinal, lowerOrderFinalBelow, variant3M };
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
  const { order, lowerOrderFinal, lowerOrderFinalBelow, variant3M } = resolve(options);
  const steps = checkGrid(grid);
  const values = gridValues(schedule, grid.t1);
  const orders = multistepOrders(steps, order, lowerOrderFinal, lowerOrderFinalBelow);
  const plan = new PlanBuilder(grid);
  const outputs: number[] = []; // registers of D_0, D_1, … (newest last)
  let x = 0;
  for (let i = 0; i < steps; i++) {
    outputs.push(plan.eval(x, i));
    const c = orders[i] === 1
      ? dpmSolverPP1Coefficients(values, i)
      : orders[i] === 2
      ? dpmSolverPP2MCoefficients(values, i)
      : dpmSolverPP3MCoefficients(values, i, variant3M);
    x = plan.combine([
      { coef: c.x, reg: x },
      ...c.d.map((coef, k) => ({ coef, reg: outputs[i - k] })),
    ]);
  }
  return plan.build(x);
}

/** Samples with multistep DPM-Solver++: `runPlan(dpmSolverPPPlan(...), denoiser, xT)`. */
export const dpmSolverPP: PlanSampler<DpmSolverPPOptions> = planSampler(dpmSolverPPPlan);
