/**
 * Merging the shards of a sharded `generate` (`deno task merge <dataset>`): once every shard
 * of the job has made its samples in the shared dataset folder, the merge checks the job is
 * whole and writes what one process writes at its end — `manifest.json` and, with
 * `--save_png`, `grid.png` — then removes the shards' records. The folder is then byte for byte
 * the one a single `generate` writes (with the same `created`: `SOURCE_DATE_EPOCH`, see
 * `lib/shard.ts`).
 *
 * @module
 */
import { join } from "node:path";
import {
  commitManifest,
  type DatasetManifest,
  firstDifference,
  manifestIdentity,
  readManifest,
  removeStrayTempFiles,
} from "../io/dataset.ts";
import { lockOutput } from "../io/lock.ts";
import { checkShardSet, type ShardRecordFile, SHARDS_DIR } from "../io/shard_record.ts";
import { shardSamples } from "../shard.ts";
import {
  type DatasetShardRecord,
  incompleteSamples,
  readDatasetShardRecords,
  writeGridPng,
} from "./_dataset_writer.ts";

export type { DatasetShardRecord };

/** What {@linkcode mergeDatasetShards} did. */
export interface MergedDataset {
  /** The dataset folder. */
  dir: string;
  /** The manifest in force (written now, or already there). */
  manifest: DatasetManifest;
  /** Shards merged. */
  shards: number;
  /** Files written. */
  wrote: string[];
}

/** The earliest of ISO times. */
function earliest(times: readonly string[]): string {
  return times.reduce((a, b) => (Date.parse(b) < Date.parse(a) ? b : a));
}

/** Checks each record's samples are the part its shard owns. */
function checkParts(records: readonly ShardRecordFile<DatasetShardRecord>[], dir: string): void {
  for (const { path, record } of records) {
    const expected = shardSamples(record.count, record.batch_size, record.shard);
    if (expected.first !== record.samples.first || expected.end !== record.samples.end) {
      throw new RangeError(
        `Cannot merge ${dir}: ${path} records samples ${record.samples.first}…` +
          `${record.samples.end - 1}, not its shard's ${expected.first}…${expected.end - 1}`,
      );
    }
  }
}

/** The shard of a job's records that owns sample `index`. */
function ownerOf(records: readonly ShardRecordFile<DatasetShardRecord>[], index: number): string {
  const owner = records.find((r) =>
    r.record.samples.first <= index && index < r.record.samples.end
  );
  return owner ? `${owner.record.shard.index}/${owner.record.shard.count}` : "?";
}

/**
 * Merges the shards of a sharded dataset: checks their records (one job, one split, every
 * shard there: `checkShardSet`), that every sample file is present and this dataset's, then
 * writes `manifest.json` (the earliest shard's creation time; a manifest already there is kept)
 * and `grid.png`, and removes `<dir>/.shards` and the temporary files killed shards left. Runs
 * while no shard does (the folder's lock).
 *
 * @throws {RangeError} For missing or foreign shards and missing samples, in one line naming
 * the shards to rerun.
 * @throws {LockedError} While shards still run.
 */
export async function mergeDatasetShards(dir: string): Promise<MergedDataset> {
  await using _lock = await lockOutput(dir, { what: "merge" });
  const set = checkShardSet(await readDatasetShardRecords(dir), dir);
  checkParts(set.records, dir);
  const first = set.records[0].record;
  const existing = await readManifest(dir).catch((e) => {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  });
  const difference = existing &&
    firstDifference(manifestIdentity(existing), manifestIdentity(first.manifest));
  if (difference) {
    throw new RangeError(
      `Cannot merge ${dir}: its manifest.json has other parameters than the shards (${difference})`,
    );
  }
  const manifest = existing ??
    { ...first.manifest, created: earliest(set.records.map((r) => r.record.manifest.created)) };
  // No shard runs (the lock says so): what a killed one left half-written goes.
  await removeStrayTempFiles(dir);
  const missing = await incompleteSamples(dir, manifest, first.save_png);
  if (missing.length > 0) {
    const shard = ownerOf(set.records, missing[0]);
    throw new RangeError(
      `Cannot merge ${dir}: ${missing.length} sample${missing.length > 1 ? "s are" : " is"} ` +
        `missing or not this dataset's (first: ${
          missing[0]
        }, shard ${shard}'s): rerun --shard ${shard}`,
    );
  }
  const wrote: string[] = [];
  if (!existing) {
    await commitManifest(dir, manifest);
    wrote.push(join(dir, "manifest.json"));
  }
  if (first.save_png) {
    await writeGridPng(dir, manifest, Math.min(manifest.count, 64), first.scale ?? undefined);
    wrote.push(join(dir, "grid.png"));
  }
  await Deno.remove(join(dir, SHARDS_DIR), { recursive: true });
  return { dir, manifest, shards: set.count, wrote };
}
