/**
 * A sharded `generate` and its merge: N shards write one dataset folder at once, and merged it
 * is byte for byte the folder one process writes; a dead shard reruns and resumes; two shards
 * with one index, or a plain run and the shards, refuse each other; a merge with a missing or
 * foreign shard fails with one line.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { LockedError, lockOutput } from "../../lib/io/lock.ts";
import { samplePath, samplePngPath } from "../../lib/io/dataset.ts";
import { generateDataset, type GenerateDatasetOptions } from "../../lib/pipelines/generate.ts";
import { mergeDatasetShards } from "../../lib/pipelines/dataset_merge.ts";
import { pathExists } from "../../lib/io/fs.ts";
import { hashTree, makeTinyGmm } from "../_tiny_gmm.ts";

/** 10 samples in batches of 3 (4 batches), with pictures, created at a fixed time. */
const BASE: GenerateDatasetOptions = {
  totalSamples: 10,
  samplingBatchSize: 3,
  steps: 6,
  solverName: "uni_pc",
  skipType: "edm",
  savePng: true,
  progress: false,
  created: new Date("2026-01-01T00:00:00Z"),
};

Deno.test("three shards written at once, merged, are the one-process dataset byte for byte", async () => {
  const t = await makeTinyGmm();
  try {
    const one = await generateDataset(t.config, { ...BASE, dataDir: join(t.dir, "one") });
    const dataDir = join(t.dir, "sharded");
    const parts = await Promise.all(
      [0, 1, 2].map((index) =>
        generateDataset(t.config, { ...BASE, dataDir, shard: { index, count: 3 } })
      ),
    );
    assert.deepEqual(parts.map((p) => p.samples), [
      { first: 0, end: 3 },
      { first: 3, end: 6 },
      { first: 6, end: 10 },
    ]);
    assert.deepEqual(parts.map((p) => p.generated), [3, 3, 4]);
    const dir = parts[0].dir;
    // Shards write no manifest: until the merge, the folder is no dataset.
    assert.ok(!await pathExists(join(dir, "manifest.json")));
    const merged = await mergeDatasetShards(dir);
    assert.equal(merged.shards, 3);
    assert.deepEqual(merged.wrote, [join(dir, "manifest.json"), join(dir, "grid.png")]);
    assert.deepEqual(await hashTree(dir), await hashTree(one.dir));
  } finally {
    await t.cleanup();
  }
});

Deno.test("a dead shard is rerun with its index and resumes; the merge names it until then", async () => {
  const t = await makeTinyGmm();
  try {
    const one = await generateDataset(t.config, { ...BASE, dataDir: join(t.dir, "one") });
    const dataDir = join(t.dir, "sharded");
    const run = (index: number) =>
      generateDataset(t.config, { ...BASE, dataDir, shard: { index, count: 3 } });
    const [first] = [await run(0), await run(2)];
    const dir = first.dir;
    // Shard 1 died midway: one sample on disk, a half-written one, no record.
    await generateDataset(t.config, { ...BASE, dataDir: join(t.dir, "scratch") });
    const scratch = join(t.dir, "scratch", "uni_pc_NFE6_edm");
    await Deno.copyFile(samplePath(scratch, 4), samplePath(dir, 4));
    await Deno.copyFile(samplePngPath(scratch, 4), samplePngPath(dir, 4));
    await Deno.writeTextFile(join(dir, "samples", ".000005.npz.999.0.abc.tmp"), "half");
    // A temporary file of a live shard's sample is not shard 1's to remove.
    await Deno.writeTextFile(join(dir, "samples", ".000007.npz.998.0.abc.tmp"), "live");
    await assert.rejects(
      () => mergeDatasetShards(dir),
      /^RangeError: Cannot merge .*: shard 1 of 3 is missing: run --shard 1\/3 \(a rerun resumes\)$/,
    );
    const rerun = await run(1);
    // Samples 3 and 5 are made (in their batch, with sample 4 again); sample 4 is kept.
    assert.deepEqual([rerun.generated, rerun.skipped], [2, 1]);
    const names = [...Deno.readDirSync(join(dir, "samples"))].map((e) => e.name);
    assert.ok(!names.includes(".000005.npz.999.0.abc.tmp"), "its own leftover is removed");
    assert.ok(names.includes(".000007.npz.998.0.abc.tmp"), "another shard's is kept");
    await mergeDatasetShards(dir);
    assert.deepEqual(await hashTree(dir), await hashTree(one.dir));
  } finally {
    await t.cleanup();
  }
});

Deno.test("two shards with one index, and a plain run and the shards, refuse each other", async () => {
  const t = await makeTinyGmm();
  try {
    const dataDir = join(t.dir, "data");
    const dir = join(dataDir, "uni_pc_NFE6_edm");
    const shard1 = { ...BASE, dataDir, shard: { index: 1, count: 3 } };
    // Shard 1/3 is running (holding its part and, shared, the folder).
    const own = await lockOutput(join(dir, ".shards", "shard-1-of-3.json"), {
      what: "generate shard 1/3",
    });
    const folder = await lockOutput(dir, { shared: true });
    const second = await generateDataset(t.config, shard1).catch((e) => e);
    assert.ok(second instanceof LockedError, String(second));
    assert.match(second.message, /shard-1-of-3\.json is in use by generate shard 1\/3, process/);
    const plain = await generateDataset(t.config, { ...BASE, dataDir }).catch((e) => e);
    assert.ok(plain instanceof LockedError, String(plain));
    assert.match(plain.message, /uni_pc_NFE6_edm is in use by the shards of a sharded run/);
    // Another index runs beside it.
    const other = await generateDataset(t.config, { ...shard1, shard: { index: 2, count: 3 } });
    assert.equal(other.generated, 4);
    await folder.release();
    await own.release();
    // A plain run holds the folder: no shard starts.
    const running = await lockOutput(dir, { what: "generate" });
    const refused = await generateDataset(t.config, shard1).catch((e) => e);
    assert.ok(refused instanceof LockedError, String(refused));
    assert.match(refused.message, /in use by generate, process/);
    await running.release();
  } finally {
    await t.cleanup();
  }
});

Deno.test("shards refuse a folder of another job or split; a merge refuses a foreign shard", async () => {
  const t = await makeTinyGmm();
  try {
    const dataDir = join(t.dir, "data");
    const [a] = await Promise.all(
      [0, 1].map((index) =>
        generateDataset(t.config, { ...BASE, dataDir, shard: { index, count: 2 } })
      ),
    );
    const dir = a.dir;
    await assert.rejects(
      () => generateDataset(t.config, { ...BASE, dataDir, shard: { index: 0, count: 4 } }),
      /holds finished shards of a 2-way split .*: run that split's missing shards, or delete .*\.shards to start a 4-way one/,
    );
    await assert.rejects(
      () =>
        generateDataset(t.config, {
          ...BASE,
          dataDir,
          totalSamples: 12,
          shard: { index: 0, count: 2 },
        }),
      /holds a shard of another job/,
    );
    // A record of another job slipped in (here: another sample count).
    const record = JSON.parse(await Deno.readTextFile(join(dir, ".shards", "shard-1-of-2.json")));
    record.fingerprint = "0".repeat(64);
    await Deno.writeTextFile(join(dir, ".shards", "shard-1-of-2.json"), JSON.stringify(record));
    await assert.rejects(
      () => mergeDatasetShards(dir),
      /^RangeError: Cannot merge .*: .*shard-\d-of-2\.json belongs to another job \(fingerprint/,
    );
    // A sample lost after its shard finished: named, with the shard to rerun.
    record.fingerprint = JSON.parse(
      await Deno.readTextFile(join(dir, ".shards", "shard-0-of-2.json")),
    ).fingerprint;
    await Deno.writeTextFile(join(dir, ".shards", "shard-1-of-2.json"), JSON.stringify(record));
    await Deno.remove(samplePath(dir, 8));
    await assert.rejects(
      () => mergeDatasetShards(dir),
      /1 sample is missing or not this dataset's \(first: 8, shard 1\/2's\): rerun --shard 1\/2/,
    );
  } finally {
    await t.cleanup();
  }
});
