/**
 * Singlestep DPM-Solver (orders 1–3), Lu et al. 2022, "DPM-Solver: A Fast ODE Solver for
 * Diffusion Probabilistic Model Sampling in Around 10 Steps" (Algorithms 1–2, order
 * splitting of §3.4), written in data prediction as the singlestep DPM-Solver++ of Lu et al.
 * 2022 ("DPM-Solver++", §4).
 *
 * The grid has NFE + 1 points. Consecutive grid intervals are grouped into steps of order k
 * (k intervals each, see {@linkcode singlestepOrders}); the intermediate evaluations of a step
 * sit *at* the grid points inside its group, so `r1 = (λ_{s+1} − λ_s)/h`,
 * `r2 = (λ_{s+2} − λ_s)/h` come from the grid and every evaluation uses its own `t2`.
 *
 * - Order 1 is DDIM.
 * - Order 2 is DPM-Solver++(2S) in Taylor form: `x_t = DDIM(m0) + α_t·φ_2·(m1 − m0)/r1`.
 * - Order 3: the second stage is DPM-Solver's `x_{s2} = DDIM(m0) + α_{s2}·(r2/r1)·φ_2(r2·h)·(m1 −
 *   m0)` and the final update uses both stages through the first and second divided
 *   differences (`D1 ≈ h·D'`, `D2 ≈ h²·D''`), exact for model outputs quadratic in λ for any
 *   r1 < r2. It is third order when `r2 = 2/3` (λ-uniform inner points, the case of
 *   DPM-Solver's own r1 = 1/3, r2 = 2/3) and second order for other splits.
 *
 * @module
 */
import type { NoiseSchedule } from "../noise_schedule.ts";
import { type Grid, type PlanSampler, planSampler, type SolverPlan } from "./plan.ts";
import { checkGrid, checkIntOption, type GridValues, gridValues, phi } from "./_coefficients.ts";
import { PlanBuilder } from "./_plan_builder.ts";

/** Options of {@linkcode dpmSolverPlan}. */
export interface DpmSolverOptions {
  /** Highest order of a singlestep step: 1, 2 or 3. @default {3} */
  order?: number;
}

/**
 * DPM-Solver's split of an NFE budget into singlestep orders (§3.4 of the paper): order 3 gives
 * `[3, …, 3, 2, 1]`, `[3, …, 3, 1]` or `[3, …, 3, 2]` for NFE mod 3 = 0, 1, 2; order 2 gives
 * `[2, …, 2]` or `[2, …, 2, 1]`; order 1 gives `[1, …, 1]`. The orders sum to `nfe`.
 *
 * @example
 * ```ts
 * console.log(singlestepOrders(10, 3)); // [3, 3, 3, 1]
 * ```
 */
export function singlestepOrders(nfe: number, order: number): number[] {
  checkIntOption("order", order, 1, 3);
  checkIntOption("nfe", nfe, 1, Number.MAX_SAFE_INTEGER);
  const repeat = (k: number, n: number) => new Array<number>(Math.max(n, 0)).fill(k);
  if (order === 3) {
    const full = Math.floor(nfe / 3);
    if (nfe % 3 === 0) return full === 1 ? [2, 1] : [...repeat(3, full - 1), 2, 1];
    return [...repeat(3, full), nfe % 3];
  }
  if (order === 2) return nfe % 2 === 0 ? repeat(2, nfe / 2) : [...repeat(2, (nfe - 1) / 2), 1];
  return repeat(1, nfe);
}

/** One intermediate or final update `x = x·x_s + Σ_k m[k]·m_k` (m_0 at the step start). */
export interface StageCoefficients {
  /** Weight of the state `x_s` at the start of the step. */
  readonly x: number;
  /** Weights of the model outputs `m_0` (at the step start), `m_1`, … of the stages so far. */
  readonly m: readonly number[];
}

/** DDIM from grid point `s` to grid point `j`. */
function ddimStage(values: GridValues, s: number, j: number): StageCoefficients {
  const h = values.lambda[j] - values.lambda[s];
  return { x: values.sigma[j] / values.sigma[s], m: [-values.alpha[j] * phi(1, h)] };
}

/**
 * Coefficients of a singlestep step of order 2 from grid point `s` to `s + 2`:
 * `[stage at s+1, final at s+2]`.
 */
export function dpmSolver2SCoefficients(values: GridValues, s: number): StageCoefficients[] {
  const lambda = values.lambda;
  const h = lambda[s + 2] - lambda[s];
  const r1 = (lambda[s + 1] - lambda[s]) / h;
  const a = values.alpha[s + 2];
  const p1 = phi(1, h);
  const p2 = phi(2, h);
  return [
    ddimStage(values, s, s + 1),
    { x: values.sigma[s + 2] / values.sigma[s], m: [-a * p1 - a * p2 / r1, a * p2 / r1] },
  ];
}

/**
 * Coefficients of a singlestep step of order 3 from grid point `s` to `s + 3`:
 * `[stage at s+1, stage at s+2, final at s+3]`.
 */
export function dpmSolver3SCoefficients(values: GridValues, s: number): StageCoefficients[] {
  const lambda = values.lambda;
  const h = lambda[s + 3] - lambda[s];
  const r1 = (lambda[s + 1] - lambda[s]) / h;
  const r2 = (lambda[s + 2] - lambda[s]) / h;
  const a2 = values.alpha[s + 2];
  const a = values.alpha[s + 3];
  // Second stage: DDIM to s+2 plus the first-order correction from m1.
  const c22 = a2 * (r2 / r1) * phi(2, r2 * h);
  const stage2: StageCoefficients = {
    x: values.sigma[s + 2] / values.sigma[s],
    m: [-a2 * phi(1, r2 * h) - c22, c22],
  };
  // Final: D1 ≈ h·D' and D2 ≈ h²·D'' from the differences (m1 − m0)/r1 and (m2 − m0)/r2.
  const d10 = [-1 / r1, 1 / r1, 0];
  const d11 = [-1 / r2, 0, 1 / r2];
  const d1 = d10.map((v, k) => (r2 * v - r1 * d11[k]) / (r2 - r1));
  const d2 = d10.map((v, k) => (2 * (d11[k] - v)) / (r2 - r1));
  const p1 = phi(1, h);
  const p2 = phi(2, h);
  const p3 = phi(3, h);
  const final: StageCoefficients = {
    x: values.sigma[s + 3] / values.sigma[s],
    m: [0, 1, 2].map((k) => a * ((k === 0 ? -p1 : 0) + p2 * d1[k] - p3 * d2[k])),
  };
  return [ddimStage(values, s, s + 1), stage2, final];
}

/**
 * Unrolls singlestep DPM-Solver(++) on a grid of NFE + 1 points.
 *
 * @throws {RangeError} For an order outside 1–3 or a malformed grid.
 * @example
 * ```ts
 * import { veSchedule } from "../noise_schedule.ts";
 * const t1 = Float64Array.from([80, 20, 5, 1, 0.3, 0.002]);
 * console.log(dpmSolverPlan(veSchedule(), { t1, t2: t1.slice() }).nfe); // 5
 * ```
 */
export function dpmSolverPlan(
  schedule: NoiseSchedule,
  grid: Grid,
  options: DpmSolverOptions = {},
): SolverPlan {
  const order = options.order ?? 3;
  checkIntOption("order", order, 1, 3);
  const nfe = checkGrid(grid);
  const values = gridValues(schedule, grid.t1);
  const plan = new PlanBuilder(grid);
  let x = 0;
  let s = 0;
  for (const k of singlestepOrders(nfe, order)) {
    const stages = k === 1
      ? [ddimStage(values, s, s + 1)]
      : k === 2
      ? dpmSolver2SCoefficients(values, s)
      : dpmSolver3SCoefficients(values, s);
    const outputs = [plan.eval(x, s)];
    let stageState = x;
    stages.forEach((c, j) => {
      stageState = plan.combine([
        { coef: c.x, reg: x },
        ...c.m.map((coef, q) => ({ coef, reg: outputs[q] })),
      ]);
      // Inner stages feed an evaluation at their own grid point.
      if (j < stages.length - 1) outputs.push(plan.eval(stageState, s + j + 1));
    });
    x = stageState;
    s += k;
  }
  return plan.build(x);
}

/** Samples with singlestep DPM-Solver: `runPlan(dpmSolverPlan(...), denoiser, xT)`. */
export const dpmSolver: PlanSampler<DpmSolverOptions> = planSampler(dpmSolverPlan);
