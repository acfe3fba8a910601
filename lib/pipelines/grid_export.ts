/**
 * Export of a learned (or any) grid file to the schedule formats other samplers take.
 *
 * - `comfyui`: a ComfyUI `SIGMAS` list: the N+1 noise levels, descending, then a trailing 0
 *   (the value a custom-sigmas node expects, comma separated).
 * - `diffusers-sigmas`: the `sigmas=[…]` argument of a diffusers pipeline call (floats ending
 *   in 0.0).
 * - `diffusers-timesteps`: the `timesteps=[…]` argument: integer training steps, one per
 *   solver step (the start of each interval; the last interval ends at step 0). Only discrete
 *   VP (`vp_discrete`) schedules have training steps.
 * - `k-diffusion`: the `sigmas` tensor k-diffusion's samplers take (trailing 0), as a JSON list.
 *
 * Noise levels are the EDM-equivalent σ/α of the step grid `t1` (what ComfyUI, k-diffusion and
 * diffusers' Karras-style schedulers use), except for rectified flows, whose tools use σ = t.
 * None of these formats can carry LD3's decoupled evaluation times `t2`: when `t2 ≠ t1` the
 * export drops them and says so in {@linkcode ScheduleExport.warning}.
 *
 * @module
 */
import type { GridFile } from "../io/grid_file.ts";
import type { NoiseSchedule } from "../noise_schedule.ts";
import { checkValue, type OptionDeclarations } from "../options.ts";

/** The target formats. */
export type ExportFormat = "comfyui" | "diffusers-sigmas" | "diffusers-timesteps" | "k-diffusion";

/** Every {@linkcode ExportFormat}, for CLIs. */
export const EXPORT_FORMATS: readonly ExportFormat[] = [
  "comfyui",
  "diffusers-sigmas",
  "diffusers-timesteps",
  "k-diffusion",
];

/** `--format`: the target of {@linkcode exportSchedule} (`deno task export-schedule`). */
export const EXPORT_OPTIONS = {
  format: {
    flag: "format",
    kind: "string",
    choices: EXPORT_FORMATS,
    required: true,
    help: "target format",
  },
} as const satisfies OptionDeclarations;

/** Options of {@linkcode exportSchedule}. */
export interface ExportScheduleOptions {
  /**
   * The model's schedule: recomputes σ from the times instead of trusting the file's
   * informational `sigma1`, and must match the file's schedule kind. @default {undefined}
   */
  schedule?: NoiseSchedule;
}

/** An exported schedule. */
export interface ScheduleExport {
  /** The format. */
  format: ExportFormat;
  /** The numbers: sigmas with their trailing 0, or integer timesteps. */
  values: number[];
  /** What to paste into the other tool (one line). */
  text: string;
  /** Set when the file's decoupled times `t2` differ from `t1` and were dropped. */
  warning?: string;
}

/** Largest relative |t2 − t1| treated as equal (θ2 = 0 reproduces t1 to the last bit). */
const DECOUPLED_TOLERANCE = 1e-12;

/** Whether a grid file's evaluation grid differs from its step grid. */
export function hasDecoupledTimes(file: Pick<GridFile, "t1" | "t2">): boolean {
  return file.t1.some((t, k) =>
    Math.abs(file.t2[k] - t) > DECOUPLED_TOLERANCE * Math.max(Math.abs(t), 1e-300)
  );
}

/** The descending noise levels of the step grid, without the trailing 0. */
export function exportSigmas(file: GridFile, options: ExportScheduleOptions = {}): number[] {
  const kind = file.schedule.kind;
  if (options.schedule && options.schedule.kind !== kind) {
    throw new RangeError(
      `Grid file was made for a "${kind}" schedule, the config uses "${options.schedule.kind}"`,
    );
  }
  let sigmas: number[];
  let ends: [number, number] | undefined;
  const { tMax, tMin } = file.schedule;
  if (kind === "flow") {
    sigmas = [...file.t1];
    ends = [tMax, tMin];
  } else if (options.schedule) {
    // σ/α directly: exact for VE, where e^{−λ} would add round-off.
    const s = options.schedule;
    const ratio = (t: number) => s.sigma(t) / s.alpha(t);
    sigmas = file.t1.map(ratio);
    ends = [ratio(tMax), ratio(tMin)];
  } else {
    sigmas = [...file.sigma1];
    if (kind === "ve") ends = [tMax, tMin];
  }
  // A learned grid's endpoints can carry round-off from λ⁻¹(λ(T)): report the model's exact
  // noise range instead (other tools compare sigma_max/sigma_min to their own).
  if (ends) {
    const last = sigmas.length - 1;
    if (Math.abs(sigmas[0] - ends[0]) <= ENDPOINT_SNAP * ends[0]) sigmas[0] = ends[0];
    if (Math.abs(sigmas[last] - ends[1]) <= ENDPOINT_SNAP * ends[1]) sigmas[last] = ends[1];
  }
  return sigmas;
}

/** Relative distance below which an endpoint is snapped to the schedule's exact one. */
const ENDPOINT_SNAP = 1e-9;

/**
 * Integer training steps `round((t − 1/Nd)·Nd)` of the first N grid points of a `vp_discrete`
 * grid (`Nd = 1/tMin`, the schedule's number of training steps).
 *
 * @throws {RangeError} For another schedule kind, or when two steps round to the same integer.
 */
export function exportTimesteps(file: GridFile): number[] {
  if (file.schedule.kind !== "vp_discrete") {
    throw new RangeError(
      `Format diffusers-timesteps needs a discrete VP schedule (vp_discrete): the grid file has "${file.schedule.kind}"`,
    );
  }
  const nd = Math.round(1 / file.schedule.tMin);
  const steps = file.t1.slice(0, -1).map((t) => Math.round((t - 1 / nd) * nd));
  for (let k = 1; k < steps.length; k++) {
    if (!(steps[k] < steps[k - 1])) {
      throw new RangeError(
        `Grid steps ${k - 1} and ${k} round to the same training step ${
          steps[k]
        }: use diffusers-sigmas instead`,
      );
    }
  }
  return steps;
}

function floatList(values: readonly number[]): string {
  // Integers keep a ".0" so Python reads floats.
  return values.map((v) => Number.isInteger(v) ? v.toFixed(1) : String(v)).join(", ");
}

/**
 * Exports a grid file's step grid to `format`.
 *
 * @example
 * ```ts
 * import { makeGridFile } from "../io/grid_file.ts";
 * import { veSchedule } from "../noise_schedule.ts";
 * const file = makeGridFile(veSchedule(), { t1: Float64Array.of(80, 1, 0.002), t2: Float64Array.of(80, 1, 0.002) });
 * console.log(exportSchedule(file, "comfyui").text); // "80.0, 1.0, 0.002, 0.0"
 * ```
 */
export function exportSchedule(
  file: GridFile,
  format: ExportFormat,
  options: ExportScheduleOptions = {},
): ScheduleExport {
  checkValue(EXPORT_OPTIONS.format, format, "format");
  let values: number[];
  let text: string;
  switch (format) {
    case "comfyui":
      values = [...exportSigmas(file, options), 0];
      text = floatList(values);
      break;
    case "diffusers-sigmas":
      values = [...exportSigmas(file, options), 0];
      text = `sigmas=[${floatList(values)}]`;
      break;
    case "k-diffusion":
      values = [...exportSigmas(file, options), 0];
      text = `[${floatList(values)}]`;
      break;
    case "diffusers-timesteps":
      values = exportTimesteps(file);
      text = `timesteps=[${values.join(", ")}]`;
      break;
    default:
      throw new RangeError(`format must be one of ${EXPORT_FORMATS.join(", ")}: got "${format}"`);
  }
  const out: ScheduleExport = { format, values, text };
  if (hasDecoupledTimes(file)) {
    out.warning = `The grid has decoupled evaluation times (t2 ≠ t1, LD3's θ2): ${format} ` +
      `cannot express them, so they are dropped and the exported schedule is not exactly the ` +
      `learned one; sample with ld3 (--load_from) to use them`;
  }
  return out;
}
