/**
 * Step grids ("skip types"): N+1 strictly decreasing times from T to eps.
 *
 * Grid builders are pure functions of a {@linkcode NoiseSchedule} and a step count; no solver
 * ever builds its own grid (LD3 learns this array, so it must stay an input).
 *
 * @module
 */
import type { NoiseSchedule } from "./noise_schedule.ts";
import { sigmaOf, timeOfSigma } from "./noise_schedule.ts";
import type { Grid } from "./solvers/plan.ts";

/**
 * The hand-made schedule families: the four of the LD3 paper's baselines, and two named
 * alternatives — `time_quadratic_dpm` (DPM-Solver's `time_quadratic`, uniform in √t) and
 * `edm_time` (the ρ = 7 polynomial applied to t itself, which is what the LD3 reference's `edm`
 * gives on a VP schedule; on VE it equals `edm`).
 */
export type SkipType =
  | "time_uniform"
  | "time_quadratic"
  | "logSNR"
  | "edm"
  | "time_quadratic_dpm"
  | "edm_time";

/** Every {@linkcode SkipType}, for CLIs and validation. */
export const SKIP_TYPES: readonly SkipType[] = [
  "time_uniform",
  "time_quadratic",
  "logSNR",
  "edm",
  "time_quadratic_dpm",
  "edm_time",
];

/** The four hand-made grids the LD3 paper compares with, in table order. */
export const BASELINE_SKIP_TYPES: readonly SkipType[] = [
  "time_uniform",
  "time_quadratic",
  "logSNR",
  "edm",
];

/**
 * A grid family `--skip_type` names: a {@linkcode SkipType}, or a baseline that needs more than
 * the schedule — `gits` (the GITS search on the model, `lib/pipelines/gits.ts`), `gits_table`
 * (the published CIFAR-10 GITS tables, {@linkcode gitsGrid}), `dmn` (DMN's optimisation for
 * the solver's order, `dmn.ts`) and `ays` (Align Your Steps' table of the model, `ays.ts`).
 */
export type GridKind = SkipType | "gits" | "gits_table" | "dmn" | "ays";
/** Every grid kind `--skip_type` accepts. */
export const GRID_KINDS: readonly GridKind[] = [...SKIP_TYPES, "gits", "gits_table", "dmn", "ays"];

function checkSteps(steps: number): void {
  if (!Number.isInteger(steps) || steps < 1) {
    throw new RangeError(`Steps must be a positive integer: got ${steps}`);
  }
}

/** Fill `k = 0..N` through `f(k/N)` and pin the endpoints exactly to T and eps. */
function build(
  schedule: NoiseSchedule,
  steps: number,
  f: (u: number) => number,
): Float64Array {
  checkSteps(steps);
  const out = new Float64Array(steps + 1);
  for (let k = 0; k <= steps; k++) out[k] = f(k / steps);
  out[0] = schedule.tMax;
  out[steps] = schedule.tMin;
  return out;
}

/** Uniform in t: `t_k = T + (eps − T)·k/N`. */
export function timeUniformGrid(schedule: NoiseSchedule, steps: number): Float64Array {
  const { tMax, tMin } = schedule;
  return build(schedule, steps, (u) => tMax + (tMin - tMax) * u);
}

/**
 * LD3's `time_quadratic`: `t_k = eps + (T − eps)·((N − k)/N)²`, quadratic in the step index and
 * densest near eps, where the trajectory bends most.
 *
 * @example
 * ```ts
 * import { veSchedule } from "./noise_schedule.ts";
 * console.log(Array.from(timeQuadraticGrid(veSchedule({ sigmaMax: 1.002 }), 2))); // [1.002, 0.252, 0.002]
 * ```
 */
export function timeQuadraticGrid(schedule: NoiseSchedule, steps: number): Float64Array {
  const { tMax, tMin } = schedule;
  return build(schedule, steps, (u) => tMin + (tMax - tMin) * (1 - u) ** 2);
}

/**
 * DPM-Solver's `time_quadratic`: uniform in √t, then squared. It differs from LD3's
 * ({@linkcode timeQuadraticGrid}) by a cross term `2√(T·eps)·u(1 − u)`: little on VE (T = 80,
 * eps = 0.002), up to 80 % at the low-noise end of a VP schedule with eps = 1e-3.
 */
export function timeQuadraticDpmGrid(schedule: NoiseSchedule, steps: number): Float64Array {
  const a = Math.sqrt(schedule.tMax);
  const b = Math.sqrt(schedule.tMin);
  return build(schedule, steps, (u) => (a + (b - a) * u) ** 2);
}

/** Uniform in the half-log-SNR λ between λ(T) and λ(eps) (the "logSNR" schedule). */
export function logSnrGrid(schedule: NoiseSchedule, steps: number): Float64Array {
  const lo = schedule.lambda(schedule.tMax);
  const hi = schedule.lambda(schedule.tMin);
  return build(schedule, steps, (u) => schedule.inverseLambda(lo + (hi - lo) * u));
}

/** Options of {@linkcode edmGrid}. */
export interface EdmGridOptions {
  /** Exponent ρ of Karras et al. (2022), Eq. 5. @default {7} */
  rho?: number;
}

/**
 * Karras et al. (2022) schedule: uniform in `σ^(1/ρ)` of the EDM-equivalent noise level
 * σ/α, mapped back to t through the schedule.
 */
export function edmGrid(
  schedule: NoiseSchedule,
  steps: number,
  options: EdmGridOptions = {},
): Float64Array {
  const rho = options.rho ?? 7;
  if (!(rho > 0)) throw new RangeError(`EDM rho must be positive: got ${rho}`);
  const a = sigmaOf(schedule, schedule.tMax) ** (1 / rho);
  const b = sigmaOf(schedule, schedule.tMin) ** (1 / rho);
  return build(schedule, steps, (u) => timeOfSigma(schedule, (a + (b - a) * u) ** rho));
}

/**
 * The ρ-polynomial of {@linkcode edmGrid} applied to the time itself: uniform in `t^(1/ρ)`
 * between T and eps. This is the LD3 reference's `edm` on VP schedules (its teacher's grid for
 * latent-diffusion models); on VE, where t = σ, it equals `edm`.
 */
export function edmTimeGrid(
  schedule: NoiseSchedule,
  steps: number,
  options: EdmGridOptions = {},
): Float64Array {
  const rho = options.rho ?? 7;
  if (!(rho > 0)) throw new RangeError(`EDM rho must be positive: got ${rho}`);
  const a = schedule.tMax ** (1 / rho);
  const b = schedule.tMin ** (1 / rho);
  return build(schedule, steps, (u) => (a + (b - a) * u) ** rho);
}

/** Options of {@linkcode skipGrid}. */
export interface SkipGridOptions extends EdmGridOptions {}

/** The grid of a named {@linkcode SkipType}. */
export function skipGrid(
  skipType: SkipType,
  schedule: NoiseSchedule,
  steps: number,
  options: SkipGridOptions = {},
): Float64Array {
  switch (skipType) {
    case "time_uniform":
      return timeUniformGrid(schedule, steps);
    case "time_quadratic":
      return timeQuadraticGrid(schedule, steps);
    case "logSNR":
      return logSnrGrid(schedule, steps);
    case "edm":
      return edmGrid(schedule, steps, options);
    case "time_quadratic_dpm":
      return timeQuadraticDpmGrid(schedule, steps);
    case "edm_time":
      return edmTimeGrid(schedule, steps, options);
    default:
      throw new RangeError(
        `Unknown skip type: "${skipType}" (expected one of ${SKIP_TYPES.join(", ")})`,
      );
  }
}

/** Throws unless `times` is a finite, strictly decreasing list of at least two times. */
export function validateTimes(times: ArrayLike<number>, what = "grid"): void {
  if (times.length < 2) {
    throw new RangeError(`A ${what} needs at least 2 points: got ${times.length}`);
  }
  for (let k = 0; k < times.length; k++) {
    if (!Number.isFinite(times[k]) || times[k] <= 0) {
      throw new RangeError(`A ${what} must hold positive finite times: index ${k} is ${times[k]}`);
    }
    if (k > 0 && !(times[k] < times[k - 1])) {
      throw new RangeError(
        `A ${what} must be strictly decreasing: index ${k} (${times[k]}) >= index ${k - 1} (${
          times[k - 1]
        })`,
      );
    }
  }
}

/** An explicit list of times (T first). */
export function gridFromTimes(schedule: NoiseSchedule, times: ArrayLike<number>): Float64Array {
  validateTimes(times, "time list");
  const out = Float64Array.from(times);
  // Round-trips through λ leave ~1e-15 relative noise at the ends; snap it to T and eps.
  const snap = (k: number, t: number) => {
    if (Math.abs(out[k] - t) <= 1e-12 * t) out[k] = t;
  };
  snap(0, schedule.tMax);
  snap(out.length - 1, schedule.tMin);
  const slack = 1e-9 * schedule.tMax;
  if (out[0] > schedule.tMax + slack || out[out.length - 1] < schedule.tMin - slack) {
    throw new RangeError(
      `A time list must lie in [${schedule.tMin}, ${schedule.tMax}]: got ${out[0]} … ${
        out[out.length - 1]
      }`,
    );
  }
  return out;
}

/** An explicit list of EDM-equivalent noise levels σ/α (largest first), mapped to times. */
export function gridFromSigmas(schedule: NoiseSchedule, sigmas: ArrayLike<number>): Float64Array {
  validateTimes(sigmas, "sigma list");
  const times = Float64Array.from(sigmas, (s) => timeOfSigma(schedule, s));
  return gridFromTimes(schedule, times);
}

/**
 * GITS schedules (Chen et al. 2024) searched for the EDM CIFAR-10 model, as EDM σ lists after
 * the start σ_max = 80. The published schedules pair with an analytic first step; used as a
 * plain grid here, `[80, ...list]` takes `list.length` steps.
 */
export const GITS_SIGMAS: Readonly<Record<string, Readonly<Record<number, readonly number[]>>>> = {
  "dpm_solver++": {
    10: [
      14.6146,
      7.6188,
      4.0861,
      2.4211,
      1.4467,
      0.9324,
      0.6114,
      0.3811,
      0.2255,
      0.1258,
      0.0292,
    ],
  },
  ipndm: {
    10: [
      14.6146,
      5.9489,
      3.3251,
      2.0267,
      1.2969,
      0.8319,
      0.5712,
      0.3811,
      0.2255,
      0.1258,
      0.0292,
    ],
  },
};

/** The GITS grid for a solver and NFE, starting at the schedule's σ_max. */
export function gitsGrid(schedule: NoiseSchedule, solver: string, nfe: number): Float64Array {
  const table = GITS_SIGMAS[solver]?.[nfe];
  if (!table) {
    const known = Object.entries(GITS_SIGMAS).flatMap(([s, t]) =>
      Object.keys(t).map((n) => `${s}@${n}`)
    );
    throw new RangeError(
      `No GITS table for solver "${solver}" at NFE ${nfe} (known: ${known.join(", ")})`,
    );
  }
  return gridFromSigmas(schedule, [sigmaOf(schedule, schedule.tMax), ...table]);
}

/**
 * A solver {@linkcode Grid} from a step grid and an optional evaluation grid.
 *
 * @param t1 N+1 strictly decreasing step times.
 * @param t2 Evaluation times (defaults to a copy of `t1`). LD3 keeps the endpoints equal to t1's.
 * @throws {RangeError} when the grids are malformed.
 */
export function toGrid(t1: ArrayLike<number>, t2?: ArrayLike<number>): Grid {
  validateTimes(t1, "step grid");
  const a = Float64Array.from(t1);
  const b = t2 ? Float64Array.from(t2) : Float64Array.from(t1);
  if (b.length !== a.length) {
    throw new RangeError(
      `Evaluation grid t2 must have as many points as t1: got ${b.length} vs ${a.length}`,
    );
  }
  for (let k = 0; k < b.length; k++) {
    if (!Number.isFinite(b[k]) || b[k] <= 0) {
      throw new RangeError(`Evaluation grid t2 must be positive and finite: index ${k} is ${b[k]}`);
    }
  }
  return { t1: a, t2: b };
}

/** λ of every grid point. */
export function gridLambdas(schedule: NoiseSchedule, times: ArrayLike<number>): Float64Array {
  return Float64Array.from(times, (t) => schedule.lambda(t));
}

/** EDM-equivalent σ/α of every grid point (what ComfyUI / k-diffusion call sigmas). */
export function gridSigmas(schedule: NoiseSchedule, times: ArrayLike<number>): Float64Array {
  return Float64Array.from(times, (t) => sigmaOf(schedule, t));
}
