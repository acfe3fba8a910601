import assert from "node:assert/strict";
import {
  matMulSquare,
  meanCovariance,
  pivotedCholesky,
  sqrtmPsd,
  symmetricEigen,
  symmetricEigenvalues,
  trace,
  traceSqrtProduct,
  transposeSquare,
} from "../../lib/metrics/linalg.ts";
import { normalNoise } from "../../lib/rng.ts";

/** Random symmetric matrix with N(0,1) entries (lower triangle mirrored). */
function randomSymmetric(n: number, seed: number): Float64Array {
  const g = normalNoise(seed, 0, n * n);
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      a[i * n + j] = g[i * n + j];
      a[j * n + i] = g[i * n + j];
    }
  }
  return a;
}

/** Random PSD matrix `G Gᵀ / k` of rank min(n, k). */
function randomPsd(n: number, k: number, seed: number): Float64Array {
  const g = normalNoise(seed, 1, n * k);
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let c = 0; c < k; c++) s += g[i * k + c] * g[j * k + c];
      a[i * n + j] = s / k;
    }
  }
  return a;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** V diag(values) Vᵀ. */
function reconstruct(values: Float64Array, vectors: Float64Array): Float64Array {
  const n = values.length;
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += vectors[i * n + k] * values[k] * vectors[j * n + k];
      out[i * n + j] = s;
    }
  }
  return out;
}

function identityError(vectors: Float64Array, n: number): number {
  const vtv = matMulSquare(transposeSquare(vectors, n), vectors, n);
  for (let i = 0; i < n; i++) vtv[i * n + i] -= 1;
  return maxAbs(vtv);
}

Deno.test("symmetricEigen() reconstructs random symmetric matrices with orthonormal vectors", () => {
  for (const [n, seed] of [[1, 1], [2, 2], [3, 3], [7, 4], [32, 5], [128, 6], [256, 7]]) {
    const a = randomSymmetric(n, seed);
    const copy = a.slice();
    const { values, vectors } = symmetricEigen(a, n);
    assert.deepEqual(a, copy, "input must not be modified");
    const scale = Math.max(1, maxAbs(values));
    const rec = maxAbsDiff(reconstruct(values, vectors), a);
    assert.ok(rec <= 1e-10 * scale, `n=${n}: reconstruction error ${rec}`);
    const orth = identityError(vectors, n);
    assert.ok(orth <= 1e-10, `n=${n}: orthogonality error ${orth}`);
    for (let k = 1; k < n; k++) assert.ok(values[k - 1] <= values[k], "ascending order");
    // Each column really is an eigenvector: A v = λ v.
    const k = n - 1;
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < n; j++) s += a[i * n + j] * vectors[j * n + k];
      assert.ok(Math.abs(s - values[k] * vectors[i * n + k]) <= 1e-10 * scale);
    }
  }
});

Deno.test("symmetricEigen() finds known spectra: 2 × 2, diagonal, repeated, zero", () => {
  const two = symmetricEigen(new Float64Array([2, 1, 1, 2]), 2);
  assert.ok(Math.abs(two.values[0] - 1) < 1e-14 && Math.abs(two.values[1] - 3) < 1e-14);
  // Eigenvector of 3 is ±(1, 1)/√2.
  assert.ok(Math.abs(Math.abs(two.vectors[1]) - Math.SQRT1_2) < 1e-14);

  const diag = new Float64Array(16);
  [5, -1, 3, 0.5].forEach((v, i) => (diag[i * 4 + i] = v));
  assert.deepEqual(Array.from(symmetricEigen(diag, 4).values), [-1, 0.5, 3, 5]);

  // Q diag(2, 2, 2, 7, 7, −1) Qᵀ with a random orthogonal Q (from another decomposition).
  const n = 6;
  const q = symmetricEigen(randomSymmetric(n, 11), n).vectors;
  const spectrum = new Float64Array([2, 2, 2, 7, 7, -1]);
  const a = reconstruct(spectrum, q);
  const { values, vectors } = symmetricEigen(a, n);
  assert.ok(maxAbsDiff(values, [-1, 2, 2, 2, 7, 7]) < 1e-12, `values ${values}`);
  assert.ok(identityError(vectors, n) < 1e-12);
  assert.ok(maxAbsDiff(reconstruct(values, vectors), a) < 1e-12);

  const zero = symmetricEigen(new Float64Array(9), 3);
  assert.deepEqual(Array.from(zero.values), [0, 0, 0]);
  assert.ok(identityError(zero.vectors, 3) === 0);
  assert.equal(symmetricEigen(new Float64Array(0), 0).values.length, 0);
});

Deno.test("symmetricEigenvalues() agrees with symmetricEigen() and the trace", () => {
  const n = 96;
  const a = randomSymmetric(n, 21);
  const v = symmetricEigenvalues(a, n);
  const full = symmetricEigen(a, n).values;
  assert.ok(maxAbsDiff(v, full) < 1e-11);
  const sum = v.reduce((s, x) => s + x, 0);
  assert.ok(Math.abs(sum - trace(a, n)) < 1e-11);
  // Frobenius norm² = Σ λ².
  const fro = a.reduce((s, x) => s + x * x, 0);
  const sq = v.reduce((s, x) => s + x * x, 0);
  assert.ok(Math.abs(fro - sq) < 1e-9 * fro);
});

Deno.test("symmetricEigen() reads only the lower triangle and rejects bad sizes", () => {
  const a = new Float64Array([4, 999, 1, 3]); // upper entry ignored: [[4, 1], [1, 3]]
  const { values } = symmetricEigen(a, 2);
  const mean = 3.5, half = Math.sqrt(0.25 + 1);
  assert.ok(maxAbsDiff(values, [mean - half, mean + half]) < 1e-14);
  assert.throws(() => symmetricEigen(new Float64Array(5), 2), RangeError);
  assert.throws(() => symmetricEigen(new Float64Array(4), 1.5), RangeError);
});

Deno.test("sqrtmPsd() squares back to the matrix, full rank and singular", () => {
  for (const [n, k, seed] of [[40, 80, 31], [40, 10, 32], [128, 300, 33]]) {
    const a = randomPsd(n, k, seed);
    const s = sqrtmPsd(a, n);
    assert.deepEqual(s, transposeSquare(s, n), "exactly symmetric");
    const err = maxAbsDiff(matMulSquare(s, s, n), a);
    assert.ok(err < 1e-10 * maxAbs(a), `n=${n} k=${k}: ${err}`);
    // PSD root: no negative eigenvalues beyond rounding.
    assert.ok(symmetricEigenvalues(s, n)[0] > -1e-7);
  }
  const diag = sqrtmPsd(new Float64Array([9, 0, 0, 4]), 2);
  assert.ok(maxAbsDiff(diag, [3, 0, 0, 2]) < 1e-15);
});

Deno.test("pivotedCholesky() factors PSD matrices and finds their rank", () => {
  for (const [n, k, seed] of [[30, 60, 41], [30, 7, 42], [50, 1, 43]]) {
    const a = randomPsd(n, k, seed);
    const { factor, rank, perm } = pivotedCholesky(a, n);
    assert.equal(rank, Math.min(n, k));
    assert.deepEqual(Array.from(perm).sort((x, y) => x - y), Array.from(perm.keys()));
    let err = 0;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let c = 0; c < rank; c++) s += factor[i * rank + c] * factor[j * rank + c];
        err = Math.max(err, Math.abs(s - a[perm[i] * n + perm[j]]));
      }
    }
    assert.ok(err < 1e-12 * maxAbs(a), `n=${n} k=${k}: ${err}`);
    // Lower trapezoidal with a non-increasing positive diagonal (complete pivoting).
    for (let i = 0; i < rank; i++) {
      for (let c = i + 1; c < rank; c++) assert.equal(factor[i * rank + c], 0);
      assert.ok(factor[i * rank + i] > 0);
      if (i > 0) assert.ok(factor[i * rank + i] <= factor[(i - 1) * rank + i - 1] + 1e-12);
    }
  }
  assert.throws(() => pivotedCholesky(new Float64Array([-1, 0, 0, 1]), 2), RangeError);
});

Deno.test("traceSqrtProduct() matches tr sqrtm(A^½ B A^½) for both methods", () => {
  // tol: a singular B leaves null eigenvalues of A^½ B A^½ whose square roots of rounding
  // (≈ 1e-8 each) no route can avoid, so that case is checked more loosely.
  for (
    const [n, ka, kb, tol] of [[23, 40, 50, 1e-10], [21, 40, 50, 1e-10], [64, 100, 90, 1e-10], [
      48,
      100,
      20,
      1e-7,
    ]]
  ) {
    const a = randomPsd(n, ka, 50 + n + ka);
    const b = randomPsd(n, kb, 60 + n + kb);
    const ra = sqrtmPsd(a, n);
    const direct = trace(sqrtmPsd(matMulSquare(matMulSquare(ra, b, n), ra, n), n), n);
    const viaCholesky = traceSqrtProduct(a, b);
    const viaEigh = traceSqrtProduct(a, b, { method: "eigh" });
    assert.ok(Math.abs(viaCholesky - direct) < tol * direct, `${viaCholesky} vs ${direct}`);
    assert.ok(Math.abs(viaEigh - direct) < tol * direct, `${viaEigh} vs ${direct}`);
  }
});

Deno.test("traceSqrtProduct() is exact for a singular A = G Gᵀ", () => {
  // The non-zero eigenvalues of A B equal those of Gᵀ B G (k × k), an independent reference.
  // A square-root route picks up √(rounding) ≈ 1e-8 per null direction; the Cholesky route
  // stops at the rank and does not.
  const n = 22, k = 7;
  const g = normalNoise(81, 0, n * k);
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      for (let c = 0; c < k; c++) a[i * n + j] += g[i * k + c] * g[j * k + c];
    }
  }
  const b = randomPsd(n, 50, 82);
  const small = new Float64Array(k * k);
  for (let p = 0; p < k; p++) {
    for (let q = 0; q < k; q++) {
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < n; j++) small[p * k + q] += g[i * k + p] * b[i * n + j] * g[j * k + q];
      }
    }
  }
  const reference = symmetricEigenvalues(small, k).reduce((s, v) => s + Math.sqrt(v), 0);
  const viaCholesky = traceSqrtProduct(a, b);
  assert.ok(Math.abs(viaCholesky - reference) < 1e-12 * reference, `${viaCholesky}`);
  const viaEigh = traceSqrtProduct(a, b, { method: "eigh" });
  assert.ok(Math.abs(viaEigh - reference) < 1e-6 * reference, `${viaEigh}`);
});

Deno.test("traceSqrtProduct() handles commuting diagonals and rejects bad input", () => {
  // Commuting diagonal matrices: Σ √(a_i b_i).
  const a = new Float64Array([4, 0, 0, 0, 9, 0, 0, 0, 0]);
  const b = new Float64Array([1, 0, 0, 0, 4, 0, 0, 0, 5]);
  assert.ok(Math.abs(traceSqrtProduct(a, b) - (2 + 6)) < 1e-14);
  assert.throws(() => traceSqrtProduct(a, b, { method: "qr" as "eigh" }), TypeError);
  assert.throws(() => traceSqrtProduct(a, new Float64Array(4)), RangeError);
});

Deno.test("meanCovariance() matches a naive two-pass computation, with large offsets", () => {
  const count = 37, dim = 9;
  const x = normalNoise(71, 0, count * dim).map((v, i) => 1e6 + v * (1 + (i % dim)));
  const { mean, covariance } = meanCovariance(x, count, dim);
  for (let i = 0; i < dim; i++) {
    let m = 0;
    for (let s = 0; s < count; s++) m += x[s * dim + i];
    m /= count;
    assert.ok(Math.abs(mean[i] - m) < 1e-9);
    for (let j = 0; j < dim; j++) {
      let c = 0;
      for (let s = 0; s < count; s++) c += (x[s * dim + i] - m) * (x[s * dim + j] - mean[j]);
      c /= count - 1;
      assert.ok(Math.abs(covariance[i * dim + j] - c) < 1e-9 * (1 + Math.abs(c)), `${i},${j}`);
    }
  }
  // Variance of feature i is about (1 + i)², far from the 1e6 offset.
  assert.ok(covariance[(dim - 1) * dim + dim - 1] > 20);
  const biased = meanCovariance(x, count, dim, { ddof: 0 }).covariance;
  assert.ok(Math.abs(biased[0] - covariance[0] * (count - 1) / count) < 1e-9);
  assert.throws(() => meanCovariance(x, count, dim + 1), RangeError);
  assert.throws(() => meanCovariance(new Float64Array(3), 1, 3), RangeError);
});
