/**
 * Pictures of an LD3 run: the learned step grid against the hand-made baselines (a PNG redrawn
 * on every improvement, and a GIF with one frame per improvement), and student vs teacher
 * samples.
 *
 * The schedule plot draws the half-log-SNR `λ_k = log(α/σ)` of every grid point against the
 * step index k (`lib/io/plot.ts`'s λ plot): all schedules run from `λ(T)` to `λ(eps)`, the logSNR
 * schedule is a straight line, EDM bends, and LD3's learned grid shows where the solver wanted
 * its steps (a steep segment is a big step).
 *
 * @module
 */
import { imagescript } from "../../deps.ts";
import { edmGrid, logSnrGrid, timeUniformGrid } from "../../step_grid.ts";
import { encodePng, gridRaster, rasterToRgba } from "../../io/image.ts";
import {
  type LambdaGrid,
  lambdaPlot,
  type LinePlotOptions,
  type PlotScene,
  rasterizeScene,
  textWidth,
} from "../../io/plot.ts";
import type { NoiseSchedule } from "../../noise_schedule.ts";
import type { Grid } from "../../solvers/plan.ts";

/**
 * The curves of the schedule plot, as λ: the learned step grid (and its evaluation grid when
 * θ2 moved it), then logSNR, EDM (ρ = 7) and time-uniform grids with as many steps.
 */
export function scheduleCurves(schedule: NoiseSchedule, grid: Grid): LambdaGrid[] {
  const steps = grid.t1.length - 1;
  const lambdaOf = (t: ArrayLike<number>) => Float64Array.from(t, (v) => schedule.lambda(v));
  const curves: LambdaGrid[] = [{ name: "LD3 t1", lambdas: lambdaOf(grid.t1) }];
  if (grid.t2.some((t, k) => t !== grid.t1[k])) {
    curves.push({ name: "LD3 t2 (eval)", lambdas: lambdaOf(grid.t2) });
  }
  curves.push(
    { name: "logSNR", lambdas: lambdaOf(logSnrGrid(schedule, steps)) },
    { name: "EDM", lambdas: lambdaOf(edmGrid(schedule, steps)) },
    { name: "time uniform", lambdas: lambdaOf(timeUniformGrid(schedule, steps)) },
  );
  return curves;
}

/** The schedule plot of a grid as a scene (see `lib/io/plot.ts` for SVG/PNG output). */
export function schedulePlot(
  schedule: NoiseSchedule,
  grid: Grid,
  options: LinePlotOptions = {},
): PlotScene {
  return lambdaPlot(scheduleCurves(schedule, grid), { width: 640, height: 400, ...options });
}

/** The schedule plot of a grid as PNG bytes. */
export function schedulePlotPng(
  schedule: NoiseSchedule,
  grid: Grid,
  options: LinePlotOptions = {},
): Uint8Array {
  return encodePng(rasterizeScene(schedulePlot(schedule, grid, options)));
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
 * `maxFrames`). Every frame keeps the first frame's axes, so the curves move, not the axes.
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
  const title = options.title ? `${options.title} ` : "";
  const gifFrames = picked.map((i, j) => {
    const f = frames[i];
    const grid = { t1: Float64Array.from(f.t1), t2: Float64Array.from(f.t2) };
    const raster = rasterizeScene(
      schedulePlot(schedule, grid, {
        ...options,
        title: `${title}step ${f.step} loss ${f.loss.toPrecision(4)}`,
      }),
    );
    const frame = new imagescript.Frame(
      raster.width,
      raster.height,
      j === picked.length - 1 ? 4 * frameMs : frameMs,
    );
    rasterToRgba(raster, frame.bitmap);
    return frame;
  });
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
 * Rows of images with a label left of each (teacher, LD3 student, baselines), as PNG.
 *
 * @param imageShape `[C, H, W]` of one image (C = 1 or 3).
 * @throws {RangeError} When rows differ in size.
 */
export function samplesPng(rows: readonly SampleRow[], imageShape: readonly number[]): Uint8Array {
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
  const grid = gridRaster(data, [rows.length * count, ...imageShape], { nrow: count });
  const labelWidth = Math.max(...rows.map((r) => textWidth(r.label))) + 12;
  const rowHeight = (grid.height - 2) / rows.length;
  const labels = rasterizeScene({
    width: labelWidth,
    height: grid.height,
    background: [255, 255, 255],
    primitives: rows.map((r, i) => ({
      kind: "text" as const,
      x: 6,
      y: Math.round(2 + (i + 0.5) * rowHeight - 3.5),
      text: r.label,
      color: [0, 0, 0] as const,
      anchor: "start" as const,
    })),
  });
  const width = labelWidth + grid.width;
  const pixels = new Uint8Array(width * grid.height * 3);
  for (let y = 0; y < grid.height; y++) {
    pixels.set(
      labels.pixels.subarray(y * labelWidth * 3, (y + 1) * labelWidth * 3),
      y * width * 3,
    );
    for (let x = 0; x < grid.width; x++) {
      const src = (y * grid.width + x) * grid.channels;
      const dst = (y * width + labelWidth + x) * 3;
      for (let c = 0; c < 3; c++) {
        pixels[dst + c] = grid.pixels[grid.channels === 3 ? src + c : src];
      }
    }
  }
  return encodePng({ width, height: grid.height, channels: 3, pixels });
}
