/**
 * The LD3 trainer's state: one object ({@linkcode Ld3TrainerState}) that the training loop
 * mutates, that a checkpoint copies and that a resume starts from, with one serialisation
 * ({@linkcode serializeLd3Checkpoint} / {@linkcode deserializeLd3Checkpoint}).
 *
 * The serialisation is driven by one field table (`CHECKPOINT_FIELDS`) whose type
 * requires an entry for every field of the state: a field added to the interface and not to
 * the table does not compile, and a field missing from a checkpoint being read is refused by
 * name. Short float vectors (θ, grids) are written as JSON numbers (exact: JavaScript prints
 * the shortest string that reads back to the same double); the per-sample latent tables go to
 * separate float64 tables (`[samples, values]`) that a run folder stores as `.npz`.
 *
 * @module
 */
import { concatFloat64 } from "../_arrays.ts";
import type { RmspropState, SgdState } from "./optim.ts";

/** What training moves: θ1, θ2 and the relaxed latents (one array per sample). */
export interface Ld3Variables {
  /** θ1, length N+1: softmax(θ1) spaces the step grid t1. */
  theta1: Float64Array;
  /** θ2, length N+1: offsets of t2 from t1 in t or λ (clipped; interior points only). */
  theta2: Float64Array;
  /** Relaxed latents `x'` of the training samples, one array per sample. */
  trainLatents: Float64Array[];
  /** Relaxed latents `x'` of the validation samples, one array per sample. */
  validLatents: Float64Array[];
}

/** The variables with the grids θ gives: the step grid `t1` and the evaluation grid `t2`. */
export interface Ld3Snapshot extends Ld3Variables {
  /** Step grid from θ1: N+1 strictly decreasing times. */
  t1: Float64Array;
  /** Evaluation grid from θ1 and θ2: N+1 times, endpoints equal to t1's. */
  t2: Float64Array;
}

/** The best state so far (the learned schedule) and its validation loss. */
export interface Ld3Best extends Ld3Snapshot {
  /** Validation loss of this state. */
  loss: number;
}

/** Everything the LD3 loop carries from one step to the next: enough to resume bit for bit. */
export interface Ld3TrainerState {
  /** The variables being trained. */
  current: Ld3Variables;
  /** The best state so far, null before the first validation. */
  best: Ld3Best | null;
  /** RMSprop state of θ1 (its `lr` is the decayed lr1). */
  rmsprop: RmspropState;
  /** SGD state of θ2 (its `lr` is the decayed lr2). */
  sgd: SgdState;
  /** SGD step of the relaxed latents (decays when a round moved no validation latent). */
  shiftLr: number;
  /** Round in progress. */
  round: number;
  /** Next batch of the round's training pass. */
  batch: number;
  /** Whether the round's start (reload, shuffle, first validation) ran. */
  roundStarted: boolean;
  /** Training steps taken over all rounds. */
  globalStep: number;
  /** Validations without improvement since the last improvement or reload. */
  countWorse: number;
  /** Times lr2 sat on its floor after a decay. */
  countMinLrHit: number;
  /** Validating on one batch (until the first patience hit) rather than on all samples. */
  validOnOne: boolean;
  /** The lr2-floor stop was reached. */
  stopped: boolean;
  /** Training-set order of the current round (the seeded shuffle). */
  order: number[];
}

/** The checkpoint format this library writes and reads. */
export const LD3_CHECKPOINT_VERSION = 2;

/** A trainer state with what identifies it: the whole of a resumable checkpoint. */
export interface Ld3Checkpoint extends Ld3TrainerState {
  /** Always `"ld3-checkpoint"`. */
  format: "ld3-checkpoint";
  /** Always {@linkcode LD3_CHECKPOINT_VERSION}; other versions are refused. */
  version: typeof LD3_CHECKPOINT_VERSION;
  /** Checks that a resume uses the same problem (options and data sizes, as JSON). */
  fingerprint: string;
}

/** A float64 table of a serialised state: one row per sample. */
export interface Ld3Table {
  /** Row-major float64 values. */
  data: Float64Array;
  /** `[samples, values]`. */
  shape: readonly number[];
}

/** How a value of the state is written in a checkpoint's JSON part. */
export type Serialized<T> = T extends Float64Array ? number[]
  // A latent table: the name of its entry in the tables.
  : T extends readonly Float64Array[] ? string
  : T extends object ? { [K in keyof T]: Serialized<T[K]> }
  : T;

/** A serialised checkpoint: its JSON part and its latent tables by name. */
export interface SerializedLd3Checkpoint {
  /** Everything but the latent tables, JSON-safe. */
  json: Serialized<Ld3Checkpoint>;
  /** The latent tables, by the names the JSON part gives them. */
  tables: Record<string, Ld3Table>;
}

/** Writes one field (`name` is its dotted path) and reads it back. */
interface Codec<T> {
  save(value: T, name: string, tables: Record<string, Ld3Table>): unknown;
  load(json: unknown, name: string, tables: Readonly<Record<string, Ld3Table>>): T;
}

/** A codec for every field of `T`: the field table of an object. */
type Fields<T> = { [K in keyof T]-?: Codec<T[K]> };

/** Numbers, strings, booleans and plain objects of them: JSON as they are (copied). */
function plain<T>(): Codec<T> {
  return { save: (value) => structuredClone(value), load: (json) => structuredClone(json) as T };
}

/** A short float vector, as a JSON array of numbers. */
const vector: Codec<Float64Array> = {
  save: (value) => Array.from(value),
  load(json, name) {
    if (!Array.isArray(json)) throw new RangeError(`"${name}" is not an array of numbers`);
    return Float64Array.from(json);
  },
};

/** Per-sample rows of equal length, as one table `[rows, values]` named by the field. */
const table: Codec<Float64Array[]> = {
  save(rows, name, tables) {
    const size = rows[0]?.length ?? 0;
    if (rows.some((r) => r.length !== size)) throw new RangeError(`"${name}" has ragged rows`);
    tables[name] = { data: concatFloat64(rows), shape: [rows.length, size] };
    return name;
  },
  load(json, name, tables) {
    const t = typeof json === "string" ? tables[json] : undefined;
    if (!t) throw new RangeError(`lacks the table "${name}"`);
    const [rows, size] = t.shape;
    if (t.shape.length !== 2 || rows * size !== t.data.length) {
      throw new RangeError(`"${name}" has shape [${t.shape}] for ${t.data.length} values`);
    }
    return Array.from({ length: rows }, (_, i) => t.data.slice(i * size, (i + 1) * size));
  },
};

function nullable<T>(codec: Codec<T>): Codec<T | null> {
  return {
    save: (value, name, tables) => value === null ? null : codec.save(value, name, tables),
    load: (json, name, tables) => json === null ? null : codec.load(json, name, tables),
  };
}

/** An object, field by field through `fields`; a field missing when read is refused by name. */
function record<T>(fields: Fields<T>): Codec<T> {
  const entries = Object.entries(fields) as [keyof T & string, Codec<unknown>][];
  const path = (name: string, key: string) => name === "" ? key : `${name}.${key}`;
  return {
    save(value, name, tables) {
      return Object.fromEntries(
        entries.map(([key, codec]) => [key, codec.save(value[key], path(name, key), tables)]),
      );
    },
    load(json, name, tables) {
      if (json === null || typeof json !== "object") {
        throw new RangeError(`"${name}" is not an object`);
      }
      const object = json as Record<string, unknown>;
      const out: Partial<T> = {};
      for (const [key, codec] of entries) {
        if (!(key in object)) throw new RangeError(`lacks "${path(name, key)}"`);
        out[key] = codec.load(object[key], path(name, key), tables) as T[typeof key];
      }
      return out as T;
    },
  };
}

const VARIABLE_FIELDS: Fields<Ld3Variables> = {
  theta1: vector,
  theta2: vector,
  trainLatents: table,
  validLatents: table,
};

/** The field table of a checkpoint: how each field of the state is written and read. */
const CHECKPOINT_FIELDS: Fields<Ld3Checkpoint> = {
  format: plain(),
  version: plain(),
  fingerprint: plain(),
  current: record(VARIABLE_FIELDS),
  best: nullable(record<Ld3Best>({ ...VARIABLE_FIELDS, t1: vector, t2: vector, loss: plain() })),
  rmsprop: plain(),
  sgd: plain(),
  shiftLr: plain(),
  round: plain(),
  batch: plain(),
  roundStarted: plain(),
  globalStep: plain(),
  countWorse: plain(),
  countMinLrHit: plain(),
  validOnOne: plain(),
  stopped: plain(),
  order: plain(),
};

const CHECKPOINT = record(CHECKPOINT_FIELDS);

/** A checkpoint as JSON (numbers exact) and float64 latent tables; see the module doc. */
export function serializeLd3Checkpoint(checkpoint: Ld3Checkpoint): SerializedLd3Checkpoint {
  const tables: Record<string, Ld3Table> = {};
  const json = CHECKPOINT.save(checkpoint, "", tables) as Serialized<Ld3Checkpoint>;
  return { json, tables };
}

/**
 * Reads back what {@linkcode serializeLd3Checkpoint} wrote.
 *
 * @param source Names the checkpoint in errors (a file name).
 * @throws {RangeError} When `json` is not an ld3 checkpoint, is of another format version, or
 * lacks a field or table.
 */
export function deserializeLd3Checkpoint(
  json: unknown,
  tables: Readonly<Record<string, Ld3Table>>,
  source = "checkpoint",
): Ld3Checkpoint {
  const header = (json ?? {}) as { format?: unknown; version?: unknown };
  checkCheckpointHeader(header, source);
  try {
    return CHECKPOINT.load(json, "", tables);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    throw new RangeError(`${source} ${e.message}`);
  }
}

/**
 * Checks that an object is an ld3 checkpoint of the version this library reads.
 *
 * @throws {RangeError} naming the format or version found
 */
export function checkCheckpointHeader(
  header: { format?: unknown; version?: unknown },
  source = "checkpoint",
): void {
  if (header.format !== "ld3-checkpoint") {
    throw new RangeError(`${source} is not an ld3 checkpoint: format ${header.format}`);
  }
  if (header.version !== LD3_CHECKPOINT_VERSION) {
    throw new RangeError(
      `${source} is an ld3 checkpoint of version ${header.version}, this ld3 reads version ` +
        `${LD3_CHECKPOINT_VERSION} only: start the run afresh (or finish it with the ld3 that ` +
        `wrote it)`,
    );
  }
}
