/**
 * The end-to-end demo (`deno task demo`): the project's main job on the bundled model in one call.
 *
 * 1. **Teacher.** `generateDataset` with UniPC, 20 NFE, EDM grid: `samples` teacher outputs and
 *    their latents (resumable: complete samples are kept).
 * 2. **LD3.** `runLd3Training` for one solver at one NFE with the L2 loss (LPIPS when an LPIPS
 *    model is given) on the first half of the samples, validated on the second half; the spec's
 *    defaults except 1 + 2 rounds and the EDM grid as the start, so that the bundled UNet's demo
 *    fits in 15 minutes on 2 CPU cores (docs/demo.md). A finished or interrupted run folder is
 *    resumed, not restarted.
 * 3. **Evaluation.** The learned grid, EDM, logSNR and time-uniform grids with the same solver and
 *    NFE, started from the validation latents, scored by their distance to the teacher; with a
 *    feature model and reference statistics also FID on seeded samples.
 * 4. **Pictures.** `comparison.png` (teacher / LD3 / EDM / logSNR rows from the same noise),
 *    `trajectory.gif` (the LD3 / EDM / logSNR samplers' predictions after each network
 *    evaluation, one row each, from the same noise) next to the run folder's `schedule.png`, `schedule.gif`, `samples.png` and `grid.json`, and
 *    `demo.json` with every number.
 *
 * ```text
 * <out>/teacher/uni_pc_NFE20_edm/   the teacher dataset (lib/io/dataset.ts)
 * <out>/ld3/<run folder>/           the LD3 run (lib/pipelines/train/run.ts)
 * <out>/comparison.png              rows of samples from the same validation latents
 * <out>/trajectory.gif              the three samplers' D(x_t, t) per network evaluation
 * <out>/demo.json                   the DemoResult
 * ```
 *
 * @module
 */
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { writeFileAtomic, writeJsonAtomic } from "../io/atomic.ts";
import { loadModelConfig } from "../onnx/config.ts";
import { datasetDirName, MANIFEST_FILE, readDataset, readManifest } from "../io/dataset.ts";
import { sampleSize } from "../denoiser.ts";
import { l1Distance, l2Distance } from "../metrics/distance.ts";
import {
  evaluateSchedule,
  type FeatureModelSpec,
  featureSpecFromConfig,
  type MeanStd,
  meanStd,
} from "./evaluate.ts";
import { type FeatureModel, loadFeatureModel } from "../metrics/features.ts";
import { gridSigmas, skipGrid, toGrid } from "../step_grid.ts";
import { gridOfFile, loadGridFile } from "../io/grid_file.ts";
import { imageShapeOf } from "../io/image.ts";
import { samplesPng } from "./train/report.ts";
import { type Ld3Evaluation, QUICK_LD3, type RunLd3Result, runLd3Training } from "./train/run.ts";
import { type LoadedModel, loadModel } from "../onnx/model.ts";
import { ProgressBar } from "../io/progress.ts";
import { generateDataset, type GenerateDatasetResult } from "./generate.ts";
import { LD3_TEACHER } from "./sampler.ts";
import { sampleImages, stackedTrajectoryFrames } from "./sampling.ts";
import { imagesGif } from "../io/animation.ts";
import type { Grid } from "../solvers/plan.ts";
import { runPlan } from "../solvers/plan.ts";
import { planSolver, type SolverName, solverNfe, solverSteps } from "../solvers/mod.ts";
import { SOLVER_OPTIONS } from "../solvers/options.ts";
import { LD3_OPTIONS } from "../ld3/options.ts";
import { type OptionDeclarations, type OptionValues, resolveOptions } from "../options.ts";
import { FID_REF_OPTIONS, MODEL_OPTIONS } from "./options.ts";
import { pathExists } from "../io/fs.ts";
import { isUrl } from "../io/remote.ts";

/** The grids the demo compares, LD3 first. */
export const DEMO_GRIDS = ["LD3", "EDM", "logSNR", "time_uniform"] as const;
/** One of {@linkcode DEMO_GRIDS}. */
export type DemoGrid = typeof DEMO_GRIDS[number];

/**
 * The options of {@linkcode runDemo} (`deno task demo`). The names are those of the other tasks;
 * the demo's older spellings (`--solver`, `--samples`, `--rounds_v1`, `--rounds_v2`) still work
 * for one release.
 */
export const DEMO_OPTIONS = {
  config: {
    flag: "config",
    kind: "string",
    arg: "FILE",
    defaultText: "configs/mnist-edm.yml when its model exists, else configs/gmm-mnist.yml",
    help: "the model's YAML config",
  },
  out: { flag: "out", kind: "string", arg: "DIR", default: "runs/demo", help: "output folder" },
  // iPNDM at NFE 6 shows LD3's clearest win over both logSNR and EDM on gmm-mnist
  // (docs/training.md).
  solverName: { ...SOLVER_OPTIONS.solverName, default: "ipndm", aliases: ["solver"] },
  steps: {
    ...SOLVER_OPTIONS.steps,
    default: 6,
    help: "student solver steps (the NFE for every solver but heun, 2·steps − 1)",
  },
  nfe: {
    flag: "nfe",
    kind: "integer",
    arg: "N",
    min: 1,
    help: "student NFE",
    deprecated: "use --steps (the NFE for every solver but heun)",
  },
  numSamples: {
    flag: "num_samples",
    kind: "integer",
    arg: "N",
    min: 2,
    default: 100,
    defaultText: "100; 8 with --quick",
    help: "teacher samples: the first half trains LD3, the second half validates",
    aliases: ["samples"],
  },
  quick: {
    flag: "quick",
    kind: "boolean",
    default: false,
    help: "tiny sizes for tests and CI: 8 samples, one round per phase, 16 FID samples",
  },
  // EDM is the grid the bundled models and the teacher are built around, and the better start
  // for them (docs/training.md).
  matchPrior: {
    flag: "match_prior",
    kind: "string",
    arg: "GRID",
    default: QUICK_LD3.matchPrior,
    help: "LD3's start grid: a skip type, gits, a grid file, or none for logSNR (θ1 = ones)",
  },
  // The spec's 2 + 5 rounds validate 50 samples after each of 175 steps, which alone takes
  // 10–15 minutes on the bundled UNet with 2 CPU cores; 1 + 2 rounds keep the whole demo under
  // 15 minutes (docs/demo.md). `deno task train` keeps the spec's defaults.
  trainingRoundsV1: {
    ...LD3_OPTIONS.trainingRoundsV1,
    default: QUICK_LD3.trainingRoundsV1,
    aliases: ["rounds_v1"],
  },
  trainingRoundsV2: {
    ...LD3_OPTIONS.trainingRoundsV2,
    default: QUICK_LD3.trainingRoundsV2,
    defaultText: `${QUICK_LD3.trainingRoundsV2}; 1 with --quick`,
    aliases: ["rounds_v2"],
  },
  lpipsModel: {
    flag: "lpips_model",
    kind: "string",
    arg: "FILE",
    defaultText: "none: the L2 loss",
    help: "LPIPS ONNX model: train with the LPIPS loss",
  },
  ...FID_REF_OPTIONS,
  // 500 keep the five FID runs (the teacher at 20 NFE costs as much as the four grids together)
  // to about four minutes on the UNet; FID from 500 samples is biased upwards but compares the
  // grids on equal terms.
  fidSamples: {
    flag: "fid_samples",
    kind: "integer",
    arg: "N",
    min: 2,
    default: 500,
    defaultText: "500; 16 with --quick",
    help: "seeded samples per grid (and for the teacher) for FID",
  },
  previewCount: {
    flag: "preview_count",
    kind: "integer",
    arg: "N",
    min: 1,
    default: 8,
    help: "validation samples shown in comparison.png and trajectory.gif",
  },
  device: MODEL_OPTIONS.device,
  threads: MODEL_OPTIONS.threads,
} as const satisfies OptionDeclarations;

/** Options of {@linkcode runDemo}: {@linkcode DEMO_OPTIONS} and these. */
export interface DemoOptions extends OptionValues<typeof DEMO_OPTIONS> {
  /** Feature model for FID (needs `fidRef`). @default {the config's `eval.features`, if any} */
  features?: FeatureModelSpec;
  /** Progress bars on stderr. @default {true} */
  progress?: boolean;
  /** The former name of `numSamples`. @deprecated Use `numSamples`. */
  samples?: number;
}

/** One row of the comparison: a grid for the student solver. */
export interface DemoRow {
  /** Which grid. */
  grid: DemoGrid;
  /** Its noise levels σ/α, largest first (`steps + 1` values). */
  sigmas: number[];
  /** Per-sample mean squared difference to the teacher over C·H·W, on the validation latents. */
  l2: MeanStd;
  /** Per-sample mean absolute difference to the teacher, on the validation latents. */
  l1: MeanStd;
  /** FID on `fidSamples` seeded samples, when FID was asked for. */
  fid?: number;
}

/** What {@linkcode runDemo} did and measured (also written to `<out>/demo.json`). */
export interface DemoResult {
  /** The model config used (absolute path) and its name. */
  config: string;
  /** The model's name from its config. */
  model: string;
  /** Student solver, NFE and steps. */
  solverName: SolverName;
  /** Network evaluations per sample of the student. */
  nfe: number;
  /** Steps N of the student's grid. */
  steps: number;
  /** Training and validation sample counts. */
  numTrain: number;
  /** Validation samples. */
  numValid: number;
  /** The loss LD3 was trained with. */
  lossType: "L2" | "LPIPS";
  /** The grid LD3 started from (`"none"`: the logSNR grid, θ1 = ones). */
  matchPrior: string;
  /** Training rounds of phase 1 and phase 2. */
  rounds: { v1: number; v2: number };
  /** The teacher dataset. */
  teacher: { dir: string; generated: number; skipped: number; nfe: number; fid?: number };
  /** The LD3 run. */
  train: {
    runDir: string;
    resumed: boolean;
    trainSeconds: number;
    steps: number;
    /** The run's own validation losses (same latents, training loss). */
    evaluation: Ld3Evaluation;
  };
  /** LD3 and the baselines, in {@linkcode DEMO_GRIDS} order. */
  rows: DemoRow[];
  /** Samples behind each FID (0 without FID). */
  fidSamples: number;
  /** Pictures and files; a picture the run could not draw is absent. */
  files: {
    gridJson: string;
    schedulePng?: string;
    scheduleGif?: string;
    samplesPng?: string;
    /** The run folder's self-contained HTML report. */
    reportHtml?: string;
    comparisonPng?: string;
    trajectoryGif?: string;
    demoJson: string;
  };
  /** Wall-clock of each phase, seconds. */
  seconds: { generate: number; train: number; evaluate: number; total: number };
}

/** Whether `[C, H, W]` can be drawn: gray or RGB images. */
function isPictureShape(shape: readonly number[]): boolean {
  return shape.length === 3 && (shape[0] === 1 || shape[0] === 3);
}

/** The repository's `configs/` folder when this module is a local file, else `./configs`. */
function configsDir(): string {
  const url = new URL("../../configs/", import.meta.url);
  return url.protocol === "file:" ? fileURLToPath(url) : resolve("configs");
}

/**
 * The bundled model the demo runs by default: `configs/mnist-edm.yml` (the MNIST UNet) when the
 * config and its ONNX file exist, else the exact Gaussian-mixture model `configs/gmm-mnist.yml`.
 */
export async function defaultDemoConfig(): Promise<string> {
  const mnist = join(configsDir(), "mnist-edm.yml");
  if (await pathExists(mnist)) {
    try {
      const config = await loadModelConfig(mnist);
      if (await pathExists(config.model.path)) return mnist;
    } catch {
      // A config that does not load yet (the model is still being made) falls back.
    }
  }
  return join(configsDir(), "gmm-mnist.yml");
}

/** The baseline grid `name` with `steps` steps on the model's schedule. */
function baselineGrid(model: LoadedModel, name: Exclude<DemoGrid, "LD3">, steps: number): Grid {
  const kind = name === "EDM" ? "edm" : name;
  return toGrid(skipGrid(kind, model.denoiser.schedule, steps));
}

/**
 * Student images of one grid from the validation latents, and their distances to the teacher.
 * The first `keep` images are returned for the comparison picture.
 */
async function scoreGrid(
  model: LoadedModel,
  solverName: SolverName,
  grid: Grid,
  valid: readonly { z: Float32Array; x: Float32Array; c?: Float32Array }[],
  keep: number,
  onBatch: (count: number) => void,
): Promise<{ l2: Float64Array; l1: Float64Array; preview: Float32Array }> {
  const schedule = model.denoiser.schedule;
  const plan = planSolver(solverName, schedule, grid);
  const zSize = sampleSize(model.sampleShape);
  const xSize = sampleSize(model.imageShape);
  const batchSize = model.config.batch_size;
  const l2 = new Float64Array(valid.length);
  const l1 = new Float64Array(valid.length);
  const preview = new Float32Array(Math.min(keep, valid.length) * xSize);
  for (let start = 0; start < valid.length; start += batchSize) {
    const batch = valid.slice(start, start + batchSize);
    const xT = new Float64Array(batch.length * zSize);
    const teacher = new Float32Array(batch.length * xSize);
    batch.forEach((s, b) => {
      for (let j = 0; j < zSize; j++) xT[b * zSize + j] = schedule.priorScale * s.z[j];
      teacher.set(s.x, b * xSize);
    });
    let condition: Float32Array | undefined;
    if (batch[0].c) {
      const cSize = batch[0].c.length;
      condition = new Float32Array(batch.length * cSize);
      batch.forEach((s, b) => condition!.set(s.c!, b * cSize));
    }
    const images = await model.decode(
      await runPlan(plan, model.denoiser, xT, condition ? { condition } : {}),
    );
    l2.set(l2Distance(images, teacher, batch.length), start);
    l1.set(l1Distance(images, teacher, batch.length), start);
    const kept = Math.max(0, Math.min(batch.length, preview.length / xSize - start));
    if (kept > 0) preview.set(images.subarray(0, kept * xSize), start * xSize);
    onBatch(batch.length);
  }
  return { l2, l1, preview };
}

/** The key of each demo grid in the LD3 run's evaluation. */
const RUN_EVALUATION_KEYS = {
  LD3: "ld3",
  EDM: "edm",
  logSNR: "logSNR",
  time_uniform: "time_uniform",
} as const satisfies Record<DemoGrid, keyof Ld3Evaluation>;

/**
 * The distances to the teacher of a grid's images of the validation samples, and the first
 * `keep` of them for the comparison picture (what {@linkcode scoreGrid} computes, from images
 * made already).
 */
function scoreImages(
  images: Float64Array,
  valid: readonly { x: Float32Array }[],
  xSize: number,
  keep: number,
): { l2: Float64Array; l1: Float64Array; preview: Float32Array } {
  // The float32 images LoadedModel.decode hands out: the run's are the same values in float64.
  const decoded = Float32Array.from(images);
  const teacher = new Float32Array(valid.length * xSize);
  valid.forEach((s, b) => teacher.set(s.x, b * xSize));
  return {
    l2: l2Distance(decoded, teacher, valid.length),
    l1: l1Distance(decoded, teacher, valid.length),
    preview: decoded.slice(0, Math.min(keep, valid.length) * xSize),
  };
}

/** The demo's options checked and resolved, with the quick-mode sizes, before any work. */
async function demoSetup(options: DemoOptions) {
  const { samples, nfe, ...rest } = options;
  const quick = options.quick ?? false;
  const o = resolveOptions(DEMO_OPTIONS, {
    ...rest,
    numSamples: options.numSamples ?? samples ?? (quick ? 8 : undefined),
    trainingRoundsV2: options.trainingRoundsV2 ?? (quick ? 1 : undefined),
  });
  if (nfe !== undefined && options.steps !== undefined) {
    throw new TypeError("Give steps or the deprecated nfe, not both");
  }
  const steps = nfe !== undefined ? solverSteps(o.solverName, nfe) : o.steps;
  if (o.trainingRoundsV1 + o.trainingRoundsV2 === 0) {
    throw new RangeError("trainingRoundsV1 + trainingRoundsV2 must be >= 1: got 0");
  }
  const config0 = o.config ?? await defaultDemoConfig();
  const configPath = isUrl(config0) ? config0 : resolve(config0);
  const config = await loadModelConfig(configPath);
  const features = options.features ?? featureSpecFromConfig(config);
  const fidRef = o.fidRef ?? config.eval?.fid_ref;
  if ((features === undefined) !== (fidRef === undefined)) {
    throw new RangeError(
      `FID needs both a feature model and reference statistics: got ${
        features === undefined ? "no features" : "no fid_ref"
      }`,
    );
  }
  const fidSamples = !features ? 0 : options.fidSamples ?? (quick ? 16 : o.fidSamples);
  const numTrain = Math.floor(o.numSamples / 2);
  return {
    ...o,
    steps,
    nfe: solverNfe(o.solverName, steps),
    out: resolve(o.out),
    configPath,
    config,
    features,
    fidRef,
    fidSamples,
    numTrain,
    numValid: o.numSamples - numTrain,
    lossType: o.lpipsModel !== undefined ? "LPIPS" as const : "L2" as const,
    progress: options.progress ?? true,
  };
}

/** The demo's resolved setup. */
type DemoSetup = Awaited<ReturnType<typeof demoSetup>>;

/**
 * Step 1: the teacher dataset (UniPC, 20 NFE, EDM), reused when complete. The teacher and run
 * folders do not name the sample count, so another count needs another `out`.
 */
async function demoTeacher(s: DemoSetup): Promise<GenerateDatasetResult> {
  const teacherRoot = join(s.out, "teacher");
  const teacherDir = join(
    teacherRoot,
    datasetDirName(LD3_TEACHER.solverName, LD3_TEACHER.steps, LD3_TEACHER.skipType),
  );
  if (await pathExists(join(teacherDir, MANIFEST_FILE))) {
    const count = (await readManifest(teacherDir)).count;
    if (count !== s.numSamples) {
      throw new RangeError(
        `Demo folder ${s.out} holds a run with ${count} samples: got numSamples ` +
          `${s.numSamples} (use another out folder, or delete it)`,
      );
    }
  }
  return await generateDataset(s.configPath, {
    ...LD3_TEACHER,
    dataDir: teacherRoot,
    totalSamples: s.numSamples,
    samplingBatchSize: Math.min(s.numSamples, s.config.batch_size),
    seed: 0,
    savePng: true,
    device: s.device,
    threads: s.threads,
    progress: s.progress ? { label: "teacher" } : false,
  });
}

/**
 * Step 2: LD3. A run folder with a checkpoint means an earlier demo got at least one step in: it
 * is resumed, not restarted (and refused, naming both, if it started from another grid).
 */
function demoTraining(s: DemoSetup, teacher: GenerateDatasetResult): Promise<RunLd3Result> {
  return runLd3Training({
    config: s.configPath,
    dataDir: teacher.dir,
    solverName: s.solverName,
    steps: s.steps,
    lossType: s.lossType,
    lpipsModel: s.lpipsModel,
    numTrain: s.numTrain,
    numValid: s.numValid,
    logPath: join(s.out, "ld3"),
    resume: "auto",
    device: s.device,
    threads: s.threads,
    previewCount: s.previewCount,
    progress: s.progress ? {} : false,
    ...(s.matchPrior !== "none" ? { matchPrior: s.matchPrior } : {}),
    trainingRoundsV1: s.trainingRoundsV1,
    trainingRoundsV2: s.trainingRoundsV2,
  });
}

/** The sampler options of a demo grid: the learned grid file, or a hand-made skip type. */
function demoSampler(s: DemoSetup, name: DemoGrid, gridPath: string) {
  return name === "LD3"
    ? { solverName: s.solverName, loadFrom: gridPath }
    : { solverName: s.solverName, steps: s.steps, skipType: name === "EDM" ? "edm" : name };
}

/** What step 3 measured. */
interface DemoEvaluation {
  rows: DemoRow[];
  /** The first validation images of each grid, in {@linkcode DEMO_GRIDS} order. */
  previews: Float32Array[];
  teacherFid?: number;
  trajectoryGif?: string;
}

/**
 * Step 3: every grid scored by its distance to the teacher on the validation latents, and by FID
 * on seeded samples when a feature model is known; then the trajectory GIF.
 */
async function demoEvaluation(
  s: DemoSetup,
  teacher: GenerateDatasetResult,
  trained: RunLd3Result,
): Promise<DemoEvaluation> {
  const model = await loadModel(s.configPath, { device: s.device, threads: s.threads });
  let featureModel: FeatureModel | undefined;
  try {
    const dataset = await readDataset(teacher.dir);
    const valid = [];
    for (let i = s.numTrain; i < s.numTrain + s.numValid; i++) valid.push(await dataset.read(i));
    const grids = new Map<DemoGrid, Grid>([
      ["LD3", gridOfFile(await loadGridFile(trained.gridPath), model.denoiser.schedule)],
      ["EDM", baselineGrid(model, "EDM", s.steps)],
      ["logSNR", baselineGrid(model, "logSNR", s.steps)],
      ["time_uniform", baselineGrid(model, "time_uniform", s.steps)],
    ]);
    const fidTotal = s.features ? (grids.size + 1) * s.fidSamples : 0;
    const bar = s.progress
      ? new ProgressBar(grids.size * s.numValid + fidTotal, { label: "evaluate", unit: "samples" })
      : undefined;
    if (s.features) {
      featureModel = await loadFeatureModel(s.features.path, {
        inputName: s.features.input,
        outputName: s.features.output,
        inputRange: s.features.inputRange,
        sampleShape: model.imageShape,
        intraOpNumThreads: model.threads,
      });
    }
    const fidOf = featureModel && fidMeasure(model, featureModel, s, bar);
    const rows: DemoRow[] = [];
    const previews: Float32Array[] = [];
    for (const [name, grid] of grids) {
      // The LD3 run scored these grids on the same samples already (runLd3Training's
      // validImages): the distances come from its images, and no grid runs again.
      const images = trained.validImages[RUN_EVALUATION_KEYS[name]];
      const scored = images
        ? scoreImages(images, valid, sampleSize(model.imageShape), s.previewCount)
        : await scoreGrid(model, s.solverName, grid, valid, s.previewCount, () => {});
      bar?.increment(valid.length);
      previews.push(scored.preview);
      rows.push({
        grid: name,
        sigmas: Array.from(gridSigmas(model.denoiser.schedule, grid.t1)),
        l2: meanStd(scored.l2),
        l1: meanStd(scored.l1),
        ...(fidOf ? { fid: await fidOf(demoSampler(s, name, trained.gridPath)) } : {}),
      });
    }
    const teacherFid = fidOf ? await fidOf({ ...LD3_TEACHER }) : undefined;
    bar?.finish();
    const trajectoryGif = await demoTrajectoryGif(s, model, trained.gridPath);
    return { rows, previews, teacherFid, trajectoryGif };
  } finally {
    await featureModel?.close();
    await model.close();
  }
}

/** FID of a sampler on the demo's seeded samples, advancing `bar` as it goes. */
function fidMeasure(
  model: LoadedModel,
  featureModel: FeatureModel,
  s: DemoSetup,
  bar: ProgressBar | undefined,
) {
  return async (sampler: Parameters<typeof evaluateSchedule>[1]) => {
    let done = 0;
    const r = await evaluateSchedule(model, {
      ...sampler,
      numSamples: s.fidSamples,
      seed: 0,
      features: featureModel,
      fidRef: s.fidRef,
      onProgress: (d) => {
        bar?.increment(d - done);
        done = d;
      },
    });
    return r.metrics.fid;
  };
}

/**
 * `trajectory.gif`: LD3, EDM and logSNR from the same noise, one row each — where each grid
 * forms the digits. Undefined for images that cannot be drawn.
 */
async function demoTrajectoryGif(
  s: DemoSetup,
  model: LoadedModel,
  gridPath: string,
): Promise<string | undefined> {
  if (!isPictureShape(imageShapeOf(model.imageShape))) return undefined;
  const runs = [];
  for (const name of ["LD3", "EDM", "logSNR"] as const) {
    const sampled = await sampleImages(model, {
      ...demoSampler(s, name, gridPath),
      numSamples: s.previewCount,
      seed: 0,
      trajectory: true,
    });
    runs.push({ label: name, sampled });
  }
  const shape = [3 * s.previewCount, ...runs[0].sampled.shape.slice(1)];
  const gif = await imagesGif(stackedTrajectoryFrames(runs), shape, {
    nrow: s.previewCount,
    rowLabels: runs.map((r) => r.label),
  });
  const path = join(s.out, "trajectory.gif");
  await writeFileAtomic(path, gif);
  return path;
}

/**
 * Step 4: the files of the demo: the run folder's pictures that exist, the trajectory GIF and
 * `comparison.png` (teacher, LD3, EDM and logSNR rows from the same validation latents).
 */
async function demoFiles(
  s: DemoSetup,
  teacher: GenerateDatasetResult,
  trained: RunLd3Result,
  evaluation: DemoEvaluation,
): Promise<DemoResult["files"]> {
  const files: DemoResult["files"] = {
    gridJson: trained.gridPath,
    demoJson: join(s.out, "demo.json"),
  };
  const runFiles = [
    ["schedulePng", "schedule.png"],
    ["scheduleGif", "schedule.gif"],
    ["samplesPng", "samples.png"],
    ["reportHtml", "report.html"],
  ] as const;
  for (const [key, name] of runFiles) {
    if (await pathExists(join(trained.runDir, name))) files[key] = join(trained.runDir, name);
  }
  if (evaluation.trajectoryGif) files.trajectoryGif = evaluation.trajectoryGif;
  const imageShape = imageShapeOf(teacher.manifest.shapes.x);
  if (!isPictureShape(imageShape)) return files;
  const previews = evaluation.previews;
  const size = sampleSize(imageShape);
  const dataset = await readDataset(teacher.dir);
  const teacherImages = new Float32Array(previews[0].length);
  for (let k = 0; k < previews[0].length / size; k++) {
    teacherImages.set((await dataset.read(s.numTrain + k)).x, k * size);
  }
  // Rows in the order of the brief's picture: teacher, LD3, EDM, logSNR.
  const pictureRows = [
    { label: "teacher", images: teacherImages },
    ...(["LD3", "EDM", "logSNR"] as const).map((g) => ({
      label: g,
      images: previews[DEMO_GRIDS.indexOf(g)],
    })),
  ];
  files.comparisonPng = join(s.out, "comparison.png");
  await writeFileAtomic(files.comparisonPng, await samplesPng(pictureRows, imageShape));
  return files;
}

/**
 * Runs the demo: teacher dataset, LD3 training, evaluation against the hand-made grids and the
 * comparison picture (see the module doc). Re-running with the same options reuses the teacher
 * samples and the training run.
 *
 * @throws {RangeError} For bad sizes, an unknown solver, an NFE the solver cannot spend, or FID
 * asked with only one of `features` and `fidRef`.
 *
 * @example
 * ```ts ignore
 * const result = await runDemo({ config: "configs/gmm-mnist.yml", out: "runs/demo" });
 * console.log(formatDemoReport(result));
 * ```
 */
export async function runDemo(options: DemoOptions = {}): Promise<DemoResult> {
  const started = performance.now();
  const s = await demoSetup(options);
  const seconds = (from: number) => (performance.now() - from) / 1000;
  const t0 = performance.now();
  const teacher = await demoTeacher(s);
  const t1 = performance.now();
  const trained = await demoTraining(s, teacher);
  const t2 = performance.now();
  const evaluation = await demoEvaluation(s, teacher, trained);
  const files = await demoFiles(s, teacher, trained, evaluation);
  const result: DemoResult = {
    config: s.configPath,
    model: s.config.name,
    solverName: s.solverName,
    nfe: s.nfe,
    steps: s.steps,
    numTrain: s.numTrain,
    numValid: s.numValid,
    lossType: s.lossType,
    matchPrior: s.matchPrior,
    rounds: { v1: s.trainingRoundsV1, v2: s.trainingRoundsV2 },
    teacher: {
      dir: teacher.dir,
      generated: teacher.generated,
      skipped: teacher.skipped,
      nfe: teacher.manifest.solver.nfe,
      ...(evaluation.teacherFid !== undefined ? { fid: evaluation.teacherFid } : {}),
    },
    train: {
      runDir: trained.runDir,
      resumed: trained.resumed,
      trainSeconds: trained.trainSeconds,
      steps: trained.steps,
      evaluation: trained.evaluation,
    },
    rows: evaluation.rows,
    fidSamples: s.fidSamples,
    files,
    seconds: {
      generate: (t1 - t0) / 1000,
      train: (t2 - t1) / 1000,
      evaluate: seconds(t2),
      total: seconds(started),
    },
  };
  await Deno.mkdir(dirname(files.demoJson), { recursive: true });
  await writeJsonAtomic(files.demoJson, result);
  return result;
}

function fmt(value: number): string {
  return value === 0 ? "0" : Number.isFinite(value) ? value.toPrecision(4) : String(value);
}

/**
 * The demo's printout: the comparison table (distance to the teacher on the validation latents,
 * FID when measured), LD3's gain, the learned σ list and where the files are.
 */
export function formatDemoReport(result: DemoResult): string {
  const withFid = result.rows.some((r) => r.fid !== undefined);
  const header = ["grid", "L2 to teacher", "L1"];
  if (withFid) header.push(`FID (${result.fidSamples})`);
  const body = result.rows.map((r) => {
    const cells = [r.grid, `${fmt(r.l2.mean)} ± ${fmt(r.l2.std)}`, fmt(r.l1.mean)];
    if (withFid) cells.push(r.fid !== undefined ? r.fid.toFixed(2) : "");
    return cells;
  });
  if (withFid && result.teacher.fid !== undefined) {
    body.push([`teacher (NFE ${result.teacher.nfe})`, "0", "0", result.teacher.fid.toFixed(2)]);
  }
  const widths = header.map((h, c) => Math.max(h.length, ...body.map((row) => row[c].length)));
  const line = (cells: string[]) => cells.map((s, c) => s.padEnd(widths[c])).join("  ").trimEnd();
  const ld3 = result.rows.find((r) => r.grid === "LD3")!;
  const best = result.rows
    .filter((r) => r.grid !== "LD3")
    .reduce((a, b) => (b.l2.mean < a.l2.mean ? b : a));
  const ratio = best.l2.mean / ld3.l2.mean;
  const lines = [
    `${result.model}: ${result.solverName} at NFE ${result.nfe} (${result.steps} steps), ` +
    `distance to the teacher (uni_pc, NFE ${result.teacher.nfe}, EDM) on ${result.numValid} ` +
    `validation samples; LD3 trained on ${result.numTrain} (${result.lossType}, ` +
    `${result.train.steps} steps, ${result.train.trainSeconds.toFixed(1)} s` +
    `${result.train.resumed ? ", resumed" : ""})`,
    `demo settings: rounds ${result.rounds.v1} + ${result.rounds.v2} (train default 2 + 5), ` +
    `start ${result.matchPrior === "none" ? "logSNR" : result.matchPrior} (match_prior), ` +
    (result.fidSamples > 0 ? `FID on ${result.fidSamples} samples per grid` : "no FID"),
    "",
    line(header),
    line(widths.map((w) => "-".repeat(w))),
    ...body.map(line),
    "",
    ratio >= 1
      ? `LD3 is ${ratio.toFixed(2)}× closer to the teacher than the best baseline (${best.grid}).`
      : `LD3 is ${(1 / ratio).toFixed(2)}× farther from the teacher than ${best.grid}.`,
    `LD3 σ: ${ld3.sigmas.map((s) => Number(s.toPrecision(4))).join(", ")}`,
    "",
    "files:",
  ];
  const f = result.files;
  const entries: [string, string | undefined][] = [
    ["grid.json", f.gridJson],
    ["schedule.png", f.schedulePng],
    ["schedule.gif", f.scheduleGif],
    ["samples.png", f.samplesPng],
    ["report.html", f.reportHtml],
    ["comparison.png", f.comparisonPng],
    ["trajectory.gif", f.trajectoryGif],
    ["demo.json", f.demoJson],
  ];
  for (const [name, path] of entries) lines.push(`  ${name.padEnd(15)}${path ?? "(not drawn)"}`);
  const s = result.seconds;
  lines.push(
    "",
    `wall-clock ${s.total.toFixed(1)} s (teacher ${s.generate.toFixed(1)} s, LD3 ` +
      `${s.train.toFixed(1)} s, evaluation ${s.evaluate.toFixed(1)} s)`,
  );
  return lines.join("\n");
}
