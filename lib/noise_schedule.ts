/**
 * Noise schedules (forward processes) `x_t = α_t·x_0 + σ_t·ε`.
 *
 * Every schedule exposes α, σ, the half-log-SNR `λ = log α − log σ` (decreasing in t), its
 * inverse and the prior `x_T = priorScale · z`, all in float64. Solvers and grids only ever
 * talk to this interface, so a new forward process is one more factory here.
 *
 * @module
 */

/** The forward-process families ld3 knows. */
export type ScheduleKind = "ve" | "vp_linear" | "vp_discrete" | "vp_cosine" | "flow";

/** A forward diffusion process, evaluated in float64. */
export interface NoiseSchedule {
  /** Which family this is. */
  readonly kind: ScheduleKind;
  /** Start of sampling, `T` (pure noise end). */
  readonly tMax: number;
  /** End of sampling, `eps`. */
  readonly tMin: number;
  /** Scale of the prior: `x_T = priorScale · z` with `z ~ N(0, I)`. */
  readonly priorScale: number;
  /** Signal coefficient α_t. */
  alpha(t: number): number;
  /** Noise coefficient σ_t. */
  sigma(t: number): number;
  /** Half-log-SNR λ_t = log α_t − log σ_t. */
  lambda(t: number): number;
  /** The time t with λ_t = lambda. */
  inverseLambda(lambda: number): number;
}

/** `log(1 + e^x)` without overflow. */
function softplus(x: number): number {
  return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
}

/** λ from log α for variance-preserving schedules (σ² = 1 − α²). */
function vpLambdaFromLogAlpha(logAlpha: number): number {
  return logAlpha - 0.5 * Math.log(-Math.expm1(2 * logAlpha));
}

/** log α from λ for variance-preserving schedules: α² = 1 / (1 + e^{−2λ}). */
function vpLogAlphaFromLambda(lambda: number): number {
  return -0.5 * softplus(-2 * lambda);
}

function checkRange(name: string, tMax: number, tMin: number): void {
  if (!(Number.isFinite(tMax) && Number.isFinite(tMin) && tMax > tMin && tMin > 0)) {
    throw new RangeError(`${name}: need tMax > tMin > 0: got tMax=${tMax}, tMin=${tMin}`);
  }
}

/** Options of {@linkcode veSchedule}. */
export interface VeScheduleOptions {
  /** Largest noise level σ_max = T. @default {80} */
  sigmaMax?: number;
  /** Smallest noise level σ_min = eps. @default {0.002} */
  sigmaMin?: number;
}

/**
 * Variance-exploding / EDM schedule (Karras et al. 2022): α = 1, σ = t, λ = −log t.
 *
 * @example
 * ```ts
 * const s = veSchedule();
 * console.log(s.sigma(80), s.lambda(1)); // 80 0
 * ```
 */
export function veSchedule(options: VeScheduleOptions = {}): NoiseSchedule {
  const tMax = options.sigmaMax ?? 80;
  const tMin = options.sigmaMin ?? 0.002;
  checkRange("veSchedule", tMax, tMin);
  return {
    kind: "ve",
    tMax,
    tMin,
    priorScale: tMax,
    alpha: () => 1,
    sigma: (t) => t,
    lambda: (t) => -Math.log(t),
    inverseLambda: (lambda) => Math.exp(-lambda),
  };
}

/** Options of {@linkcode vpLinearSchedule}. */
export interface VpLinearScheduleOptions {
  /** β(0). @default {0.1} */
  beta0?: number;
  /** β(1). @default {20} */
  beta1?: number;
  /** Start time T. @default {1} */
  tMax?: number;
  /** End time eps. @default {1e-3} */
  tMin?: number;
}

/**
 * Continuous VP schedule with linear β(t) (score-SDE DDPM++):
 * `log α_t = −¼t²(β1−β0) − ½tβ0`, `σ = √(1−α²)`.
 */
export function vpLinearSchedule(options: VpLinearScheduleOptions = {}): NoiseSchedule {
  const beta0 = options.beta0 ?? 0.1;
  const beta1 = options.beta1 ?? 20;
  const tMax = options.tMax ?? 1;
  const tMin = options.tMin ?? 1e-3;
  checkRange("vpLinearSchedule", tMax, tMin);
  if (!(beta1 > beta0 && beta0 >= 0)) {
    throw new RangeError(`vpLinearSchedule: need beta1 > beta0 >= 0: got ${beta0}, ${beta1}`);
  }
  const dBeta = beta1 - beta0;
  const logAlpha = (t: number) => -0.25 * t * t * dBeta - 0.5 * t * beta0;
  return {
    kind: "vp_linear",
    tMax,
    tMin,
    priorScale: 1,
    alpha: (t) => Math.exp(logAlpha(t)),
    sigma: (t) => Math.sqrt(-Math.expm1(2 * logAlpha(t))),
    lambda: (t) => vpLambdaFromLogAlpha(logAlpha(t)),
    inverseLambda(lambda) {
      // Solve ¼Δβ t² + ½β0 t − L = 0 for L = −log α, in the cancellation-free form.
      const L = -vpLogAlphaFromLambda(lambda);
      return (4 * L) / (beta0 + Math.sqrt(beta0 * beta0 + 4 * dBeta * L));
    },
  };
}

/** Options of {@linkcode vpDiscreteSchedule}: give exactly one of the two arrays. */
export interface VpDiscreteScheduleOptions {
  /** The model's ᾱ_n, n = 1..Nd. */
  alphasCumprod?: ArrayLike<number>;
  /** The model's β_n, n = 1..Nd (ᾱ_n = Π(1 − β_k)). */
  betas?: ArrayLike<number>;
}

/** The β presets of diffusers' schedulers (`beta_schedule` of a `scheduler_config.json`). */
export type DiscreteBetaPreset = "linear" | "scaled_linear" | "squaredcos_cap_v2";

/** Every {@linkcode DiscreteBetaPreset}. */
export const DISCRETE_BETA_PRESETS: readonly DiscreteBetaPreset[] = [
  "linear",
  "scaled_linear",
  "squaredcos_cap_v2",
];

/** The β range of each preset that has one, as diffusers' schedulers default it. */
export const DEFAULT_BETA_RANGE = {
  linear: { start: 1e-4, end: 0.02 },
  scaled_linear: { start: 0.00085, end: 0.012 },
} as const;

/**
 * β_n of a discrete DDPM preset: `linear` (DDPM: β linear from `start` to `end`, by default
 * 1e-4→0.02), `scaled_linear` (LDM/Stable Diffusion: √β linear, by default 0.00085→0.012) or
 * `squaredcos_cap_v2` (improved DDPM's cosine ᾱ, each β capped at 0.999; takes no range).
 *
 * @example
 * ```ts
 * const b = discreteBetas("scaled_linear", 1000, { start: 0.00085, end: 0.012 });
 * console.log(b[0].toFixed(5), b[999].toFixed(3)); // 0.00085 0.012
 * ```
 */
export function discreteBetas(
  preset: DiscreteBetaPreset,
  steps = 1000,
  range?: { start: number; end: number },
): Float64Array {
  const out = new Float64Array(steps);
  if (preset === "squaredcos_cap_v2") {
    const alphaBar = (u: number) => Math.cos(((u + 0.008) / 1.008) * Math.PI / 2) ** 2;
    for (let n = 0; n < steps; n++) {
      out[n] = Math.min(1 - alphaBar((n + 1) / steps) / alphaBar(n / steps), 0.999);
    }
    return out;
  }
  const { start, end } = range ?? DEFAULT_BETA_RANGE[preset];
  for (let n = 0; n < steps; n++) {
    const u = steps === 1 ? 0 : n / (steps - 1);
    if (preset === "linear") out[n] = start + u * (end - start);
    else {
      const r = Math.sqrt(start) + u * (Math.sqrt(end) - Math.sqrt(start));
      out[n] = r * r;
    }
  }
  return out;
}

/**
 * Discrete-time VP schedule of a DDPM/LDM network: `log α` is piecewise linear in t over the
 * knots `t_n = n/Nd` with `log α(t_n) = ½ log ᾱ_n`; T = 1, eps = 1/Nd. The network's
 * discrete time input is `(t − 1/Nd)·Nd` (see the model config's `time_input`).
 */
export function vpDiscreteSchedule(options: VpDiscreteScheduleOptions): NoiseSchedule {
  let cumprod: Float64Array;
  if (options.alphasCumprod && !options.betas) {
    cumprod = Float64Array.from(options.alphasCumprod);
  } else if (options.betas && !options.alphasCumprod) {
    cumprod = new Float64Array(options.betas.length);
    let acc = 1;
    for (let n = 0; n < cumprod.length; n++) {
      acc *= 1 - options.betas[n];
      cumprod[n] = acc;
    }
  } else {
    throw new TypeError("vpDiscreteSchedule: give exactly one of alphasCumprod or betas");
  }
  const nd = cumprod.length;
  if (nd < 2) throw new RangeError(`vpDiscreteSchedule: need at least 2 steps: got ${nd}`);
  const logAlphas = new Float64Array(nd);
  for (let n = 0; n < nd; n++) {
    const a = cumprod[n];
    if (!(a > 0 && a < 1)) {
      throw new RangeError(`vpDiscreteSchedule: alphas_cumprod[${n}] must be in (0, 1): got ${a}`);
    }
    logAlphas[n] = 0.5 * Math.log(a);
    if (n > 0 && !(logAlphas[n] < logAlphas[n - 1])) {
      throw new RangeError(`vpDiscreteSchedule: alphas_cumprod must decrease: index ${n}`);
    }
  }
  // Knot k sits at t = (k+1)/nd. Outside [1/nd, 1] the end segments are extended linearly.
  function logAlpha(t: number): number {
    const x = t * nd - 1; // fractional knot index
    const k = Math.min(Math.max(Math.floor(x), 0), nd - 2);
    const w = x - k;
    return logAlphas[k] + w * (logAlphas[k + 1] - logAlphas[k]);
  }
  function timeOfLogAlpha(la: number): number {
    // logAlphas is strictly decreasing: find the segment by bisection.
    let lo = 0;
    let hi = nd - 1;
    if (la >= logAlphas[0]) hi = 1;
    else if (la <= logAlphas[nd - 1]) lo = nd - 2;
    else {
      while (hi - lo > 1) {
        const mid = (lo + hi) >> 1;
        if (logAlphas[mid] >= la) lo = mid;
        else hi = mid;
      }
    }
    const k = Math.min(lo, nd - 2);
    const w = (la - logAlphas[k]) / (logAlphas[k + 1] - logAlphas[k]);
    return (k + w + 1) / nd;
  }
  return {
    kind: "vp_discrete",
    tMax: 1,
    tMin: 1 / nd,
    priorScale: 1,
    alpha: (t) => Math.exp(logAlpha(t)),
    sigma: (t) => Math.sqrt(-Math.expm1(2 * logAlpha(t))),
    lambda: (t) => vpLambdaFromLogAlpha(logAlpha(t)),
    inverseLambda: (lambda) => timeOfLogAlpha(vpLogAlphaFromLambda(lambda)),
  };
}

/** Options of {@linkcode vpCosineSchedule}. */
export interface VpCosineScheduleOptions {
  /** Offset s of the improved-DDPM cosine schedule. @default {0.008} */
  s?: number;
  /** Start time T (kept below 1 so that α_T > 0). @default {0.9946} */
  tMax?: number;
  /** End time eps. @default {1e-3} */
  tMin?: number;
}

/** Cosine VP schedule (Nichol & Dhariwal 2021): `α_t = cos((t+s)/(1+s)·π/2) / cos(s/(1+s)·π/2)`. */
export function vpCosineSchedule(options: VpCosineScheduleOptions = {}): NoiseSchedule {
  const s = options.s ?? 0.008;
  const tMax = options.tMax ?? 0.9946;
  const tMin = options.tMin ?? 1e-3;
  checkRange("vpCosineSchedule", tMax, tMin);
  if (tMax >= 1) throw new RangeError(`vpCosineSchedule: tMax must be < 1: got ${tMax}`);
  const logAlpha0 = Math.log(Math.cos((s / (1 + s)) * Math.PI / 2));
  const logAlpha = (t: number) => Math.log(Math.cos(((t + s) / (1 + s)) * Math.PI / 2)) - logAlpha0;
  return {
    kind: "vp_cosine",
    tMax,
    tMin,
    priorScale: 1,
    alpha: (t) => Math.exp(logAlpha(t)),
    sigma: (t) => Math.sqrt(-Math.expm1(2 * logAlpha(t))),
    lambda: (t) => vpLambdaFromLogAlpha(logAlpha(t)),
    inverseLambda(lambda) {
      const la = vpLogAlphaFromLambda(lambda) + logAlpha0;
      return (2 * (1 + s) / Math.PI) * Math.acos(Math.exp(la)) - s;
    },
  };
}

/** Options of {@linkcode flowSchedule}. */
export interface FlowScheduleOptions {
  /**
   * Start time T. Rectified flow reaches pure noise at t = 1, where λ = −∞; sampling starts
   * just below so every solver's step size in λ stays finite. @default {0.999}
   */
  tMax?: number;
  /** End time eps. @default {1e-3} */
  tMin?: number;
}

/** Rectified-flow / flow-matching interpolation: α = 1 − t, σ = t, λ = log((1−t)/t). */
export function flowSchedule(options: FlowScheduleOptions = {}): NoiseSchedule {
  const tMax = options.tMax ?? 0.999;
  const tMin = options.tMin ?? 1e-3;
  checkRange("flowSchedule", tMax, tMin);
  if (tMax >= 1) throw new RangeError(`flowSchedule: tMax must be < 1: got ${tMax}`);
  return {
    kind: "flow",
    tMax,
    tMin,
    priorScale: 1,
    alpha: (t) => 1 - t,
    sigma: (t) => t,
    lambda: (t) => Math.log1p(-t) - Math.log(t),
    // t = 1 / (1 + e^λ), written to stay accurate for large |λ|.
    inverseLambda: (lambda) =>
      lambda > 0 ? Math.exp(-lambda) / (1 + Math.exp(-lambda)) : 1 / (1 + Math.exp(lambda)),
  };
}

/** The EDM-equivalent noise level σ_t/α_t = e^{−λ_t} of a time t. */
export function sigmaOf(schedule: NoiseSchedule, t: number): number {
  return Math.exp(-schedule.lambda(t));
}

/** The time whose EDM-equivalent noise level σ_t/α_t equals `sigma`. */
export function timeOfSigma(schedule: NoiseSchedule, sigma: number): number {
  return schedule.inverseLambda(-Math.log(sigma));
}
