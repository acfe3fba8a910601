/**
 * Dense float64 linear algebra for metrics: a symmetric eigensolver (Householder
 * tridiagonalisation followed by implicit QL with Wilkinson-style shifts), a pivoted Cholesky
 * factorisation of positive semi-definite matrices, the symmetric PSD square root, means and
 * covariances of feature sets, and the trace of `(A^{1/2} B A^{1/2})^{1/2}` that the Fréchet
 * distance needs.
 *
 * Matrices are flat row-major `Float64Array`s of `n × n` values. Everything runs in float64 on
 * one thread; loops walk rows (contiguous memory) so that a 2048 × 2048 problem takes seconds,
 * not minutes.
 *
 * @module
 */

const EPS = Number.EPSILON;

/** Eigen-decomposition `A = V · diag(values) · Vᵀ` of a symmetric matrix. */
export interface SymmetricEigen {
  /** Eigenvalues in ascending order. */
  values: Float64Array;
  /**
   * Orthonormal eigenvectors, row-major `n × n`: column `k` (the values `vectors[i * n + k]`)
   * belongs to `values[k]` — the layout of `numpy.linalg.eigh`.
   */
  vectors: Float64Array;
}

/** Options of {@linkcode symmetricEigen} and {@linkcode symmetricEigenvalues}. */
export interface EigenOptions {
  /**
   * Most implicit QL sweeps spent on one eigenvalue before giving up with a `RangeError`.
   * Convergence is cubic, so a handful of sweeps is normal.
   * @default 64
   */
  maxSweeps?: number;
}

function checkSquare(a: ArrayLike<number>, n: number, name: string): void {
  if (!Number.isInteger(n) || n < 0) {
    throw new RangeError(`Matrix size must be a non-negative integer: got ${n}`);
  }
  if (a.length !== n * n) {
    throw new RangeError(
      `Matrix ${name} must hold n × n = ${n * n} values: got ${a.length}`,
    );
  }
}

/**
 * Reduce the symmetric matrix held in the lower triangle of `a` (overwritten) to tridiagonal
 * form `T = Qᵀ A Q` by Householder reflections, working from the last row upwards.
 *
 * On return `d` holds the diagonal of `T`, `e[i]` (i ≥ 1) its sub-diagonal `T[i][i-1]`
 * (`e[0] = 0`), and, for every reduced row `k`, `a[k][0..k-1]` holds the Householder vector `u`
 * of `H_k = I − u uᵀ / tau[k]` (`tau[k] = 0` marks an identity step).
 */
function tridiagonalize(
  a: Float64Array,
  n: number,
  d: Float64Array,
  e: Float64Array,
  tau: Float64Array,
): void {
  const p = new Float64Array(n);
  const qPrev = new Float64Array(n);
  // The rank-2 update of one step is fused with the matrix–vector product of the next, so the
  // shrinking lower triangle is streamed once per step instead of twice (large n is bound by
  // memory traffic, not flops). `pending` marks an update from step k + 1 not yet applied to
  // rows 0..k; its Householder vector is row k + 1 and its q vector `qPrev`.
  let pending = false;
  for (let k = n - 1; k >= 1; k--) {
    const row = k * n;
    const prev = row + n;
    if (pending) {
      // Row k first: the next reflection is built from it.
      const upk = a[prev + k];
      const qpk = qPrev[k];
      for (let i = 0; i <= k; i++) a[row + i] -= upk * qPrev[i] + qpk * a[prev + i];
    }
    // Row k left of the diagonal is the column that this reflection folds onto e_{k-1}.
    let scale = 0;
    for (let i = 0; i < k; i++) scale = Math.max(scale, Math.abs(a[row + i]));
    d[k] = a[row + k];
    if (k === 1 || scale === 0) {
      // Nothing to annihilate: a single entry (k = 1) or an already-zero column.
      if (pending) {
        for (let j = 0; j < k; j++) {
          const rj = j * n;
          const upj = a[prev + j];
          const qpj = qPrev[j];
          for (let i = 0; i <= j; i++) a[rj + i] -= upj * qPrev[i] + qpj * a[prev + i];
        }
      }
      e[k] = a[row + k - 1];
      tau[k] = 0;
      pending = false;
      continue;
    }
    // Norm with scaling so that tiny or huge entries neither underflow nor overflow.
    let sum = 0;
    for (let i = 0; i < k; i++) {
      const v = a[row + i] / scale;
      sum += v * v;
    }
    const alpha = scale * Math.sqrt(sum);
    const f = a[row + k - 1];
    // Reflect onto the sign that avoids cancellation in u[k-1] = f − g.
    const g = f >= 0 ? -alpha : alpha;
    e[k] = g;
    const h = alpha * alpha - f * g; // = uᵀu / 2
    a[row + k - 1] = f - g; // the row now holds u
    // p = A u / h over the lower triangle of the leading k × k block, applying the pending
    // update to each row just before it is read.
    p.fill(0, 0, k);
    for (let j = 0; j < k; j++) {
      const rj = j * n;
      const uj = a[row + j];
      let s = 0;
      if (pending) {
        const upj = a[prev + j];
        const qpj = qPrev[j];
        for (let i = 0; i < j; i++) {
          const aji = a[rj + i] - (upj * qPrev[i] + qpj * a[prev + i]);
          a[rj + i] = aji;
          s += aji * a[row + i];
          p[i] += aji * uj;
        }
        a[rj + j] -= 2 * upj * qpj;
      } else {
        for (let i = 0; i < j; i++) {
          const aji = a[rj + i];
          s += aji * a[row + i];
          p[i] += aji * uj;
        }
      }
      p[j] += s + a[rj + j] * uj;
    }
    let up = 0;
    for (let i = 0; i < k; i++) {
      p[i] /= h;
      up += a[row + i] * p[i];
    }
    // q = p − (uᵀp / 2h) u; the update A ← A − u qᵀ − q uᵀ (= H A H on the block) is applied
    // lazily by the next step.
    const kq = up / (2 * h);
    for (let i = 0; i < k; i++) qPrev[i] = p[i] - kq * a[row + i];
    tau[k] = h;
    pending = true;
  }
  if (n > 0) {
    // Only row 0 can still be pending here (k = 1 always ends without a reflection).
    d[0] = a[0];
    e[0] = 0;
  }
}

/**
 * `Q = H_{n-1} ⋯ H_2` from the Householder vectors left in `a` by {@linkcode tridiagonalize},
 * returned transposed (row `i` of the result is column `i` of `Q`) because the QL sweeps then
 * rotate whole contiguous rows.
 */
function householderProductTransposed(a: Float64Array, n: number, tau: Float64Array): Float64Array {
  const q = new Float64Array(n * n);
  for (let i = 0; i < n; i++) q[i * n + i] = 1;
  const g = new Float64Array(n);
  // Q ← H_k Q for ascending k; before step k, Q differs from I only in its leading k × k block.
  for (let k = 2; k < n; k++) {
    const h = tau[k];
    if (h === 0) continue;
    const row = k * n;
    g.fill(0, 0, k);
    for (let i = 0; i < k; i++) {
      const ui = a[row + i];
      if (ui === 0) continue;
      const ri = i * n;
      for (let c = 0; c < k; c++) g[c] += ui * q[ri + c];
    }
    for (let i = 0; i < k; i++) {
      const f = a[row + i] / h;
      if (f === 0) continue;
      const ri = i * n;
      for (let c = 0; c < k; c++) q[ri + c] -= f * g[c];
    }
  }
  return transposeSquare(q, n);
}

/**
 * Diagonalise the symmetric tridiagonal matrix (`d` diagonal, `e[i] = T[i][i-1]`) in place by
 * implicit QL sweeps. `d` receives the (unsorted) eigenvalues. When `zt` is given, every plane
 * rotation is also applied to its rows, so that row `i` ends as the eigenvector of `d[i]`.
 */
function tridiagonalQl(
  d: Float64Array,
  e: Float64Array,
  n: number,
  zt: Float64Array | undefined,
  maxSweeps: number,
): void {
  // Re-index the off-diagonal as e[i] = T[i+1][i], the form the sweep below walks.
  for (let i = 1; i < n; i++) e[i - 1] = e[i];
  if (n > 0) e[n - 1] = 0;
  for (let l = 0; l < n; l++) {
    let sweeps = 0;
    for (;;) {
      // Find the first negligible off-diagonal at or below l: the block l..m is unreduced.
      let m = l;
      for (; m < n - 1; m++) {
        if (Math.abs(e[m]) <= EPS * (Math.abs(d[m]) + Math.abs(d[m + 1]))) break;
      }
      if (m === l) break;
      if (++sweeps > maxSweeps) {
        throw new RangeError(
          `Eigenvalue ${l} did not converge in maxSweeps = ${maxSweeps} QL sweeps`,
        );
      }
      // Shift from the eigenvalue of the leading 2 × 2 block closest to d[l].
      let g = (d[l + 1] - d[l]) / (2 * e[l]);
      let r = Math.hypot(g, 1);
      g = d[m] - d[l] + e[l] / (g + (g >= 0 ? r : -r));
      let s = 1;
      let c = 1;
      let p = 0;
      let deflated = false;
      for (let i = m - 1; i >= l; i--) {
        const f = s * e[i];
        const b = c * e[i];
        r = Math.hypot(f, g);
        e[i + 1] = r;
        if (r === 0) {
          // The bulge vanished: the matrix split; restart the search for this l.
          d[i + 1] -= p;
          e[m] = 0;
          deflated = true;
          break;
        }
        s = f / r;
        c = g / r;
        g = d[i + 1] - p;
        r = (d[i] - g) * s + 2 * c * b;
        p = s * r;
        d[i + 1] = g + p;
        g = c * r - b;
        if (zt !== undefined) {
          const ri = i * n;
          const rj = ri + n;
          for (let k = 0; k < n; k++) {
            const zi = zt[ri + k];
            const zj = zt[rj + k];
            zt[rj + k] = s * zi + c * zj;
            zt[ri + k] = c * zi - s * zj;
          }
        }
      }
      if (deflated) continue;
      d[l] -= p;
      e[l] = g;
      e[m] = 0;
    }
  }
}

function ascendingOrder(values: Float64Array): number[] {
  const order = Array.from(values.keys());
  order.sort((i, j) => values[i] - values[j]);
  return order;
}

/** Checks `a` and reduces a copy of it to tridiagonal form (diagonal `d`, off-diagonal `e`). */
function tridiagonalOf(a: Float64Array, n: number) {
  checkSquare(a, n, "a");
  const work = a.slice();
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  const tau = new Float64Array(n);
  tridiagonalize(work, n, d, e, tau);
  return { work, d, e, tau };
}

/**
 * Eigenvalues and orthonormal eigenvectors of a real symmetric matrix.
 *
 * Householder tridiagonalisation, then implicit QL sweeps with eigenvector accumulation; about
 * `9n³` flops. Only the lower triangle of `a` is read; `a` is not modified.
 *
 * @example
 * ```ts
 * import { symmetricEigen } from "./linalg.ts";
 * const { values } = symmetricEigen(new Float64Array([2, 1, 1, 2]), 2);
 * if (Math.abs(values[0] - 1) > 1e-12 || Math.abs(values[1] - 3) > 1e-12) throw new Error("bad");
 * ```
 *
 * @param a Row-major `n × n` symmetric matrix.
 * @param n Matrix size.
 * @returns Ascending eigenvalues and eigenvectors as columns.
 * @throws {RangeError} If `a` is not `n × n` or the QL iteration does not converge.
 */
export function symmetricEigen(
  a: Float64Array,
  n: number,
  options: EigenOptions = {},
): SymmetricEigen {
  const { work, d, e, tau } = tridiagonalOf(a, n);
  const zt = householderProductTransposed(work, n, tau);
  tridiagonalQl(d, e, n, zt, options.maxSweeps ?? 64);
  const order = ascendingOrder(d);
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  for (let k = 0; k < n; k++) {
    const src = order[k];
    values[k] = d[src];
    const rs = src * n;
    for (let i = 0; i < n; i++) vectors[i * n + k] = zt[rs + i];
  }
  return { values, vectors };
}

/**
 * Eigenvalues only of a real symmetric matrix, ascending: about `4n³/3` flops (the
 * tridiagonalisation) — several times cheaper than {@linkcode symmetricEigen}.
 *
 * @param a Row-major `n × n` symmetric matrix; only its lower triangle is read.
 * @param n Matrix size.
 * @throws {RangeError} If `a` is not `n × n` or the QL iteration does not converge.
 */
export function symmetricEigenvalues(
  a: Float64Array,
  n: number,
  options: EigenOptions = {},
): Float64Array {
  const { d, e } = tridiagonalOf(a, n);
  tridiagonalQl(d, e, n, undefined, options.maxSweeps ?? 64);
  return d.sort();
}

/** Transpose of a row-major `n × n` matrix. */
export function transposeSquare(a: Float64Array, n: number): Float64Array {
  checkSquare(a, n, "a");
  const t = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) t[j * n + i] = a[i * n + j];
  }
  return t;
}

/** Trace of a row-major `n × n` matrix. */
export function trace(a: Float64Array, n: number): number {
  checkSquare(a, n, "a");
  let s = 0;
  for (let i = 0; i < n; i++) s += a[i * n + i];
  return s;
}

/**
 * Product `A · B` of two row-major `n × n` matrices (i-k-j loop order, so the inner loop
 * streams rows of `B` and of the result).
 */
export function matMulSquare(a: Float64Array, b: Float64Array, n: number): Float64Array {
  checkSquare(a, n, "a");
  checkSquare(b, n, "b");
  const c = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    for (let k = 0; k < n; k++) {
      const aik = a[ri + k];
      if (aik === 0) continue;
      const rk = k * n;
      for (let j = 0; j < n; j++) c[ri + j] += aik * b[rk + j];
    }
  }
  return c;
}

/**
 * `V · diag(f(values)) · Vᵀ` for an eigen-decomposition: the matrix function `f(A)` of a
 * symmetric matrix. The result is exactly symmetric (the lower triangle is mirrored).
 */
export function symmetricFunction(
  eigen: SymmetricEigen,
  f: (value: number) => number,
): Float64Array {
  const n = eigen.values.length;
  const { vectors } = eigen;
  checkSquare(vectors, n, "vectors");
  const fv = eigen.values.map(f);
  // Scaled rows of Vᵀ: w[k][i] = f(λ_k) V[i][k]; then out[i][j] = Σ_k V[i][k] w[k][j].
  const w = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < n; k++) w[k * n + i] = fv[k] * vectors[i * n + k];
  }
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    for (let k = 0; k < n; k++) {
      const vik = vectors[ri + k];
      if (vik === 0) continue;
      const rk = k * n;
      for (let j = 0; j <= i; j++) out[ri + j] += vik * w[rk + j];
    }
    for (let j = 0; j < i; j++) out[j * n + i] = out[ri + j];
  }
  return out;
}

/**
 * The symmetric positive semi-definite square root `A^{1/2}` of a symmetric PSD matrix, from
 * its eigen-decomposition. Eigenvalues that rounding made slightly negative are taken as 0.
 *
 * @param a Row-major `n × n` symmetric PSD matrix (lower triangle read).
 * @param n Matrix size.
 * @returns The symmetric matrix `S` with `S · S = A` and `S ⪰ 0`.
 */
export function sqrtmPsd(a: Float64Array, n: number, options: EigenOptions = {}): Float64Array {
  return symmetricFunction(symmetricEigen(a, n, options), (v) => Math.sqrt(Math.max(v, 0)));
}

/** A pivoted Cholesky factor: `A[perm[i]][perm[j]] = Σ_c L[i][c] L[j][c]`. */
export interface PivotedCholesky {
  /** Row-major `n × rank` lower-trapezoidal factor, rows in pivot order. */
  factor: Float64Array;
  /** Numerical rank: the number of pivots above the tolerance. */
  rank: number;
  /** `perm[i]` is the original row of pivot row `i`. */
  perm: Int32Array;
}

/** Options of {@linkcode pivotedCholesky}. */
export interface PivotedCholeskyOptions {
  /**
   * Stop when the largest remaining diagonal entry is at or below this value; the rest of the
   * matrix is then treated as zero.
   * @default n · ε · max(diag A)
   */
  tolerance?: number;
}

/**
 * Cholesky factorisation with complete (diagonal) pivoting of a symmetric positive
 * semi-definite matrix, stopping at its numerical rank: `Pᵀ A P ≈ L Lᵀ` with `L` of size
 * `n × rank`. Works for singular covariances (fewer samples than features), where a plain
 * Cholesky breaks down. About `n³/3` flops.
 *
 * @param a Row-major `n × n` symmetric PSD matrix; only its lower triangle is read.
 * @param n Matrix size.
 * @throws {RangeError} If `a` is not `n × n` or has a negative or non-finite diagonal.
 */
export function pivotedCholesky(
  a: Float64Array,
  n: number,
  options: PivotedCholeskyOptions = {},
): PivotedCholesky {
  checkSquare(a, n, "a");
  const w = a.slice();
  const perm = new Int32Array(n);
  let maxDiag = 0;
  for (let i = 0; i < n; i++) {
    perm[i] = i;
    const v = w[i * n + i];
    // A PSD matrix has a non-negative diagonal; anything else is a caller error, not rounding.
    if (!(v >= 0) || v === Infinity) {
      throw new RangeError(`Matrix a must be positive semi-definite: a[${i}][${i}] = ${v}`);
    }
    maxDiag = Math.max(maxDiag, v);
  }
  const tol = options.tolerance ?? n * EPS * maxDiag;
  if (!(tol >= 0)) throw new RangeError(`Tolerance must be non-negative: got ${tol}`);
  const col = new Float64Array(n);
  let rank = 0;
  for (let k = 0; k < n; k++) {
    // Pivot on the largest remaining diagonal entry.
    let piv = k;
    let best = w[k * n + k];
    for (let i = k + 1; i < n; i++) {
      const v = w[i * n + i];
      if (v > best) {
        best = v;
        piv = i;
      }
    }
    if (!(best > tol)) break;
    if (piv !== k) swapSymmetricLower(w, n, k, piv, perm);
    const rk = k * n;
    const lkk = Math.sqrt(w[rk + k]);
    w[rk + k] = lkk;
    for (let i = k + 1; i < n; i++) {
      const v = w[i * n + k] / lkk;
      w[i * n + k] = v;
      col[i] = v;
    }
    // Schur complement on the trailing lower triangle; row i streams col[k+1..i].
    for (let i = k + 1; i < n; i++) {
      const ci = col[i];
      if (ci === 0) continue;
      const ri = i * n;
      for (let j = k + 1; j <= i; j++) w[ri + j] -= ci * col[j];
    }
    rank = k + 1;
  }
  const factor = new Float64Array(n * rank);
  for (let i = 0; i < n; i++) {
    const m = Math.min(i + 1, rank);
    for (let c = 0; c < m; c++) factor[i * rank + c] = w[i * n + c];
  }
  return { factor, rank, perm };
}

/** Symmetric swap of indices k < p in a lower-triangle-stored matrix mid-factorisation. */
function swapSymmetricLower(
  w: Float64Array,
  n: number,
  k: number,
  p: number,
  perm: Int32Array,
): void {
  const rk = k * n;
  const rp = p * n;
  let t: number;
  // Already-computed factor columns (< k): swap the two rows.
  for (let j = 0; j < k; j++) {
    t = w[rk + j];
    w[rk + j] = w[rp + j];
    w[rp + j] = t;
  }
  t = w[rk + k];
  w[rk + k] = w[rp + p];
  w[rp + p] = t;
  // Between k and p: (j, k) ↔ (p, j).
  for (let j = k + 1; j < p; j++) {
    t = w[j * n + k];
    w[j * n + k] = w[rp + j];
    w[rp + j] = t;
  }
  // Below p: (j, k) ↔ (j, p).
  for (let j = p + 1; j < n; j++) {
    const rj = j * n;
    t = w[rj + k];
    w[rj + k] = w[rj + p];
    w[rj + p] = t;
  }
  const tp = perm[k];
  perm[k] = perm[p];
  perm[p] = tp;
}

/** Options of {@linkcode traceSqrtProduct}. */
export interface TraceSqrtOptions extends EigenOptions {
  /**
   * How `A^{1/2} B A^{1/2}` is reduced to a symmetric eigenvalue problem with the same
   * spectrum:
   * - `"cholesky"`: pivoted Cholesky `A = P L Lᵀ Pᵀ`, eigenvalues of `Lᵀ (Pᵀ B P) L`
   *   (≈ `3n³` flops; default);
   * - `"eigh"`: `A = V Λ Vᵀ`, eigenvalues of `Λ^{1/2} Vᵀ B V Λ^{1/2}` (≈ `13n³` flops; a
   *   slower cross-check).
   * @default "cholesky"
   */
  method?: "cholesky" | "eigh";
}

/**
 * `tr((A^{1/2} B A^{1/2})^{1/2})` for symmetric PSD `A`, `B`: the sum of the square roots of the
 * eigenvalues of `A B` (all real and ≥ 0). Both methods turn the non-symmetric product into a
 * symmetric PSD matrix congruent to it, so no complex arithmetic or non-symmetric square root
 * (scipy's `sqrtm`) is needed; eigenvalues rounding made negative count as 0.
 *
 * @param a Row-major `n × n` symmetric PSD matrix.
 * @param b Row-major `n × n` symmetric PSD matrix, same size.
 */
export function traceSqrtProduct(
  a: Float64Array,
  b: Float64Array,
  options: TraceSqrtOptions = {},
): number {
  const n = Math.round(Math.sqrt(a.length));
  checkSquare(a, n, "a");
  checkSquare(b, n, "b");
  const method = options.method ?? "cholesky";
  let m: Float64Array;
  let r: number;
  if (method === "cholesky") {
    const { factor: l, rank, perm } = pivotedCholesky(a, n);
    r = rank;
    m = congruenceLowerTrapezoidal(permuteSymmetric(b, n, perm), n, l, rank);
  } else if (method === "eigh") {
    const { values, vectors } = symmetricEigen(a, n, options);
    r = n;
    const bv = matMulSquare(b, vectors, n);
    m = new Float64Array(n * n);
    // m = Vᵀ (B V), lower triangle, rows/columns scaled by √λ.
    const root = values.map((v) => Math.sqrt(Math.max(v, 0)));
    for (let k = 0; k < n; k++) {
      const rk = k * n;
      for (let i = 0; i < n; i++) {
        const vki = vectors[rk + i];
        if (vki === 0) continue;
        for (let j = 0; j <= i; j++) m[i * n + j] += vki * bv[rk + j];
      }
    }
    for (let i = 0; i < n; i++) {
      for (let j = 0; j <= i; j++) m[i * n + j] *= root[i] * root[j];
    }
  } else {
    throw new TypeError(`Method must be "cholesky" or "eigh": got ${JSON.stringify(method)}`);
  }
  const values = symmetricEigenvalues(m, r, options);
  let s = 0;
  for (const v of values) if (v > 0) s += Math.sqrt(v);
  return s;
}

/** `Pᵀ B P`: `out[i][j] = B[perm[i]][perm[j]]`. */
function permuteSymmetric(b: Float64Array, n: number, perm: Int32Array): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const src = perm[i] * n;
    const ri = i * n;
    for (let j = 0; j < n; j++) out[ri + j] = b[src + perm[j]];
  }
  return out;
}

/**
 * Lower triangle of `Lᵀ B L` (`r × r`) for symmetric `B` (`n × n`) and lower-trapezoidal `L`
 * (`n × r`, `L[j][c] = 0` for `c > j`).
 */
function congruenceLowerTrapezoidal(
  b: Float64Array,
  n: number,
  l: Float64Array,
  r: number,
): Float64Array {
  // c = B L  (n × r). Four rows of B at a time: each row of L read from memory then feeds four
  // accumulations, which matters once L (n × r float64) no longer fits in cache.
  const c = new Float64Array(n * r);
  for (let i0 = 0; i0 < n; i0 += 4) {
    const rows = Math.min(4, n - i0);
    const c0 = i0 * r, c1 = c0 + r, c2 = c1 + r, c3 = c2 + r;
    for (let j = 0; j < n; j++) {
      const b0 = b[i0 * n + j];
      const b1 = rows > 1 ? b[(i0 + 1) * n + j] : 0;
      const b2 = rows > 2 ? b[(i0 + 2) * n + j] : 0;
      const b3 = rows > 3 ? b[(i0 + 3) * n + j] : 0;
      const lj = j * r;
      const m = Math.min(j + 1, r);
      if (rows === 4) {
        for (let k = 0; k < m; k++) {
          const v = l[lj + k];
          c[c0 + k] += b0 * v;
          c[c1 + k] += b1 * v;
          c[c2 + k] += b2 * v;
          c[c3 + k] += b3 * v;
        }
      } else {
        const bs = [b0, b1, b2];
        for (let t = 0; t < rows; t++) {
          const ct = c0 + t * r;
          for (let k = 0; k < m; k++) c[ct + k] += bs[t] * l[lj + k];
        }
      }
    }
  }
  // out = Lᵀ c, lower triangle: out[p][q] += L[j][p] c[j][q] for q ≤ p ≤ min(j, r − 1), four
  // rows j at a time so that each pass over `out` does four rank-1 updates.
  const out = new Float64Array(r * r);
  for (let j0 = 0; j0 < n; j0 += 4) {
    const rows = Math.min(4, n - j0);
    const m = Math.min(j0 + rows, r);
    const l0 = j0 * r;
    for (let p = 0; p < m; p++) {
      // L[j][p] = 0 for p > j, so rows beyond the block's diagonal contribute zeros.
      const a0 = l[l0 + p];
      const a1 = rows > 1 ? l[l0 + r + p] : 0;
      const a2 = rows > 2 ? l[l0 + 2 * r + p] : 0;
      const a3 = rows > 3 ? l[l0 + 3 * r + p] : 0;
      const op = p * r;
      const cj0 = j0 * r;
      if (rows === 4) {
        const cj1 = cj0 + r, cj2 = cj1 + r, cj3 = cj2 + r;
        for (let q = 0; q <= p; q++) {
          out[op + q] += a0 * c[cj0 + q] + a1 * c[cj1 + q] + a2 * c[cj2 + q] + a3 * c[cj3 + q];
        }
      } else {
        const as = [a0, a1, a2];
        for (let t = 0; t < rows; t++) {
          const ct = cj0 + t * r;
          for (let q = 0; q <= p; q++) out[op + q] += as[t] * c[ct + q];
        }
      }
    }
  }
  return out;
}

/** Mean and covariance of a set of row vectors. */
export interface MeanCovariance {
  /** Mean vector, length `dim`. */
  mean: Float64Array;
  /** Row-major `dim × dim` covariance (exactly symmetric). */
  covariance: Float64Array;
}

/** Options of {@linkcode meanCovariance}. */
export interface MeanCovarianceOptions {
  /**
   * Delta degrees of freedom: the covariance divides by `count − ddof`. `1` is the unbiased
   * estimate of `numpy.cov` and of the EDM / pytorch-fid reference statistics.
   * @default 1
   */
  ddof?: number;
}

/**
 * Mean and covariance of `count` row vectors of length `dim` (row-major `x`), computed in float64
 * around the mean (two passes) so that large feature offsets do not cancel.
 *
 * @throws {RangeError} If the sizes do not match or `count − ddof ≤ 0`.
 */
export function meanCovariance(
  x: ArrayLike<number>,
  count: number,
  dim: number,
  options: MeanCovarianceOptions = {},
): MeanCovariance {
  if (!Number.isInteger(count) || count < 1) {
    throw new RangeError(`Count must be a positive integer: got ${count}`);
  }
  if (!Number.isInteger(dim) || dim < 1) {
    throw new RangeError(`Dim must be a positive integer: got ${dim}`);
  }
  if (x.length !== count * dim) {
    throw new RangeError(`Features must hold count × dim = ${count * dim} values: got ${x.length}`);
  }
  const ddof = options.ddof ?? 1;
  if (!(count - ddof > 0)) {
    throw new RangeError(`Count must exceed ddof = ${ddof}: got ${count}`);
  }
  const mean = new Float64Array(dim);
  for (let s = 0; s < count; s++) {
    const o = s * dim;
    for (let i = 0; i < dim; i++) mean[i] += x[o + i];
  }
  for (let i = 0; i < dim; i++) mean[i] /= count;
  // Σ (x−μ)(x−μ)ᵀ, lower triangle, four samples per pass over the matrix to cut memory traffic.
  const cov = new Float64Array(dim * dim);
  const c0 = new Float64Array(dim);
  const c1 = new Float64Array(dim);
  const c2 = new Float64Array(dim);
  const c3 = new Float64Array(dim);
  const block = [c0, c1, c2, c3];
  for (let s = 0; s < count; s += 4) {
    const m = Math.min(4, count - s);
    for (let t = 0; t < 4; t++) {
      const ct = block[t];
      if (t < m) {
        const o = (s + t) * dim;
        for (let i = 0; i < dim; i++) ct[i] = x[o + i] - mean[i];
      } else {
        ct.fill(0);
      }
    }
    for (let i = 0; i < dim; i++) {
      const a0 = c0[i], a1 = c1[i], a2 = c2[i], a3 = c3[i];
      const ri = i * dim;
      for (let j = 0; j <= i; j++) {
        cov[ri + j] += a0 * c0[j] + a1 * c1[j] + a2 * c2[j] + a3 * c3[j];
      }
    }
  }
  const scale = 1 / (count - ddof);
  for (let i = 0; i < dim; i++) {
    const ri = i * dim;
    for (let j = 0; j <= i; j++) {
      const v = cov[ri + j] * scale;
      cov[ri + j] = v;
      cov[j * dim + i] = v;
    }
  }
  return { mean, covariance: cov };
}
