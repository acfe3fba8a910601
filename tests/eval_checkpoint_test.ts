import assert from "node:assert/strict";
import { join } from "node:path";
import {
  readEvalCheckpoint,
  removeEvalCheckpoint,
  writeEvalCheckpoint,
} from "../lib/eval_checkpoint.ts";
import { writeNpz } from "../lib/npz.ts";

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
