/**
 * Pictures of an LD3 run: the learned step grid against the hand-made baselines (SVG and PNG
 * redrawn on every improvement, and a GIF with one frame per improvement), the loss curves, and
 * student vs teacher samples.
 *
 * The schedule plot draws the half-log-SNR `λ_k = log(α/σ)` of every grid point against the
 * step index k (`lib/io/plot.ts`'s λ plot): all schedules run from `λ(T)` to `λ(eps)`, the logSNR
 * schedule is a straight line, EDM bends, and LD3's learned grid shows where the solver wanted
 * its steps (a steep segment is a big step). LD3's step grid t1 is a solid line with filled
 * dots, its evaluation grid t2 a dashed line with hollow squares drawn over it, so both show
 * where they coincide.
 *
 * @module
 */
import { join } from "node:path";
import { imagescript } from "../../deps.ts";
import { edmGrid, logSnrGrid, timeUniformGrid } from "../../step_grid.ts";
import { labelledGridPng } from "../../io/labelled_grid.ts";
import {
  chartPng,
  chartSvg,
  type LambdaGrid,
  lambdaPlot,
  type LineChart,
  linePlot,
  type LinePlotOptions,
  PALETTE,
} from "../../io/plot.ts";
import { svgToPng, svgToRgba } from "../../io/svg.ts";
import { writeFileAtomic, writeTextFileAtomic } from "../../io/atomic.ts";
import type { NoiseSchedule } from "../../noise_schedule.ts";
import type { Grid } from "../../solvers/plan.ts";
import type { Ld3Event } from "../../ld3/trainer.ts";

/** How LD3's two grids and the baselines are drawn: apart even where they coincide. */
const STYLES = {
  t1: { color: PALETTE[0], marker: "circle", width: 2.6, zorder: 1 },
  t2: { color: PALETTE[1], marker: "square", dash: "7 4", hollow: true, width: 2, zorder: 2 },
  logSNR: { color: PALETTE[2], marker: "triangle", width: 1.6 },
  edm: { color: PALETTE[3], marker: "diamond", width: 1.6 },
  timeUniform: { color: PALETTE[4], marker: "times", width: 1.6 },
} as const;

/**
 * The curves of the schedule plot, as λ: the learned step grid (and its evaluation grid when
 * θ2 moved it, or always with `alwaysT2`), then logSNR, EDM (ρ = 7) and time-uniform grids
 * with as many steps.
 */
export function scheduleCurves(
  schedule: NoiseSchedule,
  grid: Grid,
  options: { alwaysT2?: boolean } = {},
): LambdaGrid[] {
  const steps = grid.t1.length - 1;
  const lambdaOf = (t: ArrayLike<number>) => Float64Array.from(t, (v) => schedule.lambda(v));
  const curves: LambdaGrid[] = [
    { name: "LD3 step grid t1", lambdas: lambdaOf(grid.t1), style: STYLES.t1 },
  ];
  if (options.alwaysT2 || grid.t2.some((t, k) => t !== grid.t1[k])) {
    curves.push({ name: "LD3 eval grid t2", lambdas: lambdaOf(grid.t2), style: STYLES.t2 });
  }
  curves.push(
    { name: "logSNR", lambdas: lambdaOf(logSnrGrid(schedule, steps)), style: STYLES.logSNR },
    { name: "EDM (ρ = 7)", lambdas: lambdaOf(edmGrid(schedule, steps)), style: STYLES.edm },
    {
      name: "time uniform",
      lambdas: lambdaOf(timeUniformGrid(schedule, steps)),
      style: STYLES.timeUniform,
    },
  );
  return curves;
}

/** The schedule plot of a grid, described as a chart (draw it with `chartSvg`/`chartPng`). */
export function schedulePlot(
  schedule: NoiseSchedule,
  grid: Grid,
  options: LinePlotOptions = {},
): LineChart {
  return lambdaPlot(scheduleCurves(schedule, grid), { width: 760, height: 460, ...options });
}

/** The schedule plot of a grid as an SVG document. */
export async function schedulePlotSvg(
  schedule: NoiseSchedule,
  grid: Grid,
  options: LinePlotOptions = {},
): Promise<string> {
  return await chartSvg(schedulePlot(schedule, grid, options));
}

/** The schedule plot of a grid as PNG bytes (2 pixels per chart pixel). */
export async function schedulePlotPng(
  schedule: NoiseSchedule,
  grid: Grid,
  options: LinePlotOptions = {},
): Promise<Uint8Array> {
  return await chartPng(schedulePlot(schedule, grid, options));
}

/**
 * Writes `schedule.svg` and `schedule.png` (the schedule plot of `grid`) into a run folder,
 * each atomically.
 */
export async function writeSchedulePictures(
  runDir: string,
  schedule: NoiseSchedule,
  grid: Grid,
  options: LinePlotOptions = {},
): Promise<void> {
  const svg = await chartSvg(schedulePlot(schedule, grid, options));
  await writeTextFileAtomic(join(runDir, "schedule.svg"), svg);
  await writeFileAtomic(join(runDir, "schedule.png"), await svgToPng(svg, { scale: 2 }));
}

/** Options of {@linkcode lossPlot}. */
export interface LossPlotOptions extends LinePlotOptions {
  /** The loss's name, for the y label (`l2`, `lpips`, …). @default {"LD3"} */
  lossType?: string;
}

/**
 * The loss curves of a run from its events (`log.jsonl`): the training loss of every step, the
 * validation loss at each validation and the best validation loss so far, against the global
 * training step, on a log axis when every loss is positive.
 */
export function lossPlot(events: readonly Ld3Event[], options: LossPlotOptions = {}): LineChart {
  const train = { x: [] as number[], y: [] as number[] };
  const valid = { x: [] as number[], y: [] as number[] };
  const best = { x: [] as number[], y: [] as number[] };
  for (const e of events) {
    if (e.type === "step") train.x.push(e.step), train.y.push(e.loss);
    if (e.type === "validation") {
      valid.x.push(e.step), valid.y.push(e.loss);
      best.x.push(e.step), best.y.push(e.best);
    }
  }
  const all = [...train.y, ...valid.y];
  const { lossType, ...plotOptions } = options;
  return linePlot([
    { name: "training batch", ...train, color: PALETTE[7], marker: "none", width: 1.2 },
    { name: "validation", ...valid, color: PALETTE[0], marker: "circle", width: 1.6, zorder: 1 },
    { name: "best validation", ...best, color: PALETTE[1], marker: "none", dash: "6 3", zorder: 2 },
  ], {
    title: "Loss during training",
    xLabel: "training step",
    yLabel: `${lossType ?? "LD3"} loss to the teacher (mean per sample)`,
    logY: all.length > 0 && all.every((v) => v > 0),
    ...plotOptions,
  });
}

/** One frame of the evolution GIF: the best grid after an improvement. */
export interface ScheduleFrame {
  /** Global training step of the improvement. */
  step: number;
  /** Validation loss of that grid. */
  loss: number;
  /** Step grid. */
  t1: number[];
  /** Evaluation grid. */
  t2: number[];
}

/** Options of {@linkcode scheduleGif}. */
export interface ScheduleGifOptions extends LinePlotOptions {
  /** Milliseconds per frame (the last frame shows four times as long). @default {250} */
  frameMs?: number;
  /** At most this many frames (evenly subsampled, first and last kept). @default {100} */
  maxFrames?: number;
}

/** Evenly spaced indices of `count` items, at most `max`, first and last included. */
export function subsample(count: number, max: number): number[] {
  if (count <= max) return Array.from({ length: count }, (_, i) => i);
  const out = new Set<number>();
  for (let i = 0; i < max; i++) out.add(Math.round(i * (count - 1) / (max - 1)));
  return [...out];
}

/**
 * The GIF of the schedule's evolution: one frame per improvement (subsampled beyond
 * `maxFrames`). Every grid runs from λ(T) to λ(eps), so the axes stay put and the curves move.
 *
 * @throws {RangeError} Without frames.
 */
export async function scheduleGif(
  schedule: NoiseSchedule,
  frames: readonly ScheduleFrame[],
  options: ScheduleGifOptions = {},
): Promise<Uint8Array> {
  if (frames.length === 0) throw new RangeError("Schedule GIF needs at least one frame: got 0");
  const frameMs = options.frameMs ?? 250;
  const picked = subsample(frames.length, options.maxFrames ?? 100);
  const title = options.title ? `${options.title}: ` : "";
  const gifFrames = [];
  for (const [j, i] of picked.entries()) {
    const f = frames[i];
    const grid = { t1: Float64Array.from(f.t1), t2: Float64Array.from(f.t2) };
    // Both LD3 curves in every frame, so the legend and the axes keep their place.
    const chart = lambdaPlot(scheduleCurves(schedule, grid, { alwaysT2: true }), {
      width: 760,
      height: 460,
      ...options,
      title: `${title}step ${f.step}, validation loss ${f.loss.toPrecision(4)}`,
    });
    // Every grid runs from λ(T) to λ(eps): the axes stay put and the curves move.
    const image = await svgToRgba(await chartSvg(chart));
    const frame = new imagescript.Frame(
      image.width,
      image.height,
      j === picked.length - 1 ? 4 * frameMs : frameMs,
    );
    frame.bitmap.set(image.rgba);
    gifFrames.push(frame);
  }
  return await new imagescript.GIF(gifFrames, -1).encode(80);
}

/** One labelled row of {@linkcode samplesPng}. */
export interface SampleRow {
  /** Text left of the row. */
  label: string;
  /** `count × C·H·W` values in [-1, 1]. */
  images: ArrayLike<number>;
}

/**
 * Rows of images with a label left of each (teacher, LD3 student, baselines), as PNG: every
 * image enlarged to at least 84 px unless `scale` says otherwise, labels in DejaVu Sans.
 *
 * @param imageShape `[C, H, W]` of one image (C = 1 or 3).
 * @throws {RangeError} When rows differ in size.
 */
export async function samplesPng(
  rows: readonly SampleRow[],
  imageShape: readonly number[],
  options: { scale?: number } = {},
): Promise<Uint8Array> {
  const size = imageShape.reduce((a, b) => a * b, 1);
  const count = rows[0]?.images.length / size;
  if (
    !(Number.isInteger(count) && count >= 1) || rows.some((r) => r.images.length !== count * size)
  ) {
    throw new RangeError(
      `Every sample row must hold the same whole number of [${imageShape}] images`,
    );
  }
  const data = new Float64Array(rows.length * count * size);
  rows.forEach((r, i) => data.set(Array.from(r.images), i * count * size));
  return await labelledGridPng(data, [rows.length * count, ...imageShape], {
    nrow: count,
    rowLabels: rows.map((r) => r.label),
    scale: options.scale,
  });
}
