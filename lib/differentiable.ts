/**
 * Differentiable models: the contract reverse mode (LD3 training) needs from a denoiser and a
 * decoder, plus float64 derivatives of a noise schedule's scalar functions.
 *
 * A {@linkcode DifferentiableDenoiser} is a {@linkcode Denoiser} that can also return the
 * vector–Jacobian product of `D(x, t)` with respect to its input `x` (per sample) and its
 * time input `t`. The time input is shared by the whole batch, so its gradient is one scalar:
 * the sum over the batch.
 *
 * @module
 */
import type { DenoiseInfo, Denoiser } from "./denoiser.ts";
import type { NoiseSchedule } from "./noise_schedule.ts";

/** The result of {@linkcode DifferentiableDenoiser.vjp}. */
export interface DenoiserVjp {
  /** `⟨cot, ∂D/∂x⟩` for every sample: same layout and length as `x`. */
  readonly x: Float64Array;
  /** `Σ_batch ⟨cot_b, ∂D_b/∂t⟩`: the batch shares one time input, so one scalar. */
  readonly t: number;
}

/**
 * What a forward call kept for the VJP at the same point (activations the backward pass reads),
 * so that the VJP does not run the forward again. Opaque: only the denoiser that made it reads
 * it.
 */
export interface SavedForward {
  /** Memory it holds, in bytes. */
  readonly bytes: number;
  /**
   * Frees it without a VJP (one VJP frees it itself); for a forward whose output got no
   * cotangent. Optional: what only memory holds needs no release.
   */
  release?(): void;
}

/** Step, conditioning and, optionally, what the forward call at `x, t` saved. */
export interface VjpInfo extends DenoiseInfo {
  /** From {@linkcode DifferentiableDenoiser.denoiseForVjp} at the same `x`, `t` and info. */
  saved?: SavedForward;
}

/** A denoiser that also gives vector–Jacobian products with respect to `x` and `t`. */
export interface DifferentiableDenoiser extends Denoiser {
  /**
   * Vector–Jacobian product of `D(x, t)` for a batch.
   *
   * @param x Batch of inputs (`batch × prod(sampleShape)` values), as given to `denoise`.
   * @param t The batch's time.
   * @param cotangent The cotangent of the output, same length as `x`.
   * @param info Step index and conditioning, as for `denoise`; `saved` from the forward call.
   */
  vjp(
    x: Float64Array,
    t: number,
    cotangent: Float64Array,
    info?: VjpInfo,
  ): Promise<DenoiserVjp>;
  /**
   * Optional: `denoise` (the same output) that also returns what `vjp` at this point needs, so
   * that `vjp` with it skips its own forward pass. `saved` is absent where the denoiser chose
   * to recompute instead (too large to hold, or a call it cannot split).
   */
  denoiseForVjp?(
    x: Float64Array,
    t: number,
    info?: DenoiseInfo,
  ): Promise<{ output: Float64Array; saved?: SavedForward }>;
}

/**
 * A decoder from latents to images (latent diffusion) with its vector–Jacobian product. Pixel
 * models need none: the trainer then compares the latents directly.
 */
export interface DifferentiableDecoder {
  /** Values per decoded image (C·H·W), for per-sample means. */
  readonly imageSize: number;
  /** Decodes a batch of `batch` latents into images (float64, `batch × imageSize`). */
  decode(x: Float64Array, batch: number): Promise<Float64Array>;
  /** `⟨cot, ∂decode/∂x⟩` for a batch of latents: same length as `x`. */
  vjp(x: Float64Array, cotangent: Float64Array, batch: number): Promise<Float64Array>;
}

/** True when `denoiser` has a callable `vjp` method. */
export function isDifferentiable(denoiser: Denoiser): denoiser is DifferentiableDenoiser {
  return typeof (denoiser as Partial<DifferentiableDenoiser>).vjp === "function";
}

/**
 * Derivative of a scalar function by the 4-point central stencil
 * `(−f(t+2h) + 8f(t+h) − 8f(t−h) + f(t−2h)) / 12h`, truncation error O(h⁴).
 */
export function stencilDerivative(f: (t: number) => number, t: number, h: number): number {
  return (-f(t + 2 * h) + 8 * f(t + h) - 8 * f(t - h) + f(t - 2 * h)) / (12 * h);
}

/**
 * Relative step of the stencil used for schedules without a closed-form derivative. With
 * h = 1e-5·t the O(h⁴) truncation is far below round-off, which leaves about 1e-10 relative
 * error in the derivative.
 */
const SCHEDULE_STENCIL_STEP = 1e-5;

/**
 * `d log α_t / dt`. Closed form for VE (0) and flow (`−1/(1−t)`); other schedules use a
 * 4-point stencil on `log α` (relative accuracy about 1e-10, except within 2h of a knot of a
 * piecewise-linear `vp_discrete` schedule, where it averages the two slopes).
 */
export function dLogAlphaDt(schedule: NoiseSchedule, t: number): number {
  switch (schedule.kind) {
    case "ve":
      return 0;
    case "flow":
      return -1 / (1 - t);
    default:
      return stencilDerivative(
        (s) => Math.log(schedule.alpha(s)),
        t,
        SCHEDULE_STENCIL_STEP * t,
      );
  }
}

/**
 * `dλ_t / dt` (negative: λ decreases in t). Closed form for VE (`−1/t`) and flow
 * (`−1/(1−t) − 1/t`); other schedules use the stencil of {@linkcode dLogAlphaDt}.
 */
export function dLambdaDt(schedule: NoiseSchedule, t: number): number {
  switch (schedule.kind) {
    case "ve":
      return -1 / t;
    case "flow":
      return -1 / (1 - t) - 1 / t;
    default:
      return stencilDerivative((s) => schedule.lambda(s), t, SCHEDULE_STENCIL_STEP * t);
  }
}
