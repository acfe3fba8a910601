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
import {
  planSolver,
  singlestepGrid,
  singlestepOrders,
  solverIdentity,
  type SolverName,
  solverNfe,
  type SolverOptions,
} from "../solvers/mod.ts";
import type { Grid, SolverPlan } from "../solvers/plan.ts";
import {
  gitsGrid,
  gridFromSigmas,
  type GridKind,
  gridSigmas,
  skipGrid,
  toGrid,
} from "../step_grid.ts";
import { aysGrid, type AysModel } from "../ays.ts";
import { dmnGrid } from "../dmn.ts";
import { GITS_OPTIONS, gitsSearchGrid } from "./gits.ts";
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
  /** The solver options given (order, UniPC variant, the final-order rule, the 3M form). */
  solverOptions: SolverOptions;
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
    ...solverIdentity(sampler.solverName, sampler.solverOptions),
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

/**
 * What a sampler is built for: a loaded model, or only its schedule (then the GITS search, which
 * runs the network, is refused, and DMN assumes no decoder).
 */
export type SamplerModel = LoadedModel | { denoiser: { schedule: NoiseSchedule } };

/** What {@linkcode namedGrid} needs besides the model, the kind and N. */
export interface NamedGridOptions extends Partial<OptionValues<typeof GITS_OPTIONS>> {
  /** The solver the grid is for (DMN's order, the GITS tables). */
  solverName: SolverName;
  /** Its order. @default {the solver's highest} */
  order?: number;
  /** ρ of the `edm` and `edm_time` grids. @default {7} */
  rho?: number;
  /** Whose Align Your Steps table. @default {the one that fits the schedule} */
  aysModel?: AysModel;
  /** Batch of the GITS search's calibration teacher. @default {the config's batch_size} */
  batchSize?: number;
}

/**
 * The order DMN optimises for: the solver's (highest by default) up to 3, the highest order of
 * the exponential integrators its bound describes (LD3's copy of DMN uses the order-3 pattern for
 * iPNDM too); 1 for euler, 2 for heun.
 */
function dmnOrder(solverName: SolverName, order: number | undefined): number {
  if (solverName === "euler") return 1;
  if (solverName === "heun") return 2;
  return Math.min(order ?? 3, 3);
}

/**
 * The step times of a grid family on a model: a hand-made skip type, the GITS search on the
 * model (cached, `gits.ts`), a published GITS table, DMN's optimisation for the solver's order
 * (σ²/α error model for latent models, those with a decoder), or the model's Align Your Steps
 * table. The GITS tables hold `steps + 1` intervals (they start after σ_max). For singlestep
 * `dpm_solver` a skip type places the outer steps and the inner points sit uniformly in λ, as
 * DPM-Solver and the LD3 reference build its grid (`singlestepGrid`).
 *
 * @throws {RangeError} For a kind that does not apply (no GITS table, no AYS table for the
 * schedule) or bad options.
 */
export async function namedGrid(
  model: SamplerModel,
  kind: GridKind,
  steps: number,
  options: NamedGridOptions,
): Promise<Float64Array> {
  const schedule = model.denoiser.schedule;
  switch (kind) {
    case "gits": {
      if (!("config" in model)) {
        throw new RangeError("skip_type gits searches on the network: it needs a loaded model");
      }
      const { solverName: _s, order: _o, rho: _r, aysModel: _a, ...gits } = options;
      return (await gitsSearchGrid(model, steps, gits)).t1;
    }
    case "gits_table":
      return gitsGrid(schedule, options.solverName, steps);
    case "dmn":
      return dmnGrid(schedule, steps, {
        order: dmnOrder(options.solverName, options.order),
        errorPower: "config" in model && model.config.decoder ? 2 : 1,
      });
    case "ays":
      return aysGrid(schedule, steps, { model: options.aysModel });
    default: {
      const rho = kind === "edm" || kind === "edm_time" ? options.rho : undefined;
      if (options.solverName !== "dpm_solver") {
        return skipGrid(kind, schedule, steps, rho ? { rho } : {});
      }
      // Singlestep DPM-Solver: the skip type places the outer steps, λ-uniform inner points.
      const orders = singlestepOrders(steps, options.order ?? 3);
      const outer = skipGrid(kind, schedule, orders.length, rho ? { rho } : {});
      return singlestepGrid(schedule, outer, orders);
    }
  }
}

/** The grid the options name, its kind, and the ρ or file it came from. */
async function chooseGrid(
  model: SamplerModel,
  o: ResolvedSamplerOptions,
  given: SamplerOptions,
): Promise<{ grid: Grid; gridKind: string; rho?: number; loadFrom?: string }> {
  const schedule = model.denoiser.schedule;
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
  const kind = (o.skipType ?? SAMPLER_OPTIONS.skipType.default) as GridKind;
  const rho = kind === "edm" || kind === "edm_time" ? o.rho : undefined;
  const t1 = await namedGrid(model, kind, o.steps, {
    ...pickGitsOptions(o),
    solverName: o.solverName,
    order: o.order,
    rho,
    aysModel: o.aysModel as AysModel | undefined,
  });
  return { grid: toGrid(t1), gridKind: kind, rho };
}

/** The GITS settings among resolved sampler options. */
function pickGitsOptions(o: Partial<OptionValues<typeof GITS_OPTIONS>>) {
  const out: Partial<OptionValues<typeof GITS_OPTIONS>> = {};
  for (const key of Object.keys(GITS_OPTIONS) as (keyof typeof GITS_OPTIONS)[]) {
    if (o[key] !== undefined) (out as Record<string, unknown>)[key] = o[key];
  }
  return out;
}

/**
 * The solver options the sampler options name: each only when given and when it applies to the
 * solver, so records and fingerprints of the defaults stay as they were.
 */
function samplerSolverOptions(
  o: ResolvedSamplerOptions,
  given: SamplerOptions,
): SolverOptions {
  const out: SolverOptions = {};
  if (o.order !== undefined) out.order = o.order;
  if (o.solverName === "uni_pc" && given.unipcVariant) out.variant = o.unipcVariant;
  const multistep = o.solverName === "uni_pc" || o.solverName === "dpm_solver++";
  if (multistep && o.lowerOrderFinalBelow !== undefined) {
    out.lowerOrderFinalBelow = o.lowerOrderFinalBelow;
  }
  if (o.solverName === "dpm_solver++" && o.variant3M !== undefined) {
    out.variant3M = o.variant3M as SolverOptions["variant3M"];
  }
  if (o.solverName === "dpm_solver" && o.prediction !== undefined) {
    out.prediction = o.prediction as SolverOptions["prediction"];
  }
  return out;
}

/** Builds the grid and the solver plan for a model's schedule. */
export async function prepareSampler(
  model: SamplerModel,
  options: SamplerOptions = {},
): Promise<PreparedSampler> {
  const o = validateSamplerOptions(options);
  const schedule = model.denoiser.schedule;
  const solverOptions = samplerSolverOptions(o, options);
  const chosen = await chooseGrid(model, o, options);
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
