/**
 * The one model contract every solver uses: a data-prediction denoiser `D(x, t) ≈ E[x_0 | x_t]`.
 *
 * ONNX networks, the analytic Gaussian mixture and any user model all become a `Denoiser`;
 * conversions from ε / v / flow-velocity outputs and classifier-free guidance live in adapters,
 * never in solvers.
 *
 * @module
 */
import type { NoiseSchedule } from "./noise_schedule.ts";

/** What a solver tells the denoiser about one call (for error messages and conditioning). */
export interface DenoiseInfo {
  /** Index of the network call within the solve (0-based), for NaN/Inf reports. */
  step?: number;
  /** Conditioning for the batch, `[batch, ...conditionShape]`, passed through untouched. */
  condition?: Float32Array;
}

/** A batched data-prediction denoiser. */
export interface Denoiser {
  /** The forward process the network was trained with. */
  readonly schedule: NoiseSchedule;
  /** Shape of one sample (the latent shape for latent models), without the batch axis. */
  readonly sampleShape: readonly number[];
  /**
   * `D(x, t)` for a batch. `x` holds `batch × prod(sampleShape)` values; every sample of the
   * batch is at the same time `t`. Returns a new array of the same length.
   */
  denoise(x: Float64Array, t: number, info?: DenoiseInfo): Promise<Float64Array>;
}

/** Number of values in one sample of `shape`. */
export function sampleSize(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Whether two sample shapes are the same (`b` may be absent, e.g. an unconditional dataset's `c`). */
export function sameShape(a: readonly number[], b: readonly number[] | undefined): boolean {
  return b !== undefined && a.length === b.length && a.every((d, i) => d === b[i]);
}
