/**
 * Per-sample distances between student and teacher outputs: the LD3 training losses and the
 * "teacher distance" of an evaluation.
 *
 * Naming follows the LD3 reference: **"L2" is the per-sample *mean squared* difference over
 * C·H·W** (no square root; {@linkcode l2Distance}), "L1" the per-sample mean absolute
 * difference ({@linkcode l1Distance}). The root of the L2 value, an RMS error in data units, is
 * {@linkcode rmsDistance}; {@linkcode gmmExactError} uses it. LPIPS runs a network and so comes
 * in through the {@linkcode PerceptualDistance} interface.
 *
 * @module
 */

/** Flat batches: `batch` samples of `a.length / batch` values each. */
export type Batch = Float32Array | Float64Array;

/** Which distance a caller asks for. */
export type DistanceMetric = "l2" | "l1" | "lpips";

/** The distance metrics, in the order they are documented. */
export const DISTANCE_METRICS: readonly DistanceMetric[] = ["l2", "l1", "lpips"];

/**
 * A network-based distance such as LPIPS, provided by a model runner. Inputs are images in
 * `[-1, 1]`, `batch × C × H × W` values, flat.
 */
export interface PerceptualDistance {
  /** One distance per sample of the batch. */
  distance(a: Batch, b: Batch, batch: number): Promise<Float64Array>;
  /** Frees the runner's resources. */
  close?(): Promise<void>;
}

function sampleLength(a: Batch, b: Batch, batch: number): number {
  if (!Number.isInteger(batch) || batch < 1) {
    throw new RangeError(`Batch must be a positive integer: got ${batch}`);
  }
  if (a.length !== b.length) {
    throw new RangeError(`Inputs must have equal lengths: got ${a.length} and ${b.length}`);
  }
  const size = a.length / batch;
  if (!Number.isInteger(size) || size < 1) {
    throw new RangeError(
      `Input length must be a positive multiple of batch = ${batch}: got ${a.length}`,
    );
  }
  return size;
}

/**
 * LD3's "L2": per-sample mean of squared differences over all C·H·W values.
 *
 * @example
 * ```ts
 * import { l2Distance } from "./distance.ts";
 * const d = l2Distance(new Float64Array([0, 0, 1, 1]), new Float64Array([1, 1, 1, 3]), 2);
 * if (d[0] !== 1 || d[1] !== 2) throw new Error("unexpected distance");
 * ```
 *
 * @throws {RangeError} If the lengths differ or are not a multiple of `batch`.
 */
export function l2Distance(a: Batch, b: Batch, batch: number): Float64Array {
  const size = sampleLength(a, b, batch);
  const out = new Float64Array(batch);
  for (let s = 0; s < batch; s++) {
    let acc = 0;
    for (let i = s * size, end = i + size; i < end; i++) {
      const diff = a[i] - b[i];
      acc += diff * diff;
    }
    out[s] = acc / size;
  }
  return out;
}

/** Root of {@linkcode l2Distance}: the per-sample RMS difference, in data units. */
export function rmsDistance(a: Batch, b: Batch, batch: number): Float64Array {
  return l2Distance(a, b, batch).map(Math.sqrt);
}

/** LD3's "L1": per-sample mean of absolute differences over all C·H·W values. */
export function l1Distance(a: Batch, b: Batch, batch: number): Float64Array {
  const size = sampleLength(a, b, batch);
  const out = new Float64Array(batch);
  for (let s = 0; s < batch; s++) {
    let acc = 0;
    for (let i = s * size, end = i + size; i < end; i++) acc += Math.abs(a[i] - b[i]);
    out[s] = acc / size;
  }
  return out;
}

/**
 * Exact-solution error on the Gaussian-mixture model: the per-sample RMS difference between a
 * solver's output and the reference ODE solution for the same `x_T`.
 *
 * @param reference Exact (or high-accuracy) ODE solutions, `batch × d`.
 * @param output Solver outputs in the same layout.
 * @param batch Number of samples.
 */
export function gmmExactError(reference: Batch, output: Batch, batch: number): Float64Array {
  return rmsDistance(reference, output, batch);
}

/** Options of {@linkcode teacherDistance}. */
export interface TeacherDistanceOptions {
  /** Number of samples in the flat inputs. */
  batch: number;
  /** Which distance. @default "l2" */
  metric?: DistanceMetric;
  /** Runner for `"lpips"`; required for that metric. */
  perceptual?: PerceptualDistance;
}

/**
 * Per-sample distance of student outputs to teacher outputs with the chosen metric.
 *
 * @throws {TypeError} For an unknown metric, or `"lpips"` without a `perceptual` runner.
 * @throws {RangeError} If the lengths differ or are not a multiple of `batch`.
 */
export async function teacherDistance(
  student: Batch,
  teacher: Batch,
  options: TeacherDistanceOptions,
): Promise<Float64Array> {
  const metric = options.metric ?? "l2";
  switch (metric) {
    case "l2":
      return l2Distance(student, teacher, options.batch);
    case "l1":
      return l1Distance(student, teacher, options.batch);
    case "lpips": {
      if (options.perceptual === undefined) {
        throw new TypeError(
          `Metric "lpips" needs a perceptual runner: got perceptual = undefined`,
        );
      }
      sampleLength(student, teacher, options.batch);
      return await options.perceptual.distance(student, teacher, options.batch);
    }
    default:
      throw new TypeError(
        `Metric must be one of ${DISTANCE_METRICS.join(", ")}: got ${JSON.stringify(metric)}`,
      );
  }
}
