/**
 * The exact denoiser of an isotropic Gaussian mixture, in float64, with its closed-form
 * vector–Jacobian product in `x` and `t`: the model every reverse-mode test runs against.
 *
 * Under VE noise σ the mixture `Σ π_k N(μ_k, s_k² I)` becomes `Σ π_k N(μ_k, (s_k²+σ²) I)`
 * and `E[x_0 | x_σ] = Σ_k w_k(x) [μ_k + ρ_k (x − μ_k)]` with `ρ_k = s_k²/(s_k²+σ²)` and
 * `w = softmax_k(log π_k − (d/2) log(s_k²+σ²) − ‖x−μ_k‖²/(2(s_k²+σ²)))`. Any other schedule
 * reduces to VE through `x̃ = x/α_t`, `σ̃ = σ_t/α_t`.
 *
 * @module
 */
import type { DenoiseInfo } from "./denoiser.ts";
import { type DenoiserVjp, dLambdaDt, dLogAlphaDt } from "./differentiable.ts";
import type { DifferentiableDenoiser } from "./differentiable.ts";
import type { NoiseSchedule } from "./noise_schedule.ts";

/** The mixture: K components in d dimensions. */
export interface GmmParams {
  /** Component means, `K × d` values (row k is μ_k). */
  readonly means: Float64Array;
  /** Number of components K. */
  readonly components: number;
  /** Isotropic variances s_k² (K values, positive). */
  readonly variances: ArrayLike<number>;
  /** Mixture weights π_k (K values, positive; normalised here). @default {uniform} */
  readonly weights?: ArrayLike<number>;
}

/** Per-component quantities of one sample at one noise level. */
interface Posterior {
  /** Responsibilities w_k. */
  w: Float64Array;
  /** v_k = s_k² + σ̃². */
  v: Float64Array;
}

/**
 * A float64 Gaussian-mixture denoiser with exact VJP, implementing
 * {@linkcode DifferentiableDenoiser}.
 *
 * @example
 * ```ts
 * import { veSchedule } from "./noise_schedule.ts";
 * const gmm = new GmmDenoiser(veSchedule(), [2], {
 *   means: Float64Array.from([1, 1, -1, -1]),
 *   components: 2,
 *   variances: [0.1, 0.1],
 * });
 * const d = await gmm.denoise(Float64Array.from([3, 3]), 0.002);
 * console.log(d[0] > 0.99); // true
 * ```
 */
export class GmmDenoiser implements DifferentiableDenoiser {
  readonly schedule: NoiseSchedule;
  readonly sampleShape: readonly number[];
  readonly #d: number;
  readonly #k: number;
  readonly #means: Float64Array;
  readonly #s2: Float64Array;
  readonly #logPi: Float64Array;
  /** Number of `denoise` and `vjp` calls, for cost accounting in tests. */
  calls = { denoise: 0, vjp: 0 };

  /**
   * A mixture of `params.components` Gaussians over samples of `sampleShape`, noised by
   * `schedule`; throws RangeError on invalid parameters (component count, array sizes).
   */
  constructor(schedule: NoiseSchedule, sampleShape: readonly number[], params: GmmParams) {
    const d = sampleShape.reduce((a, b) => a * b, 1);
    const k = params.components;
    if (!Number.isInteger(k) || k < 1) {
      throw new RangeError(`GmmParams.components must be a positive integer: got ${k}`);
    }
    if (params.means.length !== k * d) {
      throw new RangeError(
        `GmmParams.means must hold components·d = ${k * d} values: got ${params.means.length}`,
      );
    }
    if (params.variances.length !== k) {
      throw new RangeError(
        `GmmParams.variances must hold ${k} values: got ${params.variances.length}`,
      );
    }
    const weights = params.weights ?? new Array(k).fill(1);
    if (weights.length !== k) {
      throw new RangeError(`GmmParams.weights must hold ${k} values: got ${weights.length}`);
    }
    let total = 0;
    for (let j = 0; j < k; j++) {
      if (!(params.variances[j] > 0)) {
        throw new RangeError(
          `GmmParams.variances[${j}] must be positive: got ${params.variances[j]}`,
        );
      }
      if (!(weights[j] > 0)) {
        throw new RangeError(`GmmParams.weights[${j}] must be positive: got ${weights[j]}`);
      }
      total += weights[j];
    }
    this.schedule = schedule;
    this.sampleShape = [...sampleShape];
    this.#d = d;
    this.#k = k;
    this.#means = Float64Array.from(params.means);
    this.#s2 = Float64Array.from(params.variances);
    this.#logPi = Float64Array.from(weights, (w) => Math.log(w / total));
  }

  /** Responsibilities for one sample `xt` (already divided by α) at σ̃² = q. */
  #posterior(xt: Float64Array, off: number, q: number): Posterior {
    const d = this.#d;
    const w = new Float64Array(this.#k);
    const v = new Float64Array(this.#k);
    let max = -Infinity;
    for (let j = 0; j < this.#k; j++) {
      v[j] = this.#s2[j] + q;
      let dist = 0;
      for (let i = 0; i < d; i++) {
        const e = xt[off + i] - this.#means[j * d + i];
        dist += e * e;
      }
      w[j] = this.#logPi[j] - 0.5 * d * Math.log(v[j]) - dist / (2 * v[j]);
      if (w[j] > max) max = w[j];
    }
    let sum = 0;
    for (let j = 0; j < this.#k; j++) {
      w[j] = Math.exp(w[j] - max);
      sum += w[j];
    }
    for (let j = 0; j < this.#k; j++) w[j] /= sum;
    return { w, v };
  }

  #batch(x: Float64Array): number {
    const batch = x.length / this.#d;
    if (!Number.isInteger(batch) || batch < 1) {
      throw new RangeError(
        `x must hold a whole batch of ${this.#d}-value samples: got ${x.length}`,
      );
    }
    return batch;
  }

  /** Scaled input `x̃ = x/α` and `σ̃²` at time t. */
  #reduce(x: Float64Array, t: number): { xt: Float64Array; alpha: number; q: number } {
    const alpha = this.schedule.alpha(t);
    const sigmaTilde = Math.exp(-this.schedule.lambda(t));
    const xt = alpha === 1 ? x : Float64Array.from(x, (v) => v / alpha);
    return { xt, alpha, q: sigmaTilde * sigmaTilde };
  }

  denoise(x: Float64Array, t: number, _info?: DenoiseInfo): Promise<Float64Array> {
    this.calls.denoise++;
    const batch = this.#batch(x);
    const d = this.#d;
    const { xt, q } = this.#reduce(x, t);
    const out = new Float64Array(x.length);
    for (let b = 0; b < batch; b++) {
      const off = b * d;
      const { w, v } = this.#posterior(xt, off, q);
      for (let j = 0; j < this.#k; j++) {
        const rho = this.#s2[j] / v[j];
        const wj = w[j];
        for (let i = 0; i < d; i++) {
          const mu = this.#means[j * d + i];
          out[off + i] += wj * (mu + rho * (xt[off + i] - mu));
        }
      }
    }
    return Promise.resolve(out);
  }

  /**
   * Exact VJP. With `m_k = μ_k + ρ_k(x̃ − μ_k)`, `g_k = ⟨c, m_k⟩` and `ḡ = Σ w_k g_k`:
   * `∂/∂x̃ = Σ w_k ρ_k c − Σ w_k (g_k − ḡ)(x̃ − μ_k)/v_k`, and for `q = σ̃²`
   * `∂/∂q = −Σ w_k ρ_k ⟨c, x̃−μ_k⟩/v_k + Σ w_k (g_k − ḡ)(‖x̃−μ_k‖²/(2v_k²) − d/(2v_k))`;
   * then `∂x̃/∂t = −x̃·dlogα/dt` and `dq/dt = −2q·dλ/dt`.
   */
  vjp(
    x: Float64Array,
    t: number,
    cotangent: Float64Array,
    _info?: DenoiseInfo,
  ): Promise<DenoiserVjp> {
    this.calls.vjp++;
    if (cotangent.length !== x.length) {
      throw new RangeError(
        `cotangent must have the length of x (${x.length}): got ${cotangent.length}`,
      );
    }
    const batch = this.#batch(x);
    const d = this.#d;
    const k = this.#k;
    const { xt, alpha, q } = this.#reduce(x, t);
    const gx = new Float64Array(x.length);
    let gq = 0;
    let gxtDotXt = 0;
    const g = new Float64Array(k);
    const cDotE = new Float64Array(k);
    const dist = new Float64Array(k);
    for (let b = 0; b < batch; b++) {
      const off = b * d;
      const { w, v } = this.#posterior(xt, off, q);
      let gBar = 0;
      for (let j = 0; j < k; j++) {
        const rho = this.#s2[j] / v[j];
        let ce = 0;
        let cm = 0;
        let ee = 0;
        for (let i = 0; i < d; i++) {
          const mu = this.#means[j * d + i];
          const e = xt[off + i] - mu;
          const c = cotangent[off + i];
          ce += c * e;
          cm += c * mu;
          ee += e * e;
        }
        cDotE[j] = ce;
        dist[j] = ee;
        g[j] = cm + rho * ce;
        gBar += w[j] * g[j];
      }
      let sumWRho = 0;
      for (let j = 0; j < k; j++) sumWRho += w[j] * this.#s2[j] / v[j];
      for (let i = 0; i < d; i++) gx[off + i] = sumWRho * cotangent[off + i];
      for (let j = 0; j < k; j++) {
        const coef = w[j] * (g[j] - gBar) / v[j];
        if (coef !== 0) {
          for (let i = 0; i < d; i++) {
            gx[off + i] -= coef * (xt[off + i] - this.#means[j * d + i]);
          }
        }
        const rho = this.#s2[j] / v[j];
        gq += -w[j] * rho * cDotE[j] / v[j] +
          w[j] * (g[j] - gBar) * (dist[j] / (2 * v[j] * v[j]) - d / (2 * v[j]));
      }
      for (let i = 0; i < d; i++) gxtDotXt += gx[off + i] * xt[off + i];
    }
    // Chain rule through x̃ = x/α(t) and q = exp(−2λ(t)).
    const dLogAlpha = dLogAlphaDt(this.schedule, t);
    const gt = -gxtDotXt * dLogAlpha + gq * (-2 * q * dLambdaDt(this.schedule, t));
    if (alpha !== 1) { for (let i = 0; i < gx.length; i++) gx[i] /= alpha; }
    return Promise.resolve({ x: gx, t: gt });
  }
}
