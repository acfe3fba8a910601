/**
 * Align Your Steps (Sabour, Fidler and Kreis 2024, "Align Your Steps: Optimizing Sampling
 * Schedules in Diffusion Models"): the published 10-step schedules of Stable Diffusion 1.5,
 * SDXL and Stable Video Diffusion (the paper's Table 3, noise levels σ from σ_max to σ_min),
 * and the paper's log-linear interpolation to other step counts.
 *
 * A table belongs to a model, so it is only offered for a schedule whose noise range is the
 * table's (within 2 %, the tables are rounded to three decimals): SD 1.5 and SDXL share Stable
 * Diffusion's discrete scaled-linear schedule (σ 14.61 → 0.0292), SVD is EDM-style VE with
 * σ 700 → 0.002. Any other schedule is refused with a line that says which ranges exist.
 *
 * @module
 */
import { type NoiseSchedule, sigmaOf, timeOfSigma } from "./noise_schedule.ts";

/** The models AYS published schedules for. */
export type AysModel = "sd1.5" | "sdxl" | "svd";

/** Every {@linkcode AysModel}, in the order a schedule is matched against them. */
export const AYS_MODELS: readonly AysModel[] = ["sd1.5", "sdxl", "svd"];

/** The published 10-step schedules (11 noise levels, largest first), Sabour et al. 2024, Table 3. */
export const AYS_SIGMAS: Readonly<Record<AysModel, readonly number[]>> = {
  "sd1.5": [14.615, 6.475, 3.861, 2.697, 1.886, 1.396, 0.963, 0.652, 0.399, 0.152, 0.029],
  "sdxl": [14.615, 6.315, 3.771, 2.181, 1.342, 0.862, 0.555, 0.380, 0.234, 0.113, 0.029],
  "svd": [700.00, 54.5, 15.886, 7.977, 4.248, 1.789, 0.981, 0.403, 0.173, 0.034, 0.002],
};

/** Relative tolerance on the ends of a table against a schedule's σ range. */
const RANGE_TOLERANCE = 0.02;

/**
 * The AYS noise levels for `steps` steps: the table's log σ interpolated linearly at
 * `steps + 1` evenly spaced positions (the paper's log-linear interpolation; the table itself
 * for 10 steps).
 *
 * @example
 * ```ts
 * console.log(Array.from(aysSigmas("sd1.5", 2)).map((s) => s.toFixed(3))); // ["14.615", "1.396", "0.029"]
 * ```
 */
export function aysSigmas(model: AysModel, steps: number): Float64Array {
  checkModel(model);
  if (!(Number.isInteger(steps) && steps >= 1)) {
    throw new RangeError(`steps must be an integer >= 1: got ${steps}`);
  }
  const table = AYS_SIGMAS[model];
  const last = table.length - 1;
  const out = new Float64Array(steps + 1);
  for (let k = 0; k <= steps; k++) {
    const x = (k / steps) * last;
    const j = Math.min(Math.floor(x), last - 1);
    const w = x - j;
    out[k] = Math.exp((1 - w) * Math.log(table[j]) + w * Math.log(table[j + 1]));
  }
  return out;
}

function checkModel(model: string): asserts model is AysModel {
  if (!(AYS_MODELS as readonly string[]).includes(model)) {
    throw new RangeError(`AYS model must be one of ${AYS_MODELS.join(", ")}: got "${model}"`);
  }
}

/** Whether a table's σ range is the schedule's (both ends within 2 %). */
export function aysMatches(schedule: NoiseSchedule, model: AysModel): boolean {
  const table = AYS_SIGMAS[model];
  const close = (a: number, b: number) => Math.abs(a / b - 1) <= RANGE_TOLERANCE;
  return close(sigmaOf(schedule, schedule.tMax), table[0]) &&
    close(sigmaOf(schedule, schedule.tMin), table[table.length - 1]);
}

/** The AYS models whose tables fit the schedule, in {@linkcode AYS_MODELS} order. */
export function aysModelsFor(schedule: NoiseSchedule): AysModel[] {
  return AYS_MODELS.filter((m) => aysMatches(schedule, m));
}

/** Options of {@linkcode aysGrid}. */
export interface AysGridOptions {
  /** Whose table. @default {the first whose σ range is the schedule's (sd1.5 for SD's)} */
  model?: AysModel;
}

/** The line that refuses AYS for a schedule, naming the ranges that exist. */
function refusal(schedule: NoiseSchedule, model?: AysModel): string {
  const lo = sigmaOf(schedule, schedule.tMin).toPrecision(3);
  const hi = sigmaOf(schedule, schedule.tMax).toPrecision(4);
  const ranges = AYS_MODELS.map((m) => {
    const t = AYS_SIGMAS[m];
    return `${m} ${t[t.length - 1]}…${t[0]}`;
  }).join(", ");
  const what = model ? `the ${model} table does not fit` : "AYS has no table for";
  return `skip_type ays: ${what} this model's ${schedule.kind} schedule (σ ${lo}…${hi}); ` +
    `AYS publishes schedules for ${ranges}`;
}

/**
 * The AYS grid for a schedule: the interpolated noise levels of its table, mapped to times; the
 * ends are the schedule's own T and eps (the tables round them).
 *
 * @throws {RangeError} When no table (or the named one) fits the schedule's σ range.
 * @example
 * ```ts
 * import { discreteBetas, vpDiscreteSchedule } from "./noise_schedule.ts";
 * const sd = vpDiscreteSchedule({ betas: discreteBetas("scaled_linear") });
 * console.log(aysGrid(sd, 10).length); // 11
 * ```
 */
export function aysGrid(
  schedule: NoiseSchedule,
  steps: number,
  options: AysGridOptions = {},
): Float64Array {
  if (options.model !== undefined) checkModel(options.model);
  const model = options.model ?? aysModelsFor(schedule)[0];
  if (model === undefined || !aysMatches(schedule, model)) {
    throw new RangeError(refusal(schedule, options.model));
  }
  const sigmas = aysSigmas(model, steps);
  const out = Float64Array.from(sigmas, (s) => timeOfSigma(schedule, s));
  out[0] = schedule.tMax;
  out[steps] = schedule.tMin;
  for (let k = 1; k <= steps; k++) {
    if (!(out[k] < out[k - 1])) {
      throw new RangeError(`skip_type ays: ${model}'s levels are not decreasing at step ${k}`);
    }
  }
  return out;
}
