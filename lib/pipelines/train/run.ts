/**
 * An LD3 training run on disk: the library behind `deno task train`, usable from notebooks and
 * `mod.ts` without the CLI.
 *
 * {@linkcode runLd3Training} loads a model config and a teacher dataset written by
 * `deno task generate`, checks that they belong together (model hash, shapes, sample count)
 * and that the options are sane *before* it touches the run folder, then trains with
 * {@linkcode trainLd3} and keeps the folder current:
 *
 * ```text
 * <log_path>/<solver>-N<steps>-b<bound>-<loss>-lr2<lr2>rv1<r1>-rv2<r2>-seed<seed>/
 *   grid.json          the best grid so far (lib/io/grid_file.ts; `--load_from` of sample/generate)
 *   config.yml         every resolved option, the model config and the dataset
 *   log.jsonl          one line per trainer event (steps, validations, reloads…) and improvement
 *   checkpoint.json    the whole trainer state but the latents, written atomically…
 *   checkpoint.<g>.npz …with the relaxed latents it names (float64); older ones are removed
 *   schedule.png       λ of the best grid vs logSNR / EDM / time-uniform, redrawn on improvement
 *   schedule.gif       its evolution, one frame per improvement (written at each round end)
 *   samples.png        teacher, LD3 student and baseline students on validation latents
 *   summary.json       final validation losses of LD3 and the baselines, wall-clock
 * ```
 *
 * A checkpoint (`run_checkpoint.ts`) is saved after every training step. `resume: true` (or `"auto"`) reloads it, truncates the log
 * to the lines written up to that checkpoint and finishes exactly as the uninterrupted run
 * (the trainer is deterministic given its state).
 *
 * @module
 */
import { join, resolve } from "node:path";
import { writeFileAtomic, writeJsonAtomic, writeTextFileAtomic } from "../../io/atomic.ts";
import { loadModelConfig } from "../../onnx/config.ts";
import { firstDifference, readDataset } from "../../io/dataset.ts";
import { sameShape, sampleSize } from "../../denoiser.ts";
import { parseYaml, stringifyYaml } from "../../deps.ts";
import type { DifferentiableDecoder, DifferentiableDenoiser } from "../../differentiable.ts";
import { gitsGrid, SKIP_TYPES, skipGrid, type SkipType, toGrid } from "../../step_grid.ts";
import {
  type GridFile,
  gridOfFile,
  loadGridFile,
  makeGridFile,
  saveGridFile,
} from "../../io/grid_file.ts";
import { imageShapeOf } from "../../io/image.ts";
import { LOSS_TYPES, lossByName, type LossType, type SampleLoss } from "../../metrics/losses.ts";
import { loadLpips } from "../../metrics/lpips.ts";
import { type LoadedModel, loadModel } from "../../onnx/model.ts";
import { differentiableDecoder, differentiableDenoiser } from "../../grad/model_grad.ts";
import { formatProgress } from "../../io/progress.ts";
import type { NoiseSchedule } from "../../noise_schedule.ts";
import type { Grid } from "../../solvers/plan.ts";
import {
  planSolver,
  runPlan,
  SOLVER_NAMES,
  type SolverName,
  solverNfe,
} from "../../solvers/mod.ts";
import { TIME_MODES } from "../../ld3/parameterization.ts";
import {
  type SampleRow,
  samplesPng,
  type ScheduleFrame,
  scheduleGif,
  schedulePlotPng,
} from "./report.ts";
import {
  type Ld3Checkpoint,
  type Ld3Event,
  type Ld3Options,
  type Ld3Sample,
  resolveLd3Options,
  trainLd3,
} from "../../ld3/trainer.ts";
import { pathExists } from "../../io/fs.ts";
import {
  CHECKPOINT_FILE,
  readRunCheckpoint,
  restoreTrainerState,
  type RunCheckpoint,
  saveRunCheckpoint,
} from "./checkpoint.ts";
import { checkCount } from "../../_check.ts";

/** Options of {@linkcode runLd3Training}: the reference tool's `main.py` options. */
export interface RunLd3Options extends Omit<Ld3Options, "priorBound" | "priorGrid"> {
  /** Model YAML config (`--config`). */
  config: string;
  /** Dataset folder written by `deno task generate` (`--data_dir`, the folder with manifest.json). */
  dataDir: string;
  /** Training samples: the dataset's first `numTrain`. @default {50} */
  numTrain?: number;
  /** Validation samples: the next `numValid`. @default {50} */
  numValid?: number;
  /** Root of the run folders (`--log_path`). @default {"logs"} */
  logPath?: string;
  /** Distance to the teacher. @default {"LPIPS" with lpipsModel, else "L2"} */
  lossType?: LossType;
  /** LPIPS ONNX model (needed by `lossType: "LPIPS"` unless `loss` is given). */
  lpipsModel?: string;
  /**
   * Ball radius coefficient: the radius is `priorBound · C·H·W / steps²`, or `priorBound`
   * itself with `fixBound`. 0 trains the hard objective. @default {0.001}
   */
  priorBound?: number;
  /** Use `priorBound` as the radius as is. @default {false} */
  fixBound?: boolean;
  /**
   * Start from this step grid (`--match_prior`): a skip type (`time_uniform`, `time_quadratic`,
   * `logSNR`, `edm`), `gits`, or a grid file. @default {undefined}
   */
  matchPrior?: string;
  /**
   * Continue the run folder's checkpoint: `true` requires one, `false` refuses a folder that holds
   * one, `"auto"` continues one when it is there and starts afresh otherwise (the demo and the
   * schedule benchmark, which are re-run until done). @default {false}
   */
  resume?: boolean | "auto";
  /** Execution device. @default {the config's} */
  device?: string;
  /** A differentiable denoiser to use instead of the config's ONNX model (notebooks). */
  denoiser?: DifferentiableDenoiser;
  /** The loss to use instead of `lossType`'s (e.g. a custom perceptual loss). */
  loss?: SampleLoss;
  /** Receives every trainer event (after it is logged). */
  onEvent?: (event: Ld3Event) => void;
  /** Progress line on stderr; `false` for none. @default {{}} */
  progress?: Ld3ProgressOptions | false;
  /** Validation samples shown in samples.png. @default {8} */
  previewCount?: number;
  /**
   * Stop (throw {@linkcode Ld3Interrupted}) once the checkpoint of this global training step is
   * written: a deterministic stand-in for a kill, for resume tests. @default {undefined}
   */
  stopAfterStep?: number;
}

/** Options of the training progress line. */
export interface Ld3ProgressOptions {
  /** Redraw in place; defaults to whether stderr is a terminal. */
  interactive?: boolean;
  /** Where lines go. @default {stderr} */
  write?: (text: string) => void;
  /** Time between plain lines when not interactive. @default {30000} */
  logEveryMs?: number;
}

/** Validation losses (same latents z, same loss) of the learned grid and the baselines. */
export interface Ld3Evaluation {
  ld3: number;
  logSNR: number;
  edm: number;
  time_uniform: number;
}

/** What {@linkcode runLd3Training} returns. */
export interface RunLd3Result {
  /** The run folder. */
  runDir: string;
  /** Its grid.json. */
  gridPath: string;
  /** The learned grid. */
  grid: Grid;
  /** The grid file written. */
  gridFile: GridFile;
  /** The trainer's best validation loss (on the relaxed validation latents). */
  bestValidLoss: number;
  /** Validation loss on the original latents z of LD3 vs the baselines. */
  evaluation: Ld3Evaluation;
  /** Training wall-clock of all sessions of this run, seconds (checkpoints included). */
  trainSeconds: number;
  /** Global training steps done. */
  steps: number;
  /** Why training ended. */
  stopReason: "rounds" | "lr2_floor";
  /** Whether this call resumed a checkpoint. */
  resumed: boolean;
}

/** Thrown by `stopAfterStep`: the run stopped after a checkpoint, as if killed. */
export class Ld3Interrupted extends Error {
  /** The global step of the last checkpoint. */
  readonly step: number;
  constructor(step: number) {
    super(`Training stopped after the checkpoint of step ${step} (stopAfterStep)`);
    this.name = "Ld3Interrupted";
    this.step = step;
  }
}

/**
 * The short LD3 recipe of the demo and of the schedule benchmark's LD3 column. The spec's 2 + 5
 * rounds validate 50 samples after each of 175 steps, which alone takes 10–15 minutes on the
 * bundled UNet with 2 CPU cores; 1 + 2 rounds from the EDM grid (the grid the bundled models and
 * the teacher are built around) keep a grid to 2–5 minutes and lose little (docs/demo.md).
 * `deno task train` keeps the spec's defaults.
 */
export const QUICK_LD3 = {
  trainingRoundsV1: 1,
  trainingRoundsV2: 2,
  matchPrior: "edm",
} as const satisfies Partial<RunLd3Options>;

/** `<solver>-N<steps>-b<bound>-<loss>-lr2<lr2>rv1<r1>-rv2<r2>-seed<seed>` of the reference tool. */
export function runFolderName(o: {
  solverName: string;
  steps: number;
  priorBound: number;
  lossType: string;
  lrTime2: number;
  trainingRoundsV1: number;
  trainingRoundsV2: number;
  seed: number;
}): string {
  // Six significant digits keep names short and free of float noise (0.049, not 0.04900000001).
  const bound = Number(o.priorBound.toPrecision(6));
  return `${o.solverName}-N${o.steps}-b${bound}-${o.lossType}-lr2${o.lrTime2}` +
    `rv1${o.trainingRoundsV1}-rv2${o.trainingRoundsV2}-seed${o.seed}`;
}

/** The start grid a run folder's `config.yml` records (`match_prior`), for error messages. */
async function savedStart(runDir: string): Promise<string> {
  try {
    const saved = parseYaml(await Deno.readTextFile(join(runDir, "config.yml"))) as {
      match_prior?: string | null;
    };
    return saved.match_prior ?? "none";
  } catch {
    return "another grid";
  }
}

/** The step grid `--match_prior` names: a skip type, `gits` or a grid file. */
async function priorGridOf(
  spec: string,
  schedule: NoiseSchedule,
  solver: SolverName,
  steps: number,
): Promise<Float64Array> {
  let t1: Float64Array;
  if ((SKIP_TYPES as readonly string[]).includes(spec)) {
    t1 = skipGrid(spec as SkipType, schedule, steps);
  } else if (spec === "gits") {
    t1 = gitsGrid(schedule, solver, steps);
  } else {
    t1 = gridOfFile(await loadGridFile(spec), schedule).t1;
  }
  if (t1.length !== steps + 1) {
    throw new RangeError(
      `match_prior grid "${spec}" has ${t1.length - 1} steps: the run has ${steps}`,
    );
  }
  return t1;
}

/** The mean loss of a grid over samples, starting from the samples' original latents z. */
export async function gridLoss(
  ctx: {
    denoiser: DifferentiableDenoiser;
    decode?: DifferentiableDecoder;
    loss: SampleLoss;
    solverName: SolverName;
    solverOptions: { order?: number; variant?: "bh1" | "bh2" };
    batchSize: number;
  },
  grid: Grid,
  samples: readonly Ld3Sample[],
): Promise<{ mean: number; images: Float64Array }> {
  const schedule = ctx.denoiser.schedule;
  const plan = planSolver(ctx.solverName, schedule, grid, ctx.solverOptions);
  let total = 0;
  const parts: Float64Array[] = [];
  for (let s = 0; s < samples.length; s += ctx.batchSize) {
    const batch = samples.slice(s, s + ctx.batchSize);
    const size = batch[0].z.length;
    const xT = new Float64Array(batch.length * size);
    batch.forEach((b, i) => {
      for (let j = 0; j < size; j++) xT[i * size + j] = b.z[j] * schedule.priorScale;
    });
    const teacherSize = batch[0].teacher.length;
    const teacher = new Float64Array(batch.length * teacherSize);
    batch.forEach((b, i) => teacher.set(b.teacher, i * teacherSize));
    const condition = batch.every((b) => b.condition)
      ? Float32Array.from(batch.flatMap((b) => Array.from(b.condition!)))
      : undefined;
    const out = await runPlan(plan, ctx.denoiser, xT, { condition });
    const image = ctx.decode ? await ctx.decode.decode(out, batch.length) : out;
    for (const v of await ctx.loss.value(image, teacher, batch.length)) total += v;
    parts.push(image);
  }
  const images = new Float64Array(parts.reduce((a, p) => a + p.length, 0));
  let off = 0;
  for (const p of parts) images.set(p, off), off += p.length;
  return { mean: total / samples.length, images };
}

/** A one-line progress display of round, step, loss and ETA. */
class TrainProgress {
  readonly #total: number;
  readonly #startDone: number;
  readonly #start = performance.now();
  readonly #interactive: boolean;
  readonly #write: (text: string) => void;
  readonly #logEveryMs: number;
  #last = -Infinity;
  #done: number;
  constructor(total: number, done: number, options: Ld3ProgressOptions) {
    this.#total = total;
    this.#done = done;
    this.#startDone = done;
    this.#interactive = options.interactive ?? Deno.stderr.isTerminal();
    const enc = new TextEncoder();
    this.#write = options.write ?? ((t) => Deno.stderr.writeSync(enc.encode(t)));
    this.#logEveryMs = options.logEveryMs ?? 30000;
  }
  #line(label: string): string {
    // `initial`: rate and ETA describe this process, not the steps a resumed run inherited.
    return formatProgress({
      done: this.#done,
      total: this.#total,
      elapsedMs: performance.now() - this.#start,
      unit: "steps",
      label,
      initial: this.#startDone,
    }, this.#interactive ? 20 : 0);
  }
  update(done: number, label: string, force = false): void {
    this.#done = done;
    const now = performance.now();
    const every = this.#interactive ? 100 : this.#logEveryMs;
    if (!force && now - this.#last < every) return;
    this.#last = now;
    this.#write(this.#interactive ? `\r${this.#line(label)}\x1b[K` : `${this.#line(label)}\n`);
  }
  finish(label: string): void {
    this.#write(this.#interactive ? `\r${this.#line(label)}\x1b[K\n` : `${this.#line(label)}\n`);
  }
}

/**
 * Trains an LD3 schedule for a model config on a teacher dataset and keeps a run folder (see
 * the module doc). Every check on the inputs runs before the run folder is created or touched.
 *
 * @throws {RangeError} On bad options, a dataset that does not belong to the model (hash,
 * shapes), too few samples, or a run folder that already holds a checkpoint without `resume`
 * (or none with it).
 * @throws {Ld3Interrupted} When `stopAfterStep` is reached.
 *
 * @example
 * ```ts ignore
 * const result = await runLd3Training({
 *   config: "configs/gmm-mnist.yml",
 *   dataDir: "train_data/uni_pc_NFE20_edm",
 *   solverName: "ipndm",
 *   steps: 4,
 *   lossType: "L2",
 * });
 * console.log(result.gridPath, result.evaluation);
 * ```
 */
export async function runLd3Training(options: RunLd3Options): Promise<RunLd3Result> {
  // ---- checks that need nothing loaded -------------------------------------------------------
  const numTrain = options.numTrain ?? 50;
  const numValid = options.numValid ?? 50;
  checkCount("num_train", numTrain, 1);
  checkCount("num_valid", numValid, 1);
  const boundCoef = options.priorBound ?? 0.001;
  if (!(Number.isFinite(boundCoef) && boundCoef >= 0)) {
    throw new RangeError(`prior_bound must be a non-negative number: got ${boundCoef}`);
  }
  const lossType: LossType = options.lossType ??
    (options.lpipsModel !== undefined ? "LPIPS" : "L2");
  if (!LOSS_TYPES.includes(lossType)) {
    throw new RangeError(
      `Unknown loss type: "${lossType}" (expected one of ${LOSS_TYPES.join(", ")})`,
    );
  }
  if (lossType === "LPIPS" && !options.loss && options.lpipsModel === undefined) {
    throw new RangeError("Loss LPIPS needs an LPIPS ONNX model: pass lpips_model");
  }
  const solverName = options.solverName ?? "uni_pc";
  if (!(SOLVER_NAMES as readonly string[]).includes(solverName)) {
    throw new RangeError(
      `Unknown solver: "${solverName}" (expected one of ${SOLVER_NAMES.join(", ")})`,
    );
  }
  if (options.timeMode !== undefined && !TIME_MODES.includes(options.timeMode)) {
    throw new RangeError(`time_mode must be "time" or "lambda": got "${options.timeMode}"`);
  }
  if (options.unipcVariant !== undefined && !["bh1", "bh2"].includes(options.unipcVariant)) {
    throw new RangeError(`unipc_variant must be bh1 or bh2: got "${options.unipcVariant}"`);
  }
  const steps = options.steps ?? 10;
  checkCount("steps", steps, 1);

  // ---- config, dataset, model ----------------------------------------------------------------
  const config = await loadModelConfig(options.config);
  const dataDir = resolve(options.dataDir);
  const dataset = await readDataset(dataDir, { requireComplete: false });
  const manifest = dataset.manifest;
  if (manifest.count < numTrain + numValid) {
    throw new RangeError(
      `Dataset ${dataDir} holds ${manifest.count} samples: num_train + num_valid = ` +
        `${numTrain + numValid} needed`,
    );
  }
  const missing = Array.from({ length: numTrain + numValid }, (_, i) => i)
    .filter((i) => !dataset.indices.includes(i));
  if (missing.length > 0) {
    throw new RangeError(
      `Dataset ${dataDir} lacks ${missing.length} of the first ${numTrain + numValid} samples ` +
        `(first: ${missing[0]}): finish it with generate`,
    );
  }
  let model: LoadedModel | undefined;
  const closers: (() => Promise<void>)[] = [];
  try {
    model = await loadModel(config, { device: options.device });
    closers.push(() => model!.close());
    if (manifest.model.sha256 !== model.modelHash) {
      throw new RangeError(
        `Dataset ${dataDir} was made with model sha256 ${manifest.model.sha256}: config ` +
          `${options.config} loads ${model.modelHash}`,
      );
    }
    if (!sameShape(model.sampleShape, manifest.shapes.z)) {
      throw new RangeError(
        `Dataset ${dataDir} latents have shape [${manifest.shapes.z}]: the model's are [${model.sampleShape}]`,
      );
    }
    if (!sameShape(model.imageShape, manifest.shapes.x)) {
      throw new RangeError(
        `Dataset ${dataDir} images have shape [${manifest.shapes.x}]: the model's are [${model.imageShape}]`,
      );
    }
    if (model.conditionShape && !sameShape(model.conditionShape, manifest.shapes.c)) {
      throw new RangeError(
        `Dataset ${dataDir} conditions have shape [${
          manifest.shapes.c ?? []
        }]: the model's are [${model.conditionShape}]`,
      );
    }
    const schedule = model.denoiser.schedule;
    const size = sampleSize(model.sampleShape);
    const radius = options.fixBound ? boundCoef : boundCoef * size / (steps * steps);
    const trainerOptions: Ld3Options = {
      solverName: solverName as SolverName,
      order: options.order,
      unipcVariant: options.unipcVariant,
      steps,
      timeMode: options.timeMode,
      winRate: options.winRate,
      trainBatchSize: options.trainBatchSize,
      validBatchSize: options.validBatchSize,
      validOneBatchSize: options.validOneBatchSize,
      trainingRoundsV1: options.trainingRoundsV1,
      trainingRoundsV2: options.trainingRoundsV2,
      lrTime1: options.lrTime1,
      lrTime2: options.lrTime2,
      momentumTime1: options.momentumTime1,
      weightDecayTime1: options.weightDecayTime1,
      minLrTime1: options.minLrTime1,
      minLrTime2: options.minLrTime2,
      lrTimeDecay: options.lrTimeDecay,
      patient: options.patient,
      lr2Patient: options.lr2Patient,
      priorBound: radius,
      shiftLr: options.shiftLr,
      shiftLrDecay: options.shiftLrDecay,
      clipNorm: options.clipNorm,
      noV1: options.noV1,
      seed: options.seed,
    };
    if (options.matchPrior !== undefined) {
      trainerOptions.priorGrid = await priorGridOf(
        options.matchPrior,
        schedule,
        solverName as SolverName,
        steps,
      );
    }
    const resolved = resolveLd3Options(trainerOptions, size);
    const runDir = resolve(
      options.logPath ?? "logs",
      runFolderName({ ...resolved, lossType }),
    );
    const ckptPath = join(runDir, CHECKPOINT_FILE);
    const recordedOptions = JSON.parse(JSON.stringify({
      ...resolved,
      priorGrid: resolved.priorGrid ? Array.from(resolved.priorGrid) : null,
      order: resolved.order ?? null,
      lossType,
      numTrain,
      numValid,
      modelHash: model.modelHash,
    }));
    let previous: RunCheckpoint | undefined;
    let resumeFrom: Ld3Checkpoint | undefined;
    if (await pathExists(ckptPath)) {
      if (options.resume !== true && options.resume !== "auto") {
        throw new RangeError(
          `Run folder ${runDir} already holds a checkpoint: pass resume (--resume) to continue ` +
            `it, or use another log_path`,
        );
      }
      previous = await readRunCheckpoint(runDir);
      // The folder name does not say which grid a run started from: name both when they differ.
      if (firstDifference(previous.options.priorGrid, recordedOptions.priorGrid)) {
        throw new RangeError(
          `Cannot resume ${runDir}: it was started from ${await savedStart(runDir)}, got ` +
            `match_prior ${
              options.matchPrior ?? "none"
            } (start in another folder, or delete this one)`,
        );
      }
      const difference = firstDifference(previous.options, recordedOptions);
      if (difference) {
        throw new RangeError(`Cannot resume ${runDir} with other options (${difference})`);
      }
      resumeFrom = await restoreTrainerState(runDir, previous, { numTrain, numValid, size });
    } else if (options.resume === true) {
      throw new RangeError(`Nothing to resume: ${runDir} holds no ${CHECKPOINT_FILE}`);
    }

    // ---- the differentiable model and the loss (still before the folder is touched) ---------
    const denoiser = options.denoiser ?? await (async () => {
      const d = await differentiableDenoiser(model!, { device: options.device });
      closers.push(() => d.close());
      return d;
    })();
    let decode: DifferentiableDecoder | undefined;
    const range = config.data_range;
    if (config.decoder || range[0] !== -1 || range[1] !== 1) {
      const d = await differentiableDecoder(model, { device: options.device });
      closers.push(() => d.close());
      decode = d;
    }
    let loss: SampleLoss;
    if (options.loss) loss = options.loss;
    else if (lossType === "LPIPS") {
      const lpips = await loadLpips(options.lpipsModel!, { device: options.device });
      closers.push(() => lpips.close());
      loss = lpips;
    } else loss = lossByName(lossType);

    const readSample = async (i: number): Promise<Ld3Sample> => {
      const s = await dataset.read(i);
      return { z: Float64Array.from(s.z), teacher: s.x, condition: s.c };
    };
    const train: Ld3Sample[] = [];
    for (let i = 0; i < numTrain; i++) train.push(await readSample(i));
    const valid: Ld3Sample[] = [];
    for (let i = numTrain; i < numTrain + numValid; i++) valid.push(await readSample(i));

    // ---- the run folder ------------------------------------------------------------------------
    await Deno.mkdir(runDir, { recursive: true });
    const logPath = join(runDir, "log.jsonl");
    const gridPath = join(runDir, "grid.json");
    let logLines = 0;
    if (previous) {
      // Drop what the interrupted session logged after its last checkpoint: it runs again.
      const text = await Deno.readTextFile(logPath).catch(() => "");
      const kept = text.split("\n").filter((l) => l !== "").slice(0, previous.logLines);
      await writeTextFileAtomic(logPath, kept.map((l) => l + "\n").join(""));
      logLines = kept.length;
    } else {
      await Deno.writeTextFile(logPath, "");
    }
    const configYml = {
      model_config: resolve(options.config),
      model: { name: config.name, sha256: model.modelHash },
      data_dir: dataDir,
      dataset: {
        solver: manifest.solver,
        skip_type: manifest.grid.skip_type,
        count: manifest.count,
      },
      options: recordedOptions,
      prior_bound_coefficient: boundCoef,
      fix_bound: options.fixBound ?? false,
      match_prior: options.matchPrior ?? null,
      device: options.device ?? config.device,
    };
    await writeTextFileAtomic(join(runDir, "config.yml"), stringifyYaml(configYml));
    const logFile = await Deno.open(logPath, { append: true, create: true });
    closers.push(() => Promise.resolve(logFile.close()));
    const enc = new TextEncoder();
    const log = (value: unknown) => {
      logFile.writeSync(enc.encode(JSON.stringify(value) + "\n"));
      logLines++;
    };

    const solverOptions = { order: resolved.order, variant: resolved.unipcVariant };
    const gridInfo = (extra: Record<string, unknown>) => ({
      nfe: solverNfe(resolved.solverName, steps),
      solver: resolved.solverName,
      solverOptions: {
        ...(resolved.order !== undefined ? { order: resolved.order } : {}),
        variant: resolved.unipcVariant,
      },
      source: "ld3",
      meta: {
        model: config.name,
        modelHash: model!.modelHash,
        loss: lossType,
        timeMode: resolved.timeMode,
        runDir,
        ...extra,
      },
    });
    const title = `${resolved.solverName} N=${steps}`;
    const frames: ScheduleFrame[] = previous ? [...previous.frames] : [];
    let generation = previous ? previous.generation : 0;
    let elapsedBefore = previous ? previous.elapsedSeconds : 0;
    const sessionStart = performance.now();
    const elapsed = () => elapsedBefore + (performance.now() - sessionStart) / 1000;
    let improved = false;
    const roundsTotal = (resolved.noV1 ? 0 : resolved.trainingRoundsV1) + resolved.trainingRoundsV2;
    const perRound = Math.ceil(numTrain / resolved.trainBatchSize);
    const bar = options.progress === false ? undefined : new TrainProgress(
      roundsTotal * perRound,
      previous?.trainer.globalStep ?? 0,
      options.progress ?? {},
    );
    let lastLoss = NaN;
    let bestLoss = previous?.trainer.best?.loss ?? NaN;
    let round = previous?.trainer.round ?? 0;
    const label = () =>
      `round ${Math.min(round + 1, roundsTotal)}/${roundsTotal} loss ${lastLoss.toPrecision(4)} ` +
      `best ${bestLoss.toPrecision(4)}`;

    const onEvent = (e: Ld3Event) => {
      log(e);
      if (e.type === "validation" && e.improved) improved = true;
      if (e.type === "validation") bestLoss = e.best;
      if (e.type === "round") round = e.round;
      if (e.type === "step") {
        lastLoss = e.loss;
        bar?.update(e.step, label());
      }
      options.onEvent?.(e);
    };
    const writeGif = async () => {
      if (frames.length === 0) return;
      await writeFileAtomic(
        join(runDir, "schedule.gif"),
        await scheduleGif(schedule, frames, { title }),
      );
    };
    const saveCheckpoint = async (c: Ld3Checkpoint, reason: string) => {
      if (improved && c.best) {
        improved = false;
        const [t1, t2] = [Array.from(c.best.t1), Array.from(c.best.t2)];
        const frame = { step: c.globalStep, loss: c.best.loss, t1, t2 };
        frames.push(frame);
        log({ type: "improvement", ...frame });
        const grid = toGrid(c.best.t1, c.best.t2);
        await saveGridFile(
          gridPath,
          makeGridFile(schedule, grid, gridInfo({ validLoss: c.best.loss, step: c.globalStep })),
        );
        await writeFileAtomic(
          join(runDir, "schedule.png"),
          schedulePlotPng(schedule, grid, {
            title: `${title} step ${c.globalStep} loss ${c.best.loss.toPrecision(4)}`,
          }),
        );
      }
      if (reason === "round_end") await writeGif();
      generation++;
      await saveRunCheckpoint(
        runDir,
        c,
        { options: recordedOptions, generation, logLines, elapsedSeconds: elapsed(), frames },
        { numTrain, numValid, size },
      );
      if (options.stopAfterStep !== undefined && c.globalStep >= options.stopAfterStep) {
        throw new Ld3Interrupted(c.globalStep);
      }
    };

    if (resumeFrom) log({ type: "resume", step: resumeFrom.globalStep, round: resumeFrom.round });

    const result = await trainLd3(trainerOptions, {
      denoiser,
      decode,
      loss,
      train,
      valid,
      onEvent,
      saveCheckpoint,
      resumeFrom,
    });
    const trainSeconds = elapsed();
    bar?.finish(label());
    elapsedBefore = trainSeconds;

    // ---- final pictures and numbers ------------------------------------------------------------
    const ctx = {
      denoiser,
      decode,
      loss,
      solverName: resolved.solverName,
      solverOptions,
      batchSize: resolved.validBatchSize,
    };
    const baselines = {
      logSNR: toGrid(skipGrid("logSNR", schedule, steps)),
      edm: toGrid(skipGrid("edm", schedule, steps)),
      time_uniform: toGrid(skipGrid("time_uniform", schedule, steps)),
    };
    const ld3 = await gridLoss(ctx, result.grid, valid);
    const evaluation: Ld3Evaluation = {
      ld3: ld3.mean,
      logSNR: (await gridLoss(ctx, baselines.logSNR, valid)).mean,
      edm: (await gridLoss(ctx, baselines.edm, valid)).mean,
      time_uniform: (await gridLoss(ctx, baselines.time_uniform, valid)).mean,
    };
    const stop = result.history.findLast((e) => e.type === "stop");
    const stopReason = stop?.type === "stop" ? stop.reason : "rounds";
    const gridFile = makeGridFile(
      schedule,
      result.grid,
      gridInfo({ validLoss: result.bestValidLoss, evaluation, step: result.checkpoint.globalStep }),
    );
    await saveGridFile(gridPath, gridFile);
    await writeFileAtomic(
      join(runDir, "schedule.png"),
      schedulePlotPng(schedule, result.grid, {
        title: `${title} loss ${result.bestValidLoss.toPrecision(4)}`,
      }),
    );
    await writeGif();
    const preview = valid.slice(0, Math.min(options.previewCount ?? 8, valid.length));
    const imageShape = imageShapeOf(model.imageShape);
    const rows: SampleRow[] = [
      {
        label: "teacher",
        images: Float64Array.from(preview.flatMap((s) => Array.from(s.teacher))),
      },
      { label: "LD3", images: (await gridLoss(ctx, result.grid, preview)).images },
      { label: "logSNR", images: (await gridLoss(ctx, baselines.logSNR, preview)).images },
      { label: "EDM", images: (await gridLoss(ctx, baselines.edm, preview)).images },
    ];
    if (imageShape.length === 3 && (imageShape[0] === 1 || imageShape[0] === 3)) {
      await writeFileAtomic(join(runDir, "samples.png"), samplesPng(rows, imageShape));
    }
    await writeJsonAtomic(join(runDir, "summary.json"), {
      grid: gridPath,
      bestValidLoss: result.bestValidLoss,
      evaluation,
      lossType,
      trainSeconds,
      steps: result.checkpoint.globalStep,
      stopReason,
      improvements: frames.length,
    });
    return {
      runDir,
      gridPath,
      grid: result.grid,
      gridFile,
      bestValidLoss: result.bestValidLoss,
      evaluation,
      trainSeconds,
      steps: result.checkpoint.globalStep,
      stopReason,
      resumed: previous !== undefined,
    };
  } finally {
    for (const close of closers.reverse()) await close();
  }
}
