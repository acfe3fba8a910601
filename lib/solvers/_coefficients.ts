/**
 * Private helpers shared by the solver files: schedule values on a grid, the exponential
 * integrator's φ-functions, a tiny dense linear solve, option checks and order schedules.
 *
 * @module
 */
import type { Grid } from "./plan.ts";
import type { NoiseSchedule } from "../noise_schedule.ts";

/** α, σ and λ at every point of the step grid `t1`. */
export interface GridValues {
  /** Signal scale α(t1[i]) at every grid point. */
  readonly alpha: Float64Array;
  /** Noise level σ(t1[i]) at every grid point. */
  readonly sigma: Float64Array;
  /** Half-log-SNR λ(t1[i]) = log(α/σ) at every grid point, increasing as t decreases. */
  readonly lambda: Float64Array;
}

/** Evaluates the schedule once at every step-grid point. */
export function gridValues(schedule: NoiseSchedule, t1: ArrayLike<number>): GridValues {
  const n = t1.length;
  const alpha = new Float64Array(n);
  const sigma = new Float64Array(n);
  const lambda = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    alpha[i] = schedule.alpha(t1[i]);
    sigma[i] = schedule.sigma(t1[i]);
    lambda[i] = schedule.lambda(t1[i]);
  }
  return { alpha, sigma, lambda };
}

/**
 * The data-prediction φ-functions `φ_k(h) = (e^{−h} − Σ_{n<k} (−h)^n/n!) / h^{k−1}`, so
 * φ_1 = e^{−h} − 1, φ_2 = φ_1/h + 1, φ_3 = φ_2/h − ½, φ_4 = φ_3/h + 1/6 (the conventions of
 * the DPM-Solver++ and UniPC reference code). Small |h| uses the power series, which avoids the
 * cancellation of the recurrence.
 */
export function phi(k: number, h: number): number {
  if (Math.abs(h) > 0.5) {
    let value = Math.expm1(-h);
    let factorial = 1;
    for (let j = 2; j <= k; j++) {
      value = value / h - (j % 2 === 0 ? -1 : 1) / factorial;
      factorial *= j;
    }
    return value;
  }
  // Σ_{n≥k} (−1)^n h^{n−k+1} / n!
  let factorial = 1;
  for (let j = 2; j <= k; j++) factorial *= j;
  let term = (k % 2 === 0 ? 1 : -1) * h / factorial; // n = k
  let sum = term;
  for (let n = k + 1; n < k + 30; n++) {
    term *= -h / n;
    sum += term;
    if (Math.abs(term) < 1e-18 * Math.abs(sum)) break;
  }
  return sum;
}

/** Solves the small dense system `A x = b` by Gaussian elimination with partial pivoting. */
export function solveLinear(a: readonly (readonly number[])[], b: readonly number[]): number[] {
  const n = b.length;
  const m = a.map((row, i) => [...row, b[i]]);
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) {
      if (Math.abs(m[r][col]) > Math.abs(m[pivot][col])) pivot = r;
    }
    if (m[pivot][col] === 0) throw new RangeError(`Singular coefficient system at column ${col}`);
    [m[col], m[pivot]] = [m[pivot], m[col]];
    for (let r = col + 1; r < n; r++) {
      const f = m[r][col] / m[col][col];
      for (let c = col; c <= n; c++) m[r][c] -= f * m[col][c];
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = m[r][n];
    for (let c = r + 1; c < n; c++) s -= m[r][c] * x[c];
    x[r] = s / m[r][r];
  }
  return x;
}

/**
 * Checks that a grid has N+1 ≥ 2 strictly decreasing, finite step times and an evaluation grid
 * of the same length; returns N.
 */
export function checkGrid(grid: Grid): number {
  const n = grid.t1.length;
  if (n < 2) throw new RangeError(`grid.t1 needs at least 2 points: got ${n}`);
  if (grid.t2.length !== n) {
    throw new RangeError(`grid.t2 must have ${n} points like grid.t1: got ${grid.t2.length}`);
  }
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(grid.t1[i]) || !Number.isFinite(grid.t2[i])) {
      throw new RangeError(`grid times must be finite: index ${i}`);
    }
    if (i > 0 && !(grid.t1[i] < grid.t1[i - 1])) {
      throw new RangeError(`grid.t1 must decrease strictly: index ${i}: ${grid.t1[i]}`);
    }
  }
  return n - 1;
}

/** Checks an integer option in `[min, max]`. */
export function checkIntOption(name: string, value: number, min: number, max: number): void {
  if (!(Number.isInteger(value) && value >= min && value <= max)) {
    throw new RangeError(`Option ${name} must be an integer in [${min}, ${max}]: got ${value}`);
  }
}

/** Checks a boolean option. */
export function checkBoolOption(name: string, value: unknown): void {
  if (typeof value !== "boolean") {
    throw new TypeError(`Option ${name} must be a boolean: got ${String(value)}`);
  }
}

/**
 * Step count below which `lowerOrderFinal` lowers the order of the last steps (the DPM-Solver
 * reference and diffusers use the same threshold: at ≥ 15 steps the final steps are short enough
 * for the full order to stay stable).
 */
export const LOWER_ORDER_FINAL_BELOW = 15;

/**
 * Order of every step of a multistep method: warm-up `1, 2, …, order` (only that many past
 * model outputs exist), and, with `lowerOrderFinal` and fewer than
 * {@linkcode LOWER_ORDER_FINAL_BELOW} steps, at most `N − i` for step i.
 */
export function multistepOrders(steps: number, order: number, lowerOrderFinal: boolean): number[] {
  const orders: number[] = [];
  const lowerFinal = lowerOrderFinal && steps < LOWER_ORDER_FINAL_BELOW;
  for (let i = 0; i < steps; i++) {
    orders.push(Math.min(order, i + 1, lowerFinal ? steps - i : order));
  }
  return orders;
}
