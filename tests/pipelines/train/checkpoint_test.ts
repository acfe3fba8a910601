import assert from "node:assert/strict";
import { join } from "node:path";
import { decodeNpz, encodeNpz } from "../../../lib/io/npz.ts";
import {
  CHECKPOINT_FILE,
  readRunCheckpoint,
  restoreTrainerState,
  saveRunCheckpoint,
} from "../../../lib/pipelines/train/checkpoint.ts";
import type { Ld3Checkpoint } from "../../../lib/ld3/state.ts";
import { base, checkpointAt } from "../../ld3/_training_problem.ts";

const SIZES = { numTrain: 8, numValid: 8, size: 32 };
const META = { options: { solverName: "ipndm" }, logLines: 12, elapsedSeconds: 3.5, frames: [] };

// Real trainer states: at the first save (the round start) and after 3 training steps.
const first = await checkpointAt({ ...base, solverName: "ipndm" }, 1);
const later = await checkpointAt({ ...base, solverName: "ipndm", patient: 1 }, 4);

async function inTempDir(f: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await f(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a run checkpoint restores every field of the trainer state bit for bit, one generation kept", async () => {
  await inTempDir(async (dir) => {
    await saveRunCheckpoint(dir, first, { ...META, generation: 1 }, SIZES);
    await saveRunCheckpoint(dir, later, { ...META, generation: 2 }, SIZES);
    const files = [];
    for await (const e of Deno.readDir(dir)) files.push(e.name);
    assert.deepEqual(files.sort(), ["checkpoint.2.npz", CHECKPOINT_FILE]);

    const record = await readRunCheckpoint(dir);
    assert.equal(record.latents, "checkpoint.2.npz");
    assert.equal(record.logLines, 12);
    assert.equal(record.trainer.globalStep, 3);
    // The JSON names the latent tables; the .npz holds them in float64.
    assert.equal(record.trainer.current.trainLatents, "current.trainLatents");
    const npz = decodeNpz(await Deno.readFile(join(dir, record.latents)));
    assert.deepEqual(npz["best.validLatents"].shape, [8, 32]);

    const restored = await restoreTrainerState(dir, record, SIZES);
    for (const key of Object.keys(later) as (keyof Ld3Checkpoint)[]) {
      assert.deepEqual(restored[key], later[key], `field ${key}`);
    }
    assert.deepEqual(restored, later);
  });
});

Deno.test("a run checkpoint that is not one, of another version, or with a bad table is refused by name", async () => {
  await inTempDir(async (dir) => {
    const path = join(dir, CHECKPOINT_FILE);
    await Deno.writeTextFile(path, JSON.stringify({ format: "other" }));
    await assert.rejects(
      () => readRunCheckpoint(dir),
      /checkpoint\.json is not an ld3 run checkpoint/,
    );
    await Deno.writeTextFile(path, JSON.stringify({ format: "ld3-run-checkpoint", version: 1 }));
    await assert.rejects(
      () => readRunCheckpoint(dir),
      /checkpoint of version 1; this ld3 resumes version 2 only: start the run in a new folder/,
    );

    await saveRunCheckpoint(dir, later, { ...META, generation: 1 }, SIZES);
    const record = await readRunCheckpoint(dir);
    const table = { data: new Float64Array(8 * 32), shape: [8, 32] };
    await Deno.writeFile(join(dir, record.latents), encodeNpz({ "current.trainLatents": table }));
    await assert.rejects(
      () => restoreTrainerState(dir, record, SIZES),
      /checkpoint\.json with checkpoint\.1\.npz lacks the table "current\.validLatents"/,
    );
    await assert.rejects(
      () => restoreTrainerState(dir, record, { ...SIZES, size: 16 }),
      /checkpoint\.1\.npz: "current\.trainLatents" has shape \[8,32\], expected 8 or 8 rows of 16/,
    );
  });
});
