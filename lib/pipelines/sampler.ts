/**
 * Choosing a sampler: a solver, its options and one step grid for a loaded model, unrolled into
 * a plan ({@linkcode prepareSampler}). Every pipeline that samples (`sample`, `generate`, `eval`,
 * the schedule matrix, the demo) picks its sampler here, from the options of
 * {@linkcode SAMPLER_OPTIONS}.
 *
 * @module
 */
import { resolve } from "node:path";
import type { GridRecord, SolverRecord } from "../io/dataset.ts";
import { gridOfFile, loadGridFile } from "../io/grid_file.ts";
import type { NoiseSchedule } from "../noise_schedule.ts";
import { type LoadedModel, loadModel, type LoadModelOptions } from "../onnx/model.ts";
import { type OptionValues, type ResolvedOptions, resolveOptions } from "../options.ts";
import { planSolver, type SolverName, solverNfe } from "../solvers/mod.ts";
import type { Grid, SolverPlan } from "../solvers/plan.ts";
import {
  gitsGrid,
  gridFromSigmas,
  gridSigmas,
  skipGrid,
  type SkipType,
  toGrid,
} from "../step_grid.ts";
import { SAMPLER_OPTIONS } from "./options.ts";

/**
 * How to pick the solver and its grid: the options of {@linkcode SAMPLER_OPTIONS} (solver,
 * steps, order, UniPC variant; one of skip type, grid file or σ list).
 */
export interface SamplerOptions extends Omit<OptionValues<typeof SAMPLER_OPTIONS>, "sigmas"> {
  /**
   * An explicit grid as EDM-equivalent noise levels σ/α, largest first (T … eps), e.g. from a
   * paper or another tool; excludes `skipType` and `loadFrom` and fixes the steps.
   */
  sigmas?: ArrayLike<number>;
}

/** A solver unrolled on a grid, ready to run. */
export interface PreparedSampler {
  /** The solver. */
  solverName: SolverName;
  /** Its order and UniPC variant, where they apply. */
  solverOptions: { order?: number; variant?: "bh1" | "bh2" };
  /** Step grid t1 and evaluation grid t2. */
  grid: Grid;
  /** The solver unrolled on the grid. */
  plan: SolverPlan;
  /** Steps N (the grid has N+1 points). */
  steps: number;
  /** Network evaluations per sample. */
  nfe: number;
  /** The skip type, `gits`, `file` for a grid file, or `sigmas` for a σ list. */
  gridKind: string;
  /** EDM ρ (edm skip type only). */
  rho?: number;
  /** Grid file the times came from (`file` grids only). */
  loadFrom?: string;
}

/**
 * The LD3 default teacher, as the reference tool generates it: UniPC, 20 steps (20 NFE) on the
 * EDM grid. The demo, the schedule benchmark and the learned-grid matrix all distil from it.
 */
export const LD3_TEACHER = { solverName: "uni_pc", steps: 20, skipType: "edm" } as const;

/** The solver of a prepared sampler as result files record it. */
export function solverRecord(sampler: PreparedSampler): SolverRecord {
  return {
    name: sampler.solverName,
    ...sampler.solverOptions,
    steps: sampler.steps,
    nfe: sampler.nfe,
  };
}

/** The grid of a prepared sampler as result files record it (the caller adds its kind key). */
export function gridRecord(sampler: PreparedSampler, schedule: NoiseSchedule): GridRecord {
  return {
    ...(sampler.rho !== undefined ? { rho: sampler.rho } : {}),
    ...(sampler.loadFrom !== undefined ? { load_from: sampler.loadFrom } : {}),
    t1: Array.from(sampler.grid.t1),
    t2: Array.from(sampler.grid.t2),
    sigma1: Array.from(gridSigmas(schedule, sampler.grid.t1)),
    sigma2: Array.from(gridSigmas(schedule, sampler.grid.t2)),
  };
}

/** Sampler options after {@linkcode validateSamplerOptions}: checked, defaults filled in. */
export type ResolvedSamplerOptions = ResolvedOptions<typeof SAMPLER_OPTIONS> & {
  solverName: SolverName;
};

/**
 * Checks the sampler options that need no model (names, numbers, one grid) and fills in their
 * defaults, so bad input fails before anything is loaded.
 *
 * @throws {TypeError | RangeError} Naming the first bad option.
 */
export function validateSamplerOptions(options: SamplerOptions): ResolvedSamplerOptions {
  const { sigmas, ...rest } = options;
  const resolved = resolveOptions(SAMPLER_OPTIONS, {
    ...rest,
    sigmas: sigmas === undefined ? undefined : Array.from(sigmas),
  });
  return { ...resolved, solverName: resolved.solverName as SolverName };
}

/** The grid the options name, its kind, and the ρ or file it came from. */
async function chooseGrid(
  schedule: NoiseSchedule,
  o: ResolvedSamplerOptions,
  given: SamplerOptions,
): Promise<{ grid: Grid; gridKind: string; rho?: number; loadFrom?: string }> {
  const fixedSteps = (grid: Grid, source: string) => {
    if (given.steps !== undefined && given.steps !== grid.t1.length - 1) {
      throw new RangeError(
        `steps ${given.steps} does not match the ${grid.t1.length - 1} steps of ${source}`,
      );
    }
    return grid;
  };
  if (o.sigmas !== undefined) {
    const grid = toGrid(gridFromSigmas(schedule, o.sigmas));
    return { grid: fixedSteps(grid, "the sigma list"), gridKind: "sigmas" };
  }
  if (o.loadFrom !== undefined) {
    const grid = gridOfFile(await loadGridFile(o.loadFrom), schedule, `Grid file ${o.loadFrom}`);
    return { grid: fixedSteps(grid, o.loadFrom), gridKind: "file", loadFrom: resolve(o.loadFrom) };
  }
  const skipType = o.skipType ?? SAMPLER_OPTIONS.skipType.default;
  if (skipType === "gits") {
    return { grid: toGrid(gitsGrid(schedule, o.solverName, o.steps)), gridKind: "gits" };
  }
  const rho = skipType === "edm" ? o.rho : undefined;
  const grid = toGrid(skipGrid(skipType as SkipType, schedule, o.steps, rho ? { rho } : {}));
  return { grid, gridKind: skipType, rho };
}

/** Builds the grid and the solver plan for a model's schedule. */
export async function prepareSampler(
  model: Pick<LoadedModel, "denoiser"> | { denoiser: { schedule: NoiseSchedule } },
  options: SamplerOptions = {},
): Promise<PreparedSampler> {
  const o = validateSamplerOptions(options);
  const schedule = model.denoiser.schedule;
  const solverOptions: PreparedSampler["solverOptions"] = {};
  if (o.order !== undefined) solverOptions.order = o.order;
  if (o.solverName === "uni_pc" && options.unipcVariant) solverOptions.variant = o.unipcVariant;
  const chosen = await chooseGrid(schedule, o, options);
  const steps = chosen.grid.t1.length - 1;
  const plan = planSolver(o.solverName, schedule, chosen.grid, solverOptions);
  const nfe = solverNfe(o.solverName, steps, solverOptions);
  return { solverName: o.solverName, solverOptions, plan, steps, nfe, ...chosen };
}

/**
 * Runs `work` on a model given loaded or as a config path; a model loaded here is closed after.
 */
export async function withModel<T>(
  model: LoadedModel | string | URL,
  load: LoadModelOptions,
  work: (model: LoadedModel) => Promise<T>,
): Promise<T> {
  if (typeof model !== "string" && !(model instanceof URL)) return await work(model);
  const loaded = await loadModel(model, load);
  try {
    return await work(loaded);
  } finally {
    await loaded.close();
  }
}
