/**
 * What an evaluation opens besides the model, shared by `evaluate.ts` and the schedule
 * benchmark (`grid_bench.ts`), which opens them once for all its cells: the feature model of
 * FID, the FID reference statistics, and the exact solution of a Gaussian-mixture model.
 *
 * @module
 */
import type { InputRange } from "../onnx/config.ts";
import { type FeatureModel, loadFeatureModel } from "../metrics/features.ts";
import { type FeatureStats, readFidRefs } from "../metrics/fid.ts";
import { type Gmm, gmmReferenceSolve } from "../gmm.ts";
import type { NoiseSchedule } from "../noise_schedule.ts";

/** A feature-extractor ONNX model for FID (the config section `eval.features`, camel-cased). */
export interface FeatureModelSpec {
  /** Path of the ONNX file. */
  path: string;
  /** Image input name. @default {"image"} */
  input?: string;
  /** Feature output name. @default {"features"} */
  output?: string;
  /** Value range the model expects. @default {"[-1,1]"} */
  inputRange?: InputRange;
}

/** Whether `f` is an opened feature model rather than the spec of one to open. */
export function isFeatureModel(f: FeatureModelSpec | FeatureModel): f is FeatureModel {
  return typeof (f as FeatureModel).features === "function";
}

/** A feature model ready to run, and whether it was opened here (then its opener closes it). */
export interface OpenedFeatureModel {
  model: FeatureModel;
  owned: boolean;
}

/**
 * The feature model of a spec, loaded for images of `imageShape` with `threads` CPU threads, or
 * an already loaded one as it is (not owned: its caller closes it).
 */
export async function openFeatureModel(
  features: FeatureModelSpec | FeatureModel,
  imageShape: readonly number[],
  threads?: number,
): Promise<OpenedFeatureModel> {
  if (isFeatureModel(features)) return { model: features, owned: false };
  const model = await loadFeatureModel(features.path, {
    inputName: features.input,
    outputName: features.output,
    inputRange: features.inputRange,
    sampleShape: imageShape,
    intraOpNumThreads: threads,
  });
  return { model, owned: true };
}

/** FID reference statistics: read from an `.npz` path, or the statistics themselves. */
export async function fidReference(ref: string | FeatureStats): Promise<FeatureStats> {
  return typeof ref === "string" ? await readFidRefs(ref) : ref;
}

/**
 * The exact solution of a Gaussian mixture's probability-flow ODE over the whole schedule
 * (`tMax` to `tMin`), by `steps` RK4 steps: the reference of the exact-solution error. It
 * depends on `xT` only, so one solver serves every sample index.
 */
export function gmmExactSolver(
  gmm: Gmm,
  schedule: NoiseSchedule,
  steps: number,
): (xT: Float64Array) => Float64Array {
  return (xT) => gmmReferenceSolve(gmm, xT, schedule.tMax, schedule.tMin, { schedule, steps });
}

/**
 * How results and fingerprints name {@linkcode gmmExactSolver}'s reference: the step count is
 * part of the name, because a different count gives (slightly) different errors.
 */
export function gmmReferenceName(steps: number): string {
  return `gmm_rk4_${steps}`;
}
