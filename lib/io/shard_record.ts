/**
 * The records the shards of one job leave in their shared folder, and the checks a merge makes
 * of them before it writes anything.
 *
 * A shard writes its record `shard-K-of-N.<ext>` when its part is complete (atomically: a
 * record that exists is whole), so a shard that died left none. Every record carries the
 * shard's `kind` (`generate`, `eval`, `bench`), `K/N` and the *fingerprint* of the job — a hash
 * of everything its results depend on — so that a merge can tell a missing shard from a
 * foreign one ({@linkcode checkShardSet}).
 *
 * @module
 */
import { join } from "node:path";
import type { Shard } from "../shard.ts";

/** `format` of a shard record. */
export const SHARD_RECORD_FORMAT = "ld3-shard";
/** `version` of the shard record layout. */
export const SHARD_RECORD_VERSION = 1;
/** The folder inside a shared output (a dataset, a benchmark folder) that holds the records. */
export const SHARDS_DIR = ".shards";

/** What every shard record says of itself. */
export interface ShardRecordHeader {
  /** Always {@linkcode SHARD_RECORD_FORMAT}. */
  format: typeof SHARD_RECORD_FORMAT;
  /** Layout version ({@linkcode SHARD_RECORD_VERSION} when written). */
  version: number;
  /** What the shard computed: `generate`, `eval`, `bench`. */
  kind: string;
  /** Which shard it is. */
  shard: { index: number; count: number };
  /** Hash of what the job's results depend on: equal for all shards of one job. */
  fingerprint: string;
}

/** A record read back: where it is, and its header (with whatever else the kind keeps). */
export interface ShardRecordFile<T extends ShardRecordHeader = ShardRecordHeader> {
  /** The record's file. */
  path: string;
  /** Its parsed content. */
  record: T;
}

/** `shard-K-of-N.<ext>`: the record's file name. */
export function shardRecordName(shard: Pick<Shard, "index" | "count">, ext = "json"): string {
  return `shard-${shard.index}-of-${shard.count}.${ext}`;
}

/** The shard a record's file name names, or undefined for another file. */
export function parseShardRecordName(
  name: string,
  ext = "json",
): { index: number; count: number } | undefined {
  const match = /^shard-(\d+)-of-(\d+)\.(.+)$/.exec(name);
  if (!match || match[3] !== ext) return undefined;
  return { index: Number(match[1]), count: Number(match[2]) };
}

/** Paths of the shard records (`shard-K-of-N.<ext>`) in `dir`, by name; none when it is missing. */
export async function listShardRecords(dir: string, ext = "json"): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isFile && parseShardRecordName(entry.name, ext)) names.push(entry.name);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return names.sort().map((name) => join(dir, name));
}

/**
 * Reads and checks the JSON shard records of `kind` in `dir` ({@linkcode listShardRecords},
 * {@linkcode checkShardHeader}); none when the folder is missing.
 *
 * @throws {TypeError} When a record is not JSON or not a shard record of `kind`, naming it.
 */
export async function readShardRecords<T extends ShardRecordHeader>(
  dir: string,
  kind: string,
): Promise<ShardRecordFile<T>[]> {
  const out: ShardRecordFile<T>[] = [];
  for (const path of await listShardRecords(dir)) {
    let value: unknown;
    try {
      value = JSON.parse(await Deno.readTextFile(path));
    } catch (e) {
      throw new TypeError(`${path} is not an ld3 shard record: ${(e as Error).message}`);
    }
    out.push({ path, record: checkShardHeader<T>(value, path, kind) });
  }
  return out;
}

/**
 * Checks a parsed record's header against its file name and `kind`.
 *
 * @throws {TypeError} When it is no shard record of `kind`, or names another shard than its
 * file.
 */
export function checkShardHeader<T extends ShardRecordHeader>(
  value: unknown,
  path: string,
  kind: string,
): T {
  const r = value as Partial<ShardRecordHeader> | null;
  if (r?.format !== SHARD_RECORD_FORMAT || typeof r.fingerprint !== "string" || !r.shard) {
    throw new TypeError(`${path} is not an ld3 shard record`);
  }
  if (r.version !== SHARD_RECORD_VERSION) {
    throw new TypeError(
      `${path} has shard record version ${r.version}: this ld3 reads ${SHARD_RECORD_VERSION}`,
    );
  }
  if (r.kind !== kind) throw new TypeError(`${path} is a shard of ${r.kind}, not of ${kind}`);
  const ext = path.slice(path.lastIndexOf(".") + 1);
  const named = parseShardRecordName(path.slice(path.lastIndexOf("/") + 1), ext);
  if (!named || named.index !== r.shard.index || named.count !== r.shard.count) {
    throw new TypeError(
      `${path} holds shard ${r.shard.index}/${r.shard.count}, not the one its name says`,
    );
  }
  return r as T;
}

/** The fingerprint most records share (ties: the lowest shard's). */
function commonFingerprint(records: readonly ShardRecordFile[]): string {
  const votes = new Map<string, number>();
  for (const { record } of records) {
    votes.set(record.fingerprint, (votes.get(record.fingerprint) ?? 0) + 1);
  }
  let best = records[0].record.fingerprint;
  for (const [fingerprint, n] of votes) if (n > votes.get(best)!) best = fingerprint;
  return best;
}

/** What {@linkcode checkShardSet} found: the job's shard count and fingerprint. */
export interface ShardSet<T extends ShardRecordHeader> {
  /** Number of shards N of the job. */
  count: number;
  /** The fingerprint every record of the job carries. */
  fingerprint: string;
  /** The records, one per shard, in shard order. */
  records: ShardRecordFile<T>[];
}

/**
 * Checks that `records` are the whole of one job: one fingerprint, one split `N`, every shard
 * `0 … N − 1` once. Each failure is one line naming the files or the shards to run.
 *
 * @param where The shared folder, named in messages.
 * @throws {RangeError} For no records, a foreign record, records of two splits (they overlap),
 * or missing shards.
 */
export function checkShardSet<T extends ShardRecordHeader>(
  records: readonly ShardRecordFile<T>[],
  where: string,
): ShardSet<T> {
  if (records.length === 0) {
    throw new RangeError(`Nothing to merge in ${where}: no shard has finished (no shard records)`);
  }
  const fingerprint = commonFingerprint(records);
  const foreign = records.find((r) => r.record.fingerprint !== fingerprint);
  if (foreign) {
    throw new RangeError(
      `Cannot merge ${where}: ${foreign.path} belongs to another job (fingerprint ` +
        `${foreign.record.fingerprint.slice(0, 12)}…, the others ${fingerprint.slice(0, 12)}…): ` +
        `delete it, or rerun that shard with the job's parameters`,
    );
  }
  const counts = [...new Set(records.map((r) => r.record.shard.count))];
  if (counts.length > 1) {
    const example = (n: number) => records.find((r) => r.record.shard.count === n)!.path;
    throw new RangeError(
      `Cannot merge ${where}: it holds shards of a ${counts[0]}-way and a ${counts[1]}-way ` +
        `split (${example(counts[0])}, ${example(counts[1])}), whose parts overlap: keep one split`,
    );
  }
  const count = counts[0];
  const byIndex = new Map(records.map((r) => [r.record.shard.index, r]));
  const missing = Array.from({ length: count }, (_, k) => k).filter((k) => !byIndex.has(k));
  if (missing.length > 0) {
    throw new RangeError(
      `Cannot merge ${where}: shard${missing.length > 1 ? "s" : ""} ${missing.join(", ")} of ` +
        `${count} ${missing.length > 1 ? "are" : "is"} missing: run ` +
        missing.map((k) => `--shard ${k}/${count}`).join(", ") + " (a rerun resumes)",
    );
  }
  return {
    count,
    fingerprint,
    records: [...byIndex.keys()].sort((a, b) => a - b).map((k) => byIndex.get(k)!),
  };
}
