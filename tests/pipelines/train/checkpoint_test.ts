import assert from "node:assert/strict";
import { join } from "node:path";
import { encodeNpz } from "../../../lib/io/npz.ts";
import {
  CHECKPOINT_FILE,
  readRunCheckpoint,
  restoreTrainerState,
  saveRunCheckpoint,
} from "../../../lib/pipelines/train/checkpoint.ts";
import type { Ld3Checkpoint, Ld3Snapshot } from "../../../lib/ld3/trainer.ts";

const SIZES = { numTrain: 3, numValid: 2, size: 4 };

function snapshot(offset: number): Ld3Snapshot {
  const rows = (n: number, k: number) =>
    Array.from(
      { length: n },
      (_, i) => Array.from({ length: SIZES.size }, (_, j) => offset + k * 100 + i * 10 + j + 1 / 3),
    );
  return {
    theta1: [offset, 1],
    theta2: [offset, 2],
    t1: [80, 1, 0.002],
    t2: [80, 1.1, 0.002],
    trainLatents: rows(SIZES.numTrain, 1),
    validLatents: rows(SIZES.numValid, 2),
  };
}

function state(best: boolean): Ld3Checkpoint {
  return {
    format: "ld3-checkpoint",
    version: 1,
    current: snapshot(0),
    best: best ? { ...snapshot(1000), loss: 0.25 } : null,
    rmsprop: { lr: 0.1, step: 3, squareAvg: [1, 2], momentumBuffer: [0, 0], gradAvg: [0, 1] },
    sgd: { lr: 0.01, step: 3, momentumBuffer: null },
    shiftLr: 0.5,
    round: 1,
    batch: 2,
    roundStarted: true,
    globalStep: 7,
    countWorse: 0,
    countMinLrHit: 0,
    validOnOne: false,
    stopped: false,
    order: [2, 0, 1],
    seed: 0,
    fingerprint: "f",
  };
}

const META = { options: { solverName: "ipndm" }, logLines: 12, elapsedSeconds: 3.5, frames: [] };

Deno.test("a run checkpoint round-trips the trainer state bit for bit, one generation kept", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await saveRunCheckpoint(dir, state(false), { ...META, generation: 1 }, SIZES);
    const s = state(true);
    await saveRunCheckpoint(dir, s, { ...META, generation: 2 }, SIZES);
    const files = [];
    for await (const e of Deno.readDir(dir)) files.push(e.name);
    assert.deepEqual(files.sort(), ["checkpoint.2.npz", CHECKPOINT_FILE]);

    const record = await readRunCheckpoint(dir);
    assert.equal(record.latents, "checkpoint.2.npz");
    assert.equal(record.logLines, 12);
    // The JSON holds no latents; the .npz holds them in float64.
    assert.deepEqual(record.trainer.current.trainLatents, []);
    assert.deepEqual(await restoreTrainerState(dir, record, SIZES), s);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a run checkpoint that is not one, or lacks a latent table, is refused by name", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, CHECKPOINT_FILE), JSON.stringify({ format: "other" }));
    await assert.rejects(
      () => readRunCheckpoint(dir),
      /checkpoint\.json is not an ld3 run checkpoint/,
    );

    await saveRunCheckpoint(dir, state(true), { ...META, generation: 1 }, SIZES);
    const record = await readRunCheckpoint(dir);
    await Deno.writeFile(
      join(dir, record.latents),
      encodeNpz({ current_train: { data: new Float64Array(12), shape: [3, 4] } }),
    );
    await assert.rejects(
      () => restoreTrainerState(dir, record, SIZES),
      /checkpoint\.1\.npz lacks "current_valid"/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
