/**
 * Shared fixtures of the LD3 tests: a small Gaussian-mixture model with exact VJPs and
 * helpers for finite differences.
 *
 * @module
 */
import { GmmDenoiser } from "../../lib/gmm_grad.ts";
import { normalNoise } from "../../lib/rng.ts";
import type { NoiseSchedule } from "../../lib/noise_schedule.ts";

/** A K-component isotropic mixture in `dim` dimensions with seeded means and variances. */
export function smallGmm(
  schedule: NoiseSchedule,
  options: { dim?: number; components?: number; seed?: number } = {},
): GmmDenoiser {
  const dim = options.dim ?? 16;
  const k = options.components ?? 3;
  const seed = options.seed ?? 7;
  const means = new Float64Array(k * dim);
  for (let j = 0; j < k; j++) means.set(normalNoise(seed, j, dim), j * dim);
  const variances = Array.from({ length: k }, (_, j) => 0.05 + 0.1 * j);
  const weights = Array.from({ length: k }, (_, j) => 1 + j);
  return new GmmDenoiser(schedule, [dim], { means, components: k, variances, weights });
}

/** Standard-normal latents of samples `start … start+count−1`, each its own array. */
export function latents(seed: number, start: number, count: number, dim: number): Float64Array[] {
  return Array.from({ length: count }, (_, i) => normalNoise(seed, start + i, dim));
}

/** 4-point central difference of a scalar function of one coordinate. */
export async function stencil(f: (h: number) => Promise<number>, h: number): Promise<number> {
  const [a, b, c, d] = [await f(2 * h), await f(h), await f(-h), await f(-2 * h)];
  return (-a + 8 * b - 8 * c + d) / (12 * h);
}

/** max|a − b| / max(max|b|, floor): the error measure of the gradient checks. */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>, floor = 1e-12): number {
  let err = 0;
  let scale = floor;
  for (let i = 0; i < a.length; i++) {
    err = Math.max(err, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return err / scale;
}
