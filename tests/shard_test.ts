import assert from "node:assert/strict";
import {
  parseShard,
  resolveShard,
  shardFromEnvironment,
  shardLabel,
  shardName,
  shardOwns,
  shardSamples,
  shardUnits,
  sourceDateEpoch,
} from "../lib/shard.ts";

Deno.test("parseShard() reads K/N with K from 0, and refuses anything else in one line", () => {
  assert.deepEqual(parseShard("0/1"), { index: 0, count: 1, source: "--shard 0/1" });
  assert.deepEqual(parseShard(" 3 / 4 "), { index: 3, count: 4, source: "--shard 3/4" });
  assert.throws(
    () => parseShard("4/4"),
    /--shard 4\/4: the shard index counts from 0, .*0…3: got 4/,
  );
  assert.throws(() => parseShard("0/0"), /shard count must be an integer >= 1: got 0/);
  for (const bad of ["1", "a/b", "-1/4", "1/4/2", "1.5/4", ""]) {
    assert.throws(() => parseShard(bad), /--shard must be K\/N, e\.g\. 0\/4/, bad);
  }
});

Deno.test("shardFromEnvironment() reads Slurm job arrays however they are numbered", () => {
  const slurm = (vars: Record<string, string>) => shardFromEnvironment(vars);
  // --array=0-3
  assert.deepEqual(
    slurm({
      SLURM_ARRAY_TASK_ID: "2",
      SLURM_ARRAY_TASK_COUNT: "4",
      SLURM_ARRAY_TASK_MIN: "0",
      SLURM_ARRAY_TASK_MAX: "3",
    }),
    { index: 2, count: 4, source: "SLURM_ARRAY_TASK_ID=2, SLURM_ARRAY_TASK_COUNT=4" },
  );
  // --array=1-4: counted from MIN.
  const fromOne = slurm({
    SLURM_ARRAY_TASK_ID: "1",
    SLURM_ARRAY_TASK_MIN: "1",
    SLURM_ARRAY_TASK_MAX: "4",
  });
  assert.equal(fromOne?.index, 0);
  assert.equal(fromOne?.count, 4);
  // --array=0-6:2 (0, 2, 4, 6)
  const stepped = slurm({
    SLURM_ARRAY_TASK_ID: "4",
    SLURM_ARRAY_TASK_MIN: "0",
    SLURM_ARRAY_TASK_MAX: "6",
    SLURM_ARRAY_TASK_STEP: "2",
    SLURM_ARRAY_TASK_COUNT: "4",
  });
  assert.deepEqual([stepped?.index, stepped?.count], [2, 4]);
  // --array=0,2,5 is no evenly spaced range.
  assert.throws(
    () =>
      slurm({
        SLURM_ARRAY_TASK_ID: "5",
        SLURM_ARRAY_TASK_MIN: "0",
        SLURM_ARRAY_TASK_MAX: "5",
        SLURM_ARRAY_TASK_COUNT: "3",
      }),
    /not one of 3 evenly spaced array tasks: use --array=0-2 or give --shard K\/N/,
  );
  assert.throws(() => slurm({ SLURM_ARRAY_TASK_ID: "1" }), /without SLURM_ARRAY_TASK_COUNT/);
  assert.throws(
    () => slurm({ SLURM_ARRAY_TASK_ID: "x", SLURM_ARRAY_TASK_COUNT: "4" }),
    /SLURM_ARRAY_TASK_ID must be an integer: got "x"/,
  );
  // A plain (non-array) Slurm job is the whole job.
  assert.equal(slurm({ SLURM_JOB_ID: "7" }), undefined);
});

Deno.test("shardFromEnvironment() reads Kubernetes Indexed Jobs with --shards", () => {
  assert.deepEqual(shardFromEnvironment({ JOB_COMPLETION_INDEX: "3" }, 8), {
    index: 3,
    count: 8,
    source: "JOB_COMPLETION_INDEX=3 of --shards 8",
  });
  assert.throws(
    () => shardFromEnvironment({ JOB_COMPLETION_INDEX: "3" }),
    /JOB_COMPLETION_INDEX=3 needs --shards N \(the Job's completions\)/,
  );
  assert.throws(() => shardFromEnvironment({ JOB_COMPLETION_INDEX: "8" }, 8), /0…7: got 8/);
  assert.throws(
    () => shardFromEnvironment({ SLURM_ARRAY_TASK_ID: "0", SLURM_ARRAY_TASK_COUNT: "4" }, 2),
    /--shards 2 differs from the Slurm array's/,
  );
});

Deno.test("resolveShard(): --shard wins over the environment; --shards alone is refused", () => {
  const env = { SLURM_ARRAY_TASK_ID: "1", SLURM_ARRAY_TASK_COUNT: "4" };
  assert.equal(resolveShard({ shard: "0/1" }, env)?.count, 1);
  assert.equal(resolveShard({}, env)?.index, 1);
  assert.equal(resolveShard({}, {}), undefined);
  assert.throws(() => resolveShard({ shard: "1/4", shards: 3 }, {}), /--shards 3 differs/);
  assert.throws(() => resolveShard({ shards: 3 }, {}), /--shards 3 needs the shard index/);
});

Deno.test("shardLabel() and shardName() say which shard it is", () => {
  assert.equal(shardLabel(parseShard("1/4")), "shard 1/4");
  assert.equal(
    shardLabel(shardFromEnvironment({ JOB_COMPLETION_INDEX: "1" }, 4)!),
    "shard 1/4 (JOB_COMPLETION_INDEX=1 of --shards 4)",
  );
  assert.equal(shardName({ index: 1, count: 4 }), "shard-1-of-4");
});

Deno.test("shardUnits() and shardSamples(): disjoint, in order, covering, whole batches", () => {
  for (let units = 0; units <= 13; units++) {
    for (let count = 1; count <= 9; count++) {
      let next = 0;
      for (let index = 0; index < count; index++) {
        const r = shardUnits(units, { index, count });
        assert.equal(r.first, next);
        assert.ok(r.end >= r.first);
        next = r.end;
      }
      assert.equal(next, units);
    }
  }
  for (const [n, b] of [[10, 3], [12, 4], [1, 5], [23, 5]]) {
    let next = 0;
    for (let index = 0; index < 4; index++) {
      const r = shardSamples(n, b, { index, count: 4 });
      assert.equal(r.first, next);
      assert.ok(r.first % b === 0 || r.first === n, `${n}/${b}: starts inside a batch`);
      next = r.end;
    }
    assert.equal(next, n);
  }
  assert.throws(() => shardSamples(10, 0, { index: 0, count: 1 }), /batchSize/);
});

Deno.test("shardOwns() deals cells round robin", () => {
  const owners = Array.from(
    { length: 7 },
    (_, i) => [0, 1, 2].find((k) => shardOwns(i, { index: k, count: 3 })),
  );
  assert.deepEqual(owners, [0, 1, 2, 0, 1, 2, 0]);
});

Deno.test("sourceDateEpoch() reads SOURCE_DATE_EPOCH", () => {
  assert.equal(sourceDateEpoch({}), undefined);
  assert.equal(
    sourceDateEpoch({ SOURCE_DATE_EPOCH: "1767225600" })?.toISOString(),
    "2026-01-01T00:00:00.000Z",
  );
  assert.throws(() => sourceDateEpoch({ SOURCE_DATE_EPOCH: "soon" }), /whole seconds since 1970/);
});
