/**
 * The GITS search on a loaded model, cached: `--skip_type gits` of every task.
 *
 * The expensive part of GITS (`lib/gits.ts`) is the teacher's calibration trajectories and the
 * cost matrix they give; it does not depend on the student solver or N. It is computed once per
 * model and search settings and kept in `<gits_dir>/<model>-<key>/cost.json`; each N's grid is
 * then a dynamic program away and is written beside it as a grid file,
 * `grid-N<steps>-coeff<c>.json` (`lib/io/grid_file.ts`, source `gits`), usable with
 * `--load_from` as well. The calibration samples use their own seed (`--gits_seed`), apart from
 * the teachers' noise; a conditional model is calibrated without a condition (its unconditional
 * input), where GITS used prompts or class labels.
 *
 * @module
 */
import { join } from "node:path";
import { writeJsonAtomic } from "../io/atomic.ts";
import { pathExists } from "../io/fs.ts";
import { gridOfFile, loadGridFile, makeGridFile, saveGridFile } from "../io/grid_file.ts";
import { canonicalJson } from "../fingerprint.ts";
import {
  GITS_METRICS,
  GITS_TEACHERS,
  gitsCostMatrix,
  type GitsMetric,
  gitsPath,
  gitsTrajectory,
} from "../gits.ts";
import type { LoadedModel } from "../onnx/model.ts";
import { sha256Hex } from "../onnx/session.ts";
import { type OptionDeclarations, type OptionValues, resolveOptions } from "../options.ts";
import type { SolverName } from "../solvers/mod.ts";
import { edmGrid } from "../step_grid.ts";
import { normalNoise } from "../rng.ts";
import { sampleSize } from "../denoiser.ts";

/** The settings of a GITS search, declared once (every task with `--skip_type` takes them). */
export const GITS_OPTIONS = {
  gitsDir: {
    flag: "gits_dir",
    kind: "string",
    arg: "DIR",
    default: "gits_grids",
    help: "cache of GITS searches: per model and settings the cost matrix and one grid file per N",
  },
  gitsSamples: {
    flag: "gits_samples",
    kind: "integer",
    arg: "N",
    min: 1,
    default: 64,
    help: "calibration samples of a GITS search (GITS: 256)",
  },
  gitsSeed: {
    flag: "gits_seed",
    kind: "integer",
    arg: "N",
    min: 0,
    default: 7,
    help: "noise seed of the calibration samples (apart from teachers' 0 and the benchmark's 1000)",
  },
  gitsTeacherSteps: {
    flag: "gits_teacher_steps",
    kind: "integer",
    arg: "N",
    min: 2,
    default: 60,
    help: "steps of the teacher's fine EDM grid the search chooses from (GITS: 60)",
  },
  gitsTeacher: {
    flag: "gits_teacher",
    kind: "string",
    choices: GITS_TEACHERS,
    default: "ipndm",
    help: "teacher solver of the calibration trajectories (GITS: iPNDM)",
  },
  gitsMetric: {
    flag: "gits_metric",
    kind: "string",
    choices: GITS_METRICS,
    default: "dev",
    help: "cost of one Euler step: dev (how much further from the trajectory's straight line " +
      "it lands than the teacher, GITS's default) or l2 (distance to the teacher)",
  },
  gitsCoeff: {
    flag: "gits_coeff",
    kind: "number",
    above: 0,
    default: 1.15,
    help: "growth of the step weights towards the end in the dynamic program (GITS: 1.15)",
  },
} as const satisfies OptionDeclarations;

/** Options of {@linkcode gitsSearchGrid}: {@linkcode GITS_OPTIONS} and a batch size. */
export interface GitsSearchOptions extends OptionValues<typeof GITS_OPTIONS> {
  /** Calibration samples per teacher batch. @default {the config's batch_size} */
  batchSize?: number;
}

/** What {@linkcode gitsSearchGrid} found. */
export interface GitsSearchResult {
  /** The step grid, N+1 times. */
  t1: Float64Array;
  /** The grid file written (or read) for it. */
  path: string;
  /** Whether the cost matrix came from the cache. */
  cached: boolean;
  /** Indices of the chosen points on the fine grid. */
  indices: number[];
}

/** `format` of the cached cost matrix. */
const COST_FORMAT = "ld3-gits-cost";

/** The cached search: what it was computed from, the fine grid and the averaged costs. */
interface CostFile {
  format: typeof COST_FORMAT;
  version: 1;
  key: Record<string, unknown>;
  fine: number[];
  cost: number[];
}

/** What the cost matrix depends on: the model, its schedule and the search's settings. */
function costKey(model: LoadedModel, o: ReturnType<typeof resolveGits>): Record<string, unknown> {
  const s = model.denoiser.schedule;
  return {
    model: model.modelHash,
    schedule: { kind: s.kind, tMax: s.tMax, tMin: s.tMin },
    samples: o.gitsSamples,
    seed: o.gitsSeed,
    teacher: o.gitsTeacher,
    teacherSteps: o.gitsTeacherSteps,
    metric: o.gitsMetric,
  };
}

function resolveGits(options: Partial<OptionValues<typeof GITS_OPTIONS>>) {
  return resolveOptions(GITS_OPTIONS, options);
}

/** The calibration trajectories' cost matrix, averaged over the samples. */
async function computeCost(
  model: LoadedModel,
  fine: Float64Array,
  o: ReturnType<typeof resolveGits>,
  batchSize: number,
): Promise<Float64Array> {
  const schedule = model.denoiser.schedule;
  const points = fine.length;
  const total = new Float64Array(points * points);
  for (let start = 0; start < o.gitsSamples; start += batchSize) {
    const indices = Array.from(
      { length: Math.min(batchSize, o.gitsSamples - start) },
      (_, i) => start + i,
    );
    const size = sampleSize(model.sampleShape);
    const xT = new Float64Array(indices.length * size);
    indices.forEach((index, b) => {
      const z = normalNoise(o.gitsSeed, index, size);
      for (let k = 0; k < size; k++) xT[b * size + k] = schedule.priorScale * z[k];
    });
    const trajectory = await gitsTrajectory(model.denoiser, xT, indices.length, fine, {
      solverName: o.gitsTeacher as SolverName,
    });
    const cost = gitsCostMatrix(schedule, fine, trajectory, o.gitsMetric as GitsMetric);
    for (let k = 0; k < total.length; k++) total[k] += cost[k];
  }
  return total.map((v) => v / o.gitsSamples);
}

/** The cost matrix from the cache folder, or computed and cached. */
async function cachedCost(
  model: LoadedModel,
  dir: string,
  o: ReturnType<typeof resolveGits>,
  batchSize: number,
): Promise<{ fine: Float64Array; cost: Float64Array; cached: boolean }> {
  const key = costKey(model, o);
  const path = join(dir, "cost.json");
  if (await pathExists(path)) {
    const saved = JSON.parse(await Deno.readTextFile(path)) as CostFile;
    if (saved.format === COST_FORMAT && canonicalJson(saved.key) === canonicalJson(key)) {
      return {
        fine: Float64Array.from(saved.fine),
        cost: Float64Array.from(saved.cost),
        cached: true,
      };
    }
  }
  const fine = edmGrid(model.denoiser.schedule, o.gitsTeacherSteps);
  const cost = await computeCost(model, fine, o, batchSize);
  await Deno.mkdir(dir, { recursive: true });
  const file: CostFile = {
    format: COST_FORMAT,
    version: 1,
    key,
    fine: Array.from(fine),
    cost: Array.from(cost),
  };
  await writeJsonAtomic(path, file);
  return { fine, cost, cached: false };
}

/**
 * The GITS grid of `steps` steps for a model: the cached cost matrix of its search (computed on
 * first use: `gitsSamples × gitsTeacherSteps` network evaluations), the dynamic program, and a
 * grid file of the result in the cache folder.
 *
 * @throws {RangeError} For bad settings or more steps than the fine grid has.
 * @example
 * ```ts ignore
 * const model = await loadModel("configs/gmm-mnist.yml");
 * const { t1, path } = await gitsSearchGrid(model, 6, { gitsSamples: 16 });
 * ```
 */
export async function gitsSearchGrid(
  model: LoadedModel,
  steps: number,
  options: Partial<GitsSearchOptions> = {},
): Promise<GitsSearchResult> {
  const { batchSize, ...rest } = options;
  const o = resolveGits(rest);
  const batch = batchSize ?? model.config.batch_size;
  if (!(Number.isInteger(steps) && steps >= 1 && steps <= o.gitsTeacherSteps)) {
    throw new RangeError(
      `skip_type gits: steps must be an integer in [1, ${o.gitsTeacherSteps}] ` +
        `(gits_teacher_steps): got ${steps}`,
    );
  }
  const id = (await sha256Hex(new TextEncoder().encode(canonicalJson(costKey(model, o)))))
    .slice(0, 12);
  const dir = join(o.gitsDir, `${model.config.name}-${id}`);
  const path = join(dir, `grid-N${steps}-coeff${o.gitsCoeff}.json`);
  if (await pathExists(path)) {
    const file = await loadGridFile(path);
    const indices = file.meta?.indices;
    if (await pathExists(join(dir, "cost.json")) && Array.isArray(indices)) {
      const t1 = gridOfFile(file, model.denoiser.schedule).t1;
      return { t1, path, cached: true, indices: indices as number[] };
    }
  }
  const { fine, cost, cached } = await cachedCost(model, dir, o, batch);
  const indices = gitsPath(cost, fine.length, steps, o.gitsCoeff);
  const t1 = Float64Array.from(indices, (i) => fine[i]);
  await saveGridFile(
    path,
    makeGridFile(model.denoiser.schedule, { t1, t2: t1 }, {
      source: "gits",
      meta: {
        model: model.config.name,
        modelHash: model.modelHash,
        search: costKey(model, o),
        coeff: o.gitsCoeff,
        indices,
      },
    }),
  );
  return { t1, path, cached, indices };
}
