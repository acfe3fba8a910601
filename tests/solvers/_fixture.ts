/** Shared test fixture: a small Gaussian mixture with a deterministic batch of x_T. */
import { createGmm, type Gmm } from "../../lib/gmm.ts";
import { normalNoise } from "../../lib/rng.ts";
import type { NoiseSchedule } from "../../lib/noise_schedule.ts";

/** Dimension of the test mixture. */
export const DIM = 8;
/** Samples per batch. */
export const BATCH = 4;

/**
 * d = 8, 3 components with overlapping, fairly wide variances: the ODE is smooth enough that the
 * asymptotic regime of every solver starts at a few dozen steps over the EDM range.
 */
export function testGmm(): Gmm {
  const means = [0, 1, 2].map((k) =>
    Array.from({ length: DIM }, (_, c) => Math.cos(1.3 * k + 0.7 * c))
  );
  return createGmm(means, [0.3, 0.5, 1.0], { weights: [0.5, 0.3, 0.2] });
}

/** A fixed batch `x_T = priorScale · z` (counter-based noise, seed 0). */
export function testXT(schedule: NoiseSchedule): Float64Array {
  return normalNoise(0, 0, BATCH * DIM).map((v) => v * schedule.priorScale);
}

/** Root-mean-square difference of two states. */
export function rmsError(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return Math.sqrt(s / a.length);
}

/** Least-squares slope of −log(error) against log(N): the measured convergence order. */
export function convergenceOrder(ns: readonly number[], errors: readonly number[]): number {
  const xs = ns.map(Math.log);
  const ys = errors.map((e) => -Math.log(e));
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  let num = 0;
  let den = 0;
  xs.forEach((x, i) => {
    num += (x - mx) * (ys[i] - my);
    den += (x - mx) ** 2;
  });
  return num / den;
}
