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
  commitManifest,
  datasetDirName,
  datasetFingerprint,
  type DatasetManifest,
  isSampleComplete,
  PNG_DIR,
  resumeDataset,
  sampleMeta,
  samplePath,
  samplePngPath,
  SAMPLES_DIR,
  writeSample,
} from "../io/dataset.ts";
import { sampleSize } from "../denoiser.ts";
import { makeDirs, pathExists, removeEmptyDirs, removeIfExists } from "../io/fs.ts";
import { checkPictureShape, imageShapeOf, imageToPng } from "../io/image.ts";
import { labelledGridPng } from "../io/labelled_grid.ts";
import { lockOutput } from "../io/lock.ts";
import { readNpz } from "../io/npz.ts";
import { ProgressBar, type ProgressBarOptions } from "../io/progress.ts";
import type { LoadedModel } from "../onnx/model.ts";
import { type OptionDeclarations, type OptionValues, resolveOptions } from "../options.ts";
import { MODEL_OPTIONS, SAMPLER_OPTIONS, SCALE_OPTIONS } from "./options.ts";
import {
  gridRecord,
  type PreparedSampler,
  prepareSampler,
  type SamplerOptions,
  solverRecord,
  validateSamplerOptions,
  withModel,
} from "./sampler.ts";
import {
  type ConditionInput,
  type ConditionTable,
  conditionTable,
  range,
  runBatch,
} from "./sampling.ts";

/** The options of {@linkcode generateDataset} (`deno task generate`). */
export const GENERATE_OPTIONS = {
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
    help: "also write png/<i>.png and grid.png (the first 64 samples, enlarged by --scale)",
  },
  ...SCALE_OPTIONS,
  dataDir: {
    flag: "data_dir",
    kind: "string",
    arg: "DIR",
    default: "train_data",
    help: "root folder; the dataset goes to <data_dir>/<solver>_NFE<nfe>_<grid kind>/",
  },
  device: MODEL_OPTIONS.device,
} as const satisfies OptionDeclarations;

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
 * touched, so bad input leaves nothing behind. The folder is owned by this run while it works
 * (`lib/io/lock.ts`): a second run into it fails at once, naming this one. The manifest is
 * written with the first sample, so a run that fails before any sample (a non-finite or
 * misshapen network output, a full disk) leaves the folder as it found it. Re-running with the
 * same parameters skips complete samples of this dataset and makes the rest again (missing,
 * unreadable, or made by another run); a folder made with other parameters is refused.
 *
 * @param model A loaded model or the path of its YAML config.
 * @throws {LockedError} When another run owns the dataset folder.
 */
export async function generateDataset(
  model: LoadedModel | string | URL,
  options: GenerateDatasetOptions = {},
): Promise<GenerateDatasetResult> {
  validateSamplerOptions(options);
  const o = resolveOptions(GENERATE_OPTIONS, { ...options, sigmas: undefined });
  return await withModel(model, o.device, async (m) => {
    const sampler = await prepareSampler(m, options);
    const conditions = conditionTable(m, options.condition);
    // Pictures that could not be drawn are refused before the first network call.
    if (o.savePng) checkPictureShape(m.imageShape, "save_png");
    const dir = join(o.dataDir, datasetDirName(sampler.solverName, sampler.nfe, sampler.gridKind));
    const draft = manifestDraft(m, sampler, o.seed, o.totalSamples, options.created);
    const lock = await lockOutput(dir, { what: "generate" });
    const writer = new DatasetWriter(dir, o.savePng);
    try {
      const opened = await resumeDataset(dir, draft);
      const manifest = opened.manifest;
      writer.committed = opened.committed;
      const todo = await incompleteSamples(dir, manifest, o.savePng);
      const started = performance.now();
      await sampleAndWrite(m, sampler, todo, writer, {
        manifest,
        seed: o.seed,
        batchSize: o.samplingBatchSize,
        conditions,
        progress: options.progress,
      });
      // Every sample was already there (a manifest lost after the last one): write it now.
      if (!writer.committed) await writer.commit(manifest);
      const seconds = (performance.now() - started) / 1000;
      if (o.savePng) await writeGridPng(dir, manifest, Math.min(o.totalSamples, 64), o.scale);
      const skipped = o.totalSamples - todo.length;
      return { dir, manifest, generated: todo.length, skipped, seconds };
    } catch (e) {
      await writer.rollBack();
      throw e;
    } finally {
      await lock.release();
    }
  });
}

/**
 * The files one run writes into a dataset folder: the folders it creates, and for a new
 * dataset the manifest, written once the first sample is on disk. Until then the run can be
 * taken back whole ({@linkcode DatasetWriter.rollBack}).
 */
class DatasetWriter {
  /** Whether manifest.json is on disk (it was there, or this run wrote it). */
  committed = false;
  readonly #dir: string;
  readonly #savePng: boolean;
  #created: string[] | undefined;
  /** Files written before the manifest (the first sample and its PNG). */
  readonly #uncommitted: string[] = [];

  constructor(dir: string, savePng: boolean) {
    this.#dir = dir;
    this.#savePng = savePng;
  }

  /** Whether each sample also gets its PNG. */
  get savePng(): boolean {
    return this.#savePng;
  }

  /** Creates the folders the samples go to (once). */
  async #folders(): Promise<void> {
    if (this.#created) return;
    this.#created = await makeDirs(join(this.#dir, SAMPLES_DIR));
    if (this.#savePng) this.#created.push(...await makeDirs(join(this.#dir, PNG_DIR)));
  }

  /** Writes one sample (and its PNG); the first of a new dataset is followed by the manifest. */
  async write(
    sample: Parameters<typeof writeSample>[1],
    manifest: DatasetManifest,
    png?: Uint8Array,
  ) {
    await this.#folders();
    const first = !this.committed;
    const path = samplePath(this.#dir, sample.index);
    if (first) this.#uncommitted.push(path);
    await writeSample(this.#dir, sample, manifest.shapes);
    if (png) {
      const pngPath = samplePngPath(this.#dir, sample.index);
      if (first) this.#uncommitted.push(pngPath);
      await writeFileAtomic(pngPath, png);
    }
    if (first) await this.commit(manifest);
  }

  /** Writes the manifest. */
  async commit(manifest: DatasetManifest): Promise<void> {
    await commitManifest(this.#dir, manifest);
    this.committed = true;
  }

  /** After a failure: when no manifest was written, removes what this run wrote. */
  async rollBack(): Promise<void> {
    if (this.committed) return;
    for (const path of this.#uncommitted) await removeIfExists(path).catch(() => {});
    await removeEmptyDirs(this.#created ?? []);
  }
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

/**
 * Indices of the samples still to make: missing, unreadable, made by another run (see
 * `isSampleComplete`), or without their PNG.
 */
async function incompleteSamples(
  dir: string,
  manifest: DatasetManifest,
  savePng: boolean,
): Promise<number[]> {
  const fingerprint = datasetFingerprint(manifest);
  const todo: number[] = [];
  for (let i = 0; i < manifest.count; i++) {
    const done = await isSampleComplete(dir, i, manifest, fingerprint) &&
      (!savePng || await pathExists(samplePngPath(dir, i)));
    if (!done) todo.push(i);
  }
  return todo;
}

/**
 * The batches that make the samples `todo`: batch k is always samples `k·size … (k+1)·size − 1`
 * (the network's float32 results depend on the batch it runs in), run whole when any of its
 * samples is wanted. So a resumed or repaired dataset is byte for byte the uninterrupted one.
 */
function batchesOf(
  todo: readonly number[],
  size: number,
  count: number,
): { indices: number[]; wanted: number[] }[] {
  const batches = new Map<number, number[]>();
  for (const i of todo) {
    const k = Math.floor(i / size);
    const wanted = batches.get(k);
    if (wanted) wanted.push(i);
    else batches.set(k, [i]);
  }
  return [...batches].map(([k, wanted]) => ({
    indices: range(k * size, Math.min((k + 1) * size, count)),
    wanted,
  }));
}

/** How {@linkcode sampleAndWrite} samples. */
interface SamplingRun {
  manifest: DatasetManifest;
  seed: number;
  batchSize: number;
  conditions?: ConditionTable;
  progress?: ProgressBarOptions | false;
}

/**
 * Samples `todo` in batches and writes each sample. The writes of batch k overlap the solve of
 * batch k+1 (at most one batch in flight), so file I/O hides behind network time; a failed
 * write stops the run at the next batch, and a failed solve waits for the writes in flight, so
 * nothing is left half-written when the error leaves.
 */
async function sampleAndWrite(
  m: LoadedModel,
  sampler: PreparedSampler,
  todo: readonly number[],
  writer: DatasetWriter,
  run: SamplingRun,
): Promise<void> {
  // Nothing left to sample (a finished dataset reused): no "0/0" bar.
  const bar = run.progress === false || todo.length === 0
    ? undefined
    : new ProgressBar(todo.length, { label: "generate", unit: "samples", ...run.progress });
  const { manifest } = run;
  const pngShape = imageShapeOf(manifest.shapes.x);
  const xSize = sampleSize(manifest.shapes.x);
  const fingerprint = datasetFingerprint(manifest);
  const writeBatch = async (
    indices: number[],
    wanted: number[],
    batch: Awaited<ReturnType<typeof runBatch>>,
  ) => {
    const writeOne = (index: number) => {
      const b = indices.indexOf(index);
      const x = batch.x.subarray(b * xSize, (b + 1) * xSize);
      const meta = sampleMeta(manifest, index, fingerprint);
      const sample = { index, z: batch.z[b], x, c: batch.c?.[b], meta };
      return writer.write(sample, manifest, writer.savePng ? imageToPng(x, pngShape) : undefined);
    };
    // The first sample of a new dataset goes alone: the manifest follows it.
    const rest = writer.committed ? 0 : 1;
    if (rest === 1) await writeOne(wanted[0]);
    await Promise.all(wanted.slice(rest).map(writeOne));
    bar?.increment(wanted.length);
  };
  let pending: Promise<void> = Promise.resolve();
  let writeError: unknown;
  try {
    for (const { indices, wanted } of batchesOf(todo, run.batchSize, manifest.count)) {
      const batch = await runBatch(m, sampler, indices, {
        seed: run.seed,
        conditions: run.conditions,
      });
      await pending;
      if (writeError !== undefined) throw writeError;
      pending = writeBatch(indices, wanted, batch).catch((e) => {
        writeError = e;
      });
    }
  } finally {
    await pending;
  }
  if (writeError !== undefined) throw writeError;
  bar?.finish();
}

/** `grid.png`: the first `count` teacher outputs, 8 per row, enlarged `scale` times. */
async function writeGridPng(
  dir: string,
  manifest: DatasetManifest,
  count: number,
  scale: number | undefined,
) {
  const shape = imageShapeOf(manifest.shapes.x);
  const size = sampleSize(shape);
  const images = new Float32Array(count * size);
  for (let i = 0; i < count; i++) {
    const arrays = await readNpz(samplePath(dir, i));
    images.set(arrays.x.data as Float32Array, i * size);
  }
  const png = await labelledGridPng(images, [count, ...shape], { scale });
  await writeFileAtomic(join(dir, "grid.png"), png);
}
