import assert from "node:assert/strict";
import { ort } from "../../lib/deps.ts";
import { buildGmmOnnx, gmmFromOnnx } from "../../lib/onnx/gmm_onnx.ts";
import { readOnnxSignature } from "../../lib/onnx/session.ts";
import { normalNoise } from "../../lib/rng.ts";
import { gmmDenoiseReference } from "../fixtures/gmm_reference.ts";
import { makeTinyGmm } from "../_tiny_gmm.ts";
import { linearFeatureModel } from "../fixtures/tiny_models.ts";
import { join } from "node:path";

const SHAPE = [2, 3, 4];
const D = 24;
const K = 5;
const VARIANCES = [0.01, 0.04, 0.25, 1, 0];
const WEIGHTS = [1, 2, 3, 0.5, 1.5];
const MEANS = Float32Array.from(normalNoise(7, 0, K * D));

async function runGmm(
  bytes: Uint8Array,
  x: Float32Array,
  sigma: number,
): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    const batch = x.length / D;
    const out = await session.run({
      x: new ort.Tensor("float32", x, [batch, ...SHAPE]),
      sigma: new ort.Tensor("float32", new Float32Array(batch).fill(sigma), [batch]),
    });
    assert.deepEqual(out.denoised.dims, [batch, ...SHAPE]);
    return out.denoised.data as Float32Array;
  } finally {
    await session.release();
  }
}

/** A batch of `batch` noisy samples: mean (index mod K) plus σ·z, rounded to float32. */
function noisyBatch(sigma: number, batch: number, seed: number): Float32Array {
  const x = new Float32Array(batch * D);
  for (let b = 0; b < batch; b++) {
    const z = normalNoise(seed, b, D);
    const k = b % K;
    for (let i = 0; i < D; i++) x[b * D + i] = MEANS[k * D + i] + sigma * z[i];
  }
  return x;
}

Deno.test("buildGmmOnnx() declares x [batch, ...shape], sigma [batch] and denoised", () => {
  const bytes = buildGmmOnnx({ means: MEANS, sampleShape: SHAPE, variances: VARIANCES });
  const sig = readOnnxSignature(bytes);
  assert.deepEqual(sig.inputs.map((i) => [i.name, i.elemTypeName, i.dims]), [
    ["x", "float", ["batch", 2, 3, 4]],
    ["sigma", "float", ["batch"]],
  ]);
  assert.deepEqual(sig.outputs.map((o) => [o.name, o.dims]), [["denoised", ["batch", 2, 3, 4]]]);
});

Deno.test("buildGmmOnnx() matches the float64 mixture denoiser from sigma 0.002 to 80", async () => {
  const bytes = buildGmmOnnx({
    means: MEANS,
    sampleShape: SHAPE,
    variances: VARIANCES,
    weights: WEIGHTS,
  });
  const params = { means: MEANS, variances: VARIANCES, weights: WEIGHTS, dim: D };
  for (const [i, sigma] of [0.002, 0.03, 0.3, 1, 3, 10, 80].entries()) {
    const x = noisyBatch(sigma, 7, 100 + i);
    const got = await runGmm(bytes, x, Math.fround(sigma));
    const want = gmmDenoiseReference(params, x, Math.fround(sigma));
    let worst = 0;
    for (let j = 0; j < want.length; j++) {
      worst = Math.max(worst, Math.abs(got[j] - want[j]) / (1 + Math.abs(want[j])));
    }
    assert.ok(worst < 2e-5, `sigma ${sigma}: worst relative error ${worst}`);
  }
});

Deno.test("buildGmmOnnx() output depends on the mixture: far-apart components at small sigma", async () => {
  // Each sample sits on a mean, so at σ → 0 the denoiser returns that mean (up to s_k² / v).
  const bytes = buildGmmOnnx({ means: MEANS, sampleShape: SHAPE, variances: [0, 0, 0, 0, 0] });
  const x = noisyBatch(0.01, K, 3);
  const got = await runGmm(bytes, x, 0.01);
  for (let j = 0; j < got.length; j++) assert.ok(Math.abs(got[j] - MEANS[j]) < 1e-5);
});

Deno.test("buildGmmOnnx() is deterministic and rejects inconsistent sizes", () => {
  const a = buildGmmOnnx({ means: MEANS, sampleShape: SHAPE, variances: VARIANCES });
  const b = buildGmmOnnx({ means: MEANS, sampleShape: SHAPE, variances: VARIANCES });
  assert.deepEqual(a, b);
  assert.throws(
    () => buildGmmOnnx({ means: MEANS, sampleShape: [5, 5], variances: VARIANCES }),
    /means must hold K·d = 5·25 = 125 values: got 120/,
  );
  assert.throws(
    () => buildGmmOnnx({ means: MEANS, sampleShape: SHAPE, variances: [1, 1, 1, 1, -1] }),
    /variances must be finite and >= 0/,
  );
  assert.throws(
    () => buildGmmOnnx({ means: MEANS, sampleShape: SHAPE, variances: VARIANCES, weights: [1, 0] }),
    /weights must be 5 positive numbers/,
  );
});

Deno.test("gmmFromOnnx() recovers the mixture of a buildGmmOnnx graph", async () => {
  const gmm = await makeTinyGmm();
  try {
    const mix = gmmFromOnnx(await Deno.readFile(join(gmm.dir, "model.onnx")));
    assert.equal(mix.dim, 16);
    assert.equal(mix.weights.length, 3);
    for (let j = 0; j < 16; j++) {
      const expected = 0.8 * Math.sin(2 * (j + 1) * 0.7);
      assert.ok(Math.abs(mix.means[16 + j] - expected) < 1e-6);
    }
    assert.ok(Math.abs(mix.variances[1] - 0.02) < 1e-8);
    assert.ok(Math.abs(mix.weights[0] - 1 / 3) < 1e-7);
    const notGmm = linearFeatureModel([1, 4, 4], 3, (i) => Math.sin(i));
    assert.throws(() => gmmFromOnnx(notGmm), /buildGmmOnnx/);
  } finally {
    await gmm.cleanup();
  }
});
