/**
 * GITS, the time-schedule search of Chen et al. 2024 ("On the Trajectory Regularity of
 * ODE-based Diffusion Sampling", ICML), run on any model: a few calibration trajectories of a
 * fine teacher, the cost of every single Euler step between two of its points, and a dynamic
 * program that picks the N steps of least weighted cost.
 *
 * 1. {@linkcode gitsTrajectory}: a teacher solver (iPNDM by default, as GITS) on a fine grid
 *    (EDM ρ = 7 with 60 steps in GITS) records its state `x_k` and model output `D_k` at every
 *    grid point.
 * 2. {@linkcode gitsCostMatrix}: `C[i][j]` for i < j is what one Euler step from the teacher's
 *    `x_i` (with its `D_i`) to `t_j` costs against the teacher at `t_j`: `l2`, the distance to
 *    `x_j`, or `dev` (GITS's default), how much further from the straight line through the
 *    trajectory's ends the step lands than the teacher's own point does. Averaged over the
 *    calibration samples. The Euler step is DDIM, `x̂_j = (σ_j/σ_i)·x_i − α_j(e^{−h} − 1)·D_i`,
 *    which on VE is exactly GITS's `x_i + (t_j − t_i)·(x_i − D_i)/t_i`.
 * 3. {@linkcode gitsPath}: the path from the first to the last fine point in exactly N steps
 *    that minimises `C[j_0][j_1] + c·C[j_1][j_2] + c²·C[j_2][j_3] + …` (GITS's coefficient
 *    c = 1.15 weighs the later, low-noise steps more).
 *
 * The cost uses Euler steps whatever the student solver, so one search serves every solver at
 * the same N. The network is called only in step 1.
 *
 * @module
 */
import type { Denoiser } from "./denoiser.ts";
import type { NoiseSchedule } from "./noise_schedule.ts";
import { planSolver, runPlan, type SolverName, type SolverOptions } from "./solvers/mod.ts";

/** How a GITS step is scored against the teacher. */
export type GitsMetric = "dev" | "l2";

/** Every {@linkcode GitsMetric}. */
export const GITS_METRICS: readonly GitsMetric[] = ["dev", "l2"];

/** The teacher solvers a trajectory can be recorded with (they evaluate at their state). */
export const GITS_TEACHERS: readonly SolverName[] = ["ipndm", "dpm_solver++", "euler"];

/** A teacher's trajectory on the fine grid, for a batch of samples. */
export interface GitsTrajectory {
  /** `x_k` at every fine point (M + 1 arrays of batch × size values). */
  readonly states: Float64Array[];
  /** `D_k = D(x_k, t_k)` at every fine point but the last (M arrays). */
  readonly outputs: Float64Array[];
  /** Samples in the batch. */
  readonly batch: number;
}

/** Options of {@linkcode gitsTrajectory}. */
export interface GitsTrajectoryOptions {
  /** The teacher: one of {@linkcode GITS_TEACHERS}. @default {"ipndm"} */
  solverName?: SolverName;
  /** The teacher's options. @default {{ order: 4 }} for iPNDM */
  solverOptions?: SolverOptions;
  /** Conditioning of the batch, handed to the model. @default {undefined} */
  condition?: Float32Array;
}

/**
 * Runs the teacher on the fine grid `fine` from `xT` (batch × size values) and records its state
 * and model output at every point.
 *
 * @throws {RangeError} For a teacher that does not evaluate the model at its state.
 */
export async function gitsTrajectory(
  denoiser: Denoiser,
  xT: Float64Array,
  batch: number,
  fine: Float64Array,
  options: GitsTrajectoryOptions = {},
): Promise<GitsTrajectory> {
  const solverName = options.solverName ?? "ipndm";
  if (!GITS_TEACHERS.includes(solverName)) {
    throw new RangeError(
      `GITS teacher must be one of ${GITS_TEACHERS.join(", ")}: got "${solverName}"`,
    );
  }
  const solverOptions = options.solverOptions ?? (solverName === "ipndm" ? { order: 4 } : {});
  const plan = planSolver(solverName, denoiser.schedule, { t1: fine, t2: fine }, solverOptions);
  const states: Float64Array[] = [];
  const outputs: Float64Array[] = [];
  const recording: Denoiser = {
    schedule: denoiser.schedule,
    sampleShape: denoiser.sampleShape,
    async denoise(x, t, info) {
      const d = await denoiser.denoise(x, t, info);
      states.push(x.slice());
      outputs.push(d);
      return d;
    },
  };
  const last = await runPlan(plan, recording, xT, { condition: options.condition });
  states.push(last);
  if (states.length !== fine.length) {
    throw new RangeError(
      `GITS teacher made ${outputs.length} evaluations: expected ${fine.length - 1}`,
    );
  }
  return { states, outputs, batch };
}

/** Per-sample distance of points from the straight line through each sample's two ends. */
function lineDistances(
  point: Float64Array,
  start: Float64Array,
  end: Float64Array,
  batch: number,
): Float64Array {
  const size = point.length / batch;
  const out = new Float64Array(batch);
  for (let b = 0; b < batch; b++) {
    let uu = 0;
    let vv = 0;
    let uv = 0;
    for (let c = b * size; c < (b + 1) * size; c++) {
      const u = end[c] - start[c];
      const v = end[c] - point[c];
      uu += u * u;
      vv += v * v;
      uv += u * v;
    }
    out[b] = Math.sqrt(Math.max(vv - (uu > 0 ? (uv * uv) / uu : 0), 0));
  }
  return out;
}

/** Per-sample Euclidean distances of two batches. */
function distances(a: Float64Array, b: Float64Array, batch: number): Float64Array {
  const size = a.length / batch;
  const out = new Float64Array(batch);
  for (let s = 0; s < batch; s++) {
    let sum = 0;
    for (let c = s * size; c < (s + 1) * size; c++) sum += (a[c] - b[c]) ** 2;
    out[s] = Math.sqrt(sum);
  }
  return out;
}

/**
 * The cost matrix of one batch's trajectory, `(M+1) × (M+1)` row-major, summed (not averaged)
 * over the batch's samples so that batches add up; entries with i ≥ j are 0.
 */
export function gitsCostMatrix(
  schedule: NoiseSchedule,
  fine: Float64Array,
  trajectory: GitsTrajectory,
  metric: GitsMetric = "dev",
): Float64Array {
  const points = fine.length;
  const { states, outputs, batch } = trajectory;
  const cost = new Float64Array(points * points);
  const start = states[0];
  const end = states[points - 1];
  const teacherDev = states.map((s) =>
    metric === "dev" ? lineDistances(s, start, end, batch) : new Float64Array(batch)
  );
  const alpha = Array.from(fine, (t) => schedule.alpha(t));
  const sigma = Array.from(fine, (t) => schedule.sigma(t));
  const lambda = Array.from(fine, (t) => schedule.lambda(t));
  const step = new Float64Array(start.length);
  for (let i = 0; i < points - 1; i++) {
    const x = states[i];
    const d = outputs[i];
    for (let j = i + 1; j < points; j++) {
      const a = sigma[j] / sigma[i];
      const c = -alpha[j] * Math.expm1(-(lambda[j] - lambda[i]));
      for (let k = 0; k < step.length; k++) step[k] = a * x[k] + c * d[k];
      const per = metric === "dev"
        ? lineDistances(step, start, end, batch).map((v, b) => v - teacherDev[j][b])
        : distances(step, states[j], batch);
      cost[i * points + j] = per.reduce((s, v) => s + v, 0);
    }
  }
  return cost;
}

/**
 * The dynamic program of GITS: indices `0 = j_0 < j_1 < … < j_N = M` of the fine points that
 * minimise `Σ_k coeff^k · C[j_k][j_{k+1}]` (ties go to the smallest index).
 *
 * @param cost The `(M+1) × (M+1)` cost matrix, row-major.
 * @param points M + 1.
 * @param steps N (at most M).
 * @param coeff Weight growth per step towards the end. @default {1.15}
 * @example
 * ```ts
 * // Three points: going 0 → 1 → 2 is cheaper than jumping.
 * const cost = Float64Array.from([0, 1, 5, 0, 0, 1, 0, 0, 0]);
 * console.log(gitsPath(cost, 3, 2), gitsPath(cost, 3, 1)); // [0, 1, 2] [0, 2]
 * ```
 */
export function gitsPath(
  cost: Float64Array,
  points: number,
  steps: number,
  coeff = 1.15,
): number[] {
  const last = points - 1;
  if (!(Number.isInteger(steps) && steps >= 1 && steps <= last)) {
    throw new RangeError(`GITS steps must be an integer in [1, ${last}]: got ${steps}`);
  }
  if (!(coeff > 0)) throw new RangeError(`GITS coeff must be > 0: got ${coeff}`);
  // value[k][j]: least weighted cost from point j to the end in exactly k steps.
  const value: Float64Array[] = [new Float64Array(points).fill(Infinity)];
  const next: Int32Array[] = [new Int32Array(points).fill(-1)];
  value[0][last] = 0;
  for (let k = 1; k <= steps; k++) {
    const v = new Float64Array(points).fill(Infinity);
    const arg = new Int32Array(points).fill(-1);
    for (let j = 0; j < last; j++) {
      for (let i = j + 1; i <= last; i++) {
        const rest = value[k - 1][i];
        if (!Number.isFinite(rest)) continue;
        const total = cost[j * points + i] + (k === 1 ? 0 : coeff * rest);
        if (total < v[j]) {
          v[j] = total;
          arg[j] = i;
        }
      }
    }
    value.push(v);
    next.push(arg);
  }
  const path = [0];
  for (let k = steps; k >= 1; k--) path.push(next[k][path[path.length - 1]]);
  return path;
}
