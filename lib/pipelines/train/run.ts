/**
 * An LD3 training run on disk: the library behind `deno task train`, usable from notebooks and
 * `mod.ts` without the CLI.
 *
 * {@linkcode runLd3Training} loads a model config and a teacher dataset written by
 * `deno task generate`, checks that they belong together (model hash, shapes, sample count)
 * and that the options are sane *before* it touches the run folder, then trains with
 * {@linkcode trainLd3} and keeps the folder current (`recorder.ts`), and scores the result
 * against the hand-made grids at the end (`summary.ts`):
 *
 * ```text
 * <log_path>/<solver>-N<steps>-b<bound>-<loss>-lr2<lr2>rv1<r1>-rv2<r2>-seed<seed>/
 *   grid.json          the best grid so far (lib/io/grid_file.ts; `--load_from` of sample/generate)
 *   config.yml         every resolved option, the model config and the dataset
 *   log.jsonl          one line per trainer event (steps, validations, reloads…) and improvement
 *   checkpoint.json    the whole trainer state but the latents, written atomically…
 *   checkpoint.<g>.npz …with the relaxed latents it names (float64); older ones are removed
 *   schedule.svg, .png λ of the learned grid vs logSNR / EDM / time-uniform, drawn at the end
 *   schedule.gif       its evolution, one frame per improvement, drawn at the end
 *   samples.png        teacher, LD3 student and baseline students on validation latents
 *   summary.json       final validation losses of LD3 and the baselines, wall-clock
 *   report.html        all of the above in one self-contained page (html_report.ts)
 * ```
 *
 * A checkpoint (`checkpoint.ts`) is saved after every training step. `resume: true` (or
 * `"auto"`) reloads it, truncates the log to the lines written up to that checkpoint and
 * finishes exactly as the uninterrupted run (the trainer is deterministic given its state).
 * While a run works on its folder it owns it (`lib/io/lock.ts`, the lock file
 * `.<run folder>.lock` beside it): a second run into the same folder fails at once.
 *
 * @module
 */
import { join, resolve } from "node:path";
import { writeTextFileAtomic } from "../../io/atomic.ts";
import { type Dataset, firstDifference, readDataset } from "../../io/dataset.ts";
import { sameShape, sampleSize } from "../../denoiser.ts";
import { parseYaml, stringifyYaml } from "../../deps.ts";
import type { DifferentiableDecoder, DifferentiableDenoiser } from "../../differentiable.ts";
import { gitsGrid, SKIP_TYPES, skipGrid, type SkipType } from "../../step_grid.ts";
import { type GridFile, gridOfFile, loadGridFile } from "../../io/grid_file.ts";
import { pathExists } from "../../io/fs.ts";
import { isUrl } from "../../io/remote.ts";
import { lockOutput } from "../../io/lock.ts";
import { LOSS_TYPES, lossByName, type SampleLoss } from "../../metrics/losses.ts";
import { loadLpips } from "../../metrics/lpips.ts";
import { loadModelConfig, type ModelConfig } from "../../onnx/config.ts";
import { type LoadedModel, loadModel } from "../../onnx/model.ts";
import { differentiableDecoder, differentiableDenoiser } from "../../grad/model_grad.ts";
import type { NoiseSchedule } from "../../noise_schedule.ts";
import type { Grid } from "../../solvers/plan.ts";
import { type SolverName, solverNfe } from "../../solvers/mod.ts";
import {
  declaredValues,
  type OptionDeclarations,
  type OptionValues,
  resolveOptions,
} from "../../options.ts";
import { LD3_OPTIONS } from "../../ld3/options.ts";
import {
  type Ld3Checkpoint,
  type Ld3Event,
  type Ld3Options,
  type Ld3Sample,
  resolveLd3Options,
  trainLd3,
} from "../../ld3/trainer.ts";
import { MODEL_OPTIONS } from "../options.ts";
import { teacherGuidance } from "../prompts.ts";
import { CHECKPOINT_FILE, readRunCheckpoint, restoreTrainerState } from "./checkpoint.ts";
import type { RunCheckpoint } from "./checkpoint.ts";
import { type Ld3ProgressOptions, RunRecorder } from "./recorder.ts";
import { finishRun, type GridLossContext, type Ld3Evaluation } from "./summary.ts";
import { writeRunReport } from "./html_report.ts";

export { gridLoss } from "./summary.ts";
export type { GridLossContext, Ld3Evaluation } from "./summary.ts";
export { Ld3Interrupted } from "./recorder.ts";
export type { Ld3ProgressOptions } from "./recorder.ts";

/**
 * The options of {@linkcode runLd3Training} (`deno task train`): the run's own, then the
 * trainer's ({@linkcode LD3_OPTIONS}), with the reference tool's names and defaults.
 */
export const TRAIN_OPTIONS = {
  ...MODEL_OPTIONS,
  dataDir: {
    flag: "data_dir",
    kind: "string",
    arg: "DIR",
    required: true,
    help: "teacher dataset folder written by generate (the folder with manifest.json)",
  },
  numTrain: {
    flag: "num_train",
    kind: "integer",
    arg: "N",
    min: 1,
    default: 50,
    help: "training samples: the dataset's first N",
  },
  numValid: {
    flag: "num_valid",
    kind: "integer",
    arg: "N",
    min: 1,
    default: 50,
    help: "validation samples: the next N",
  },
  logPath: {
    flag: "log_path",
    kind: "string",
    arg: "DIR",
    default: "logs",
    help: "root of the run folders",
  },
  lossType: {
    flag: "loss_type",
    kind: "string",
    choices: LOSS_TYPES,
    defaultText: "LPIPS with --lpips_model, else L2",
    help: "distance to the teacher",
  },
  lpipsModel: {
    flag: "lpips_model",
    kind: "string",
    arg: "FILE",
    help: "LPIPS ONNX model (for the LPIPS loss)",
  },
  priorBound: {
    flag: "prior_bound",
    kind: "number",
    arg: "B",
    min: 0,
    default: 0.001,
    help: "ball radius coefficient: the radius is B·C·H·W/steps² (0: the hard objective)",
  },
  fixBound: {
    flag: "fix_bound",
    kind: "boolean",
    default: false,
    help: "use --prior_bound as the radius itself",
  },
  matchPrior: {
    flag: "match_prior",
    kind: "string",
    arg: "GRID",
    defaultText: "θ1 = ones (logSNR in lambda mode)",
    help: "start grid: a skip type, gits, or a grid file",
  },
  resume: {
    flag: "resume",
    kind: "boolean",
    default: false,
    help: "continue the run folder's checkpoint",
  },
  latentLoss: {
    flag: "latent_loss",
    kind: "boolean",
    default: false,
    help: "latent models: measure the loss on latents, skipping the decoder (the paper decodes)",
  },
  ...LD3_OPTIONS,
} as const satisfies OptionDeclarations;

/** Options of {@linkcode runLd3Training}: {@linkcode TRAIN_OPTIONS} and these. */
export interface RunLd3Options extends Omit<OptionValues<typeof TRAIN_OPTIONS>, "resume"> {
  /**
   * Continue the run folder's checkpoint: `true` requires one, `false` refuses a folder that holds
   * one, `"auto"` continues one when it is there and starts afresh otherwise (the demo and the
   * schedule benchmark, which are re-run until done). @default {false}
   */
  resume?: boolean | "auto";
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
   * Stop (throw `Ld3Interrupted`) once the checkpoint of this global training step is written: a
   * deterministic stand-in for a kill, for resume tests. @default {undefined}
   */
  stopAfterStep?: number;
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
  /**
   * The images behind `evaluation`: each grid's student output (decoded, in [-1, 1]) for the
   * validation samples, in order, `numValid × C·H·W` values each.
   */
  validImages: Record<keyof Ld3Evaluation, Float64Array>;
  /** Training wall-clock of all sessions of this run, seconds (checkpoints included). */
  trainSeconds: number;
  /** Global training steps done. */
  steps: number;
  /** Why training ended. */
  stopReason: "rounds" | "lr2_floor";
  /** Whether this call resumed a checkpoint. */
  resumed: boolean;
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

/** The run's options with defaults, checked before anything is loaded. */
function checkRunOptions(options: RunLd3Options) {
  const { resume, ...rest } = options;
  const o = resolveOptions(TRAIN_OPTIONS, rest);
  const lossType = o.lossType ?? (o.lpipsModel !== undefined ? "LPIPS" : "L2");
  if (lossType === "LPIPS" && !options.loss && o.lpipsModel === undefined) {
    throw new RangeError("Loss LPIPS needs an LPIPS ONNX model: pass lpips_model");
  }
  if (lossType === "LPIPS" && o.latentLoss) {
    throw new RangeError("latent_loss measures L2 or L1 on latents: LPIPS needs decoded images");
  }
  return { ...o, lossType, resume: resume ?? false };
}

/** The checked options of a run. */
type RunOptions = ReturnType<typeof checkRunOptions>;

/** The teacher dataset, checked to hold the first `count` samples. */
async function openTeacherSet(dataDir: string, count: number): Promise<Dataset> {
  const dataset = await readDataset(dataDir, { requireComplete: false });
  if (dataset.manifest.count < count) {
    throw new RangeError(
      `Dataset ${dataDir} holds ${dataset.manifest.count} samples: num_train + num_valid = ` +
        `${count} needed`,
    );
  }
  const missing = Array.from({ length: count }, (_, i) => i)
    .filter((i) => !dataset.indices.includes(i));
  if (missing.length > 0) {
    throw new RangeError(
      `Dataset ${dataDir} lacks ${missing.length} of the first ${count} samples ` +
        `(first: ${missing[0]}): finish it with generate`,
    );
  }
  return dataset;
}

/** Refuses a teacher dataset made with another model or of other shapes. */
function checkTeacherFitsModel(dataset: Dataset, model: LoadedModel, configPath: string): void {
  const { manifest, dir } = dataset;
  if (manifest.model.sha256 !== model.modelHash) {
    throw new RangeError(
      `Dataset ${dir} was made with model sha256 ${manifest.model.sha256}: config ` +
        `${configPath} loads ${model.modelHash}`,
    );
  }
  const pairs = [
    ["latents", manifest.shapes.z, model.sampleShape],
    ["images", manifest.shapes.x, model.imageShape],
  ] as const;
  for (const [what, data, own] of pairs) {
    if (!sameShape(own, data)) {
      throw new RangeError(
        `Dataset ${dir} ${what} have shape [${data}]: the model's are [${own}]`,
      );
    }
  }
  if (model.conditionShape && !sameShape(model.conditionShape, manifest.shapes.c)) {
    throw new RangeError(
      `Dataset ${dir} conditions have shape [${manifest.shapes.c ?? []}]: ` +
        `the model's are [${model.conditionShape}]`,
    );
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
    t1 = gridOfFile(await loadGridFile(spec), schedule, `match_prior grid file ${spec}`).t1;
  }
  if (t1.length !== steps + 1) {
    throw new RangeError(
      `match_prior grid "${spec}" has ${t1.length - 1} steps: the run has ${steps}`,
    );
  }
  return t1;
}

/** The trainer's options, the run folder and what every checkpoint records. */
async function planRun(o: RunOptions, model: LoadedModel) {
  const size = sampleSize(model.sampleShape);
  const radius = o.fixBound ? o.priorBound : o.priorBound * size / (o.steps * o.steps);
  const trainerOptions: Ld3Options = { ...declaredValues(LD3_OPTIONS, o), priorBound: radius };
  if (o.matchPrior !== undefined) {
    trainerOptions.priorGrid = await priorGridOf(
      o.matchPrior,
      model.denoiser.schedule,
      o.solverName,
      o.steps,
    );
  }
  const resolved = resolveLd3Options(trainerOptions, size);
  // A loss on latents is another run than the same loss on decoded images: its own folder.
  const lossName = o.latentLoss ? `${o.lossType}-latent` : o.lossType;
  const runDir = resolve(o.logPath, runFolderName({ ...resolved, lossType: lossName }));
  const recordedOptions = JSON.parse(JSON.stringify({
    ...resolved,
    priorGrid: resolved.priorGrid ? Array.from(resolved.priorGrid) : null,
    order: resolved.order ?? null,
    lossType: o.lossType,
    ...(o.latentLoss ? { latentLoss: true } : {}),
    numTrain: o.numTrain,
    numValid: o.numValid,
    modelHash: model.modelHash,
  })) as Record<string, unknown>;
  return { trainerOptions, resolved, runDir, recordedOptions, size };
}

/** The run's plan. */
type RunPlan = Awaited<ReturnType<typeof planRun>>;

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

/**
 * The checkpoint to continue, when the folder holds one and `resume` allows it; refuses a
 * checkpoint of other options, and `resume: true` without one.
 */
async function findCheckpoint(
  o: RunOptions,
  plan: RunPlan,
): Promise<{ previous: RunCheckpoint; resumeFrom: Ld3Checkpoint } | undefined> {
  const { runDir, recordedOptions } = plan;
  if (!await pathExists(join(runDir, CHECKPOINT_FILE))) {
    if (o.resume === true) {
      throw new RangeError(`Nothing to resume: ${runDir} holds no ${CHECKPOINT_FILE}`);
    }
    return undefined;
  }
  if (o.resume === false) {
    throw new RangeError(
      `Run folder ${runDir} already holds a checkpoint: pass resume (--resume) to continue ` +
        `it, or use another log_path`,
    );
  }
  const previous = await readRunCheckpoint(runDir);
  // The folder name does not say which grid a run started from: name both when they differ.
  if (firstDifference(previous.options.priorGrid, recordedOptions.priorGrid)) {
    throw new RangeError(
      `Cannot resume ${runDir}: it was started from ${await savedStart(runDir)}, got ` +
        `match_prior ${o.matchPrior ?? "none"} (start in another folder, or delete this one)`,
    );
  }
  const difference = firstDifference(previous.options, recordedOptions);
  if (difference) {
    throw new RangeError(`Cannot resume ${runDir} with other options (${difference})`);
  }
  const sizes = { numTrain: o.numTrain, numValid: o.numValid, size: plan.size };
  return { previous, resumeFrom: await restoreTrainerState(runDir, previous, sizes) };
}

/** Things a run opens and must close, closed in reverse order. */
class Resources {
  readonly #closers: (() => Promise<void> | void)[] = [];
  /** Registers `thing` and returns it. */
  add<T extends { close(): Promise<void> | void }>(thing: T): T {
    this.#closers.push(() => thing.close());
    return thing;
  }
  async close(): Promise<void> {
    for (const close of this.#closers.reverse()) await close();
  }
}

/** The student's differentiable model, its decoder (latent or rescaled data) and the loss. */
async function studentParts(
  o: RunOptions,
  options: RunLd3Options,
  model: LoadedModel,
  resources: Resources,
): Promise<{ denoiser: DifferentiableDenoiser; decode?: DifferentiableDecoder; loss: SampleLoss }> {
  const device = o.device;
  const denoiser = options.denoiser ??
    resources.add(await differentiableDenoiser(model, { device }));
  const range = model.config.data_range;
  const decode = !o.latentLoss && (model.config.decoder || range[0] !== -1 || range[1] !== 1)
    ? resources.add(await differentiableDecoder(model, { device }))
    : undefined;
  const loss = options.loss ??
    (o.lossType === "LPIPS"
      ? resources.add(await loadLpips(o.lpipsModel!, { device, threads: model.threads }))
      : lossByName(o.lossType));
  return { denoiser, decode, loss };
}

/**
 * Training samples `0 … numTrain − 1` and validation samples after them; with `latent`, the
 * teacher of each is its final latent instead of its decoded image.
 */
async function readSamples(dataset: Dataset, numTrain: number, numValid: number, latent = false) {
  if (latent && !dataset.manifest.shapes.latent) {
    throw new RangeError(
      `Dataset ${dataset.dir} holds no teacher latents (made by an older generate, or a pixel ` +
        `model): latent_loss needs them; generate it again`,
    );
  }
  const read = async (i: number): Promise<Ld3Sample> => {
    const s = await dataset.read(i);
    return { z: Float64Array.from(s.z), teacher: latent ? s.latent! : s.x, condition: s.c };
  };
  const train: Ld3Sample[] = [];
  for (let i = 0; i < numTrain; i++) train.push(await read(i));
  const valid: Ld3Sample[] = [];
  for (let i = numTrain; i < numTrain + numValid; i++) valid.push(await read(i));
  return { train, valid };
}

/**
 * Creates (or reopens) the run folder: `log.jsonl` truncated to the previous checkpoint's lines,
 * and `config.yml`. Returns the open log and its line count.
 */
async function openRunFolder(
  o: RunOptions,
  plan: RunPlan,
  context: { config: ModelConfig; model: LoadedModel; dataset: Dataset },
  previous: RunCheckpoint | undefined,
): Promise<{ log: Deno.FsFile; logLines: number }> {
  const { runDir } = plan;
  await Deno.mkdir(runDir, { recursive: true });
  const logPath = join(runDir, "log.jsonl");
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
  const { config, model, dataset } = context;
  const configYml = {
    model_config: isUrl(o.config) ? o.config : resolve(o.config),
    model: { name: config.name, sha256: model.modelHash },
    data_dir: dataset.dir,
    dataset: {
      solver: dataset.manifest.solver,
      skip_type: dataset.manifest.grid.skip_type,
      count: dataset.manifest.count,
    },
    options: plan.recordedOptions,
    prior_bound_coefficient: o.priorBound,
    fix_bound: o.fixBound,
    match_prior: o.matchPrior ?? null,
    device: o.device ?? config.device,
  };
  await writeTextFileAtomic(join(runDir, "config.yml"), stringifyYaml(configYml));
  const log = await Deno.open(logPath, { append: true, create: true });
  return { log, logLines };
}

/** The `gridInfo` of every grid file the run writes: solver, NFE, model and loss. */
function gridInfoOf(o: RunOptions, plan: RunPlan, model: LoadedModel) {
  const r = plan.resolved;
  return (extra: Record<string, unknown>) => ({
    nfe: solverNfe(r.solverName, r.steps),
    solver: r.solverName,
    solverOptions: {
      ...(r.order !== undefined ? { order: r.order } : {}),
      variant: r.unipcVariant,
    },
    source: "ld3",
    meta: {
      model: model.config.name,
      modelHash: model.modelHash,
      loss: o.lossType,
      timeMode: r.timeMode,
      runDir: plan.runDir,
      ...extra,
    },
  });
}

/**
 * Trains an LD3 schedule for a model config on a teacher dataset and keeps a run folder (see
 * the module doc). Every check on the inputs runs before the run folder is created or touched.
 *
 * @throws {RangeError} On bad options, a dataset that does not belong to the model (hash,
 * shapes), too few samples, or a run folder that already holds a checkpoint without `resume`
 * (or none with it).
 * @throws {LockedError} When another run owns the run folder (`lib/io/lock.ts`).
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
  const o = checkRunOptions(options);
  const config = await loadModelConfig(o.config);
  const dataset = await openTeacherSet(resolve(o.dataDir), o.numTrain + o.numValid);
  const resources = new Resources();
  try {
    const model = resources.add(
      await loadModel(config, {
        device: o.device,
        threads: o.threads,
        ...await teacherGuidance(config, dataset, o.device),
      }),
    );
    checkTeacherFitsModel(dataset, model, o.config);
    const plan = await planRun(o, model);
    // The run folder is this process's until it ends: a second run into it fails here.
    const lock = await lockOutput(plan.runDir, { what: "train" });
    resources.add({ close: () => lock.release() });
    const resumed = await findCheckpoint(o, plan);
    // Everything that can fail on the inputs has run: now the folder is created.
    const parts = await studentParts(o, options, model, resources);
    const { train, valid } = await readSamples(dataset, o.numTrain, o.numValid, o.latentLoss);
    const folder = await openRunFolder(o, plan, { config, model, dataset }, resumed?.previous);
    resources.add(folder.log);
    const recorder = newRecorder(o, options, plan, model, folder, resumed?.previous);
    if (resumed) {
      const { globalStep, round } = resumed.resumeFrom;
      recorder.log({ type: "resume", step: globalStep, round });
    }
    const result = await trainLd3(plan.trainerOptions, {
      ...parts,
      train,
      valid,
      onEvent: recorder.onEvent,
      saveCheckpoint: recorder.saveCheckpoint,
      resumeFrom: resumed?.resumeFrom,
    });
    const trainSeconds = recorder.finish();
    const r = plan.resolved;
    const ctx: GridLossContext = {
      ...parts,
      solverName: r.solverName,
      solverOptions: { order: r.order, variant: r.unipcVariant },
      batchSize: r.validBatchSize,
    };
    const finished = await finishRun(ctx, {
      runDir: plan.runDir,
      steps: r.steps,
      title: runTitle(r.solverName, r.steps),
      valid,
      previewCount: options.previewCount ?? 8,
      imageShape: o.latentLoss ? model.sampleShape : model.imageShape,
      lossType: o.lossType,
      gridInfo: gridInfoOf(o, plan, model),
      recorder,
      trainSeconds,
    }, result);
    await writeRunReport(plan.runDir);
    return {
      runDir: plan.runDir,
      gridPath: join(plan.runDir, "grid.json"),
      grid: result.grid,
      gridFile: finished.gridFile,
      bestValidLoss: result.bestValidLoss,
      evaluation: finished.evaluation,
      validImages: finished.validImages,
      trainSeconds,
      steps: result.checkpoint.globalStep,
      stopReason: finished.stopReason,
      resumed: resumed !== undefined,
    };
  } finally {
    await resources.close();
  }
}

/** Title of a run's pictures: `uni_pc, 4 steps (NFE 4)`. */
function runTitle(solverName: SolverName, steps: number): string {
  return `${solverName}, ${steps} steps (NFE ${solverNfe(solverName, steps)})`;
}

/** The recorder of a run: its folder, schedule plots, checkpoints and progress line. */
function newRecorder(
  o: RunOptions,
  options: RunLd3Options,
  plan: RunPlan,
  model: LoadedModel,
  folder: { log: Deno.FsFile; logLines: number },
  previous: RunCheckpoint | undefined,
): RunRecorder {
  const r = plan.resolved;
  const roundsTotal = (r.noV1 ? 0 : r.trainingRoundsV1) + r.trainingRoundsV2;
  const perRound = Math.ceil(o.numTrain / r.trainBatchSize);
  return new RunRecorder(
    {
      runDir: plan.runDir,
      schedule: model.denoiser.schedule,
      title: runTitle(r.solverName, r.steps),
      recordedOptions: plan.recordedOptions,
      sizes: { numTrain: o.numTrain, numValid: o.numValid, size: plan.size },
      previous,
      gridInfo: gridInfoOf(o, plan, model),
      progress: options.progress === false
        ? false
        : { totalSteps: roundsTotal * perRound, roundsTotal, options: options.progress ?? {} },
      onEvent: options.onEvent,
      stopAfterStep: options.stopAfterStep,
    },
    folder.log,
    folder.logLines,
  );
}
