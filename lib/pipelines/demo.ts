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
import { type Ld3Evaluation, QUICK_LD3, runLd3Training } from "./train/run.ts";
import { type LoadedModel, loadModel } from "../onnx/model.ts";
import { ProgressBar } from "../io/progress.ts";
import { generateDataset, LD3_TEACHER, sampleImages, stackedTrajectoryFrames } from "./sampling.ts";
import { imagesGif } from "../io/animation.ts";
import type { Grid } from "../solvers/plan.ts";
import { runPlan } from "../solvers/plan.ts";
import { planSolver, SOLVER_NAMES, type SolverName, solverSteps } from "../solvers/mod.ts";
import { pathExists } from "../io/fs.ts";
import { checkCount } from "../_check.ts";

/** The grids the demo compares, LD3 first. */
export const DEMO_GRIDS = ["LD3", "EDM", "logSNR", "time_uniform"] as const;
/** One of {@linkcode DEMO_GRIDS}. */
export type DemoGrid = typeof DEMO_GRIDS[number];

/** Options of {@linkcode runDemo}. */
export interface DemoOptions {
  /** Model config. @default {configs/mnist-edm.yml when its model file exists, else configs/gmm-mnist.yml} */
  config?: string;
  /** Output folder. @default {"runs/demo"} */
  out?: string;
  /**
   * Student solver. iPNDM at NFE 6 shows LD3's clearest win over both logSNR and EDM on
   * gmm-mnist (docs/training.md). @default {"ipndm"}
   */
  solverName?: SolverName;
  /** Student NFE. @default {6} */
  nfe?: number;
  /** Teacher samples: the first half trains LD3, the second half validates. @default {100, 8 with quick} */
  samples?: number;
  /** Tiny sizes (8 samples, one round per phase, 16 FID samples) for tests and CI. @default {false} */
  quick?: boolean;
  /**
   * Start LD3 from this grid (`--match_prior` of `deno task train`): a skip type, `gits` or a grid
   * file; `"none"` starts from the spec's logSNR grid (θ1 = ones). EDM is the grid the bundled
   * models and the teacher are built around and the better start for them (docs/training.md).
   * @default {"edm"}
   */
  matchPrior?: string;
  /**
   * Phase-1 rounds (θ1 only). The spec's 2 + 5 rounds validate 50 samples after each of 175
   * steps, which alone takes 10–15 minutes on the bundled UNet with 2 CPU cores; the demo's
   * 1 + 2 rounds keep the whole run under 15 minutes (docs/demo.md). `deno task train` keeps the
   * spec's defaults. @default {1}
   */
  trainingRoundsV1?: number;
  /** Phase-2 rounds (θ1 and θ2). @default {2, 1 with quick} */
  trainingRoundsV2?: number;
  /** Execution device. @default {the config's} */
  device?: string;
  /** LPIPS ONNX model: train with the LPIPS loss instead of L2. @default {undefined} */
  lpipsModel?: string;
  /** Feature model for FID (needs `fidRef`). @default {the config's `eval.features`, if any} */
  features?: FeatureModelSpec;
  /** FID reference statistics `.npz` (needs `features`). @default {the config's `eval.fid_ref`, if any} */
  fidRef?: string;
  /**
   * Seeded samples per grid (and for the teacher) for FID. 500 keeps the five FID runs (the
   * teacher at 20 NFE costs as much as the four grids together) to about four minutes on the UNet;
   * FID from 500 samples is biased upwards but compares the grids on equal terms.
   * @default {500, 16 with quick}
   */
  fidSamples?: number;
  /** Validation samples shown in comparison.png. @default {8} */
  previewCount?: number;
  /** Progress bars on stderr. @default {true} */
  progress?: boolean;
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
  model: string;
  /** Student solver, NFE and steps. */
  solverName: SolverName;
  nfe: number;
  steps: number;
  /** Training and validation sample counts. */
  numTrain: number;
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
  const quick = options.quick ?? false;
  const solverName = options.solverName ?? "ipndm";
  if (!(SOLVER_NAMES as readonly string[]).includes(solverName)) {
    throw new RangeError(
      `Unknown solver: "${solverName}" (expected one of ${SOLVER_NAMES.join(", ")})`,
    );
  }
  const nfe = options.nfe ?? 6;
  checkCount("nfe", nfe, 1);
  const steps = solverSteps(solverName, nfe);
  const samples = options.samples ?? (quick ? 8 : 100);
  checkCount("samples", samples, 2);
  const numTrain = Math.floor(samples / 2);
  const numValid = samples - numTrain;
  const previewCount = options.previewCount ?? 8;
  checkCount("preview_count", previewCount, 1);
  const progress = options.progress ?? true;
  const out = resolve(options.out ?? "runs/demo");
  const configPath = resolve(options.config ?? await defaultDemoConfig());
  const config = await loadModelConfig(configPath);
  const features = options.features ?? featureSpecFromConfig(config);
  const fidRef = options.fidRef ?? config.eval?.fid_ref;
  if ((features === undefined) !== (fidRef === undefined)) {
    throw new RangeError(
      `FID needs both a feature model and reference statistics: got ${
        features === undefined ? "no features" : "no fid_ref"
      }`,
    );
  }
  const fidSamples = features ? options.fidSamples ?? (quick ? 16 : 500) : 0;
  if (features) checkCount("fid_samples", fidSamples, 2);
  const lossType = options.lpipsModel !== undefined ? "LPIPS" : "L2";
  const matchPrior = options.matchPrior ?? QUICK_LD3.matchPrior;
  const roundsV1 = options.trainingRoundsV1 ?? QUICK_LD3.trainingRoundsV1;
  const roundsV2 = options.trainingRoundsV2 ?? (quick ? 1 : QUICK_LD3.trainingRoundsV2);
  checkCount("training_rounds_v1", roundsV1, 0);
  checkCount("training_rounds_v2", roundsV2, 0);
  if (roundsV1 + roundsV2 === 0) {
    throw new RangeError("training_rounds_v1 + training_rounds_v2 must be >= 1: got 0");
  }

  // ---- 1. teacher ------------------------------------------------------------------------------
  // The teacher and run folders do not name the sample count: another count needs another out.
  const teacherRoot = join(out, "teacher");
  const teacherDir = join(
    teacherRoot,
    datasetDirName(LD3_TEACHER.solverName, LD3_TEACHER.steps, LD3_TEACHER.skipType),
  );
  if (await pathExists(join(teacherDir, MANIFEST_FILE))) {
    const count = (await readManifest(teacherDir)).count;
    if (count !== samples) {
      throw new RangeError(
        `Demo folder ${out} holds a run with ${count} samples: got samples ${samples} ` +
          `(use another out folder, or delete it)`,
      );
    }
  }
  const t0 = performance.now();
  const generated = await generateDataset(configPath, {
    ...LD3_TEACHER,
    dataDir: teacherRoot,
    totalSamples: samples,
    samplingBatchSize: Math.min(samples, config.batch_size),
    seed: 0,
    savePng: true,
    device: options.device,
    progress: progress ? { label: "teacher" } : false,
  });
  const generateSeconds = (performance.now() - t0) / 1000;

  // ---- 2. LD3 ----------------------------------------------------------------------------------
  // A run folder with a checkpoint means an earlier demo got at least one step in: it is
  // resumed, not restarted (and refused, naming both, if it started from another grid).
  const rounds = { trainingRoundsV1: roundsV1, trainingRoundsV2: roundsV2 };
  const t1 = performance.now();
  const trained = await runLd3Training({
    config: configPath,
    dataDir: generated.dir,
    solverName,
    steps,
    lossType,
    lpipsModel: options.lpipsModel,
    numTrain,
    numValid,
    logPath: join(out, "ld3"),
    resume: "auto",
    device: options.device,
    previewCount,
    progress: progress ? {} : false,
    ...(matchPrior !== "none" ? { matchPrior } : {}),
    ...rounds,
  });
  const trainSeconds = (performance.now() - t1) / 1000;

  // ---- 3. evaluation ---------------------------------------------------------------------------
  const t2 = performance.now();
  const model = await loadModel(configPath, options.device ? { device: options.device } : {});
  let featureModel: FeatureModel | undefined;
  const rows: DemoRow[] = [];
  const previews: Float32Array[] = [];
  let teacherFid: number | undefined;
  let trajectoryGif: string | undefined;
  try {
    const dataset = await readDataset(generated.dir);
    const valid = [];
    for (let i = numTrain; i < numTrain + numValid; i++) valid.push(await dataset.read(i));
    const grids = new Map<DemoGrid, Grid>([
      ["LD3", gridOfFile(await loadGridFile(trained.gridPath), model.denoiser.schedule)],
      ["EDM", baselineGrid(model, "EDM", steps)],
      ["logSNR", baselineGrid(model, "logSNR", steps)],
      ["time_uniform", baselineGrid(model, "time_uniform", steps)],
    ]);
    const bar = progress
      ? new ProgressBar(grids.size * numValid + (features ? (grids.size + 1) * fidSamples : 0), {
        label: "evaluate",
        unit: "samples",
      })
      : undefined;
    if (features) {
      featureModel = await loadFeatureModel(features.path, {
        inputName: features.input,
        outputName: features.output,
        inputRange: features.inputRange,
        sampleShape: model.imageShape,
      });
    }
    const fidOf = async (sampler: Parameters<typeof evaluateSchedule>[1]) => {
      let done = 0;
      const r = await evaluateSchedule(model, {
        ...sampler,
        numSamples: fidSamples,
        seed: 0,
        features: featureModel,
        fidRef,
        onProgress: (d) => {
          bar?.increment(d - done);
          done = d;
        },
      });
      return r.metrics.fid;
    };
    for (const [name, grid] of grids) {
      const scored = await scoreGrid(
        model,
        solverName,
        grid,
        valid,
        previewCount,
        (n) => bar?.increment(n),
      );
      previews.push(scored.preview);
      const row: DemoRow = {
        grid: name,
        sigmas: Array.from(gridSigmas(model.denoiser.schedule, grid.t1)),
        l2: meanStd(scored.l2),
        l1: meanStd(scored.l1),
      };
      if (featureModel) {
        row.fid = await fidOf(
          name === "LD3" ? { solverName, loadFrom: trained.gridPath } : {
            solverName,
            steps,
            skipType: name === "EDM" ? "edm" : name,
          },
        );
      }
      rows.push(row);
    }
    if (featureModel) teacherFid = await fidOf({ ...LD3_TEACHER });
    bar?.finish();
    if (isPictureShape(imageShapeOf(model.imageShape))) {
      // LD3, EDM and logSNR from the same noise, one row each: where each grid forms the digits.
      const runs = [];
      for (const name of ["LD3", "EDM", "logSNR"] as const) {
        const sampled = await sampleImages(model, {
          solverName,
          ...(name === "LD3"
            ? { loadFrom: trained.gridPath }
            : { steps, skipType: name === "EDM" ? "edm" : name }),
          numSamples: previewCount,
          seed: 0,
          trajectory: true,
        });
        runs.push({ label: name, sampled });
      }
      const shape = [3 * previewCount, ...runs[0].sampled.shape.slice(1)];
      const gif = await imagesGif(stackedTrajectoryFrames(runs), shape, { nrow: previewCount });
      trajectoryGif = join(out, "trajectory.gif");
      await writeFileAtomic(trajectoryGif, gif);
    }
  } finally {
    await featureModel?.close();
    await model.close();
  }

  // ---- 4. pictures and the record --------------------------------------------------------------
  const files: DemoResult["files"] = {
    gridJson: trained.gridPath,
    demoJson: join(out, "demo.json"),
  };
  for (
    const [key, name] of [["schedulePng", "schedule.png"], ["scheduleGif", "schedule.gif"], [
      "samplesPng",
      "samples.png",
    ]] as const
  ) {
    if (await pathExists(join(trained.runDir, name))) files[key] = join(trained.runDir, name);
  }
  const imageShape = imageShapeOf(model.imageShape);
  if (trajectoryGif) files.trajectoryGif = trajectoryGif;
  if (isPictureShape(imageShape)) {
    const count = previews[0].length / sampleSize(imageShape);
    const dataset = await readDataset(generated.dir);
    const teacherImages = new Float32Array(previews[0].length);
    for (let k = 0; k < count; k++) {
      teacherImages.set((await dataset.read(numTrain + k)).x, k * sampleSize(imageShape));
    }
    // Rows in the order of the brief's picture: teacher, LD3, EDM, logSNR.
    const pictureRows = [
      { label: "teacher", images: teacherImages },
      ...(["LD3", "EDM", "logSNR"] as const).map((g) => ({
        label: g,
        images: previews[DEMO_GRIDS.indexOf(g)],
      })),
    ];
    files.comparisonPng = join(out, "comparison.png");
    await writeFileAtomic(files.comparisonPng, samplesPng(pictureRows, imageShape));
  }
  const evaluateSeconds = (performance.now() - t2) / 1000;
  const result: DemoResult = {
    config: configPath,
    model: config.name,
    solverName,
    nfe,
    steps,
    numTrain,
    numValid,
    lossType,
    matchPrior,
    rounds: { v1: roundsV1, v2: roundsV2 },
    teacher: {
      dir: generated.dir,
      generated: generated.generated,
      skipped: generated.skipped,
      nfe: generated.manifest.solver.nfe,
      ...(teacherFid !== undefined ? { fid: teacherFid } : {}),
    },
    train: {
      runDir: trained.runDir,
      resumed: trained.resumed,
      trainSeconds: trained.trainSeconds,
      steps: trained.steps,
      evaluation: trained.evaluation,
    },
    rows,
    fidSamples,
    files,
    seconds: {
      generate: generateSeconds,
      train: trainSeconds,
      evaluate: evaluateSeconds,
      total: (performance.now() - started) / 1000,
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
