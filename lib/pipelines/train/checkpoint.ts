/**
 * The checkpoint of an LD3 run folder (`lib/pipelines/train/run.ts`): the trainer state after a
 * step, as the trainer's one serialisation (`serializeLd3Checkpoint`, `lib/ld3/state.ts`) writes
 * it, split into `checkpoint.json` (run metadata, counters, θ, optimizer state, GIF frames) and
 * `checkpoint.<generation>.npz` with the relaxed-latent tables in float64 (JSON would bloat
 * them), one entry per table under the name the JSON gives it. The `.npz` is written first and
 * the JSON that names it last, both atomically, so a kill at any moment leaves the previous or
 * the new checkpoint whole; the previous generation's `.npz` is removed only after the new JSON
 * points elsewhere.
 *
 * @module
 */
import { join } from "node:path";
import { writeFileAtomic, writeJsonAtomic } from "../../io/atomic.ts";
import { decodeNpz, encodeNpz } from "../../io/npz.ts";
import type { ScheduleFrame } from "./report.ts";
import {
  deserializeLd3Checkpoint,
  type Ld3Checkpoint,
  type Ld3Table,
  type Serialized,
  serializeLd3Checkpoint,
} from "../../ld3/state.ts";

/** Identifies a run checkpoint file. */
export const RUN_CHECKPOINT_FORMAT = "ld3-run-checkpoint";
/**
 * The layout this library writes and reads: 2 since the trainer state is written by its own
 * serialisation (version 1 had hand-written latent entries).
 */
export const RUN_CHECKPOINT_VERSION = 2;
/** The checkpoint file of a run folder. */
export const CHECKPOINT_FILE = "checkpoint.json";

/** The JSON part of a run checkpoint (the latents live in the `.npz` it names). */
export interface RunCheckpoint {
  /** Always {@linkcode RUN_CHECKPOINT_FORMAT}. */
  format: typeof RUN_CHECKPOINT_FORMAT;
  /** Always {@linkcode RUN_CHECKPOINT_VERSION}; other versions are refused. */
  version: typeof RUN_CHECKPOINT_VERSION;
  /** The resolved options the run was started with (a resume must match). */
  options: Record<string, unknown>;
  /** Name of the `.npz` with the latent tables, in the run folder. */
  latents: string;
  /** Generation counter of the `.npz` name. */
  generation: number;
  /** Lines of log.jsonl written when this checkpoint was taken. */
  logLines: number;
  /** Training seconds up to this checkpoint. */
  elapsedSeconds: number;
  /** Improvements so far (GIF frames). */
  frames: ScheduleFrame[];
  /** The trainer state's JSON part; its latent tables are the `.npz`'s entries. */
  trainer: Serialized<Ld3Checkpoint>;
}

/** What a run records beside the trainer state. */
export type RunCheckpointMeta = Pick<
  RunCheckpoint,
  "options" | "generation" | "logLines" | "elapsedSeconds" | "frames"
>;

/** Sizes of the latent tables: training and validation samples, values per sample. */
export interface LatentSizes {
  /** Training samples. */
  numTrain: number;
  /** Validation samples. */
  numValid: number;
  /** Values per sample (the latent size). */
  size: number;
}

/**
 * Writes checkpoint generation `meta.generation` of `state` into `runDir` (see the module doc).
 *
 * @throws {RangeError} when a latent table does not have the run's sizes
 */
export async function saveRunCheckpoint(
  runDir: string,
  state: Ld3Checkpoint,
  meta: RunCheckpointMeta,
  sizes: LatentSizes,
): Promise<void> {
  const latents = `checkpoint.${meta.generation}.npz`;
  const { json, tables } = serializeLd3Checkpoint(state);
  checkTables(tables, sizes, latents);
  await writeFileAtomic(join(runDir, latents), encodeNpz(tables));
  const record: RunCheckpoint = {
    format: RUN_CHECKPOINT_FORMAT,
    version: RUN_CHECKPOINT_VERSION,
    ...meta,
    latents,
    trainer: json,
  };
  await writeJsonAtomic(join(runDir, CHECKPOINT_FILE), record);
  // The previous generation is garbage only once the new JSON points elsewhere.
  await Deno.remove(join(runDir, `checkpoint.${meta.generation - 1}.npz`)).catch(() => {});
}

/**
 * Reads the JSON part of `runDir`'s checkpoint.
 *
 * @throws {RangeError} when the file is not an ld3 run checkpoint, or one of another version
 */
export async function readRunCheckpoint(runDir: string): Promise<RunCheckpoint> {
  const path = join(runDir, CHECKPOINT_FILE);
  const record = JSON.parse(await Deno.readTextFile(path)) as RunCheckpoint;
  if (record?.format !== RUN_CHECKPOINT_FORMAT) {
    throw new RangeError(`${path} is not an ld3 run checkpoint`);
  }
  if (record.version !== RUN_CHECKPOINT_VERSION) {
    throw new RangeError(
      `${path} is a run checkpoint of version ${record.version}; this ld3 resumes version ` +
        `${RUN_CHECKPOINT_VERSION} only: start the run in a new folder (or finish it with the ` +
        `ld3 that wrote it)`,
    );
  }
  return record;
}

/**
 * The trainer state of a checkpoint with its latents read back from the `.npz` it names.
 *
 * @throws {RangeError} when the `.npz` lacks a table the state needs, or a table does not have
 * the run's sizes
 */
export async function restoreTrainerState(
  runDir: string,
  record: RunCheckpoint,
  sizes: LatentSizes,
): Promise<Ld3Checkpoint> {
  const tables: Record<string, Ld3Table> = {};
  for (
    const [name, array] of Object.entries(
      decodeNpz(await Deno.readFile(join(runDir, record.latents))),
    )
  ) {
    if (!(array.data instanceof Float64Array)) {
      throw new RangeError(`${record.latents}: "${name}" is ${array.dtype}, not float64`);
    }
    tables[name] = { data: array.data, shape: array.shape };
  }
  checkTables(tables, sizes, record.latents);
  return deserializeLd3Checkpoint(
    record.trainer,
    tables,
    `${CHECKPOINT_FILE} with ${record.latents}`,
  );
}

/**
 * Checks that every latent table holds rows of the run's sample size, one per training or per
 * validation sample.
 */
function checkTables(tables: Record<string, Ld3Table>, sizes: LatentSizes, file: string): void {
  for (const [name, { shape }] of Object.entries(tables)) {
    const [rows, size] = shape;
    if (
      shape.length !== 2 || size !== sizes.size ||
      (rows !== sizes.numTrain && rows !== sizes.numValid)
    ) {
      throw new RangeError(
        `${file}: "${name}" has shape [${shape}], expected ${sizes.numTrain} or ` +
          `${sizes.numValid} rows of ${sizes.size} values`,
      );
    }
  }
}
