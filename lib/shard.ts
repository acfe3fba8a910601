/**
 * Shards: one job's independent work (the samples of a teacher dataset or an evaluation, the
 * cells of the schedule matrix) split over `N` processes that may run on different machines —
 * the tasks of a Slurm job array or the pods of a Kubernetes Indexed Job — so that merging their
 * outputs gives exactly what one process would have written.
 *
 * A shard is `K/N`: index `K` counted from 0, of `N` shards. It comes from `--shard K/N`, or
 * from the scheduler's environment ({@linkcode shardFromEnvironment}):
 *
 * - Slurm job arrays: `SLURM_ARRAY_TASK_ID`, counted from `SLURM_ARRAY_TASK_MIN` in steps of
 *   `SLURM_ARRAY_TASK_STEP`, of `SLURM_ARRAY_TASK_COUNT` (or `MIN…MAX`) tasks, so
 *   `--array=0-3` and `--array=1-4` both give shards 0/4 … 3/4;
 * - Kubernetes Indexed Jobs: `JOB_COMPLETION_INDEX`, of `--shards N` (the Job's `completions`,
 *   which the pod's environment does not carry).
 *
 * Which part is a shard's is a pure function of `K/N` and the size of the work: contiguous runs
 * of whole units for samples ({@linkcode shardUnits}; a unit is a batch, since a network's
 * float32 results depend on the batch a sample runs in), every `N`-th item for cells
 * ({@linkcode shardOwns}).
 *
 * @module
 */
import type { OptionDeclarations } from "./options.ts";

/** `--shard K/N`, `--shards N`: which shard of a job this run is (tasks that loop over samples or cells). */
export const SHARD_OPTIONS = {
  shard: {
    flag: "shard",
    kind: "string",
    arg: "K/N",
    defaultText: "from SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX when set, else the whole job",
    help: "run shard K (from 0) of N into the shared output; `deno task merge` joins them",
  },
  shards: {
    flag: "shards",
    kind: "integer",
    arg: "N",
    min: 1,
    help: "shard count when the index comes from JOB_COMPLETION_INDEX (the Job's completions)",
  },
} as const satisfies OptionDeclarations;

/** One shard of a job: index `index` (from 0) of `count`. */
export interface Shard {
  /** The shard's index, `0 … count − 1`. */
  readonly index: number;
  /** How many shards the job has. */
  readonly count: number;
  /** Where it came from, for messages: `--shard`, or the environment variables read. */
  readonly source?: string;
}

/** Environment variables, as `Deno.env.toObject()` gives them. */
export type Environment = Readonly<Record<string, string | undefined>>;

function checkShard(index: number, count: number, what: string): Shard {
  if (!Number.isSafeInteger(count) || count < 1) {
    throw new RangeError(`${what}: the shard count must be an integer >= 1: got ${count}`);
  }
  if (!Number.isSafeInteger(index) || index < 0 || index >= count) {
    throw new RangeError(
      `${what}: the shard index counts from 0, so it must be an integer in 0…${count - 1}: ` +
        `got ${index}`,
    );
  }
  return { index, count };
}

/**
 * Parses `K/N` (`--shard`): shard `K` of `N`, `K` counted from 0.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.deepEqual(parseShard("2/4"), { index: 2, count: 4, source: "--shard 2/4" });
 * assert.throws(() => parseShard("4/4"), /0…3: got 4/);
 * ```
 *
 * @throws {RangeError} Unless the text is `K/N` with integers `0 <= K < N`.
 */
export function parseShard(text: string): Shard {
  const match = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  if (!match) throw new RangeError(`--shard must be K/N, e.g. 0/4: got ${JSON.stringify(text)}`);
  const shard = checkShard(Number(match[1]), Number(match[2]), `--shard ${text}`);
  return { ...shard, source: `--shard ${shard.index}/${shard.count}` };
}

function integerVar(env: Environment, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return undefined;
  const value = Number(raw);
  if (!Number.isSafeInteger(value)) {
    throw new RangeError(`${name} must be an integer: got ${JSON.stringify(raw)}`);
  }
  return value;
}

/** The shard of a Slurm array task, or undefined outside a job array. */
function slurmShard(env: Environment): Shard | undefined {
  const id = integerVar(env, "SLURM_ARRAY_TASK_ID");
  if (id === undefined) return undefined;
  const min = integerVar(env, "SLURM_ARRAY_TASK_MIN") ?? 0;
  const max = integerVar(env, "SLURM_ARRAY_TASK_MAX");
  const step = integerVar(env, "SLURM_ARRAY_TASK_STEP") ?? 1;
  const given = integerVar(env, "SLURM_ARRAY_TASK_COUNT");
  const span = max === undefined || step < 1 ? undefined : Math.floor((max - min) / step) + 1;
  const count = given ?? span;
  const vars = `SLURM_ARRAY_TASK_ID=${id}` + (min !== 0 ? `, SLURM_ARRAY_TASK_MIN=${min}` : "") +
    (step !== 1 ? `, SLURM_ARRAY_TASK_STEP=${step}` : "") +
    (given !== undefined ? `, SLURM_ARRAY_TASK_COUNT=${given}` : `, SLURM_ARRAY_TASK_MAX=${max}`);
  if (count === undefined) {
    throw new RangeError(
      `SLURM_ARRAY_TASK_ID=${id} without SLURM_ARRAY_TASK_COUNT or SLURM_ARRAY_TASK_MAX: ` +
        `give --shard K/N`,
    );
  }
  const index = (id - min) / step;
  // A list such as --array=0,2,5 is no range: its ids do not say which part is whose.
  if (!Number.isInteger(index) || index < 0 || index >= count || (span ?? count) !== count) {
    throw new RangeError(
      `${vars} is not one of ${count} evenly spaced array tasks: use --array=0-${count - 1} ` +
        `or give --shard K/N`,
    );
  }
  return { ...checkShard(index, count, vars), source: vars };
}

/** The shard of a Kubernetes Indexed Job's pod, or undefined outside one. */
function indexedJobShard(env: Environment, shards: number | undefined): Shard | undefined {
  const index = integerVar(env, "JOB_COMPLETION_INDEX");
  if (index === undefined) return undefined;
  if (shards === undefined) {
    throw new RangeError(
      `JOB_COMPLETION_INDEX=${index} needs --shards N (the Job's completions), or give --shard K/N`,
    );
  }
  const vars = `JOB_COMPLETION_INDEX=${index} of --shards ${shards}`;
  return { ...checkShard(index, shards, vars), source: vars };
}

/**
 * The shard a scheduler gave this process, from its environment: a Slurm array task
 * (`SLURM_ARRAY_TASK_ID` …) or a Kubernetes Indexed Job's pod (`JOB_COMPLETION_INDEX`, counted
 * of `shards`); undefined when neither is set.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const env = { SLURM_ARRAY_TASK_ID: "3", SLURM_ARRAY_TASK_MIN: "1", SLURM_ARRAY_TASK_MAX: "4" };
 * assert.equal(shardFromEnvironment(env)?.index, 2);
 * assert.equal(shardFromEnvironment({ JOB_COMPLETION_INDEX: "1" }, 4)?.count, 4);
 * assert.equal(shardFromEnvironment({}), undefined);
 * ```
 *
 * @param shards The shard count of an Indexed Job (`--shards`); when given with a Slurm array,
 * it must be the array's size.
 * @throws {RangeError} For values that name no shard, and for `JOB_COMPLETION_INDEX` without
 * `shards`.
 */
export function shardFromEnvironment(env: Environment, shards?: number): Shard | undefined {
  const slurm = slurmShard(env);
  if (slurm) {
    if (shards !== undefined && shards !== slurm.count) {
      throw new RangeError(`--shards ${shards} differs from the Slurm array's ${slurm.source}`);
    }
    return slurm;
  }
  return indexedJobShard(env, shards);
}

/**
 * The shard of a task: `--shard K/N` when given (then `--shards`, if given too, must be `N`),
 * else the scheduler's environment ({@linkcode shardFromEnvironment}); undefined for a run of
 * the whole job.
 */
export function resolveShard(
  values: { shard?: string; shards?: number },
  env: Environment,
): Shard | undefined {
  if (values.shard !== undefined) {
    const shard = parseShard(values.shard);
    if (values.shards !== undefined && values.shards !== shard.count) {
      throw new RangeError(`--shards ${values.shards} differs from --shard ${values.shard}`);
    }
    return shard;
  }
  const shard = shardFromEnvironment(env, values.shards);
  if (shard === undefined && values.shards !== undefined) {
    throw new RangeError(
      `--shards ${values.shards} needs the shard index: give --shard K/N, or run as an ` +
        `indexed task (JOB_COMPLETION_INDEX, SLURM_ARRAY_TASK_ID)`,
    );
  }
  return shard;
}

/** `shard K/N`, with where it came from when known: the first line a sharded task prints. */
export function shardLabel(shard: Shard): string {
  const from = shard.source && !shard.source.startsWith("--shard") ? ` (${shard.source})` : "";
  return `shard ${shard.index}/${shard.count}${from}`;
}

/** The file name stem of a shard's outputs: `shard-K-of-N`. */
export function shardName(shard: Shard): string {
  return `shard-${shard.index}-of-${shard.count}`;
}

/** A half-open range `[first, end)` of units, items or samples. */
export interface IndexRange {
  /** First index of the range. */
  first: number;
  /** One past the last index (exclusive); `end === first` is an empty range. */
  end: number;
}

/**
 * The units (batches) of `units` that are shard `K/N`'s: the contiguous run
 * `[⌊K·units/N⌋, ⌊(K+1)·units/N⌋)`. The shards' runs are disjoint and cover `0 … units − 1` in
 * order; with more shards than units some runs are empty.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.deepEqual(shardUnits(10, { index: 1, count: 4 }), { first: 2, end: 5 });
 * ```
 */
export function shardUnits(units: number, shard: Shard): IndexRange {
  if (!Number.isSafeInteger(units) || units < 0) {
    throw new RangeError(`units must be an integer >= 0: got ${units}`);
  }
  checkShard(shard.index, shard.count, "shard");
  return {
    first: Math.floor(shard.index * units / shard.count),
    end: Math.floor((shard.index + 1) * units / shard.count),
  };
}

/**
 * The samples of shard `K/N` when `count` samples run in batches of `batchSize`: the samples of
 * its batches ({@linkcode shardUnits}), so every sample runs in the batch it runs in for one
 * process.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * // 10 samples in batches of 3: batches [0,3) [3,6) [6,9) [9,10); shard 1/2 has the last two.
 * assert.deepEqual(shardSamples(10, 3, { index: 1, count: 2 }), { first: 6, end: 10 });
 * ```
 */
export function shardSamples(count: number, batchSize: number, shard: Shard): IndexRange {
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) {
    throw new RangeError(`batchSize must be an integer >= 1: got ${batchSize}`);
  }
  const units = shardUnits(Math.ceil(count / batchSize), shard);
  return {
    first: Math.min(units.first * batchSize, count),
    end: Math.min(units.end * batchSize, count),
  };
}

/**
 * Whether item `i` of a list (a cell of the schedule matrix) is shard `K/N`'s: every `N`-th
 * item from `K`, so that shards get a like mix of cheap and expensive cells.
 */
export function shardOwns(i: number, shard: Shard): boolean {
  return i % shard.count === shard.index;
}

/**
 * `SOURCE_DATE_EPOCH` (seconds since 1970, the reproducible-builds convention) as a date: the
 * creation time written into outputs instead of the clock, so that separate runs — one
 * process, or the shards of a job — write identical files.
 *
 * @example
 * ```ts
 * console.log(sourceDateEpoch({ SOURCE_DATE_EPOCH: "0" })?.toISOString()); // "1970-01-01T00:00:00.000Z"
 * ```
 *
 * @throws {RangeError} When the variable is set but is not a whole number of seconds.
 */
export function sourceDateEpoch(env: Environment): Date | undefined {
  const raw = env.SOURCE_DATE_EPOCH;
  if (raw === undefined || raw.trim() === "") return undefined;
  if (!/^\s*\d+\s*$/.test(raw)) {
    throw new RangeError(
      `SOURCE_DATE_EPOCH must be whole seconds since 1970: got ${JSON.stringify(raw)}`,
    );
  }
  return new Date(Number(raw) * 1000);
}
