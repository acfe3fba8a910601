/**
 * Timing of the float64 eigensolver and the FID trace term.
 *
 * Run: `deno bench -A bench/linalg_bench.ts`
 *
 * Measured on the 2-core build machine (Deno 2.9.6, one thread), random covariances:
 *
 * | n | symmetricEigen | symmetricEigenvalues | traceSqrtProduct (cholesky) | (eigh) |
 * | --- | --- | --- | --- | --- |
 * | 128 | 35 ms | 4 ms | 10–70 ms | 53 ms |
 * | 512 | 270–430 ms | 60–150 ms | 240–330 ms | 1.1 s |
 * | 1024 | 2.9 s | 0.9–1.3 s | 1.9 s | — |
 * | 2048 | — | 6.5 s | 17 s | — |
 *
 * (Ranges: separate runs; the first call of a size includes JIT warm-up. At 2048 the work is
 * bound by memory traffic: the covariance of 2148 × 2048 features alone takes about 10 s.)
 *
 * @module
 */
import {
  meanCovariance,
  symmetricEigen,
  symmetricEigenvalues,
  traceSqrtProduct,
} from "../lib/metrics/linalg.ts";
import { normalNoise } from "../lib/rng.ts";

function covarianceOf(n: number, seed: number): Float64Array {
  const count = 2 * n;
  return meanCovariance(normalNoise(seed, 0, count * n), count, n).covariance;
}

for (const n of [128, 512]) {
  const a = covarianceOf(n, 1);
  const b = covarianceOf(n, 2);
  Deno.bench(`symmetricEigen ${n}×${n}`, { group: `n=${n}` }, () => {
    symmetricEigen(a, n);
  });
  Deno.bench(`symmetricEigenvalues ${n}×${n}`, { group: `n=${n}` }, () => {
    symmetricEigenvalues(a, n);
  });
  Deno.bench(`traceSqrtProduct cholesky ${n}×${n}`, { group: `n=${n}`, baseline: true }, () => {
    traceSqrtProduct(a, b);
  });
}
