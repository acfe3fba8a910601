/**
 * The LD3 teacher dataset (`deno task generate`, the reference tool's `gen_data.py`): for each
 * sample `i` the standard-normal latent `z_i`, the teacher's output `x_i` (decoded for latent
 * models) and its condition, in the layout of `lib/io/dataset.ts`.
 *
 * @module
 */
import { join } from "node:path";
import { writeFileAtomic } from "../io/atomic.ts";
import {
  datasetDirName,
  type DatasetManifest,
  isSampleComplete,
  openDatasetForWriting,
  PNG_DIR,
  samplePath,
  samplePngPath,
  writeSample,
} from "../io/dataset.ts";
import { sampleSize } from "../denoiser.ts";
import { pathExists } from "../io/fs.ts";
import { imageShapeOf, imagesToPngGrid, imageToPng } from "../io/image.ts";
import { readNpz } from "../io/npz.ts";
import { ProgressBar, type ProgressBarOptions } from "../io/progress.ts";
import type { LoadedModel } from "../onnx/model.ts";
import { declareOptions, type OptionValues, resolveOptions } from "../options.ts";
import { MODEL_OPTIONS, SAMPLER_OPTIONS } from "./options.ts";
import {
  gridRecord,
  type PreparedSampler,
  prepareSampler,
  type SamplerOptions,
  solverRecord,
  validateSamplerOptions,
  withModel,
} from "./sampler.ts";
import { type ConditionInput, type ConditionTable, conditionTable, runBatch } from "./sampling.ts";

/** The options of {@linkcode generateDataset} (`deno task generate`). */
export const GENERATE_OPTIONS = declareOptions({
  ...SAMPLER_OPTIONS,
  totalSamples: {
    flag: "total_samples",
    kind: "integer",
    arg: "N",
    min: 1,
    default: 100,
    help: "samples to generate (M)",
  },
  samplingBatchSize: {
    flag: "sampling_batch_size",
    kind: "integer",
    arg: "N",
    min: 1,
    default: 10,
    help: "samples per solver batch",
  },
  seed: { flag: "seed", kind: "integer", arg: "N", min: 0, default: 0, help: "noise seed" },
  savePng: {
    flag: "save_png",
    kind: "boolean",
    default: false,
    help: "also write png/<i>.png and grid.png (the first 64 samples)",
  },
  dataDir: {
    flag: "data_dir",
    kind: "string",
    arg: "DIR",
    default: "train_data",
    help: "root folder; the dataset goes to <data_dir>/<solver>_NFE<nfe>_<grid kind>/",
  },
  device: MODEL_OPTIONS.device,
  threads: MODEL_OPTIONS.threads,
});

/** Options of {@linkcode generateDataset}: {@linkcode GENERATE_OPTIONS} and these. */
export interface GenerateDatasetOptions
  extends SamplerOptions, Omit<OptionValues<typeof GENERATE_OPTIONS>, "sigmas"> {
  /** Conditions to cycle through (conditional models); one-hot classes 0, 1, … by default. */
  condition?: ConditionInput;
  /** Progress bar options; `false` for none. @default {{}} */
  progress?: ProgressBarOptions | false;
  /** Creation time written to a new manifest. @default {new Date()} */
  created?: Date;
}

/** What {@linkcode generateDataset} did. */
export interface GenerateDatasetResult {
  /** The dataset folder. */
  dir: string;
  /** Its manifest. */
  manifest: DatasetManifest;
  /** Samples computed by this run. */
  generated: number;
  /** Samples already complete and skipped. */
  skipped: number;
  /** Wall time of the sampling loop (solver, decoder and writes) in seconds. */
  seconds: number;
}

/**
 * Writes the LD3 teacher dataset (see `lib/io/dataset.ts` for the layout): for each sample `i`
 * the standard-normal latent `z_i`, the teacher output `x_i` (decoded) and any condition.
 *
 * All options are checked and the model and grid are loaded before the dataset folder is
 * created, so bad input leaves nothing behind. Re-running with the same parameters skips
 * complete samples; a folder made with other parameters is refused.
 *
 * @param model A loaded model or the path of its YAML config.
 */
export async function generateDataset(
  model: LoadedModel | string,
  options: GenerateDatasetOptions = {},
): Promise<GenerateDatasetResult> {
  validateSamplerOptions(options);
  const o = resolveOptions(GENERATE_OPTIONS, { ...options, sigmas: undefined });
  return await withModel(model, { device: o.device, threads: o.threads }, async (m) => {
    const sampler = await prepareSampler(m, options);
    const conditions = conditionTable(m, options.condition);
    const dir = join(o.dataDir, datasetDirName(sampler.solverName, sampler.nfe, sampler.gridKind));
    const draft = manifestDraft(m, sampler, o.seed, o.totalSamples, options.created);
    const manifest = await openDatasetForWriting(dir, draft);
    if (o.savePng) await Deno.mkdir(join(dir, PNG_DIR), { recursive: true });
    const todo = await incompleteSamples(dir, manifest, o.savePng);
    const started = performance.now();
    await sampleAndWrite(m, sampler, todo, {
      dir,
      manifest,
      seed: o.seed,
      batchSize: o.samplingBatchSize,
      conditions,
      savePng: o.savePng,
      progress: options.progress,
    });
    const seconds = (performance.now() - started) / 1000;
    if (o.savePng) await writeGridPng(dir, manifest, Math.min(o.totalSamples, 64));
    const skipped = o.totalSamples - todo.length;
    return { dir, manifest, generated: todo.length, skipped, seconds };
  });
}

/** The manifest a new dataset of these samples gets. */
function manifestDraft(
  m: LoadedModel,
  sampler: PreparedSampler,
  seed: number,
  count: number,
  created = new Date(),
): DatasetManifest {
  const schedule = m.denoiser.schedule;
  const shapes: DatasetManifest["shapes"] = { z: [...m.sampleShape], x: [...m.imageShape] };
  if (m.conditionShape) shapes.c = [...m.conditionShape];
  return {
    format: "ld3-dataset",
    version: 1,
    config: JSON.parse(JSON.stringify(m.config)),
    model: { name: m.config.name, sha256: m.modelHash },
    solver: solverRecord(sampler),
    grid: { skip_type: sampler.gridKind, ...gridRecord(sampler, schedule) },
    noise: { generator: "philox4x32-10", seed, prior_scale: schedule.priorScale },
    shapes,
    count,
    created: created.toISOString(),
  };
}

/** Indices of the samples still to make (missing, incomplete, or without their PNG). */
async function incompleteSamples(
  dir: string,
  manifest: DatasetManifest,
  savePng: boolean,
): Promise<number[]> {
  const todo: number[] = [];
  for (let i = 0; i < manifest.count; i++) {
    const done = await isSampleComplete(dir, i, manifest.shapes) &&
      (!savePng || await pathExists(samplePngPath(dir, i)));
    if (!done) todo.push(i);
  }
  return todo;
}

/** Where and how {@linkcode sampleAndWrite} works. */
interface WriteTarget {
  dir: string;
  manifest: DatasetManifest;
  seed: number;
  batchSize: number;
  conditions?: ConditionTable;
  savePng: boolean;
  progress?: ProgressBarOptions | false;
}

/**
 * Samples `todo` in batches and writes each sample. The writes of batch k overlap the solve of
 * batch k+1 (at most one batch in flight), so file I/O hides behind network time; a failed
 * write stops the run at the next batch.
 */
async function sampleAndWrite(
  m: LoadedModel,
  sampler: PreparedSampler,
  todo: readonly number[],
  target: WriteTarget,
): Promise<void> {
  // Nothing left to sample (a finished dataset reused): no "0/0" bar.
  const bar = target.progress === false || todo.length === 0
    ? undefined
    : new ProgressBar(todo.length, { label: "generate", unit: "samples", ...target.progress });
  const { shapes } = target.manifest;
  const pngShape = imageShapeOf(shapes.x);
  const xSize = sampleSize(shapes.x);
  const writeBatch = async (indices: number[], batch: Awaited<ReturnType<typeof runBatch>>) => {
    await Promise.all(indices.map(async (index, b) => {
      const x = batch.x.subarray(b * xSize, (b + 1) * xSize);
      await writeSample(target.dir, { index, z: batch.z[b], x, c: batch.c?.[b] }, shapes);
      if (target.savePng) {
        await writeFileAtomic(samplePngPath(target.dir, index), imageToPng(x, pngShape));
      }
    }));
    bar?.increment(indices.length);
  };
  let pending: Promise<void> = Promise.resolve();
  let writeError: unknown;
  for (let k = 0; k < todo.length; k += target.batchSize) {
    const indices = todo.slice(k, k + target.batchSize);
    const batch = await runBatch(m, sampler, indices, {
      seed: target.seed,
      conditions: target.conditions,
    });
    await pending;
    if (writeError !== undefined) throw writeError;
    pending = writeBatch(indices, batch).catch((e) => {
      writeError = e;
    });
  }
  await pending;
  if (writeError !== undefined) throw writeError;
  bar?.finish();
}

/** `grid.png`: the first `count` teacher outputs, 8 per row. */
async function writeGridPng(dir: string, manifest: DatasetManifest, count: number) {
  const shape = imageShapeOf(manifest.shapes.x);
  const size = sampleSize(shape);
  const images = new Float32Array(count * size);
  for (let i = 0; i < count; i++) {
    const arrays = await readNpz(samplePath(dir, i));
    images.set(arrays.x.data as Float32Array, i * size);
  }
  await writeFileAtomic(join(dir, "grid.png"), imagesToPngGrid(images, [count, ...shape]));
}
