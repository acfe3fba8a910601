/**
 * The on-disk state of an unfinished evaluation, so that a long `eval` (10,000 samples for an
 * FID take half an hour on two cores) continues where it stopped instead of starting over.
 *
 * One `.npz` file holds the per-sample results of the samples done so far (features, logits,
 * teacher distances, exact-solution errors, the first preview images) plus a `meta` entry: the
 * UTF-8 JSON of a *fingerprint* of the evaluation (model hash, solver, grid, seed, sample count,
 * batch size, metrics) and the progress. Results are per-sample deterministic functions of that
 * fingerprint, so a resumed run gives the same metrics as an uninterrupted one; a checkpoint
 * whose fingerprint differs belongs to another evaluation and is refused, never overwritten.
 *
 * @module
 */
import type { NpyData } from "../io/npy.ts";
import { canonicalJson, type Fingerprint, fingerprintDiff } from "../fingerprint.ts";
import { removeIfExists } from "../io/fs.ts";
import { type NpzEntry, readNpz, writeNpz } from "../io/npz.ts";

/** Identifies an evaluation checkpoint's `meta` document. */
export const EVAL_CHECKPOINT_FORMAT = "ld3-eval-checkpoint";
/** Current version of the checkpoint layout. */
export const EVAL_CHECKPOINT_VERSION = 1;

/** The progress and per-sample arrays of an unfinished evaluation. */
export interface EvalCheckpoint {
  /** The evaluation the arrays belong to. */
  fingerprint: Fingerprint;
  /** Samples finished (0 … N − 1 are done); the arrays hold at least this many rows. */
  done: number;
  /** Wall time spent so far, in seconds (a resumed run reports the total). */
  seconds: number;
  /** Per-sample arrays by name (row-major, `done` rows, any row size). */
  arrays: Record<string, Float64Array | Float32Array>;
}

/**
 * One per-sample result array of an evaluation: `row` values per sample, in sample order.
 * `maxRows` caps how many samples it keeps (the first N preview images); an empty `data` is a
 * metric the evaluation does not compute, and is neither saved nor restored.
 */
export interface EvalColumn {
  /** The values, `row` per sample; empty when the metric is not computed. */
  data: Float64Array | Float32Array;
  /** Values per sample. */
  row: number;
  /** Most samples kept (the first ones); absent: all. */
  maxRows?: number;
}

function columnLength(column: EvalColumn, done: number): number {
  return Math.min(done, column.maxRows ?? done) * column.row;
}

/** The filled part of every computed column after `done` samples: the arrays of a checkpoint. */
export function columnArrays(
  columns: Record<string, EvalColumn>,
  done: number,
): EvalCheckpoint["arrays"] {
  const arrays: EvalCheckpoint["arrays"] = {};
  for (const [name, column] of Object.entries(columns)) {
    if (column.data.length > 0) arrays[name] = column.data.subarray(0, columnLength(column, done));
  }
  return arrays;
}

/**
 * Copies a checkpoint's arrays back into the columns of the evaluation it belongs to.
 *
 * @throws {RangeError} When a computed column's array is missing or short (the message names
 * the checkpoint `path` and the column).
 */
export function restoreColumns(
  checkpoint: EvalCheckpoint,
  columns: Record<string, EvalColumn>,
  path: string,
): void {
  for (const [name, column] of Object.entries(columns)) {
    if (column.data.length === 0) continue;
    const need = columnLength(column, checkpoint.done);
    const saved = checkpoint.arrays[name];
    if (!saved || saved.length < need) {
      throw new RangeError(
        `Checkpoint ${path}: array "${name}" holds ${saved?.length ?? 0} values, ${need} expected`,
      );
    }
    column.data.set(saved.subarray(0, need));
  }
}

/** Writes a checkpoint atomically (a crash leaves the previous one intact). */
export async function writeEvalCheckpoint(path: string, state: EvalCheckpoint): Promise<void> {
  const meta = {
    format: EVAL_CHECKPOINT_FORMAT,
    version: EVAL_CHECKPOINT_VERSION,
    done: state.done,
    seconds: state.seconds,
    fingerprint: state.fingerprint,
  };
  const metaBytes = new TextEncoder().encode(canonicalJson(meta));
  const record: Record<string, NpzEntry> = { meta: { data: metaBytes, shape: [metaBytes.length] } };
  for (const [name, data] of Object.entries(state.arrays)) {
    if (name === "meta") throw new RangeError(`Checkpoint array name "meta" is reserved`);
    record[name] = { data: data as NpyData, shape: [data.length] };
  }
  await writeNpz(path, record);
}

/**
 * Reads the checkpoint at `path` if there is one and it belongs to `fingerprint`.
 *
 * @returns The checkpoint, or `undefined` when no file exists at `path`.
 * @throws {RangeError} When the file is not an evaluation checkpoint, or belongs to another
 * evaluation (the message names the differing fields); the file is left as it is.
 */
export async function readEvalCheckpoint(
  path: string,
  fingerprint: Fingerprint,
): Promise<EvalCheckpoint | undefined> {
  let record;
  try {
    record = await readNpz(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw new RangeError(`Not an evaluation checkpoint: ${path} (${(e as Error).message})`);
  }
  const metaBytes = record.meta?.data;
  let meta: Record<string, unknown> | undefined;
  try {
    if (metaBytes instanceof Uint8Array) meta = JSON.parse(new TextDecoder().decode(metaBytes));
  } catch { /* reported below */ }
  if (meta?.format !== EVAL_CHECKPOINT_FORMAT) {
    throw new RangeError(`Not an evaluation checkpoint (no ld3 "meta" entry): ${path}`);
  }
  if (meta.version !== EVAL_CHECKPOINT_VERSION) {
    throw new RangeError(
      `Checkpoint ${path} has version ${meta.version}: this ld3 reads version ${EVAL_CHECKPOINT_VERSION}`,
    );
  }
  const stored = meta.fingerprint as Fingerprint;
  const diff = fingerprintDiff(stored, fingerprint);
  if (diff.length > 0) {
    throw new RangeError(
      `Checkpoint ${path} belongs to another evaluation (differs in: ${diff.join(", ")}): ` +
        `delete it to start over, or choose another checkpoint path`,
    );
  }
  const done = meta.done as number;
  if (!Number.isSafeInteger(done) || done < 0) {
    throw new RangeError(`Checkpoint ${path} has an invalid "done": ${done}`);
  }
  const arrays: EvalCheckpoint["arrays"] = {};
  for (const [name, array] of Object.entries(record)) {
    if (name === "meta") continue;
    if (!(array.data instanceof Float64Array || array.data instanceof Float32Array)) {
      throw new RangeError(`Checkpoint ${path}: array "${name}" is ${array.dtype}, not float`);
    }
    arrays[name] = array.data;
  }
  return { fingerprint: stored, done, seconds: Number(meta.seconds) || 0, arrays };
}

/** Removes a finished evaluation's checkpoint (no error when it is already gone). */
export async function removeEvalCheckpoint(path: string): Promise<void> {
  await removeIfExists(path);
}
