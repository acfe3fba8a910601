/**
 * A quick check of a model config against its network (`deno task check-model`): the checks that
 * catch a config that loads but describes the network wrongly, in seconds, before a teacher
 * dataset or an LD3 run is spent on it.
 *
 * The signature (names, types, ranks, batch axes) is already checked by `loadModel`. What it cannot
 * see is whether `prediction`, `time_input` and `schedule` match how the network was trained; a
 * mismatch gives finite but meaningless images. Every working denoiser shares two properties that
 * expose most mismatches:
 *
 * - **Near identity at the lowest noise.** At t_min a noisy image is almost clean, so D(x_t) must
 *   be close to the image. Reading an ε-network as x0 (D = ε̂), or feeding the time on the wrong
 *   scale, breaks it.
 * - **Bounded at high noise.** At σ/α = 10 the best guess is close to the data mean, inside the
 *   data range. Reading an x0-network as ε (D = (x − σ·x̂0)/α) or v, or the wrong schedule, gives
 *   values of the order of σ/α.
 *
 * Two more are structural: one call on a batch equals one call per sample (a network that mixes
 * samples, e.g. batch statistics exported in training mode, fails), and outputs are finite at
 * both ends of the schedule. The thresholds are loose on purpose: a weak but correctly described
 * model passes, a misdescribed one misses by orders of magnitude.
 *
 * @module
 */
import { type Denoiser, sampleSize } from "../denoiser.ts";
import type { NoiseSchedule } from "../noise_schedule.ts";
import type { LoadedModel } from "./model.ts";
import { normalNoise } from "../rng.ts";
import { type OptionDeclarations, type OptionValues, resolveOptions } from "../options.ts";

/** One check of {@linkcode checkModel}. */
export interface ModelCheck {
  /** Short name: `batching`, `low-noise identity`, `high-noise range`, `finite`. */
  name: string;
  /** Whether the model passed. */
  ok: boolean;
  /** What was measured, and on failure the usual causes. */
  detail: string;
}

/** What {@linkcode checkModel} found. */
export interface ModelCheckReport {
  /** The config's model name. */
  model: string;
  /** The checks, in the order they ran. */
  checks: ModelCheck[];
  /** Whether every check passed. */
  ok: boolean;
  /** Median milliseconds of one denoiser call on `batch` samples (float64 in, float64 out). */
  msPerCall: number;
  /** The batch of the timing (the config's `batch_size`, at most 16). */
  batch: number;
}

/** The options of {@linkcode checkModel} (`deno task check-model`). */
export const CHECK_MODEL_OPTIONS = {
  seed: { flag: "seed", kind: "integer", arg: "N", min: 0, default: 0, help: "noise seed" },
  identityTolerance: {
    flag: "identity_tolerance",
    kind: "number",
    above: 0,
    default: 0.25,
    help: "largest relative RMS distance of D to the clean image at t_min that passes",
  },
  rangeTolerance: {
    flag: "range_tolerance",
    kind: "number",
    above: 0,
    default: 3,
    help: "largest RMS of D at t_max, in half-widths of the data range, that passes",
  },
} as const satisfies OptionDeclarations;

/** Options of {@linkcode checkModel}: {@linkcode CHECK_MODEL_OPTIONS}. */
export type CheckModelOptions = OptionValues<typeof CHECK_MODEL_OPTIONS>;

function rms(values: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i] * values[i];
  return Math.sqrt(s / values.length);
}

/**
 * A smooth test pattern per sample, amplitude 0.8 in the [-1, 1] units of the data: a clean image
 * stand-in that needs no dataset (only its being near the data matters little at t_min).
 */
function pattern(shape: readonly number[], count: number): Float64Array {
  const d = sampleSize(shape);
  const w = shape[shape.length - 1] ?? 1;
  const out = new Float64Array(count * d);
  for (let b = 0; b < count; b++) {
    for (let i = 0; i < d; i++) {
      const col = i % w;
      const row = Math.floor(i / w);
      out[b * d + i] = 0.8 * Math.sin(0.4 * col + 0.3 * row + b);
    }
  }
  return out;
}

/** What every probe of {@linkcode checkModel} works with. */
interface Probe {
  readonly denoiser: Denoiser;
  readonly schedule: NoiseSchedule;
  readonly shape: readonly number[];
  /** Values of one sample. */
  readonly d: number;
  readonly seed: number;
  /**
   * Data-range half-width and centre: the test pattern's [-1, 1] maps to `mid ± half`. Latents
   * (decoder models) are taken as [-1, 1]-scaled, as `scale_factor` means.
   */
  readonly half: number;
  readonly mid: number;
}

/** A check that cannot run because the denoiser failed: why, for the `finite` check. */
interface ProbeFailure {
  failure: string;
}

/**
 * Runs the checks of the module doc on a loaded model.
 *
 * @example
 * ```ts ignore
 * const model = await loadModel("configs/mnist-edm.yml");
 * const report = await checkModel(model);
 * console.log(formatModelCheck(report));
 * await model.close();
 * ```
 */
export async function checkModel(
  model: LoadedModel,
  options: CheckModelOptions = {},
): Promise<ModelCheckReport> {
  const { identityTolerance, rangeTolerance, seed } = resolveOptions(CHECK_MODEL_OPTIONS, options);
  const { denoiser, config } = model;
  const [lo, hi] = config.data_range;
  const probe: Probe = {
    denoiser,
    schedule: denoiser.schedule,
    shape: model.sampleShape,
    d: sampleSize(model.sampleShape),
    seed,
    half: config.decoder ? 1 : (hi - lo) / 2,
    mid: config.decoder ? 0 : (hi + lo) / 2,
  };
  const checks: ModelCheck[] = [await batchingCheck(probe)];
  // The same clean images serve both noise levels.
  const clean = pattern(probe.shape, 2).map((v) => probe.mid + probe.half * v);
  const low = await lowNoiseCheck(probe, clean, identityTolerance);
  const high = await highNoiseCheck(probe, clean, rangeTolerance);
  const atTMax = await finiteAtTMax(probe);
  // A probe whose denoiser call failed is no check of its own: it fails `finite` instead.
  const failures: string[] = [];
  for (const result of [low, high, atTMax]) {
    if (result === undefined) continue;
    if ("failure" in result) failures.push(result.failure);
    else checks.push(result);
  }
  checks.push({
    name: "finite",
    ok: failures.length === 0,
    detail: failures.length === 0 ? "outputs finite at t_min and t_max" : failures.join("; "),
  });
  const batch = Math.min(config.batch_size, 16);
  return {
    model: config.name,
    checks,
    ok: checks.every((c) => c.ok),
    msPerCall: await medianCallMs(probe, batch),
    batch,
  };
}

/** `α(t)·image + σ(t)·z` for each value of `images`, z from noise stream `stream` of the seed. */
function noisy(p: Probe, images: Float64Array, stream: number, t: number): Float64Array {
  const { schedule } = p;
  return Float64Array.from(
    normalNoise(p.seed, stream, images.length),
    (z, i) => schedule.alpha(t) * images[i] + schedule.sigma(t) * z,
  );
}

/** 1. Batching: 3 samples in one call = 3 single calls. */
async function batchingCheck(p: Probe): Promise<ModelCheck> {
  const { schedule, d } = p;
  const tMid = Math.sqrt(schedule.tMax * schedule.tMin);
  const x3 = noisy(p, pattern(p.shape, 3).map((v) => p.mid + p.half * v), 0, tMid);
  try {
    const together = await p.denoiser.denoise(x3, tMid);
    let worst = 0;
    let scale = 0;
    for (let b = 0; b < 3; b++) {
      const alone = await p.denoiser.denoise(x3.slice(b * d, (b + 1) * d), tMid);
      for (let i = 0; i < d; i++) {
        worst = Math.max(worst, Math.abs(alone[i] - together[b * d + i]));
        scale = Math.max(scale, Math.abs(alone[i]));
      }
    }
    const ok = worst <= 1e-3 * Math.max(1, scale);
    return {
      name: "batching",
      ok,
      detail:
        `max |one call of 3 − 3 calls of 1| = ${worst.toPrecision(3)} at t = ${
          tMid.toPrecision(4)
        }` + (ok ? "" : ": the network mixes samples of a batch (e.g. batch statistics exported " +
          "in training mode: export after model.eval())"),
    };
  } catch (e) {
    return { name: "batching", ok: false, detail: (e as Error).message };
  }
}

/**
 * Denoises `clean` noised at t (noise stream `stream`) and judges the result; a denoiser that
 * throws fails the `finite` check instead, at `where`.
 */
async function probeAt(
  p: Probe,
  clean: Float64Array,
  stream: number,
  t: number,
  where: string,
  judge: (denoised: Float64Array) => ModelCheck,
): Promise<ModelCheck | ProbeFailure> {
  const x = noisy(p, clean, stream, t);
  try {
    return judge(await p.denoiser.denoise(x, t));
  } catch (e) {
    return { failure: `${where}: ${(e as Error).message}` };
  }
}

/** 2–3. Low noise: near identity (and finite). */
function lowNoiseCheck(
  p: Probe,
  clean: Float64Array,
  identityTolerance: number,
): Promise<ModelCheck | ProbeFailure> {
  const tMin = p.schedule.tMin;
  return probeAt(p, clean, 1, tMin, `at t_min = ${tMin}`, (dLow) => {
    const err = rms(dLow.map((v, i) => v - clean[i])) / rms(clean.map((v) => v - p.mid));
    const ok = err <= identityTolerance;
    return {
      name: "low-noise identity",
      ok,
      detail:
        `RMS(D(x_t) − x) / RMS(x) = ${
          err.toPrecision(3)
        } at t_min = ${tMin} (pass ≤ ${identityTolerance})` +
        (ok ? "" : ": D is not close to the image at the lowest noise; check " +
          "model.prediction (an ε-network read as x0?) and model.time_input (the time on another " +
          "scale, e.g. t against t·1000 or the step index)"),
    };
  });
}

/**
 * 4. High noise: bounded near the data, at σ/α = 10 (or t_max, if that is less noisy). Not at
 * t_max itself: there α is tiny for VP schedules, and an ε-network's small errors, divided by α,
 * push even a good model's D out of range (why DDPM samplers clip x0).
 */
function highNoiseCheck(
  p: Probe,
  clean: Float64Array,
  rangeTolerance: number,
): Promise<ModelCheck | ProbeFailure> {
  const { schedule } = p;
  const tHigh = Math.min(schedule.tMax, schedule.inverseLambda(-Math.log(10)));
  const ratio = schedule.sigma(tHigh) / schedule.alpha(tHigh);
  return probeAt(p, clean, 2, tHigh, `at t = ${tHigh}`, (dHigh) => {
    const size = rms(dHigh.map((v) => v - p.mid)) / p.half;
    const ok = size <= rangeTolerance;
    const measured = `RMS(D(x_t)) = ${size.toPrecision(3)} data half-ranges at σ/α = ` +
      `${ratio.toPrecision(3)} (pass ≤ ${rangeTolerance})`;
    return {
      name: "high-noise range",
      ok,
      detail: measured + (ok ? "" : ": D is far outside the data at high noise; check " +
        "model.prediction (an x0- or v-network read as ε?), the schedule and data_range"),
    };
  });
}

/** Finite at t_max too: where every sampler starts. */
async function finiteAtTMax(p: Probe): Promise<ProbeFailure | undefined> {
  const tMax = p.schedule.tMax;
  const xT = Float64Array.from(normalNoise(p.seed, 4, 2 * p.d), (z) => p.schedule.priorScale * z);
  try {
    await p.denoiser.denoise(xT, tMax);
    return undefined;
  } catch (e) {
    return { failure: `at t_max = ${tMax}: ${(e as Error).message}` };
  }
}

/** Timing: the median of three calls on one batch (NaN when the first fails). */
async function medianCallMs(p: Probe, batch: number): Promise<number> {
  const { schedule } = p;
  const tMid = Math.sqrt(schedule.tMax * schedule.tMin);
  const xb = Float64Array.from(normalNoise(p.seed, 3, batch * p.d), (z) => schedule.priorScale * z);
  const times: number[] = [];
  for (let k = 0; k < 3; k++) {
    const t0 = performance.now();
    try {
      await p.denoiser.denoise(xb, tMid);
    } catch {
      break;
    }
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times.length ? times[Math.floor(times.length / 2)] : NaN;
}

/** The report as lines: one per check (`ok` / `FAIL`), then the timing. */
export function formatModelCheck(report: ModelCheckReport): string {
  const width = Math.max(...report.checks.map((c) => c.name.length));
  const lines = report.checks.map((c) =>
    `${c.ok ? "ok  " : "FAIL"}  ${c.name.padEnd(width)}  ${c.detail}`
  );
  lines.push(
    `${report.model}: ${
      Number.isFinite(report.msPerCall) ? report.msPerCall.toFixed(1) : "—"
    } ms ` +
      `per denoiser call on ${report.batch} samples; ` +
      (report.ok ? "the config describes the network plausibly" : "see the failed checks above"),
  );
  return lines.join("\n");
}
