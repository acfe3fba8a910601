/**
 * The end of an LD3 run: the learned grid and the hand-made baselines scored on the validation
 * samples from their original latents, the final `grid.json`, `schedule.svg`/`.png`, `schedule.gif`,
 * `samples.png` and `summary.json`.
 *
 * @module
 */
import { join } from "node:path";
import { writeFileAtomic, writeJsonAtomic } from "../../io/atomic.ts";
import { type GridFile, makeGridFile, saveGridFile } from "../../io/grid_file.ts";
import { imageShapeOf } from "../../io/image.ts";
import type { DifferentiableDecoder, DifferentiableDenoiser } from "../../differentiable.ts";
import type { Ld3Result, Ld3Sample } from "../../ld3/trainer.ts";
import type { SampleLoss } from "../../metrics/losses.ts";
import { planSolver, runPlan, type SolverName } from "../../solvers/mod.ts";
import type { Grid } from "../../solvers/plan.ts";
import { skipGrid, toGrid } from "../../step_grid.ts";
import type { RunRecorder } from "./recorder.ts";
import { type SampleRow, samplesPng, writeSchedulePictures } from "./report.ts";

/** Validation losses (same latents z, same loss) of the learned grid and the baselines. */
export interface Ld3Evaluation {
  /** Loss of the learned LD3 grid. */
  ld3: number;
  /** Loss of the logSNR-uniform grid. */
  logSNR: number;
  /** Loss of the EDM (Karras ρ) grid. */
  edm: number;
  /** Loss of the time-uniform grid. */
  time_uniform: number;
}

/** What scoring a grid needs: the student's model, solver and loss. */
export interface GridLossContext {
  /** The student's network, differentiable. */
  denoiser: DifferentiableDenoiser;
  /** Decoder from latents to images (latent models). */
  decode?: DifferentiableDecoder;
  /** The training loss. */
  loss: SampleLoss;
  /** The student solver. */
  solverName: SolverName;
  /** Its order and UniPC variant, where they apply. */
  solverOptions: { order?: number; variant?: "bh1" | "bh2" };
  /** Samples per network batch. */
  batchSize: number;
}

/** The latents `priorScale · z`, teachers and conditions of a batch of samples, concatenated. */
function batchInputs(batch: readonly Ld3Sample[], priorScale: number) {
  const size = batch[0].z.length;
  const xT = new Float64Array(batch.length * size);
  batch.forEach((b, i) => {
    for (let j = 0; j < size; j++) xT[i * size + j] = b.z[j] * priorScale;
  });
  const teacherSize = batch[0].teacher.length;
  const teacher = new Float64Array(batch.length * teacherSize);
  batch.forEach((b, i) => teacher.set(b.teacher, i * teacherSize));
  const condition = batch.every((b) => b.condition)
    ? Float32Array.from(batch.flatMap((b) => Array.from(b.condition!)))
    : undefined;
  return { xT, teacher, condition };
}

/** The mean loss of a grid over samples, starting from the samples' original latents z. */
export async function gridLoss(
  ctx: GridLossContext,
  grid: Grid,
  samples: readonly Ld3Sample[],
): Promise<{ mean: number; images: Float64Array }> {
  const schedule = ctx.denoiser.schedule;
  const plan = planSolver(ctx.solverName, schedule, grid, ctx.solverOptions);
  let total = 0;
  const parts: Float64Array[] = [];
  for (let s = 0; s < samples.length; s += ctx.batchSize) {
    const batch = samples.slice(s, s + ctx.batchSize);
    const { xT, teacher, condition } = batchInputs(batch, schedule.priorScale);
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

/** The baselines every run is scored against, on the run's step count. */
function baselineGrids(ctx: GridLossContext, steps: number) {
  const schedule = ctx.denoiser.schedule;
  return {
    logSNR: toGrid(skipGrid("logSNR", schedule, steps)),
    edm: toGrid(skipGrid("edm", schedule, steps)),
    time_uniform: toGrid(skipGrid("time_uniform", schedule, steps)),
  };
}

/** What {@linkcode finishRun} needs besides the scoring context. */
export interface FinishRunInput {
  runDir: string;
  steps: number;
  /** Title of the schedule plot. */
  title: string;
  valid: readonly Ld3Sample[];
  /** Validation samples shown in samples.png. */
  previewCount: number;
  imageShape: readonly number[];
  lossType: string;
  gridInfo: (extra: Record<string, unknown>) => Parameters<typeof makeGridFile>[2];
  recorder: RunRecorder;
  trainSeconds: number;
}

/** What {@linkcode finishRun} measured and wrote. */
export interface FinishedRun {
  gridFile: GridFile;
  evaluation: Ld3Evaluation;
  stopReason: "rounds" | "lr2_floor";
  /** The images each grid made from the validation samples' original latents, in order. */
  validImages: Record<keyof Ld3Evaluation, Float64Array>;
}

/**
 * teacher / LD3 / logSNR / EDM rows of the first validation samples, as samples.png: the first
 * rows of the images the evaluation made (no grid runs again).
 */
async function writeSamplesPng(
  run: FinishRunInput,
  images: { ld3: Float64Array; logSNR: Float64Array; edm: Float64Array },
): Promise<void> {
  const imageShape = imageShapeOf(run.imageShape);
  if (!(imageShape.length === 3 && (imageShape[0] === 1 || imageShape[0] === 3))) return;
  const preview = run.valid.slice(0, Math.min(run.previewCount, run.valid.length));
  const size = preview[0].teacher.length;
  const first = (a: Float64Array) => a.subarray(0, preview.length * size);
  const rows: SampleRow[] = [
    { label: "teacher", images: Float64Array.from(preview.flatMap((s) => Array.from(s.teacher))) },
    { label: "LD3", images: first(images.ld3) },
    { label: "logSNR", images: first(images.logSNR) },
    { label: "EDM", images: first(images.edm) },
  ];
  await writeFileAtomic(join(run.runDir, "samples.png"), await samplesPng(rows, imageShape));
}

/**
 * Scores the learned grid against the baselines on the validation samples' original latents
 * and writes the run folder's final files.
 */
export async function finishRun(
  ctx: GridLossContext,
  run: FinishRunInput,
  result: Ld3Result,
): Promise<FinishedRun> {
  const schedule = ctx.denoiser.schedule;
  const baselines = baselineGrids(ctx, run.steps);
  const ld3 = await gridLoss(ctx, result.grid, run.valid);
  const logSNR = await gridLoss(ctx, baselines.logSNR, run.valid);
  const edm = await gridLoss(ctx, baselines.edm, run.valid);
  const timeUniform = await gridLoss(ctx, baselines.time_uniform, run.valid);
  const evaluation: Ld3Evaluation = {
    ld3: ld3.mean,
    logSNR: logSNR.mean,
    edm: edm.mean,
    time_uniform: timeUniform.mean,
  };
  const stop = result.history.findLast((e) => e.type === "stop");
  const stopReason = stop?.type === "stop" ? stop.reason : "rounds";
  const step = result.checkpoint.globalStep;
  const gridFile = makeGridFile(
    schedule,
    result.grid,
    run.gridInfo({ validLoss: result.bestValidLoss, evaluation, step }),
  );
  const gridPath = join(run.runDir, "grid.json");
  await saveGridFile(gridPath, gridFile);
  await writeSchedulePictures(run.runDir, schedule, result.grid, {
    title: `${run.title}: validation loss ${result.bestValidLoss.toPrecision(4)}`,
  });
  await run.recorder.writeGif();
  await writeSamplesPng(run, { ld3: ld3.images, logSNR: logSNR.images, edm: edm.images });
  await writeJsonAtomic(join(run.runDir, "summary.json"), {
    grid: gridPath,
    bestValidLoss: result.bestValidLoss,
    evaluation,
    lossType: run.lossType,
    trainSeconds: run.trainSeconds,
    steps: step,
    stopReason,
    improvements: run.recorder.frames.length,
  });
  const validImages = {
    ld3: ld3.images,
    logSNR: logSNR.images,
    edm: edm.images,
    time_uniform: timeUniform.images,
  };
  return { gridFile, evaluation, stopReason, validImages };
}
