/**
 * UniPC, Zhao et al. 2023, "UniPC: A Unified Predictor-Corrector Framework for Fast Sampling of
 * Diffusion Models" (Algorithms 2–3: multistep UniP-p with the UniC-p corrector), in data
 * prediction with `B(h) = h` (bh1) or `B(h) = e^h − 1` (bh2).
 *
 * Step i predicts `x_{i+1}` from the last p model outputs (UniP-p), evaluates the model there
 * at `t2[i+1]`, and corrects `x_{i+1}` with that new output (UniC-p) — the output is then reused
 * by the next step, so the corrector costs no extra NFE. No correction follows the final step.
 * The weights ρ solve the p×p Vandermonde-type system `Σ_k ρ_k r_k^{j} = b_j` in
 * `r_k = (λ_{i−k} − λ_i)/h_i` (r = 1 for the new output); the order-2 predictor and the order-1
 * corrector use the closed form ρ = ½. Orders warm up 1, 2, …; `lowerOrderFinal` lowers the
 * last steps for N < 15. NFE = N.
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
  solveLinear,
} from "./_coefficients.ts";
import { PlanBuilder } from "./_plan_builder.ts";

/** The B(h) choices of UniPC. */
export type UniPcVariant = "bh1" | "bh2";

/** Options of {@linkcode uniPcPlan}. */
export interface UniPcOptions {
  /** Predictor order p (1–3); with the corrector the step is accurate to order p + 1. @default {3} */
  order?: number;
  /** `B(h) = h` ("bh1") or `B(h) = e^h − 1` ("bh2"). @default {"bh1"} */
  variant?: UniPcVariant;
  /** Use lower orders for the final steps when N < 15. @default {true} */
  lowerOrderFinal?: boolean;
  /**
   * Apply the UniC corrector. Without it UniPC is the plain UniP predictor (order 1 is then
   * DDIM). @default {true}
   */
  corrector?: boolean;
}

/**
 * One UniPC step: predictor `x' = x·x_i + Σ_k m[k]·D_{i−k}` and, unless it is the final step,
 * corrector `x_{i+1} = x·x_i + Σ_k mc[k]·D_{i−k} + mNew·D(x', t_{i+1})`.
 */
export interface UniPcCoefficients {
  /** Weight of the state `x_i` (σ_{i+1}/σ_i), shared by predictor and corrector. */
  readonly x: number;
  /** Predictor weights of the data predictions `D_i`, `D_{i−1}`, …, newest first. */
  readonly m: readonly number[];
  /**
   * Corrector weights: `m` on `D_i`, `D_{i−1}`, … and `mNew` on `D(x', t_{i+1})`; absent on
   * the final step and without UniC.
   */
  readonly corrector?: { readonly m: readonly number[]; readonly mNew: number };
}

/**
 * Coefficients of the UniPC step from grid point `i` with predictor order `order`.
 *
 * @param values Schedule values on the step grid.
 * @param i Step index (needs `i ≥ order − 1`).
 * @param order Predictor order p.
 * @param variant B(h) choice.
 * @param correct Whether to compute the corrector.
 */
export function uniPcCoefficients(
  values: GridValues,
  i: number,
  order: number,
  variant: UniPcVariant,
  correct: boolean,
): UniPcCoefficients {
  const lambda = values.lambda;
  const h = lambda[i + 1] - lambda[i];
  const a = values.alpha[i + 1];
  // r_k for the older outputs D_{i−1}, …, D_{i−p+1}, then 1 for the new output.
  const rks: number[] = [];
  for (let k = 1; k < order; k++) rks.push((lambda[i - k] - lambda[i]) / h);
  rks.push(1);
  const bh = variant === "bh1" ? -h : Math.expm1(-h);
  // b_j = (−1)^j j! φ_{j+1}(h) / B(h), j = 1..p; system rows R_j = r^{j−1}.
  const b: number[] = [];
  let factorial = 1;
  for (let j = 1; j <= order; j++) {
    factorial *= j;
    b.push(((j % 2 === 0 ? 1 : -1) * factorial * phi(j + 1, h)) / bh);
  }
  const rows = b.map((_, j) => rks.map((r) => r ** j));
  // x_base = (σ_{i+1}/σ_i)·x_i − α·φ_1·D_i, the DDIM step; corrections are −α·B(h)·Σ ρ_k·ΔD_k
  // with ΔD_k = (D_{i−k} − D_i)/r_k.
  const x = values.sigma[i + 1] / values.sigma[i];
  const base = -a * phi(1, h);
  function expand(rho: readonly number[]): number[] {
    const m = new Array<number>(order).fill(0);
    m[0] = base;
    rho.forEach((p, k) => {
      const w = (-a * bh * p) / rks[k];
      m[k + 1] += w;
      m[0] -= w;
    });
    return m;
  }
  const rhoP = order === 1
    ? []
    : order === 2
    ? [0.5]
    : solveLinear(rows.slice(0, order - 1).map((r) => r.slice(0, order - 1)), b.slice(0, -1));
  const m = expand(rhoP);
  if (!correct) return { x, m };
  const rhoC = order === 1 ? [0.5] : solveLinear(rows, b);
  const mc = expand(rhoC.slice(0, -1));
  const mNew = -a * bh * rhoC[order - 1];
  mc[0] -= mNew;
  return { x, m, corrector: { m: mc, mNew } };
}

/** Resolves and validates the options. */
function resolve(options: UniPcOptions): Required<UniPcOptions> {
  const order = options.order ?? 3;
  const variant = options.variant ?? "bh1";
  const lowerOrderFinal = options.lowerOrderFinal ?? true;
  const corrector = options.corrector ?? true;
  checkIntOption("order", order, 1, 3);
  if (variant !== "bh1" && variant !== "bh2") {
    throw new RangeError(`Option variant must be "bh1" or "bh2": got ${String(variant)}`);
  }
  checkBoolOption("lowerOrderFinal", lowerOrderFinal);
  checkBoolOption("corrector", corrector);
  return { order, variant, lowerOrderFinal, corrector };
}

/**
 * Unrolls UniPC on a grid.
 *
 * @throws {RangeError} For an order outside 1–3, an unknown variant or a malformed grid.
 * @example
 * ```ts
 * import { veSchedule } from "../noise_schedule.ts";
 * const t1 = Float64Array.from([80, 10, 1, 0.1, 0.002]);
 * console.log(uniPcPlan(veSchedule(), { t1, t2: t1.slice() }).nfe); // 4
 * ```
 */
export function uniPcPlan(
  schedule: NoiseSchedule,
  grid: Grid,
  options: UniPcOptions = {},
): SolverPlan {
  const { order, variant, lowerOrderFinal, corrector } = resolve(options);
  const steps = checkGrid(grid);
  const values = gridValues(schedule, grid.t1);
  const orders = multistepOrders(steps, order, lowerOrderFinal);
  const plan = new PlanBuilder(grid);
  const outputs = [plan.eval(0, 0)]; // D_0, D_1, … (newest last)
  let x = 0;
  for (let i = 0; i < steps; i++) {
    const last = i === steps - 1;
    const c = uniPcCoefficients(values, i, orders[i], variant, corrector && !last);
    const history = (m: readonly number[]) => m.map((coef, k) => ({ coef, reg: outputs[i - k] }));
    const xPred = plan.combine([{ coef: c.x, reg: x }, ...history(c.m)]);
    if (last) {
      x = xPred;
      break;
    }
    const dNew = plan.eval(xPred, i + 1);
    x = c.corrector
      ? plan.combine([
        { coef: c.x, reg: x },
        ...history(c.corrector.m),
        { coef: c.corrector.mNew, reg: dNew },
      ])
      : xPred;
    outputs.push(dNew);
  }
  return plan.build(x);
}

/** Samples with UniPC: `runPlan(uniPcPlan(denoiser.schedule, grid, options), denoiser, xT)`. */
export const uniPc: PlanSampler<UniPcOptions> = planSampler(uniPcPlan);
