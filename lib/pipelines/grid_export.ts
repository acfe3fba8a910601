/**
 * Export of a learned (or any) grid file to the step schedules other samplers take. Each format is
 * named after the one consumer it was checked against, and {@linkcode EXPORT_TARGETS} says what
 * that consumer does with the numbers: their units, whether it expects a trailing 0 or appends it
 * itself, whether it shifts them, and which schedule kinds it can run at all.
 *
 * | format                 | consumer                                                              |
 * | ---------------------- | --------------------------------------------------------------------- |
 * | `comfyui`              | ComfyUI's `ManualSigmas` node → `SamplerCustom(Advanced)` `sigmas`    |
 * | `k-diffusion`          | `sigmas` of k-diffusion's `sample_*` functions                        |
 * | `diffusers-euler`      | `EulerDiscreteScheduler`, `pipe(…, sigmas=[…])` (VP models)           |
 * | `diffusers-flow-euler` | `FlowMatchEulerDiscreteScheduler`, `pipe(…, sigmas=[…])` (flow)       |
 * | `diffusers-flow-unipc` | `UniPCMultistepScheduler(use_flow_sigmas=True)`, `sigmas=[…]` (flow)  |
 * | `diffusers-edm-euler`  | `EDMEulerScheduler`, `pipe(…, sigmas=torch.tensor(ramp))` (VE/EDM)    |
 * | `diffusers-dpmsolver`  | `DPMSolverMultistepScheduler`, `pipe(…, timesteps=[…])` (discrete VP) |
 *
 * Every format hands its consumer the learned N steps and then the one step from the last learned
 * noise level to 0 that all these consumers end with (N+1 network calls; ld3 itself stops at
 * `t_min`). Where a consumer appends that 0 itself, the export leaves it out. A schedule kind the consumer
 * cannot run is refused with a message naming the format that can; where the consumer only
 * approximates the learned grid (rounded training steps, a continuous schedule looked up in a
 * discrete table) the export says so in {@linkcode ScheduleExport.warnings}. None of these formats
 * can carry LD3's decoupled evaluation times `t2`: when `t2 ≠ t1` the export drops them and warns.
 * The old names `diffusers-sigmas` and `diffusers-timesteps` still work for one release, with a
 * deprecation warning. `docs/export.md` has the table with usage snippets.
 *
 * @module
 */
import type { GridFile } from "../io/grid_file.ts";
import type { NoiseSchedule, ScheduleKind } from "../noise_schedule.ts";
import { checkValue, type OptionDeclarations } from "../options.ts";
import {
  type ConsumerFormat,
  DEPRECATED_EXPORT_FORMATS,
  type DeprecatedExportFormat,
  EXPORT_FORMATS,
  EXPORT_TARGETS,
  type ExportFormat,
} from "./export_targets.ts";

export {
  type ConsumerFormat,
  DEPRECATED_EXPORT_FORMATS,
  type DeprecatedExportFormat,
  EXPORT_FORMATS,
  EXPORT_TARGETS,
  type ExportFormat,
  type ExportTarget,
  type FormatSupport,
} from "./export_targets.ts";

/** `--format`: the target of {@linkcode exportSchedule} (`deno task export-schedule`). */
export const EXPORT_OPTIONS = {
  format: {
    flag: "format",
    kind: "string",
    choices: [...EXPORT_FORMATS, "diffusers-sigmas", "diffusers-timesteps"],
    required: true,
    help: "target format, named after its consumer (docs/export.md); diffusers-sigmas and " +
      "diffusers-timesteps are deprecated names",
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
  /** The format (a deprecated name is reported as the format it now means). */
  format: ConsumerFormat;
  /** Who takes the numbers: {@linkcode ExportTarget.consumer}. */
  consumer: string;
  /** Its conventions: {@linkcode ExportTarget.conventions}. */
  conventions: readonly string[];
  /** The numbers, as the consumer takes them (sigmas, flow times, a ramp or training steps). */
  values: number[];
  /** What to paste into the other tool (one line). */
  text: string;
  /** How to use {@linkcode text} there: lines of a snippet or of node wiring. */
  usage: string[];
  /** One line each: where the consumer will not reproduce the learned grid exactly, and why. */
  warnings: string[];
  /**
   * The warnings as one string, when there are any.
   * @deprecated Use {@linkcode warnings}; kept for one release.
   */
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

function checkScheduleKind(file: GridFile, options: ExportScheduleOptions): void {
  const kind = file.schedule.kind;
  if (options.schedule && options.schedule.kind !== kind) {
    throw new RangeError(
      `Grid file was made for a "${kind}" schedule, the config uses "${options.schedule.kind}"`,
    );
  }
}

/** Relative distance below which an endpoint is snapped to the schedule's exact one. */
const ENDPOINT_SNAP = 1e-9;

/**
 * A learned grid's endpoints can carry round-off from λ⁻¹(λ(T)): report the model's exact noise
 * range instead (other tools compare sigma_max/sigma_min to their own).
 */
function snapEnds(values: number[], ends: [number, number]): number[] {
  const last = values.length - 1;
  if (Math.abs(values[0] - ends[0]) <= ENDPOINT_SNAP * ends[0]) values[0] = ends[0];
  if (Math.abs(values[last] - ends[1]) <= ENDPOINT_SNAP * ends[1]) values[last] = ends[1];
  return values;
}

/**
 * The descending noise levels σ/α (EDM form) of the step grid, without a trailing 0: what
 * k-diffusion's samplers and diffusers' VP and EDM schedulers step through, for every kind.
 */
export function edmSigmas(file: GridFile, options: ExportScheduleOptions = {}): number[] {
  checkScheduleKind(file, options);
  const { kind, tMax, tMin } = file.schedule;
  if (kind === "flow") {
    const ratio = (t: number) => t / (1 - t);
    return snapEnds(file.t1.map(ratio), [ratio(tMax), ratio(tMin)]);
  }
  if (options.schedule) {
    // σ/α directly: exact for VE, where e^{−λ} would add round-off.
    const s = options.schedule;
    const ratio = (t: number) => s.sigma(t) / s.alpha(t);
    return snapEnds(file.t1.map(ratio), [ratio(tMax), ratio(tMin)]);
  }
  const sigmas = [...file.sigma1];
  return kind === "ve" ? snapEnds(sigmas, [tMax, tMin]) : sigmas;
}

/**
 * The descending noise levels of the step grid in the units ComfyUI and diffusers' flow
 * schedulers use, without a trailing 0: σ/α ({@linkcode edmSigmas}), except for rectified flows,
 * whose tools take the flow time σ = t.
 */
export function exportSigmas(file: GridFile, options: ExportScheduleOptions = {}): number[] {
  checkScheduleKind(file, options);
  if (file.schedule.kind !== "flow") return edmSigmas(file, options);
  return snapEnds([...file.t1], [file.schedule.tMax, file.schedule.tMin]);
}

/**
 * The training steps `(t − 1/Nd)·Nd` of all N+1 grid points of a `vp_discrete` grid, not rounded
 * (`Nd = 1/tMin`, the schedule's number of training steps): step Nd − 1 at t = 1, step 0 at tMin.
 *
 * @throws {RangeError} For another schedule kind.
 */
export function exportTrainingSteps(file: GridFile): number[] {
  if (file.schedule.kind !== "vp_discrete") {
    throw new RangeError(
      `Training steps need a discrete VP schedule (vp_discrete): the grid file has "${file.schedule.kind}"`,
    );
  }
  const nd = Math.round(1 / file.schedule.tMin);
  return file.t1.map((t) => (t - 1 / nd) * nd);
}

/**
 * Integer training steps `round((t − 1/Nd)·Nd)` of the first N grid points of a `vp_discrete`
 * grid (`Nd = 1/tMin`, the schedule's number of training steps). The `diffusers-dpmsolver`
 * format adds the step of the last point (0 at tMin).
 *
 * @throws {RangeError} For another schedule kind, or when two steps round to the same integer.
 */
export function exportTimesteps(file: GridFile): number[] {
  return roundedSteps(exportTrainingSteps(file).slice(0, -1));
}

function roundedSteps(steps: readonly number[]): number[] {
  const rounded = steps.map(Math.round);
  for (let k = 1; k < rounded.length; k++) {
    if (!(rounded[k] < rounded[k - 1])) {
      throw new RangeError(
        `Grid steps ${k - 1} and ${k} round to the same training step ${
          rounded[k]
        }: use diffusers-euler instead`,
      );
    }
  }
  return rounded;
}

/**
 * A number as a plain decimal that reads back to the same float: shortest round-trip digits,
 * never an exponent (ComfyUI's ManualSigmas pattern would split `1e-07` into two numbers), and
 * integers with a `.0` so Python reads floats.
 */
export function plainDecimal(v: number): string {
  if (!Number.isFinite(v)) throw new RangeError(`Cannot write ${v} as a decimal`);
  const s = String(v);
  const m = /^(-?)(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(s);
  if (!m) return Number.isInteger(v) ? `${s}.0` : s;
  const [, sign, lead, frac = "", expText] = m;
  const exp = Number(expText);
  const digits = lead + frac;
  if (exp < 0) return `${sign}0.${"0".repeat(-exp - 1)}${digits}`;
  return `${sign}${digits}${"0".repeat(Math.max(0, exp - frac.length))}.0`;
}

function decimalList(values: readonly number[]): string {
  return values.map(plainDecimal).join(", ");
}

/** What a format's builder returns. */
interface Built {
  values: number[];
  text: string;
  usage: string[];
  /**
   * For a kind the format only approximates: the warning with this grid's numbers, or null when
   * this grid is not affected; absent: the support table's reason.
   */
  kindWarning?: string | null;
}

/** `[pipe.scheduler = …, image = pipe(prompt, <arg>)…]` for a diffusers scheduler. */
function diffusersUsage(scheduler: string, kwargs: string, arg: string): string[] {
  return [
    `from diffusers import ${scheduler}`,
    `pipe.scheduler = ${scheduler}.from_config(pipe.scheduler.config${
      kwargs ? ", " + kwargs : ""
    })`,
    `image = pipe(prompt, ${arg}).images[0]`,
  ];
}

function buildComfyui(file: GridFile, options: ExportScheduleOptions): Built {
  const values = [...exportSigmas(file, options), 0];
  const text = decimalList(values);
  let kindWarning: string | null | undefined;
  if (file.schedule.kind === "vp_discrete") {
    const off = Math.max(...exportTrainingSteps(file).map((s) => Math.abs(s - Math.round(s))));
    kindWarning = off > 1e-6
      ? "ComfyUI gives a discrete-time network the training step nearest to each σ: this " +
        `grid's times lie up to ${off.toFixed(2)} steps from a whole one, and reach the network ` +
        "rounded while the sampler keeps the exact σ"
      : null;
  }
  const sampler = file.solver ? ` (${file.solver})` : "";
  return {
    values,
    text,
    usage: [
      `ManualSigmas node, sigmas: ${text}`,
      "ManualSigmas SIGMAS → sigmas of SamplerCustom (or SamplerCustomAdvanced); in " +
      `KSamplerSelect pick the sampler of the grid's solver${sampler}`,
    ],
    kindWarning,
  };
}

function buildKDiffusion(file: GridFile, options: ExportScheduleOptions): Built {
  const values = [...edmSigmas(file, options), 0];
  const text = `[${decimalList(values)}]`;
  return {
    values,
    text,
    usage: [
      `sigmas = torch.tensor(${text}, device=device)`,
      "x = torch.randn(shape, device=device) * sigmas[0]",
      "samples = k_diffusion.sampling.sample_euler(denoiser, x, sigmas)  # denoiser: the " +
      "model in a k-diffusion wrapper; the sampler of the grid's solver",
    ],
  };
}

function buildDiffusersEuler(file: GridFile, options: ExportScheduleOptions): Built {
  const values = [...edmSigmas(file, options), 0];
  const text = `sigmas=[${decimalList(values)}]`;
  return {
    values,
    text,
    usage: diffusersUsage("EulerDiscreteScheduler", "", text),
  };
}

/** Settings that keep a flow scheduler from reshaping given sigmas after its shift. */
const NO_SIGMA_REWRITES =
  "shift_terminal=None, use_karras_sigmas=False, use_exponential_sigmas=False, " +
  "use_beta_sigmas=False";

function buildFlowEuler(file: GridFile, options: ExportScheduleOptions): Built {
  const values = exportSigmas(file, options);
  const text = `sigmas=[${decimalList(values)}]`;
  const kwargs = `shift=1.0, use_dynamic_shifting=False, ${NO_SIGMA_REWRITES}`;
  return {
    values,
    text,
    usage: diffusersUsage("FlowMatchEulerDiscreteScheduler", kwargs, text),
  };
}

function buildFlowUniPc(file: GridFile, options: ExportScheduleOptions): Built {
  const values = exportSigmas(file, options);
  const text = `sigmas=np.array([${decimalList(values)}])`;
  const learned = file.solver === "uni_pc" ? file.solverOptions ?? {} : {};
  const order = typeof learned.order === "number" ? learned.order : 3;
  const variant = learned.variant === "bh2" ? "bh2" : "bh1";
  const kwargs = `use_flow_sigmas=True, prediction_type="flow_prediction", flow_shift=1.0, ` +
    `use_dynamic_shifting=False, final_sigmas_type="zero", solver_order=${order}, ` +
    `solver_type="${variant}", ${NO_SIGMA_REWRITES}`;
  // As the scheduler does it: the float64 array times 1000, cast to int64.
  const network = values.map((t) => Math.trunc(t * 1000) / 1000);
  const off = Math.max(...values.map((t, k) => t - network[k]));
  return {
    values,
    text,
    usage: ["import numpy as np", ...diffusersUsage("UniPCMultistepScheduler", kwargs, text)],
    kindWarning: off > 1e-9
      ? "UniPCMultistepScheduler steps with the exact t but gives the network int(1000·t): up " +
        `to ${plainDecimal(Number(off.toPrecision(2)))} below the learned t here`
      : null,
  };
}

/** The Karras ramp of EDMEulerScheduler for `sigmas` with ρ = 7 and their own ends. */
export function edmRamp(sigmas: readonly number[], rho = 7): number[] {
  const inv = (s: number) => Math.pow(s, 1 / rho);
  const max = inv(sigmas[0]);
  const min = inv(sigmas[sigmas.length - 1]);
  const ramp = sigmas.map((s) => (inv(s) - max) / (min - max));
  ramp[0] = 0;
  ramp[ramp.length - 1] = 1;
  return ramp;
}

function buildEdmEuler(file: GridFile, options: ExportScheduleOptions): Built {
  const sigmas = edmSigmas(file, options);
  const values = edmRamp(sigmas);
  const text = `sigmas=torch.tensor([${decimalList(values)}], dtype=torch.float64)`;
  const kwargs = `sigma_min=${plainDecimal(sigmas[sigmas.length - 1])}, ` +
    `sigma_max=${plainDecimal(sigmas[0])}, rho=7.0, sigma_schedule="karras", ` +
    `final_sigmas_type="zero"`;
  return {
    values,
    text,
    usage: ["import torch", ...diffusersUsage("EDMEulerScheduler", kwargs, text)],
  };
}

function buildDpmSolver(file: GridFile): Built {
  const steps = exportTrainingSteps(file);
  const values = roundedSteps(steps);
  const text = `timesteps=[${values.join(", ")}]`;
  const learned = file.solver === "dpm_solver++" ? file.solverOptions ?? {} : {};
  const order = typeof learned.order === "number" ? learned.order : 3;
  const kwargs = `algorithm_type="dpmsolver++", solver_order=${order}, ` +
    `final_sigmas_type="zero", use_karras_sigmas=False, use_lu_lambdas=False, ` +
    `use_exponential_sigmas=False, use_beta_sigmas=False, use_flow_sigmas=False`;
  const off = Math.max(...steps.map((s, k) => Math.abs(s - values[k])));
  return {
    values,
    text,
    usage: diffusersUsage("DPMSolverMultistepScheduler", kwargs, text),
    kindWarning: off > 1e-6
      ? "DPMSolverMultistepScheduler takes whole training steps: the learned times are " +
        `rounded, moving them by up to ${off.toFixed(2)} steps (diffusers-euler keeps them exact)`
      : null,
  };
}

function build(format: ConsumerFormat, file: GridFile, options: ExportScheduleOptions): Built {
  switch (format) {
    case "comfyui":
      return buildComfyui(file, options);
    case "k-diffusion":
      return buildKDiffusion(file, options);
    case "diffusers-euler":
      return buildDiffusersEuler(file, options);
    case "diffusers-flow-euler":
      return buildFlowEuler(file, options);
    case "diffusers-flow-unipc":
      return buildFlowUniPc(file, options);
    case "diffusers-edm-euler":
      return buildEdmEuler(file, options);
    case "diffusers-dpmsolver":
      return buildDpmSolver(file);
  }
}

/** The format a (possibly deprecated) name means for a grid of schedule kind `kind`. */
export function resolveExportFormat(format: ExportFormat, kind: ScheduleKind): ConsumerFormat {
  if (format === "diffusers-sigmas") {
    return kind === "flow" ? "diffusers-flow-euler" : "diffusers-euler";
  }
  if (format === "diffusers-timesteps") return "diffusers-dpmsolver";
  return format;
}

/** The warnings: old name, schedule kind, solver, decoupled times. */
function exportWarnings(
  format: ExportFormat,
  target: ConsumerFormat,
  file: GridFile,
  built: Built,
): string[] {
  const out: string[] = [];
  if (format in DEPRECATED_EXPORT_FORMATS) {
    out.push(
      `format ${format} is deprecated and will be removed: use ` +
        DEPRECATED_EXPORT_FORMATS[format as DeprecatedExportFormat],
    );
  }
  const spec = EXPORT_TARGETS[target];
  const support = spec.support[file.schedule.kind];
  if (support.status === "warned") {
    const generic = `${target} with a ${file.schedule.kind} grid: ${support.why}`;
    const warning = built.kindWarning === undefined ? generic : built.kindWarning;
    if (warning) out.push(warning);
  }
  if (spec.solver && file.solver && file.solver !== spec.solver) {
    out.push(
      `the grid was learned for ${file.solver}, and ${target} steps with ${spec.solver}: grids ` +
        `are solver-specific, so expect less than the learned quality`,
    );
  }
  if (hasDecoupledTimes(file)) {
    out.push(
      `The grid has decoupled evaluation times (t2 ≠ t1, LD3's θ2): ${target} cannot express ` +
        `them, so they are dropped and the exported schedule is not exactly the learned one; ` +
        `sample with ld3 (--load_from) to use them`,
    );
  }
  return out;
}

/**
 * Exports a grid file's step grid to `format`.
 *
 * @throws {RangeError} When the format's consumer cannot run grids of the file's schedule kind
 * (the message names the format that can), or for an unknown format.
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
  checkScheduleKind(file, options);
  const kind = file.schedule.kind;
  const target = resolveExportFormat(format, kind);
  const spec = EXPORT_TARGETS[target];
  const support = spec.support[kind];
  if (support.status === "refused") {
    throw new RangeError(
      `Format ${target} (${spec.name}) cannot run a "${kind}" grid: ${support.why}`,
    );
  }
  const built = build(target, file, options);
  const warnings = exportWarnings(format, target, file, built);
  const out: ScheduleExport = {
    format: target,
    consumer: spec.consumer,
    conventions: spec.conventions,
    values: built.values,
    text: built.text,
    usage: built.usage,
    warnings,
  };
  if (warnings.length > 0) out.warning = warnings.join("; ");
  return out;
}
