import assert from "node:assert/strict";
import { join } from "node:path";
import {
  columnArrays,
  readEvalCheckpoint,
  removeEvalCheckpoint,
  restoreColumns,
  writeEvalCheckpoint,
} from "../../lib/pipelines/eval_checkpoint.ts";
import { writeNpz } from "../../lib/io/npz.ts";

Deno.test("eval checkpoint: write/read round trip, refusal of another evaluation, removal", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "c.partial.npz");
    const fp = { model: "abc", seed: 3, grid: { t1: [80, 1.5, 0.002] } };
    assert.equal(await readEvalCheckpoint(path, fp), undefined);
    const features = Float64Array.from({ length: 12 }, (_, i) => i / 7);
    const preview = Float32Array.of(0.5, -0.25);
    await writeEvalCheckpoint(path, {
      fingerprint: fp,
      done: 4,
      seconds: 2.5,
      arrays: { features, preview },
    });
    const back =
      (await readEvalCheckpoint(path, { grid: { t1: [80, 1.5, 0.002] }, seed: 3, model: "abc" }))!;
    assert.equal(back.done, 4);
    assert.equal(back.seconds, 2.5);
    assert.deepEqual(back.arrays.features, features);
    assert.deepEqual(back.arrays.preview, preview);

    await assert.rejects(
      () => readEvalCheckpoint(path, { ...fp, seed: 4 }),
      (e: Error) =>
        e instanceof RangeError && /another evaluation \(differs in: seed\)/.test(e.message),
    );
    assert.ok((await Deno.stat(path)).isFile, "a refused checkpoint is left in place");

    const foreign = join(dir, "foreign.npz");
    await writeNpz(foreign, { mu: { data: new Float64Array(2), shape: [2] } });
    await assert.rejects(() => readEvalCheckpoint(foreign, fp), /Not an evaluation checkpoint/);
    await Deno.writeTextFile(join(dir, "text.npz"), "hello");
    await assert.rejects(
      () => readEvalCheckpoint(join(dir, "text.npz"), fp),
      /Not an evaluation checkpoint/,
    );
    await assert.rejects(
      () =>
        writeEvalCheckpoint(path, {
          fingerprint: fp,
          done: 0,
          seconds: 0,
          arrays: { meta: preview },
        }),
      /reserved/,
    );

    await removeEvalCheckpoint(path);
    await removeEvalCheckpoint(path); // already gone: fine
    assert.equal(await readEvalCheckpoint(path, fp), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("columnArrays() and restoreColumns(): filled rows out, back in, short ones refused", () => {
  const columns = {
    l2: { data: Float64Array.of(1, 2, 3, 4), row: 1 },
    features: { data: Float64Array.from({ length: 8 }, (_, i) => i), row: 2 },
    preview: { data: Float32Array.of(9, 9, 8, 8), row: 2, maxRows: 2 },
    exact: { data: new Float64Array(0), row: 1 },
  };
  const arrays = columnArrays(columns, 3);
  assert.deepEqual(Object.keys(arrays), ["l2", "features", "preview"]);
  assert.deepEqual(arrays.l2, Float64Array.of(1, 2, 3));
  assert.deepEqual(arrays.features, Float64Array.of(0, 1, 2, 3, 4, 5));
  assert.deepEqual(arrays.preview, Float32Array.of(9, 9, 8, 8), "capped at maxRows");

  const fresh = {
    l2: { data: new Float64Array(4), row: 1 },
    features: { data: new Float64Array(8), row: 2 },
    preview: { data: new Float32Array(4), row: 2, maxRows: 2 },
    exact: { data: new Float64Array(0), row: 1 },
  };
  restoreColumns({ fingerprint: {}, done: 3, seconds: 0, arrays }, fresh, "c.npz");
  assert.deepEqual(fresh.l2.data, Float64Array.of(1, 2, 3, 0));
  assert.deepEqual(fresh.features.data, Float64Array.of(0, 1, 2, 3, 4, 5, 0, 0));
  assert.deepEqual(fresh.preview.data, Float32Array.of(9, 9, 8, 8));
  assert.throws(
    () => restoreColumns({ fingerprint: {}, done: 4, seconds: 0, arrays }, fresh, "c.npz"),
    /Checkpoint c\.npz: array "l2" holds 3 values, 4 expected/,
  );
});
