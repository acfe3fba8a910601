/**
 * The LD3 teacher dataset (`deno task generate`, the reference tool's `gen_data.py`): for each
 * sample `i` the standard-normal latent `z_i`, the teacher's output `x_i` (decoded for latent
 * models) and its condition, in the layout of `lib/io/dataset.ts`.
 *
 * @module
 */
import { join } from "node:path";
import { datasetDirName, type DatasetManifest, resumeDataset } from "../io/dataset.ts";
import { checkPictureShape } from "../io/image.ts";
import { lockOutput } from "../io/lock.ts";
import type { ProgressBarOptions } from "../io/progress.ts";
import type { LoadedModel } from "../onnx/model.ts";
import { type OptionDeclarations, type OptionValues, resolveOptions } from "../options.ts";
import type { IndexRange, Shard } from "../shard.ts";
import {
  DatasetWriter,
  generateShard,
  incompleteSamples,
  manifestDraft,
  sampleAndWrite,
  writeGridPng,
} from "./_dataset_writer.ts";
import { MODEL_OPTIONS, SAMPLER_OPTIONS, SCALE_OPTIONS } from "./options.ts";
import {
  prepareSampler,
  type SamplerOptions,
  validateSamplerOptions,
  withModel,
} from "./sampler.ts";
import { type ConditionInput, type ConditionTable, conditionTable } from "./sampling.ts";
import { type ModelConfig, scheduleFromConfig } from "../onnx/config.ts";

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
  threads: MODEL_OPTIONS.threads,
} as const satisfies OptionDeclarations;

/** Options of {@linkcode generateDataset}: {@linkcode GENERATE_OPTIONS} and these. */
export interface GenerateDatasetOptions
  extends SamplerOptions, Omit<OptionValues<typeof GENERATE_OPTIONS>, "sigmas"> {
  /** Conditions to cycle through (conditional models); one-hot classes 0, 1, … by default. */
  condition?: ConditionInput;
  /**
   * The negative prompt whose embedding the model was loaded with, recorded in the manifest when
   * the conditions are prompts (`loadPromptedModel` in `prompts.ts`); absent when the model uses
   * its config's own unconditional input.
   */
  negativePrompt?: string;
  /** Progress bar options; `false` for none. @default {{}} */
  progress?: ProgressBarOptions | false;
  /** Creation time written to a new manifest. @default {new Date()} */
  created?: Date;
  /**
   * Make only this shard's samples (`lib/shard.ts`): whole solver batches, into the shared
   * dataset folder, leaving the manifest and `grid.png` to `mergeDatasetShards`
   * (`dataset_merge.ts`).
   */
  shard?: Shard;
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
  /** A shard's samples, `[first, end)` (sharded runs only). */
  samples?: IndexRange;
}

/** The manifest's record of a text-conditioned teacher's prompts, when the conditions are prompts. */
function textRecord(
  conditions: ConditionTable | undefined,
  negativePrompt: string | undefined,
): DatasetManifest["text"] {
  if (!conditions?.prompts) return undefined;
  const prompts = [...conditions.prompts];
  return negativePrompt === undefined ? { prompts } : { prompts, negative_prompt: negativePrompt };
}

/**
 * The folder {@linkcode generateDataset} writes for a config and these options (the model need
 * not be loaded): `<data_dir>/<solver>_NFE<nfe>_<grid kind>/`.
 */
export async function generateDatasetDir(
  config: ModelConfig,
  options: GenerateDatasetOptions = {},
): Promise<string> {
  validateSamplerOptions(options);
  const o = resolveOptions(GENERATE_OPTIONS, { ...options, sigmas: undefined });
  const schedule = await scheduleFromConfig(config);
  const sampler = await prepareSampler({ denoiser: { schedule } }, options);
  return join(o.dataDir, datasetDirName(sampler.solverName, sampler.nfe, sampler.gridKind));
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
 * With `shard`, the run makes that shard's samples only, beside the job's other shards
 * (`generateShard` in `_dataset_writer.ts`); `mergeDatasetShards` then writes the manifest.
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
  return await withModel(model, { device: o.device, threads: o.threads }, async (m) => {
    const sampler = await prepareSampler(m, options);
    const conditions = conditionTable(m, options.condition);
    // Pictures that could not be drawn are refused before the first network call.
    if (o.savePng) checkPictureShape(m.imageShape, "save_png");
    const dir = join(o.dataDir, datasetDirName(sampler.solverName, sampler.nfe, sampler.gridKind));
    const draft = manifestDraft(
      m,
      sampler,
      o.seed,
      o.totalSamples,
      options.created,
      textRecord(conditions, options.negativePrompt),
    );
    if (options.shard) {
      const part = await generateShard(m, sampler, {
        dir,
        draft,
        shard: options.shard,
        seed: o.seed,
        batchSize: o.samplingBatchSize,
        savePng: o.savePng,
        scale: o.scale,
        conditions,
        progress: options.progress,
      });
      return { dir, manifest: draft, ...part };
    }
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
