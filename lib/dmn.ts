/**
 * DMN, the model-free time-step optimisation of Xue et al. 2024 ("Accelerating Diffusion
 * Sampling with Optimized Time Steps", CVPR): place the N steps of a multistep
 * exponential-integrator solver of a given order where a bound on its discretisation error is
 * smallest. It needs the schedule, the order and N — no network, no samples.
 *
 * The model of the bound, in our words. A data-prediction multistep solver advances
 * `x_{i+1}/σ_{i+1} = x_i/σ_i + ∫_{λ_i}^{λ_{i+1}} e^λ P_i(λ) dλ`, where P_i interpolates the
 * model's data predictions `D_m` at the last `p_i` points (Lagrange basis `ℓ_{i,m}`). An error
 * `δ_m` of the prediction at point m therefore reaches the sample with the weights
 * `J_{i,m} = ∫_{λ_i}^{λ_{i+1}} e^λ ℓ_{i,m}(λ) dλ` in every step i that uses it (times σ_N).
 * With errors of the size the DMN paper assumes, `|δ_m| ≈ e_m = (σ/α)(t_m)` for pixel-space
 * models (`errorPower` 1) or `σ²/α` for latent models (`errorPower` 2, VP σ and α of λ_m), the
 * bound is `Σ_i Σ_m |J_{i,m}|·e_m` ({@linkcode dmnObjective} says why every step counts on its
 * own). {@linkcode dmnGrid} minimises it over the interior λ's (Nelder–Mead on log-gaps, from
 * the λ-uniform logSNR grid), with the step orders of ld3's multistep solvers (warm-up 1, 2, …,
 * lowered final orders). For DDIM (order 1) the bound is `Σ_i (e^{h_i} − 1)`, whose minimiser is
 * the logSNR grid.
 *
 * @module
 */
import { nelderMead } from "./_minimize.ts";
import type { NoiseSchedule } from "./noise_schedule.ts";
import { multistepOrders } from "./solvers/mod.ts";

/** Options of {@linkcode dmnGrid}. */
export interface DmnOptions {
  /** The solver's multistep order (1–4). @default {3} */
  order?: number;
  /**
   * The data-prediction error model: 1 for `σ/α` (pixel-space models), 2 for `σ²/α` (latent
   * models, as the DMN paper recommends). @default {1}
   */
  errorPower?: 1 | 2;
}

/**
 * `W_k(h) = ∫_0^h e^{u−h} u^k/k! du`: the weight of the k-th Taylor term of an exponential
 * integrator step of size h (a power series for small h, integration by parts otherwise).
 */
export function expMoment(k: number, h: number): number {
  if (h < 1) {
    // e^{−h} Σ_n h^{n+k+1} / (n!·k!·(n+k+1))
    let kFactorial = 1;
    for (let j = 2; j <= k; j++) kFactorial *= j;
    let term = h ** (k + 1) / kFactorial; // n = 0 without the 1/(n+k+1)
    let sum = term / (k + 1);
    for (let n = 1; n < 60; n++) {
      term *= h / n;
      const add = term / (n + k + 1);
      sum += add;
      if (add < 1e-17 * sum) break;
    }
    return Math.exp(-h) * sum;
  }
  let w = -Math.expm1(-h);
  let power = 1;
  for (let j = 1; j <= k; j++) {
    power *= h / j;
    w = power - w;
  }
  return w;
}

/** Coefficients (ascending powers of u) of the Lagrange basis polynomials on `nodes`. */
function lagrangeCoefficients(nodes: readonly number[]): number[][] {
  return nodes.map((um, m) => {
    let poly = [1];
    nodes.forEach((uj, j) => {
      if (j === m) return;
      const scale = 1 / (um - uj);
      const next = new Array<number>(poly.length + 1).fill(0);
      poly.forEach((c, k) => {
        next[k + 1] += c * scale;
        next[k] -= c * uj * scale;
      });
      poly = next;
    });
    return poly;
  });
}

/** The assumed size `e_m` of the data-prediction error at λ (see the module doc). */
function predictionError(lambda: number, errorPower: 1 | 2): number {
  const sigmaOverAlpha = Math.exp(-lambda);
  return errorPower === 1 ? sigmaOverAlpha : sigmaOverAlpha / Math.sqrt(1 + Math.exp(2 * lambda));
}

/**
 * The DMN bound of a λ grid (increasing, λ_0 = λ(T)) for the step orders `orders` (one per
 * step): `Σ_i Σ_m |J_{i,m}|·e_m` with `J_{i,m} = ∫_{λ_i}^{λ_{i+1}} e^λ ℓ_{i,m}(λ) dλ`, scaled
 * by `e^{−λ_N}` so that its size does not depend on the range.
 *
 * Every step's weights enter with their own absolute value (the triangle inequality over steps
 * as well as over points). Summing a point's weights over the steps that use it before taking
 * the absolute value, `Σ_m |Σ_i J_{i,m}|·e_m`, lets extrapolation weights of neighbouring
 * steps cancel, and the minimiser exploits that: it puts the first interior point of a 4-step
 * VE grid at σ ≈ 0.06, a grid no solver does well on. (LD3's copy of DMN guards its first and
 * last steps against this in its own way: up to N = 6 its grids and these agree within 20 % point
 * by point; from N = 8 on it lets the middle steps cancel and puts, e.g., the first interior
 * point of a 10-step VE grid at σ ≈ 28.5 where this one has 6.5.)
 */
export function dmnObjective(
  lambdas: ArrayLike<number>,
  orders: readonly number[],
  errorPower: 1 | 2 = 1,
): number {
  const n = lambdas.length - 1;
  const top = lambdas[n];
  let bound = 0;
  for (let i = 0; i < n; i++) {
    const h = lambdas[i + 1] - lambdas[i];
    const p = Math.min(orders[i], i + 1);
    const nodes = Array.from({ length: p }, (_, j) => lambdas[i - j] - lambdas[i]);
    const scale = Math.exp(lambdas[i + 1] - top);
    lagrangeCoefficients(nodes).forEach((coefficients, j) => {
      let factorial = 1;
      let integral = 0;
      coefficients.forEach((c, k) => {
        if (k > 1) factorial *= k;
        integral += c * factorial * expMoment(k, h);
      });
      bound += Math.abs(scale * integral) * predictionError(lambdas[i - j], errorPower);
    });
  }
  return bound;
}

/** λ's of a grid from log-gap parameters: gap_i ∝ e^{θ_i} (θ_0 fixed at 0). */
function lambdasOf(theta: ArrayLike<number>, lo: number, hi: number): Float64Array {
  const n = theta.length + 1;
  const gaps = Float64Array.from({ length: n }, (_, i) => Math.exp(i === 0 ? 0 : theta[i - 1]));
  const total = gaps.reduce((a, b) => a + b, 0);
  const out = new Float64Array(n + 1);
  out[0] = lo;
  for (let i = 0; i < n; i++) out[i + 1] = out[i] + (hi - lo) * gaps[i] / total;
  out[n] = hi;
  return out;
}

/**
 * The DMN grid: N+1 times from T to eps whose λ's minimise {@linkcode dmnObjective} for a
 * multistep solver of order `order` (warm-up and lowered final orders as ld3's solvers).
 *
 * @throws {RangeError} For steps < 1 or an order outside 1–4.
 * @example
 * ```ts
 * import { veSchedule } from "./noise_schedule.ts";
 * const t = dmnGrid(veSchedule(), 6, { order: 3 });
 * console.log(t.length, t[0], t[6]); // 7 80 0.002
 * ```
 */
export function dmnGrid(
  schedule: NoiseSchedule,
  steps: number,
  options: DmnOptions = {},
): Float64Array {
  const order = options.order ?? 3;
  const errorPower = options.errorPower ?? 1;
  if (!(Number.isInteger(steps) && steps >= 1)) {
    throw new RangeError(`steps must be an integer >= 1: got ${steps}`);
  }
  if (!(Number.isInteger(order) && order >= 1 && order <= 4)) {
    throw new RangeError(`DMN order must be an integer in [1, 4]: got ${order}`);
  }
  if (errorPower !== 1 && errorPower !== 2) {
    throw new RangeError(`DMN errorPower must be 1 or 2: got ${errorPower}`);
  }
  const lo = schedule.lambda(schedule.tMax);
  const hi = schedule.lambda(schedule.tMin);
  const orders = multistepOrders(steps, order, true);
  let lambdas = lambdasOf(new Float64Array(steps - 1), lo, hi);
  if (steps > 1) {
    const best = nelderMead(
      (theta) => dmnObjective(lambdasOf(theta, lo, hi), orders, errorPower),
      new Float64Array(steps - 1),
    );
    lambdas = lambdasOf(best.x, lo, hi);
  }
  const out = Float64Array.from(lambdas, (l) => schedule.inverseLambda(l));
  out[0] = schedule.tMax;
  out[steps] = schedule.tMin;
  return out;
}
