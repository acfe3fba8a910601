import assert from "node:assert/strict";
import {
  decodeFidRefs,
  encodeFidRefs,
  type FeatureStats,
  featureStats,
  fidFromFeatures,
  fidFromStats,
  readFidRefs,
  writeFidRefs,
} from "../../lib/metrics/fid.ts";
import { trace } from "../../lib/metrics/linalg.ts";
import { encodeNpz } from "../../lib/io/npz.ts";
import { normalNoise } from "../../lib/rng.ts";

const FIXTURE_DIR = new URL("../fixtures/fid/", import.meta.url);

/** `n` correlated feature rows of length `dim`: x = z M + offset, M random. */
function correlatedFeatures(n: number, dim: number, seed: number): Float64Array {
  const m = normalNoise(seed, 0, dim * dim).map((v) => v / Math.sqrt(dim));
  const offset = normalNoise(seed, 1, dim);
  const out = new Float64Array(n * dim);
  for (let s = 0; s < n; s++) {
    const z = normalNoise(seed, 2 + s, dim);
    for (let j = 0; j < dim; j++) {
      let v = offset[j];
      for (let k = 0; k < dim; k++) v += z[k] * m[k * dim + j];
      out[s * dim + j] = v;
    }
  }
  return out;
}

function diagonalStats(mu: number[], variances: number[]): FeatureStats {
  const d = mu.length;
  const sigma = new Float64Array(d * d);
  variances.forEach((v, i) => (sigma[i * d + i] = v));
  return { mu: Float64Array.from(mu), sigma };
}

Deno.test("featureStats() gives the mean and the n − 1 covariance", () => {
  const { mu, sigma } = featureStats(new Float32Array([1, 2, 3, 6, 5, 10]), 3, 2);
  assert.deepEqual(Array.from(mu), [3, 6]);
  // Deviations (−2, −4), (0, 0), (2, 4): Σ = [[8, 16], [16, 32]] / 2.
  assert.deepEqual(Array.from(sigma), [4, 8, 8, 16]);
  assert.throws(() => featureStats(new Float64Array(5), 2, 3), RangeError);
  assert.throws(() => featureStats(new Float64Array(3), 1, 3), RangeError);
});

Deno.test("fidFromStats() of a feature set against itself is 0", () => {
  // Full rank (n > D) and singular (n < D) covariances.
  for (const [n, dim, seed] of [[400, 64, 1], [50, 128, 2]]) {
    const stats = featureStats(correlatedFeatures(n, dim, seed), n, dim);
    const scale = trace(stats.sigma, dim);
    for (const method of ["cholesky", "eigh"] as const) {
      const fid = fidFromStats(stats, stats, { method });
      assert.ok(Math.abs(fid) <= 1e-8 * scale, `n=${n} dim=${dim} ${method}: ${fid}`);
    }
  }
});

Deno.test("fidFromStats() of a shifted set is ‖shift‖² = c²·D", () => {
  const n = 300, dim = 48, c = 0.75;
  const x = correlatedFeatures(n, dim, 3);
  const shifted = x.map((v) => v + c);
  const fid = fidFromFeatures(x, shifted, dim);
  const expected = c * c * dim;
  assert.ok(Math.abs(fid - expected) <= 1e-8 * expected, `${fid} vs ${expected}`);
});

Deno.test("fidFromStats() of a scaled set is (1 − k)²(‖μ‖² + tr Σ)", () => {
  // Σ2 = k²Σ1 commutes with Σ1, so tr(Σ1 + Σ2 − 2(Σ1Σ2)^½) = (1 − k)² tr Σ1.
  const n = 200, dim = 32, k = 1.8;
  const x = correlatedFeatures(n, dim, 4);
  const a = featureStats(x, n, dim);
  const b = featureStats(x.map((v) => v * k), n, dim);
  const muSq = a.mu.reduce((s, v) => s + v * v, 0);
  const expected = (1 - k) ** 2 * (muSq + trace(a.sigma, dim));
  const fid = fidFromStats(a, b);
  assert.ok(Math.abs(fid - expected) <= 1e-9 * expected, `${fid} vs ${expected}`);
});

Deno.test("fidFromStats() matches the closed form for diagonal covariances", () => {
  const a = diagonalStats([0, 1, 2, -1], [4, 1, 0.25, 9]);
  const b = diagonalStats([1, 1, 0, -1], [1, 1, 1, 0]);
  // ‖Δμ‖² = 1 + 0 + 4 + 0; Σ(√a − √b)² = 1 + 0 + 0.25 + 9.
  assert.ok(Math.abs(fidFromStats(a, b) - 15.25) < 1e-13);
  assert.ok(Math.abs(fidFromStats(b, a) - 15.25) < 1e-13);
  assert.ok(Math.abs(fidFromStats(a, b, { method: "eigh" }) - 15.25) < 1e-13);
});

Deno.test("fidFromStats() is symmetric and invariant under a rotation of features", () => {
  const n = 120, dim = 24;
  const x = correlatedFeatures(n, dim, 5);
  const y = correlatedFeatures(n, dim, 6);
  const fid = fidFromFeatures(x, y, dim);
  assert.ok(Math.abs(fid - fidFromFeatures(y, x, dim)) < 1e-10 * fid);
  // Rotate both sets by the same Givens rotations in every coordinate pair (0,1), (2,3), ….
  const rotate = (f: Float64Array) => {
    const out = f.slice();
    for (let s = 0; s < n; s++) {
      for (let j = 0; j + 1 < dim; j += 2) {
        const u = f[s * dim + j], v = f[s * dim + j + 1], t = 0.3 + j;
        out[s * dim + j] = Math.cos(t) * u - Math.sin(t) * v;
        out[s * dim + j + 1] = Math.sin(t) * u + Math.cos(t) * v;
      }
    }
    return out;
  };
  const rotated = fidFromFeatures(rotate(x), rotate(y), dim);
  assert.ok(Math.abs(rotated - fid) < 1e-9 * fid, `${rotated} vs ${fid}`);
});

Deno.test("fidFromStats() matches scipy.linalg.sqrtm and numpy eigvalsh reference values", async () => {
  // tests/fixtures/fid/make_fixture.py: "fid" is scipy's sqrtm route (what pytorch-fid and EDM
  // do), "fid_symmetric" numpy's symmetric route on the range of sigma1. The last case has a
  // singular sigma1 (6 samples, 12 features), where sqrtm carries ≈ 1e-8 relative error.
  const fixture = JSON.parse(
    await Deno.readTextFile(new URL("fid_cases.json", FIXTURE_DIR)),
  ) as {
    cases: {
      dim: number;
      n1: number;
      mu1: number[];
      sigma1: number[];
      mu2: number[];
      sigma2: number[];
      fid: number;
      fid_symmetric: number;
    }[];
  };
  assert.ok(fixture.cases.length >= 3);
  assert.ok(fixture.cases.some((c) => c.n1 <= c.dim), "a singular case is included");
  for (const c of fixture.cases) {
    const a = { mu: Float64Array.from(c.mu1), sigma: Float64Array.from(c.sigma1) };
    const b = { mu: Float64Array.from(c.mu2), sigma: Float64Array.from(c.sigma2) };
    const fid = fidFromStats(a, b);
    assert.ok(
      Math.abs(fid - c.fid_symmetric) <= 1e-11 * c.fid_symmetric,
      `dim=${c.dim}: ${fid} vs numpy ${c.fid_symmetric}`,
    );
    assert.ok(Math.abs(fid - c.fid) <= 1e-8 * c.fid, `dim=${c.dim}: ${fid} vs scipy ${c.fid}`);
    // The slower square-root route agrees to the accuracy such routes have.
    const tol = c.n1 <= c.dim ? 1e-7 : 1e-11;
    const viaEigh = fidFromStats(a, b, { method: "eigh" });
    assert.ok(Math.abs(viaEigh - c.fid_symmetric) <= tol * c.fid, `dim=${c.dim} eigh: ${viaEigh}`);
  }
});

Deno.test("fidFromStats() rejects mismatched or non-finite statistics", () => {
  const a = diagonalStats([0, 0], [1, 1]);
  const b = diagonalStats([0, 0, 0], [1, 1, 1]);
  assert.throws(() => fidFromStats(a, b), RangeError);
  assert.throws(() => fidFromStats(a, { mu: a.mu, sigma: new Float64Array(3) }), RangeError);
  assert.throws(
    () => fidFromStats(a, { mu: Float64Array.from([0, NaN]), sigma: a.sigma }),
    /mu\[1\] = NaN/,
  );
});

Deno.test("encodeFidRefs() and decodeFidRefs() round-trip statistics exactly", async () => {
  const n = 60, dim = 10;
  const stats = featureStats(correlatedFeatures(n, dim, 7), n, dim);
  const back = decodeFidRefs(encodeFidRefs(stats));
  assert.deepEqual(back.mu, stats.mu);
  assert.deepEqual(back.sigma, stats.sigma);

  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/refs.npz`;
    await writeFidRefs(path, stats);
    const read = await readFidRefs(path);
    assert.deepEqual(read.mu, stats.mu);
    assert.deepEqual(read.sigma, stats.sigma);
    assert.equal(fidFromStats(read, stats), fidFromStats(stats, stats));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readFidRefs() reads numpy.savez statistics (EDM fid-refs layout)", async () => {
  const fixture = JSON.parse(await Deno.readTextFile(new URL("fid_cases.json", FIXTURE_DIR)));
  const stats = await readFidRefs(new URL("ref_stats.npz", FIXTURE_DIR).pathname);
  assert.deepEqual(Array.from(stats.mu), fixture.cases[0].mu1);
  assert.deepEqual(Array.from(stats.sigma), fixture.cases[0].sigma1);
});

Deno.test("decodeFidRefs() accepts float32 and rejects malformed archives", () => {
  const f32 = decodeFidRefs(encodeNpz({
    mu: { data: new Float32Array([1, 2]), shape: [2] },
    sigma: { data: new Float32Array([1, 0.5, 0.5, 2]), shape: [2, 2] },
    extra: { data: new Int32Array([7]), shape: [1] },
  }));
  assert.ok(f32.mu instanceof Float64Array);
  assert.deepEqual(Array.from(f32.sigma), [1, 0.5, 0.5, 2]);

  const mu = { data: new Float64Array(3), shape: [3] };
  assert.throws(() => decodeFidRefs(encodeNpz({ mu })), TypeError);
  assert.throws(
    () => decodeFidRefs(encodeNpz({ mu, sigma: { data: new Float64Array(6), shape: [3, 2] } })),
    RangeError,
  );
  assert.throws(
    () => decodeFidRefs(encodeNpz({ mu, sigma: { data: new Int32Array(9), shape: [3, 3] } })),
    TypeError,
  );
  assert.throws(() => decodeFidRefs(new Uint8Array([1, 2, 3])), SyntaxError);
});

Deno.test("fidFromStats() takes well under a second at D = 128", () => {
  const n = 400, dim = 128;
  const a = featureStats(correlatedFeatures(n, dim, 8), n, dim);
  const b = featureStats(correlatedFeatures(n, dim, 9), n, dim);
  const start = performance.now();
  const fid = fidFromStats(a, b);
  const ms = performance.now() - start;
  assert.ok(fid > 0);
  // Typically ~20 ms; the bound leaves room for a loaded CI machine.
  assert.ok(ms < 1000, `took ${ms} ms`);
});
