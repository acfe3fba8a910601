import assert from "node:assert/strict";
import { join } from "node:path";
import {
  checkShardHeader,
  checkShardSet,
  listShardRecords,
  parseShardRecordName,
  SHARD_RECORD_FORMAT,
  SHARD_RECORD_VERSION,
  type ShardRecordFile,
  shardRecordName,
} from "../../lib/io/shard_record.ts";

function record(index: number, count: number, fingerprint = "f".repeat(64)): ShardRecordFile {
  return {
    path: `/d/${shardRecordName({ index, count })}`,
    record: {
      format: SHARD_RECORD_FORMAT,
      version: SHARD_RECORD_VERSION,
      kind: "generate",
      shard: { index, count },
      fingerprint,
    },
  };
}

Deno.test("shard record names: shard-K-of-N.<ext>, listed in a folder", async () => {
  assert.equal(shardRecordName({ index: 2, count: 4 }, "npz"), "shard-2-of-4.npz");
  assert.deepEqual(parseShardRecordName("shard-2-of-4.json"), { index: 2, count: 4 });
  assert.equal(parseShardRecordName("shard-2-of-4.partial.npz", "npz"), undefined);
  assert.equal(parseShardRecordName(".shard-2-of-4.json.lock"), undefined);
  const dir = await Deno.makeTempDir();
  try {
    for (
      const name of ["shard-1-of-2.json", "shard-0-of-2.json", "x.json", ".shard-0-of-2.json.lock"]
    ) {
      await Deno.writeTextFile(join(dir, name), "{}");
    }
    assert.deepEqual(await listShardRecords(dir), [
      join(dir, "shard-0-of-2.json"),
      join(dir, "shard-1-of-2.json"),
    ]);
    assert.deepEqual(await listShardRecords(join(dir, "none")), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkShardHeader() refuses other files and records that are not their name's", () => {
  const ok = record(1, 2).record;
  assert.equal(checkShardHeader(ok, "/d/shard-1-of-2.json", "generate"), ok);
  assert.throws(
    () => checkShardHeader({}, "/d/shard-1-of-2.json", "generate"),
    /not an ld3 shard record/,
  );
  assert.throws(
    () => checkShardHeader(ok, "/d/shard-1-of-2.json", "eval"),
    /shard of generate, not of eval/,
  );
  assert.throws(
    () => checkShardHeader(ok, "/d/shard-0-of-2.json", "generate"),
    /holds shard 1\/2, not the one its name says/,
  );
  assert.throws(
    () => checkShardHeader({ ...ok, version: 9 }, "/d/shard-1-of-2.json", "generate"),
    /version 9/,
  );
});

Deno.test("checkShardSet(): the whole job, or one line naming what is missing or foreign", () => {
  const set = checkShardSet([record(2, 3), record(0, 3), record(1, 3)], "/d");
  assert.deepEqual(set.records.map((r) => r.record.shard.index), [0, 1, 2]);
  assert.equal(set.count, 3);
  assert.throws(
    () => checkShardSet([], "/d"),
    /^RangeError: Nothing to merge in \/d: no shard has finished/,
  );
  assert.throws(
    () => checkShardSet([record(0, 4), record(2, 4)], "/d"),
    /^RangeError: Cannot merge \/d: shards 1, 3 of 4 are missing: run --shard 1\/4, --shard 3\/4 \(a rerun resumes\)$/,
  );
  assert.throws(
    () => checkShardSet([record(0, 2), record(1, 2, "a".repeat(64)), record(1, 3)], "/d"),
    /Cannot merge \/d: \/d\/shard-1-of-2.json belongs to another job \(fingerprint aaaaaaaaaaaa…, the others ffffffffffff…\)/,
  );
  assert.throws(
    () => checkShardSet([record(0, 2), record(1, 2), record(0, 4)], "/d"),
    /holds shards of a 2-way and a 4-way split .* whose parts overlap: keep one split/,
  );
});
