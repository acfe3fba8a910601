/**
 * The checkpoint of an LD3 run folder (`lib/pipelines/train/run.ts`): the trainer state after a step, split
 * into `checkpoint.json` (options, counters, optimiser state, GIF frames) and
 * `checkpoint.<generation>.npz` with the relaxed latents in float64 (JSON would bloat them and
 * round them). The `.npz` is written first and the JSON that names it last, both atomically, so
 * a kill at any moment leaves the previous or the new checkpoint whole; the previous generation's
 * `.npz` is removed only after the new JSON points elsewhere.
 *
 * @module
 */
import { join } from "node:path";
import { writeFileAtomic, writeJsonAtomic } from "../../io/atomic.ts";
import { decodeNpz, encodeNpz, type NpzEntry } from "../../io/npz.ts";
import type { ScheduleFrame } from "./report.ts";
import type { Ld3Checkpoint } from "../../ld3/trainer.ts";
import { concatFloat64 } from "../../_arrays.ts";

/** Identifies a run checkpoint file. */
export const RUN_CHECKPOINT_FORMAT = "ld3-run-checkpoint";
/** The checkpoint file of a run folder. */
export const CHECKPOINT_FILE = "checkpoint.json";

/** The JSON part of a run checkpoint (the latents live in the `.npz` it names). */
export interface RunCheckpoint {
  format: typeof RUN_CHECKPOINT_FORMAT;
  version: 1;
  /** The resolved options the run was started with (a resume must match). */
  options: Record<string, unknown>;
  /** Name of the `.npz` with the latents, in the run folder. */
  latents: string;
  /** Generation counter of the `.npz` name. */
  generation: number;
  /** Lines of log.jsonl written when this checkpoint was taken. */
  logLines: number;
  /** Training seconds up to this checkpoint. */
  elapsedSeconds: number;
  /** Improvements so far (GIF frames). */
  frames: ScheduleFrame[];
  /** The trainer state with empty latent arrays. */
  trainer: Ld3Checkpoint;
}

/** What a run records beside the trainer state. */
export type RunCheckpointMeta = Pick<
  RunCheckpoint,
  "options" | "generation" | "logLines" | "elapsedSeconds" | "frames"
>;

/** Sizes of the latent tables: training and validation samples, values per sample. */
export interface LatentSizes {
  numTrain: number;
  numValid: number;
  size: number;
}

function withoutLatents<T extends { trainLatents: number[][]; validLatents: number[][] }>(
  s: T,
): T {
  return { ...s, trainLatents: [], validLatents: [] };
}

/**
 * Writes checkpoint generation `meta.generation` of `state` into `runDir` (see the module doc).
 */
export async function saveRunCheckpoint(
  runDir: string,
  state: Ld3Checkpoint,
  meta: RunCheckpointMeta,
  sizes: LatentSizes,
): Promise<void> {
  const { numTrain, numValid, size } = sizes;
  const latents = `checkpoint.${meta.generation}.npz`;
  const entries: Record<string, NpzEntry> = {
    current_train: { data: concatFloat64(state.current.trainLatents), shape: [numTrain, size] },
    current_valid: { data: concatFloat64(state.current.validLatents), shape: [numValid, size] },
  };
  if (state.best) {
    entries.best_train = { data: concatFloat64(state.best.trainLatents), shape: [numTrain, size] };
    entries.best_valid = { data: concatFloat64(state.best.validLatents), shape: [numValid, size] };
  }
  await writeFileAtomic(join(runDir, latents), encodeNpz(entries));
  const record: RunCheckpoint = {
    format: RUN_CHECKPOINT_FORMAT,
    version: 1,
    ...meta,
    latents,
    trainer: {
      ...state,
      current: withoutLatents(state.current),
      best: state.best ? withoutLatents(state.best) : null,
    },
  };
  await writeJsonAtomic(join(runDir, CHECKPOINT_FILE), record);
  // The previous generation is garbage only once the new JSON points elsewhere.
  await Deno.remove(join(runDir, `checkpoint.${meta.generation - 1}.npz`)).catch(() => {});
}

/**
 * Reads the JSON part of `runDir`'s checkpoint.
 *
 * @throws {RangeError} when the file is not an ld3 run checkpoint
 */
export async function readRunCheckpoint(runDir: string): Promise<RunCheckpoint> {
  const path = join(runDir, CHECKPOINT_FILE);
  const record = JSON.parse(await Deno.readTextFile(path)) as RunCheckpoint;
  if (record?.format !== RUN_CHECKPOINT_FORMAT) {
    throw new RangeError(`${path} is not an ld3 run checkpoint`);
  }
  return record;
}

/**
 * The trainer state of a checkpoint with its latents read back from the `.npz` it names.
 *
 * @throws {RangeError} when the `.npz` lacks a table the state needs
 */
export async function restoreTrainerState(
  runDir: string,
  record: RunCheckpoint,
  sizes: LatentSizes,
): Promise<Ld3Checkpoint> {
  const { numTrain, numValid, size } = sizes;
  const arrays = decodeNpz(await Deno.readFile(join(runDir, record.latents)));
  const rows = (name: string, count: number) => {
    const data = arrays[name]?.data as Float64Array | undefined;
    if (!data) throw new RangeError(`${record.latents} lacks "${name}"`);
    return Array.from(
      { length: count },
      (_, i) => Array.from(data.subarray(i * size, (i + 1) * size)),
    );
  };
  const t = record.trainer;
  return {
    ...t,
    current: {
      ...t.current,
      trainLatents: rows("current_train", numTrain),
      validLatents: rows("current_valid", numValid),
    },
    best: t.best
      ? {
        ...t.best,
        trainLatents: rows("best_train", numTrain),
        validLatents: rows("best_valid", numValid),
      }
      : null,
  };
}
