/**
 * The end of an LD3 run: the learned grid, the grid it started from and the model-free baselines
 * scored on the validation samples from their original latents, the same grid's loss on its
 * relaxed validation latents (the soft objective), a warning when the learned grid is worse on
 * the original latents than its start or a baseline, and the final `grid.json`,
 * `schedule.svg`/`.png`, `schedule.gif`, `samples.png` and `summary.json`.
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
import { planSolver, runPlan, type SolverName, type SolverOptions } from "../../solvers/mod.ts";
import type { Grid } from "../../solvers/plan.ts";
import type { RunRecorder } from "./recorder.ts";
import { type SampleRow, samplesPng, writeSchedulePictures } from "./report.ts";

/**
 * Validation losses of the learned grid and the baselines, all from the validation samples'
 * original latents z with the run's loss, and the learned grid's loss on its relaxed latents.
 */
export interface Ld3Evaluation {
  /** The learned grid, from the original latents. */
  ld3: number;
  /** Loss of the logSNR-uniform grid. */
  logSNR: number;
  /** Loss of the EDM (Karras ρ) grid. */
  edm: number;
  /** Loss of the time-uniform grid. */
  time_uniform: number;
  /** Loss of LD3's time-quadratic grid. */
  time_quadratic: number;
  /** DMN's grid for the solver's order (model-free, as the baselines above). */
  dmn: number;
  /** The grid the run started from (`startGrid` names it). */
  start: number;
  /** `match_prior`'s grid, or the grid θ1 = 1 gives: logSNR (lambda mode) or time_uniform. */
  startGrid: string;
  /**
   * The learned grid from the relaxed validation latents kept with it (the soft objective LD3
   * trains on; relaxed for the grids of the moments the latents moved, so not always below
   * `ld3`).
   */
  ld3Relaxed: number;
  /** The latents the trainer validated on, i.e. what its log's validation loss measures. */
  tracked: "original" | "relaxed";
  /** One line per grid the learned one is worse than on the original latents (empty if none). */
  warnings: string[];
}

/** The hand-made and model-free grids every run is scored against. */
export const SUMMARY_BASELINES = [
  "time_uniform",
  "time_quadratic",
  "logSNR",
  "edm",
  "dmn",
] as const;

/** One of {@linkcode SUMMARY_BASELINES}. */
export type SummaryBaseline = typeof SUMMARY_BASELINES[number];

/** A grid the end of a run scores: the learned one, its start, or a baseline. */
export type ScoredGrid = "ld3" | "start" | SummaryBaseline;

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
  /** The solver options: order, UniPC variant, the final-order rule, the 3M form. */
  solverOptions: SolverOptions;
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

/**
 * Lines saying by how much the learned grid's loss exceeds each grid it is worse than (the start
 * first), empty when it is the best. A difference within rounding (relative 1e-9, e.g. a grid that
 * never moved from its start, rebuilt from θ) is no loss.
 *
 * @example
 * ```ts
 * console.log(worseThan(0.3, [["start (logSNR)", 0.2], ["edm", 0.4]]));
 * // ["start (logSNR): 0.3000 vs 0.2000 (+50.0 %)"]
 * ```
 */
export function worseThan(ld3: number, others: readonly (readonly [string, number])[]): string[] {
  return others.filter(([, v]) => ld3 > v * (1 + 1e-9)).map(([name, v]) => {
    const percent = 100 * (ld3 / v - 1);
    const text = percent >= 0.1 ? percent.toFixed(1) : percent.toPrecision(2);
    return `${name}: ${ld3.toPrecision(4)} vs ${v.toPrecision(4)} (+${text} %)`;
  });
}

/** What {@linkcode finishRun} needs besides the scoring context. */
export interface FinishRunInput {
  runDir: string;
  steps: number;
  /** The latents the trainer validated on. */
  tracked: "original" | "relaxed";
  /** The baseline grids at the run's step count. */
  baselines: Record<SummaryBaseline, Grid>;
  /** The grid the run started from, and its name. */
  start: { name: string; grid: Grid };
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
  validImages: Record<ScoredGrid, Float64Array>;
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

/** The validation samples with the relaxed latents of the best state in place of z. */
function relaxedSamples(valid: readonly Ld3Sample[], result: Ld3Result): Ld3Sample[] {
  const latents = result.checkpoint.best?.validLatents;
  if (!latents || latents.length !== valid.length) return [...valid];
  return valid.map((s, i) => ({ ...s, z: latents[i] }));
}

/**
 * Scores the learned grid, its start and the baselines on the validation samples' original
 * latents, and the learned grid on its relaxed ones; names what is worse.
 */
async function evaluateRun(
  ctx: GridLossContext,
  run: FinishRunInput,
  result: Ld3Result,
): Promise<{ evaluation: Ld3Evaluation; images: Record<ScoredGrid, Float64Array> }> {
  const images = {} as Record<ScoredGrid, Float64Array>;
  const loss = async (name: ScoredGrid, grid: Grid) => {
    const scored = await gridLoss(ctx, grid, run.valid);
    images[name] = scored.images;
    return scored.mean;
  };
  const ld3 = await loss("ld3", result.grid);
  const baselines = {} as Record<SummaryBaseline, number>;
  for (const name of SUMMARY_BASELINES) baselines[name] = await loss(name, run.baselines[name]);
  const start = await loss("start", run.start.grid);
  const ld3Relaxed = (await gridLoss(ctx, result.grid, relaxedSamples(run.valid, result))).mean;
  const warnings = worseThan(ld3, [
    [`start (${run.start.name})`, start],
    ...SUMMARY_BASELINES.filter((name) => name !== run.start.name)
      .map((name) => [name, baselines[name]] as const),
  ]);
  const evaluation = {
    ld3,
    ...baselines,
    start,
    startGrid: run.start.name,
    ld3Relaxed,
    tracked: run.tracked,
    warnings,
  };
  return { evaluation, images };
}

/**
 * Scores the learned grid against its start and the baselines on the validation samples'
 * original latents and writes the run folder's final files; `grid.json` records the evaluation
 * and any warning.
 */
export async function finishRun(
  ctx: GridLossContext,
  run: FinishRunInput,
  result: Ld3Result,
): Promise<FinishedRun> {
  const schedule = ctx.denoiser.schedule;
  const { evaluation, images } = await evaluateRun(ctx, run, result);
  const stop = result.history.findLast((e) => e.type === "stop");
  const stopReason = stop?.type === "stop" ? stop.reason : "rounds";
  const step = result.checkpoint.globalStep;
  const gridFile = makeGridFile(
    schedule,
    result.grid,
    run.gridInfo({
      validLoss: result.bestValidLoss,
      evaluation,
      step,
      ...(evaluation.warnings.length > 0 ? { warnings: evaluation.warnings } : {}),
    }),
  );
  const gridPath = join(run.runDir, "grid.json");
  await saveGridFile(gridPath, gridFile);
  await writeSchedulePictures(run.runDir, schedule, result.grid, {
    title: `${run.title}: loss ${evaluation.ld3.toPrecision(4)} (original latents)`,
  });
  await run.recorder.writeGif();
  await writeSamplesPng(run, images);
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
  return { gridFile, evaluation, stopReason, validImages: images };
}
