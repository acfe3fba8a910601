/**
 * Learned grids for a whole matrix of (solver, NFE) pairs in one call: the LD3 column of the
 * schedule benchmark (`deno task bench:schedules --train_ld3`).
 *
 * One teacher dataset (UniPC, 20 NFE, EDM grid, seed 0 by default — disjoint from the
 * benchmark's seed-1000 evaluation teacher) is generated once; then every pair without a grid
 * file gets its own LD3 run with the demo's recipe (`QUICK_LD3`: 1 + 2 rounds, EDM start; L2), and the
 * learned grid is written to `<ld3Dir>/<solver>-NFE<nfe>.json` with `meta.train_seconds`, the
 * layout `runScheduleBench` reads. Existing grid files are kept; an interrupted run is resumed
 * from its checkpoint (each pair has its own log folder), so the whole call can be repeated
 * until everything is there.
 *
 * @module
 */
import { join } from "node:path";
import { pathExists } from "../../io/fs.ts";
import { loadGridFile, saveGridFile } from "../../io/grid_file.ts";
import type { ProgressBarOptions } from "../../io/progress.ts";
import { generateDataset } from "../generate.ts";
import { LD3_TEACHER } from "../sampler.ts";
import { checkSolverName, type SolverName, solverSteps } from "../../solvers/mod.ts";
import { checkValue, type OptionDeclarations } from "../../options.ts";
import { QUICK_LD3, runLd3Training } from "./run.ts";
import { checkCount } from "../../_check.ts";

/** The sample count of {@linkcode trainLd3Grids} (`--ld3_samples` of `bench:schedules`). */
export const GRID_SET_OPTIONS = {
  samples: {
    flag: "ld3_samples",
    kind: "integer",
    arg: "N",
    min: 2,
    default: 100,
    help: "teacher samples of the LD3 grids, half train, half validate",
  },
} as const satisfies OptionDeclarations;

/** Options of {@linkcode trainLd3Grids}. */
export interface TrainLd3GridsOptions {
  /** Solvers (rows of the matrix). */
  solvers: readonly string[];
  /** NFE budgets. */
  nfes: readonly number[];
  /** Where the grid files go (`<solver>-NFE<nfe>.json`). */
  ld3Dir: string;
  /** Folder of the training teacher (`teacher/`) and the runs (`runs/<solver>-NFE<nfe>/`). */
  workDir: string;
  /** Teacher samples; half train, half validate ({@linkcode GRID_SET_OPTIONS}). */
  samples?: number;
  /** Noise seed of the training teacher. @default {0} */
  seed?: number;
  /** Rounds of the first (v1) and second (v2) training stage. @default {{ v1: 1, v2: 2 }} */
  rounds?: { v1: number; v2: number };
  /** The starting grid (`matchPrior` of {@linkcode runLd3Training}). @default {"edm"} */
  matchPrior?: string;
  /** Execution device. @default {the config's} */
  device?: string;
  /** CPU threads per ONNX Runtime session. @default {the config's, else one per core} */
  threads?: number;
  /** Progress of the teacher and of each run; `false` for none. @default {{}} */
  progress?: ProgressBarOptions | false;
  /** Called after each pair: its grid file, whether it was trained now, and training seconds. */
  onGrid?: (grid: Ld3GridEntry) => void;
}

/** One (solver, NFE) pair of {@linkcode trainLd3Grids}. */
export interface Ld3GridEntry {
  /** Student solver name. */
  solver: string;
  /** Network evaluations per sample the grid is for. */
  nfe: number;
  /** The grid file in `ld3Dir`, or `undefined` when the solver cannot spend this NFE. */
  path?: string;
  /** `trained` now, `kept` (the file was there), or `n/a` (the solver cannot spend this NFE). */
  status: "trained" | "kept" | "n/a";
  /** Training wall-clock of the run (all its sessions), seconds; trained pairs only. */
  trainSeconds?: number;
}

/**
 * Trains the LD3 grids of every (solver, NFE) pair that has no grid file in `ld3Dir` yet.
 *
 * @param config The model's YAML config.
 * @returns One entry per pair, solver-major.
 * @throws {RangeError} On unknown solvers or bad counts, before anything is written.
 */
export async function trainLd3Grids(
  config: string,
  options: TrainLd3GridsOptions,
): Promise<Ld3GridEntry[]> {
  for (const s of options.solvers) checkSolverName(s, "solvers");
  for (const nfe of options.nfes) checkCount("nfes[]", nfe, 1);
  const samples = options.samples ?? GRID_SET_OPTIONS.samples.default;
  checkValue(GRID_SET_OPTIONS.samples, samples, "samples");
  const seed = options.seed ?? 0;
  checkCount("seed", seed, 0);
  const rounds = options.rounds ??
    { v1: QUICK_LD3.trainingRoundsV1, v2: QUICK_LD3.trainingRoundsV2 };
  checkCount("rounds.v1", rounds.v1, 0);
  checkCount("rounds.v2", rounds.v2, 0);
  if (rounds.v1 + rounds.v2 === 0) {
    throw new RangeError("rounds.v1 + rounds.v2 must be >= 1: got 0");
  }

  const entries: Ld3GridEntry[] = [];
  const todo: { entry: Ld3GridEntry; steps: number }[] = [];
  for (const solver of options.solvers) {
    for (const nfe of options.nfes) {
      const path = join(options.ld3Dir, `${solver}-NFE${nfe}.json`);
      let steps: number;
      try {
        steps = solverSteps(solver as SolverName, nfe);
      } catch {
        entries.push({ solver, nfe, status: "n/a" });
        continue;
      }
      const entry: Ld3GridEntry = { solver, nfe, path, status: "kept" };
      entries.push(entry);
      if (await pathExists(path)) options.onGrid?.(entry);
      else todo.push({ entry, steps });
    }
  }
  if (todo.length === 0) return entries;

  // One teacher for every run (resumable: complete samples are kept).
  const teacherRoot = join(options.workDir, "teacher");
  const teacher = await generateDataset(config, {
    ...LD3_TEACHER,
    dataDir: teacherRoot,
    totalSamples: samples,
    seed,
    device: options.device,
    threads: options.threads,
    progress: options.progress === false ? false : { label: "ld3 teacher", ...options.progress },
  });
  await Deno.mkdir(options.ld3Dir, { recursive: true });
  for (const { entry, steps } of todo) {
    const logPath = join(options.workDir, "runs", `${entry.solver}-NFE${entry.nfe}`);
    const run = await runLd3Training({
      config,
      dataDir: teacher.dir,
      solverName: entry.solver as SolverName,
      steps,
      lossType: "L2",
      numTrain: Math.floor(samples / 2),
      numValid: samples - Math.floor(samples / 2),
      trainingRoundsV1: rounds.v1,
      trainingRoundsV2: rounds.v2,
      matchPrior: options.matchPrior ?? QUICK_LD3.matchPrior,
      logPath,
      resume: "auto",
      device: options.device,
      threads: options.threads,
      progress: options.progress === false ? false : {},
    });
    const file = await loadGridFile(run.gridPath);
    await saveGridFile(entry.path!, {
      ...file,
      meta: { ...file.meta, train_seconds: run.trainSeconds, run_dir: run.runDir },
    });
    entry.status = "trained";
    entry.trainSeconds = run.trainSeconds;
    options.onGrid?.(entry);
  }
  return entries;
}
