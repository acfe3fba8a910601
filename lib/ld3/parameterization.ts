/**
 * LD3's schedule parameterization (Tong et al. 2025): two learnable vectors of length N+1
 * become the step grid `t1` and the decoupled evaluation grid `t2`.
 *
 * - `p = softmax(θ1)`, `c = cumsum(p)`, `u_k = (c_k − c_0)/(c_N − c_0)` ∈ [0, 1];
 *   `y_k = y(T) + (y(eps) − y(T))·u_k` where `y` is `t` (`time_mode: time`) or the half-log-SNR
 *   λ (`time_mode: lambda`), and `t1_k = y⁻¹(y_k)`. All-ones θ1 gives the time-uniform or the
 *   logSNR grid. (θ1_0 cancels out of `u`: its gradient is always zero.)
 * - `t2_k = y⁻¹(y_k + clamp(θ2_k, −m, m))` for interior k, endpoints equal to t1's, with
 *   `m = win_rate · min_k |y_{k+1} − y_k|` (the smallest gap of the grid in y units).
 *
 * {@linkcode thetaToGridVjp} is the exact reverse of {@linkcode thetaToGrid} (including the
 * dependence of `m` on θ1 where θ2 is clipped), so gradients on `t1`/`t2` flow to θ1/θ2.
 *
 * @module
 */
import { dLambdaDt } from "../differentiable.ts";
import type { NoiseSchedule } from "../noise_schedule.ts";
import type { Grid } from "../solvers/plan.ts";

/** The variable the steps are affine in. */
export type TimeMode = "time" | "lambda";

/** Every {@linkcode TimeMode}. */
export const TIME_MODES: readonly TimeMode[] = ["time", "lambda"];

/** Options of the parameterization. */
export interface ParameterizationOptions {
  /** Steps affine in `t` or in λ. @default {"lambda"} */
  timeMode?: TimeMode;
  /** Half-width of the θ2 window as a fraction of the smallest grid gap. @default {0.5} */
  winRate?: number;
}

function resolve(options: ParameterizationOptions): { mode: TimeMode; winRate: number } {
  const mode = options.timeMode ?? "lambda";
  if (!TIME_MODES.includes(mode)) {
    throw new RangeError(`timeMode must be "time" or "lambda": got "${mode}"`);
  }
  const winRate = options.winRate ?? 0.5;
  if (!(winRate >= 0 && Number.isFinite(winRate))) {
    throw new RangeError(`winRate must be a non-negative number: got ${winRate}`);
  }
  return { mode, winRate };
}

/** `y(t)` of a mode. */
function toY(schedule: NoiseSchedule, mode: TimeMode, t: number): number {
  return mode === "time" ? t : schedule.lambda(t);
}

/** `t(y)` of a mode. */
function fromY(schedule: NoiseSchedule, mode: TimeMode, y: number): number {
  return mode === "time" ? y : schedule.inverseLambda(y);
}

/** `dt/dy` at time t. */
function dtDy(schedule: NoiseSchedule, mode: TimeMode, t: number): number {
  return mode === "time" ? 1 : 1 / dLambdaDt(schedule, t);
}

/** Grids from θ plus the intermediates the backward pass reuses. */
export interface ParameterizedGrid extends Grid {
  /** Step grid in y units (t or λ). */
  readonly y1: Float64Array;
  /** Evaluation grid in y units. */
  readonly y2: Float64Array;
  /** softmax(θ1). */
  readonly p: Float64Array;
  /** Window half-width m. */
  readonly window: number;
  /** Index j of the smallest gap `|y_{j+1} − y_j|`. */
  readonly minGapIndex: number;
}

function checkThetas(theta1: ArrayLike<number>, theta2: ArrayLike<number>): number {
  const n = theta1.length;
  if (n < 2) throw new RangeError(`theta1 needs at least 2 values: got ${n}`);
  if (theta2.length !== n) {
    throw new RangeError(`theta2 must have ${n} values like theta1: got ${theta2.length}`);
  }
  for (let k = 0; k < n; k++) {
    if (!Number.isFinite(theta1[k])) {
      throw new RangeError(`theta1[${k}] is not finite: ${theta1[k]}`);
    }
    if (!Number.isFinite(theta2[k])) {
      throw new RangeError(`theta2[${k}] is not finite: ${theta2[k]}`);
    }
  }
  return n - 1;
}

/** `u = normalise(cumsum(softmax(θ1)))` and `p`. */
function unitSteps(theta1: ArrayLike<number>): { u: Float64Array; p: Float64Array } {
  const n = theta1.length;
  let max = -Infinity;
  for (let k = 0; k < n; k++) max = Math.max(max, theta1[k]);
  const p = new Float64Array(n);
  let sum = 0;
  for (let k = 0; k < n; k++) sum += p[k] = Math.exp(theta1[k] - max);
  for (let k = 0; k < n; k++) p[k] /= sum;
  const c = new Float64Array(n);
  let acc = 0;
  for (let k = 0; k < n; k++) c[k] = acc += p[k];
  const u = new Float64Array(n);
  const span = c[n - 1] - c[0];
  for (let k = 0; k < n; k++) u[k] = (c[k] - c[0]) / span;
  u[0] = 0;
  u[n - 1] = 1;
  return { u, p };
}

/**
 * The step and evaluation grids of θ1, θ2.
 *
 * @param schedule The model's noise schedule (gives T, eps and λ).
 * @param theta1 N+1 values (all ones: uniform in the mode's variable).
 * @param theta2 N+1 values (zeros: t2 = t1). Endpoint entries are ignored.
 * @throws {RangeError} On mismatched lengths or non-finite values.
 *
 * @example
 * ```ts
 * import { veSchedule } from "../noise_schedule.ts";
 * const g = thetaToGrid(veSchedule(), new Float64Array(5).fill(1), new Float64Array(5));
 * console.log(g.t1[0], g.t1[4]); // 80 0.002
 * ```
 */
export function thetaToGrid(
  schedule: NoiseSchedule,
  theta1: ArrayLike<number>,
  theta2: ArrayLike<number>,
  options: ParameterizationOptions = {},
): ParameterizedGrid {
  const { mode, winRate } = resolve(options);
  const steps = checkThetas(theta1, theta2);
  const { u, p } = unitSteps(theta1);
  const yStart = toY(schedule, mode, schedule.tMax);
  const yEnd = toY(schedule, mode, schedule.tMin);
  const y1 = Float64Array.from(u, (v) => yStart + (yEnd - yStart) * v);
  y1[0] = yStart;
  y1[steps] = yEnd;
  const t1 = Float64Array.from(y1, (y) => fromY(schedule, mode, y));
  t1[0] = schedule.tMax;
  t1[steps] = schedule.tMin;
  let minGap = Infinity;
  let minGapIndex = 0;
  for (let j = 0; j < steps; j++) {
    const gap = Math.abs(y1[j + 1] - y1[j]);
    if (gap < minGap) {
      minGap = gap;
      minGapIndex = j;
    }
  }
  const window = winRate * minGap;
  const y2 = Float64Array.from(y1);
  const t2 = Float64Array.from(t1);
  for (let k = 1; k < steps; k++) {
    y2[k] = y1[k] + Math.min(Math.max(theta2[k], -window), window);
    t2[k] = fromY(schedule, mode, y2[k]);
  }
  return { t1, t2, y1, y2, p, window, minGapIndex };
}

/**
 * Reverse of {@linkcode thetaToGrid}: pulls `∂L/∂t1` and `∂L/∂t2` back to θ1 and θ2.
 *
 * Exact in θ up to the schedule's `dλ/dt` (closed form for VE and flow, a 4-point stencil
 * with ~1e-10 relative error otherwise; see `dLambdaDt`). Follows PyTorch's clamp: the
 * gradient reaches θ2_k when `|θ2_k| ≤ m`, and reaches `m` (hence θ1) when θ2_k is clipped.
 */
export function thetaToGridVjp(
  schedule: NoiseSchedule,
  theta1: ArrayLike<number>,
  theta2: ArrayLike<number>,
  cotangent: { t1: ArrayLike<number>; t2: ArrayLike<number> },
  options: ParameterizationOptions = {},
): { theta1: Float64Array; theta2: Float64Array } {
  const { mode, winRate } = resolve(options);
  const g = thetaToGrid(schedule, theta1, theta2, options);
  const n = g.t1.length;
  const steps = n - 1;
  if (cotangent.t1.length !== n || cotangent.t2.length !== n) {
    throw new RangeError(
      `cotangents must have ${n} values: got t1 ${cotangent.t1.length}, t2 ${cotangent.t2.length}`,
    );
  }
  const gy1 = new Float64Array(n);
  const gTheta2 = new Float64Array(n);
  let gWindow = 0;
  // Endpoints of both grids are fixed (T and eps): their cotangents go nowhere.
  for (let k = 1; k < steps; k++) {
    gy1[k] += cotangent.t1[k] * dtDy(schedule, mode, g.t1[k]);
    const gy2 = cotangent.t2[k] * dtDy(schedule, mode, g.t2[k]);
    gy1[k] += gy2;
    const th = theta2[k];
    if (th > g.window) gWindow += gy2;
    else if (th < -g.window) gWindow -= gy2;
    else gTheta2[k] = gy2;
  }
  // m = winRate·|y_{j+1} − y_j| at the smallest gap j.
  if (gWindow !== 0) {
    const j = g.minGapIndex;
    const sign = Math.sign(g.y1[j + 1] - g.y1[j]);
    gy1[j + 1] += gWindow * winRate * sign;
    gy1[j] -= gWindow * winRate * sign;
  }
  // y = yStart + (yEnd − yStart)·u, with u_0, u_N pinned.
  const yStart = g.y1[0];
  const yEnd = g.y1[steps];
  const gu = Float64Array.from(gy1, (v) => v * (yEnd - yStart));
  gu[0] = 0;
  gu[steps] = 0;
  // u_k = (c_k − c_0)/(c_N − c_0): with S = c_N − c_0 and Σ_k gu_k (c_k − c_0) = A,
  // ∂/∂c_j = gu_j/S − [j=0]·Σgu/S − ([j=N] − [j=0])·A/S².
  const p = g.p;
  const c = new Float64Array(n);
  let acc = 0;
  for (let k = 0; k < n; k++) c[k] = acc += p[k];
  const span = c[steps] - c[0];
  let sumGu = 0;
  let a = 0;
  for (let k = 0; k < n; k++) {
    sumGu += gu[k];
    a += gu[k] * (c[k] - c[0]);
  }
  const gc = Float64Array.from(gu, (v) => v / span);
  gc[0] -= sumGu / span;
  gc[steps] -= a / (span * span);
  gc[0] += a / (span * span);
  // c = cumsum(p): ∂/∂p_i = Σ_{j≥i} ∂/∂c_j.
  const gp = new Float64Array(n);
  acc = 0;
  for (let i = steps; i >= 0; i--) gp[i] = acc += gc[i];
  // p = softmax(θ1): ∂/∂θ_i = p_i (gp_i − ⟨gp, p⟩).
  let dot = 0;
  for (let i = 0; i < n; i++) dot += gp[i] * p[i];
  const gTheta1 = Float64Array.from(p, (pi, i) => pi * (gp[i] - dot));
  return { theta1: gTheta1, theta2: gTheta2 };
}

/**
 * θ1 whose step grid equals `t1` (`--match_prior`): inverts softmax–cumsum–normalise. The
 * free first entry is set so that a grid uniform in the mode's variable gives all ones
 * (the default initialisation).
 *
 * @throws {RangeError} When `t1` is not strictly decreasing from T to eps.
 */
export function thetaFromGrid(
  schedule: NoiseSchedule,
  t1: ArrayLike<number>,
  options: ParameterizationOptions = {},
): Float64Array {
  const { mode } = resolve(options);
  const n = t1.length;
  if (n < 2) throw new RangeError(`Prior grid needs at least 2 points: got ${n}`);
  const steps = n - 1;
  const tol = 1e-9;
  if (
    Math.abs(t1[0] - schedule.tMax) > tol * schedule.tMax ||
    Math.abs(t1[steps] - schedule.tMin) > tol * schedule.tMax
  ) {
    throw new RangeError(
      `Prior grid must run from T=${schedule.tMax} to eps=${schedule.tMin}: got ${t1[0]} … ${
        t1[steps]
      }`,
    );
  }
  const yStart = toY(schedule, mode, schedule.tMax);
  const yEnd = toY(schedule, mode, schedule.tMin);
  // u_k − u_{k−1} = p_k / (1 − p_0); choose p_0 = 1/(N+1) as in the all-ones init.
  const theta = new Float64Array(n);
  let prevU = 0;
  for (let k = 1; k < n; k++) {
    if (!(t1[k] < t1[k - 1])) {
      throw new RangeError(`Prior grid must decrease strictly: index ${k} (${t1[k]})`);
    }
    const u = k === steps ? 1 : (toY(schedule, mode, t1[k]) - yStart) / (yEnd - yStart);
    const pk = (u - prevU) * steps / n;
    if (!(pk > 0)) throw new RangeError(`Prior grid step ${k} is not positive in ${mode} units`);
    theta[k] = Math.log(pk * n) + 1;
    prevU = u;
  }
  theta[0] = 1;
  return theta;
}
