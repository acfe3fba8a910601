/**
 * The solver registry: every ODE solver by name, as a plan builder and as a sampler.
 *
 * Each solver lives in its own file as a pure function `xxxPlan(schedule, grid, options)` that
 * unrolls it into a {@linkcode SolverPlan}; {@linkcode runPlan} executes any plan. Adding a
 * solver means adding one file in `lib/solvers/` and one line to `PLANNERS` (plus its name in
 * {@linkcode SolverName} and, when its NFE is not the step count, in {@linkcode solverNfe}).
 *
 * @example
 * ```ts
 * import { veSchedule } from "../noise_schedule.ts";
 * const t1 = Float64Array.from([80, 10, 1, 0.1, 0.002]);
 * const plan = planSolver("uni_pc", veSchedule(), { t1, t2: t1.slice() }, { order: 2 });
 * console.log(plan.nfe, solverNfe("heun", 4)); // 4 7
 * ```
 *
 * @module
 */
import type { Denoiser } from "../denoiser.ts";
import type { NoiseSchedule } from "../noise_schedule.ts";
import { type Grid, runPlan, type RunPlanOptions, type SolverPlan } from "./plan.ts";
import { checkIntOption } from "./_coefficients.ts";
import { checkValue } from "../options.ts";
import { dpmSolverPlan } from "./dpm_solver.ts";
import { dpmSolverPPPlan } from "./dpm_solver_pp.ts";
import { eulerPlan } from "./euler.ts";
import { heunNfe, heunPlan } from "./heun.ts";
import { ipndmPlan } from "./ipndm.ts";
import { uniPcPlan, type UniPcVariant } from "./uni_pc.ts";

export * from "./euler.ts";
export * from "./heun.ts";
export * from "./dpm_solver.ts";
export * from "./dpm_solver_pp.ts";
export * from "./uni_pc.ts";
export * from "./ipndm.ts";
export type { GridValues } from "./_coefficients.ts";

/** The solvers ld3 knows. */
export type SolverName = "euler" | "heun" | "dpm_solver" | "dpm_solver++" | "uni_pc" | "ipndm";

/** Options any solver accepts; each solver reads the ones that apply to it. */
export interface SolverOptions {
  /**
   * Order: dpm_solver 1–3 (default 3), dpm_solver++ 1–3 (default 3, i.e. 3M), uni_pc 1–3
   * (default 3), ipndm 1–4 (default 4); euler and heun ignore it. @default {undefined}
   */
  order?: number;
  /** UniPC's B(h): "bh1" or "bh2". @default {"bh1"} */
  variant?: UniPcVariant;
  /** Lower the order of the final steps when N < 15 (dpm_solver++, uni_pc). @default {true} */
  lowerOrderFinal?: boolean;
  /** Apply UniPC's corrector (uni_pc only). @default {true} */
  corrector?: boolean;
}

type Planner = (schedule: NoiseSchedule, grid: Grid, options: SolverOptions) => SolverPlan;

const PLANNERS: Readonly<Record<SolverName, Planner>> = {
  "euler": (schedule, grid) => eulerPlan(schedule, grid),
  "heun": (schedule, grid) => heunPlan(schedule, grid),
  "dpm_solver": (schedule, grid, o) => dpmSolverPlan(schedule, grid, { order: o.order }),
  "dpm_solver++": (schedule, grid, o) =>
    dpmSolverPPPlan(schedule, grid, { order: o.order, lowerOrderFinal: o.lowerOrderFinal }),
  "uni_pc": (schedule, grid, o) => uniPcPlan(schedule, grid, o),
  "ipndm": (schedule, grid, o) => ipndmPlan(schedule, grid, { order: o.order }),
};

/** Every solver name, in registry order. */
export const SOLVER_NAMES: readonly SolverName[] = Object.keys(PLANNERS) as SolverName[];

/** Whether `name` is a known solver. */
export function isSolverName(name: string): name is SolverName {
  return Object.hasOwn(PLANNERS, name);
}

/**
 * The one check of a solver name, wherever it comes from (an option, a list of solvers, a grid
 * file): `what` names it in the message.
 *
 * @throws {RangeError} `<what> must be one of euler, heun, …: got "<name>"`.
 */
export function checkSolverName(name: string, what = "solver"): asserts name is SolverName {
  checkValue({ flag: what, kind: "string", help: "", choices: SOLVER_NAMES }, name, what);
}

/**
 * Unrolls solver `name` on `grid` for `schedule`.
 *
 * @throws {RangeError} For an unknown solver name, a bad option or a malformed grid.
 */
export function planSolver(
  name: SolverName,
  schedule: NoiseSchedule,
  grid: Grid,
  options: SolverOptions = {},
): SolverPlan {
  checkSolverName(name);
  return PLANNERS[name](schedule, grid, options);
}

/**
 * Number of network evaluations of solver `name` with `steps` grid intervals: `steps`, except
 * Heun (`2·steps − 1`). For singlestep DPM-Solver the grid intervals are its NFE.
 */
export function solverNfe(name: SolverName, steps: number, _options: SolverOptions = {}): number {
  checkSolverName(name);
  checkIntOption("steps", steps, 1, Number.MAX_SAFE_INTEGER);
  return name === "heun" ? heunNfe(steps) : steps;
}

/** Grid intervals a solver needs for an NFE budget (the inverse of {@linkcode solverNfe}). */
export function solverSteps(name: SolverName, nfe: number): number {
  checkSolverName(name);
  checkIntOption("nfe", nfe, 1, Number.MAX_SAFE_INTEGER);
  if (name !== "heun") return nfe;
  if (nfe % 2 === 0) throw new RangeError(`Heun needs an odd NFE (2·steps − 1): got ${nfe}`);
  return (nfe + 1) / 2;
}

/**
 * Solves the probability-flow ODE from `xT` with solver `name` on `grid`:
 * `runPlan(planSolver(name, denoiser.schedule, grid, options), …)`.
 *
 * @param name Solver name.
 * @param denoiser Data-prediction model; its schedule supplies α, σ, λ.
 * @param xT Initial noise `x_T` (batch × sample size); not modified.
 * @param grid Step and evaluation grids.
 * @param options Solver options plus conditioning and progress callback.
 * @returns The sample `x_eps`.
 */
export function solve(
  name: SolverName,
  denoiser: Denoiser,
  xT: Float64Array,
  grid: Grid,
  options: SolverOptions & RunPlanOptions = {},
): Promise<Float64Array> {
  return runPlan(planSolver(name, denoiser.schedule, grid, options), denoiser, xT, options);
}

/**
 * The former name of {@linkcode solve}.
 *
 * @deprecated Use {@linkcode solve}; `sample` was easy to confuse with `sampleImages`, the
 * pipeline that loads a model, draws noise and writes pictures. Kept for one release.
 */
export const sample: typeof solve = solve;

export * from "./plan.ts";
