/**
 * The inputs evaluation and the schedule benchmark open alike (`lib/pipelines/_eval_inputs.ts`)
 * and the model identity of their result documents (`lib/pipelines/_model_identity.ts`).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  fidReference,
  gmmExactSolver,
  gmmReferenceName,
  isFeatureModel,
  openFeatureModel,
} from "../../lib/pipelines/_eval_inputs.ts";
import { modelIdentity } from "../../lib/pipelines/_model_identity.ts";
import { featureStats, writeFidRefs } from "../../lib/metrics/fid.ts";
import { createGmm, gmmReferenceSolve } from "../../lib/gmm.ts";
import { veSchedule } from "../../lib/noise_schedule.ts";
import { loadModel } from "../../lib/onnx/model.ts";
import { makeTinyGmm } from "../_tiny_gmm.ts";
import { linearFeatureModel } from "../fixtures/tiny_models.ts";

/** Runs `fn` on a fresh temporary folder, removed afterwards. */
function inTempDir(fn: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = await Deno.makeTempDir();
    await fn(dir).finally(() => Deno.remove(dir, { recursive: true }));
  };
}

Deno.test(
  "openFeatureModel() loads a spec (owned) and passes a loaded model through (not owned)",
  inTempDir(async (dir) => {
    const path = join(dir, "features.onnx");
    await Deno.writeFile(path, linearFeatureModel([1, 4, 4], 3, (i) => Math.sin(i)));
    const spec = { path, output: "features" };
    assert.equal(isFeatureModel(spec), false);
    const loaded = await openFeatureModel(spec, [1, 4, 4]);
    try {
      assert.equal(loaded.owned, true);
      assert.equal(isFeatureModel(loaded.model), true);
      assert.deepEqual(loaded.model.sampleShape, [1, 4, 4]);
      const again = await openFeatureModel(loaded.model, [1, 4, 4]);
      assert.equal(again.owned, false);
      assert.equal(again.model, loaded.model);
    } finally {
      await loaded.model.close();
    }
  }),
);

Deno.test(
  "fidReference() reads an .npz path and returns given statistics as they are",
  inTempDir(async (dir) => {
    const stats = featureStats(Float64Array.from({ length: 12 }, (_, i) => Math.cos(i)), 4, 3);
    const path = join(dir, "ref.npz");
    await writeFidRefs(path, stats);
    assert.deepEqual(await fidReference(path), stats);
    assert.equal(await fidReference(stats), stats);
  }),
);

Deno.test("gmmExactSolver() solves the whole schedule, tMax to tMin, and names its steps", () => {
  const gmm = createGmm([[0, 0], [1, 1]], [0.1, 0.2]);
  const schedule = veSchedule();
  const xT = Float64Array.of(40, -30, 5, 60);
  assert.deepEqual(
    gmmExactSolver(gmm, schedule, 25)(xT),
    gmmReferenceSolve(gmm, xT, schedule.tMax, schedule.tMin, { schedule, steps: 25 }),
  );
  assert.equal(gmmReferenceName(25), "gmm_rk4_25");
});

Deno.test("modelIdentity() names the config by name and file, the model by its hash", async () => {
  const gmm = await makeTinyGmm();
  try {
    const model = await loadModel(gmm.config);
    try {
      assert.deepEqual(modelIdentity(model), {
        config: { name: "tiny-gmm", source: model.config.source },
        model: { name: "tiny-gmm", sha256: model.modelHash },
      });
      assert.match(model.modelHash, /^[0-9a-f]{64}$/);
    } finally {
      await model.close();
    }
  } finally {
    await gmm.cleanup();
  }
});
