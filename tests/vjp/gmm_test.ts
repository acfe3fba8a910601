/**
 * Whole-model check: the VJP of the Gaussian-mixture denoiser ONNX graph against its
 * closed-form Jacobian.
 *
 * With v_k = s_k² + σ², c_k = s_k²/v_k, m_k = μ_k + c_k(x − μ_k) and D = Σ_k w_k m_k:
 * ∂log w_k/∂x = a_k − Σ_j w_j a_j with a_k = −(x − μ_k)/v_k, so
 * gᵀ∂D/∂x = Σ_k w_k c_k g + Σ_k (g·m_k) w_k (a_k − ā); and with
 * b_k = ∂ℓ_k/∂σ = −dσ/v_k + σ‖x − μ_k‖²/v_k², ∂c_k/∂σ = −2σ s_k²/v_k²:
 * gᵀ∂D/∂σ = Σ_k w_k ∂c_k/∂σ g·(x − μ_k) + Σ_k (g·m_k) w_k (b_k − b̄).
 */
import assert from "node:assert/strict";
import { ort } from "../../lib/deps.ts";
import { buildGmmOnnx } from "../../lib/onnx/gmm_onnx.ts";
import { VjpSession } from "../../lib/vjp/mod.ts";
import { randn } from "./_harness.ts";

interface Mixture {
  means: Float64Array;
  variances: number[];
  weights: number[];
  d: number;
}

/** Closed-form `(D, gᵀ∂D/∂x, gᵀ∂D/∂σ)` of one sample, in float64. */
function closedForm(mix: Mixture, x: number[], sigma: number, g: number[]) {
  const { means, variances, weights, d } = mix;
  const K = variances.length;
  const total = weights.reduce((a, b) => a + b, 0);
  const v = variances.map((s2) => s2 + sigma * sigma);
  const dist2 = v.map((_, k) => x.reduce((s, xi, i) => s + (xi - means[k * d + i]) ** 2, 0));
  const logits = v.map((vk, k) =>
    Math.log(weights[k] / total) - (d / 2) * Math.log(vk) - dist2[k] / (2 * vk)
  );
  const top = Math.max(...logits);
  const e = logits.map((l) => Math.exp(l - top));
  const z = e.reduce((a, b) => a + b, 0);
  const w = e.map((ek) => ek / z);
  const c = v.map((vk, k) => variances[k] / vk);
  const m = v.map((_, k) => x.map((xi, i) => means[k * d + i] + c[k] * (xi - means[k * d + i])));
  const D = x.map((_, i) => m.reduce((s, mk, k) => s + w[k] * mk[i], 0));
  const gm = m.map((mk) => mk.reduce((s, mi, i) => s + mi * g[i], 0));
  // gradient w.r.t. x
  const a = v.map((vk, k) => x.map((xi, i) => -(xi - means[k * d + i]) / vk));
  const abar = x.map((_, i) => a.reduce((s, ak, k) => s + w[k] * ak[i], 0));
  const gx = x.map((_, i) => {
    let s = 0;
    for (let k = 0; k < K; k++) s += w[k] * c[k] * g[i] + gm[k] * w[k] * (a[k][i] - abar[i]);
    return s;
  });
  // gradient w.r.t. sigma
  const b = v.map((vk, k) => -d * sigma / vk + sigma * dist2[k] / (vk * vk));
  const bbar = b.reduce((s, bk, k) => s + w[k] * bk, 0);
  let gs = 0;
  for (let k = 0; k < K; k++) {
    const dc = -2 * sigma * variances[k] / (v[k] * v[k]);
    const gdx = x.reduce((s, xi, i) => s + g[i] * (xi - means[k * d + i]), 0);
    gs += w[k] * dc * gdx + gm[k] * w[k] * (b[k] - bbar);
  }
  return { D, gx, gs };
}

function assertClose(actual: ArrayLike<number>, expected: number[], tol: number, what: string) {
  const scale = Math.max(...expected.map(Math.abs), 1e-3);
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i] - expected[i]) / scale;
    assert.ok(err <= tol, `${what}[${i}]: ${actual[i]} vs ${expected[i]} (rel ${err})`);
  }
}

Deno.test("VjpSession differentiates the GMM denoiser as its closed-form Jacobian", async () => {
  const rng = randn(7);
  const sampleShape = [2, 3];
  const d = 6;
  const K = 3;
  const mix: Mixture = {
    means: Float64Array.from({ length: K * d }, rng),
    variances: [0.1, 0.3, 0.05],
    weights: [1, 2, 1.5],
    d,
  };
  const model = buildGmmOnnx({
    means: Float32Array.from(mix.means),
    sampleShape,
    variances: mix.variances,
    weights: mix.weights,
  });
  const session = await VjpSession.create(model, { wrt: ["x", "sigma"], returnOutput: true });
  assert.equal(session.of, "denoised");
  for (const batch of [3, 2]) {
    const sigmas = [0.4, 1.1, 2.5].slice(0, batch);
    const x = Array.from({ length: batch * d }, rng);
    const g = Array.from({ length: batch * d }, rng);
    const result = await session.run({
      x: new ort.Tensor("float32", Float32Array.from(x), [batch, ...sampleShape]),
      sigma: new ort.Tensor("float32", Float32Array.from(sigmas), [batch]),
    }, new ort.Tensor("float32", Float32Array.from(g), [batch, ...sampleShape]));
    const gx = result.gradients.x.data as Float32Array;
    const gs = result.gradients.sigma.data as Float32Array;
    const out = result.output!.data as Float32Array;
    for (let n = 0; n < batch; n++) {
      const sl = (a: number[]) => a.slice(n * d, (n + 1) * d);
      const ref = closedForm(mix, sl(x), sigmas[n], sl(g));
      assertClose(out.subarray(n * d, (n + 1) * d), ref.D, 1e-4, `D batch ${n}`);
      assertClose(gx.subarray(n * d, (n + 1) * d), ref.gx, 1e-3, `grad_x batch ${n}`);
      assertClose([gs[n]], [ref.gs], 1e-3, `grad_sigma batch ${n}`);
    }
  }
  // one specialised model per batch size
  assert.equal(session.cachedShapes, 2);
  await session.release();
});
