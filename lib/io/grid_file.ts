/**
 * The learned-grid file: a small JSON document holding a step grid `t1`, an evaluation grid
 * `t2` and how they were made. The LD3 trainer writes it; `sample`, `generate`, `eval` and the
 * API read it (`--load_from`).
 *
 * ```json
 * { "format": "ld3-grid", "version": 1,
 *   "schedule": { "kind": "ve", "tMax": 80, "tMin": 0.002 },
 *   "t1": [80, …, 0.002], "t2": [80, …, 0.002],
 *   "sigma1": […], "sigma2": […], "lambda1": […],
 *   "steps": 6, "nfe": 6, "solver": "uni_pc", "solverOptions": { "order": 3 },
 *   "source": "ld3", "meta": { … } }
 * ```
 *
 * `t1`/`t2` are the schedule's own times (what solvers consume); `sigma*` are the
 * EDM-equivalent σ/α for tools that think in sigmas.
 *
 * @module
 */
import { readFile } from "node:fs/promises";
import type { NoiseSchedule, ScheduleKind } from "../noise_schedule.ts";
import { gridLambdas, gridSigmas, toGrid } from "../step_grid.ts";
import type { Grid } from "../solvers/plan.ts";
import { writeJsonAtomic } from "./atomic.ts";

/** Identifies the JSON document. */
export const GRID_FILE_FORMAT = "ld3-grid";
/** Current version of the format. */
export const GRID_FILE_VERSION = 1;

/** A learned (or hand-written) grid with its provenance. */
export interface GridFile {
  /** Always {@linkcode GRID_FILE_FORMAT}. */
  format: typeof GRID_FILE_FORMAT;
  /** Format version ({@linkcode GRID_FILE_VERSION} when written). */
  version: number;
  /** The forward process the times belong to. */
  schedule: { kind: ScheduleKind; tMax: number; tMin: number };
  /** Step grid, N+1 strictly decreasing times. */
  t1: number[];
  /** Evaluation grid, N+1 times. */
  t2: number[];
  /** σ/α of t1 (informational). */
  sigma1: number[];
  /** σ/α of t2 (informational). */
  sigma2: number[];
  /** λ of t1 (informational). */
  lambda1: number[];
  /** Number of steps N. */
  steps: number;
  /** Network evaluations the solver spends on this grid. */
  nfe?: number;
  /** Solver the grid was learned for (grids are solver-specific). */
  solver?: string;
  /** Options of that solver. */
  solverOptions?: Record<string, unknown>;
  /** Who made it: "ld3", "manual", a skip type… */
  source?: string;
  /** Anything else worth keeping (model hash, loss, run folder…). */
  meta?: Record<string, unknown>;
}

/** What {@linkcode makeGridFile} needs besides the grid. */
export interface GridFileInfo {
  /** Network evaluations the solver spends on the grid. */
  nfe?: number;
  /** Solver the grid was learned for. */
  solver?: string;
  /** Options of that solver. */
  solverOptions?: Record<string, unknown>;
  /** Who made the grid: "ld3", "manual", a skip type… */
  source?: string;
  /** Extra provenance (model hash, loss, run folder…). */
  meta?: Record<string, unknown>;
}

/** Builds the JSON document of a grid. */
export function makeGridFile(
  schedule: NoiseSchedule,
  grid: Grid,
  info: GridFileInfo = {},
): GridFile {
  const g = toGrid(grid.t1, grid.t2);
  return {
    format: GRID_FILE_FORMAT,
    version: GRID_FILE_VERSION,
    schedule: { kind: schedule.kind, tMax: schedule.tMax, tMin: schedule.tMin },
    t1: Array.from(g.t1),
    t2: Array.from(g.t2),
    sigma1: Array.from(gridSigmas(schedule, g.t1)),
    sigma2: Array.from(gridSigmas(schedule, g.t2)),
    lambda1: Array.from(gridLambdas(schedule, g.t1)),
    steps: g.t1.length - 1,
    ...info,
  };
}

/** Writes a grid file atomically (temp file + rename). */
export async function saveGridFile(path: string, file: GridFile): Promise<void> {
  await writeJsonAtomic(path, file);
}

/** Checks a parsed JSON value is a usable grid file; the message names the bad field. */
export function parseGridFile(value: unknown, source = "grid file"): GridFile {
  const fail = (msg: string): never => {
    throw new TypeError(`Invalid ${source}: ${msg}`);
  };
  if (typeof value !== "object" || value === null) fail("not a JSON object");
  const v = value as Record<string, unknown>;
  if (v.format !== GRID_FILE_FORMAT) {
    fail(`field "format" must be "${GRID_FILE_FORMAT}": got ${JSON.stringify(v.format)}`);
  }
  if (v.version !== GRID_FILE_VERSION) {
    fail(`field "version" must be ${GRID_FILE_VERSION}: got ${JSON.stringify(v.version)}`);
  }
  for (const key of ["t1", "t2"]) {
    const arr = v[key];
    if (!Array.isArray(arr) || arr.some((x) => typeof x !== "number")) {
      fail(`field "${key}" must be an array of numbers`);
    }
  }
  const s = v.schedule as Record<string, unknown> | undefined;
  if (typeof s !== "object" || s === null || typeof s.kind !== "string") {
    fail(`field "schedule.kind" must be a string`);
  }
  try {
    toGrid(v.t1 as number[], v.t2 as number[]);
  } catch (e) {
    fail((e as Error).message);
  }
  return v as unknown as GridFile;
}

/** Reads and validates a grid file. */
export async function loadGridFile(path: string): Promise<GridFile> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch {
    throw new Error(`Cannot read grid file: ${path}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new SyntaxError(`Invalid grid file ${path}: ${(e as Error).message}`);
  }
  return parseGridFile(json, `grid file ${path}`);
}

/**
 * The solver grid of a grid file, checked against the schedule it will be used with: both the
 * step grid `t1` (strictly decreasing) and the evaluation grid `t2` (non-increasing) must lie
 * in the schedule's time range `[tMin, tMax]`, so that a bad file fails before any network call.
 *
 * @param source Names the file in errors, e.g. `grid file runs/a/grid.json`.
 * @throws {RangeError} when the file was made for another kind of schedule, or a time falls
 * outside the range, or `t2` increases.
 */
export function gridOfFile(file: GridFile, schedule: NoiseSchedule, source = "Grid file"): Grid {
  if (file.schedule.kind !== schedule.kind) {
    throw new RangeError(
      `${source} was made for a "${file.schedule.kind}" schedule, the model uses "${schedule.kind}"`,
    );
  }
  let grid: Grid;
  try {
    grid = toGrid(file.t1, file.t2);
  } catch (e) {
    throw new RangeError(`${source}: ${(e as Error).message}`);
  }
  const slack = 1e-6 * schedule.tMax;
  const last = grid.t1.length - 1;
  if (grid.t1[0] > schedule.tMax + slack || grid.t1[last] < schedule.tMin - slack) {
    throw new RangeError(
      `${source} times [${grid.t1[0]}, ${grid.t1[last]}] fall outside the model's ` +
        `[${schedule.tMax}, ${schedule.tMin}]`,
    );
  }
  for (let k = 0; k <= last; k++) {
    const t = grid.t2[k];
    if (t > schedule.tMax + slack || t < schedule.tMin - slack) {
      throw new RangeError(
        `${source}: evaluation time t2[${k}] = ${t} falls outside the model's ` +
          `[${schedule.tMax}, ${schedule.tMin}]`,
      );
    }
    // LD3 keeps each t2 within half the smallest gap of its t1: they never cross (round-off aside).
    if (k > 0 && t > grid.t2[k - 1] * (1 + 1e-9)) {
      throw new RangeError(
        `${source}: evaluation grid t2 must not increase: t2[${k}] = ${t} > t2[${k - 1}] = ` +
          `${grid.t2[k - 1]}`,
      );
    }
  }
  return grid;
}
