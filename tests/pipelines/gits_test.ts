import assert from "node:assert/strict";
import { join } from "node:path";
import { loadGridFile } from "../../lib/io/grid_file.ts";
import { loadModel } from "../../lib/onnx/model.ts";
import { gitsSearchGrid } from "../../lib/pipelines/gits.ts";
import { namedGrid, prepareSampler } from "../../lib/pipelines/sampler.ts";
import { edmGrid } from "../../lib/step_grid.ts";
import { makeTinyGmm } from "../_tiny_gmm.ts";

Deno.test("gitsSearchGrid() searches once per model and settings, then reads its cache", async () => {
  const gmm = await makeTinyGmm();
  const model = await loadModel(gmm.config);
  try {
    const gitsDir = join(gmm.dir, "gits");
    const settings = { gitsDir, gitsSamples: 6, gitsTeacherSteps: 20, batchSize: 4 };
    let calls = 0;
    const denoise = model.denoiser.denoise;
    model.denoiser.denoise = (x, t, info) => (calls++, denoise(x, t, info));
    const first = await gitsSearchGrid(model, 5, settings);
    assert.equal(first.cached, false);
    assert.equal(calls, 2 * 20); // two batches of the 20-step teacher
    const fine = edmGrid(model.denoiser.schedule, 20);
    assert.deepEqual(Array.from(first.t1), first.indices.map((i) => fine[i]));
    assert.equal(first.indices.length, 6);
    assert.equal(first.indices[0], 0);
    assert.equal(first.indices[5], 20);
    const file = await loadGridFile(first.path);
    assert.equal(file.source, "gits");
    assert.deepEqual(file.t1, Array.from(first.t1));

    // Another N reuses the cost matrix; the same N reads the grid file.
    const other = await gitsSearchGrid(model, 8, settings);
    assert.equal(other.cached, true);
    const again = await gitsSearchGrid(model, 5, settings);
    assert.deepEqual(again.t1, first.t1);
    assert.equal(calls, 40);
    // Other calibration settings are another search.
    const l2 = await gitsSearchGrid(model, 5, { ...settings, gitsMetric: "l2" });
    assert.equal(l2.cached, false);
    assert.equal(calls, 80);
    assert.notEqual(l2.path, first.path);

    // --skip_type gits goes through the same cache; namedGrid too.
    const sampler = await prepareSampler(model, {
      solverName: "ipndm",
      steps: 5,
      skipType: "gits",
      ...settings,
    });
    assert.deepEqual(sampler.grid.t1, first.t1);
    assert.equal(sampler.gridKind, "gits");
    const named = await namedGrid(model, "gits", 5, { solverName: "uni_pc", ...settings });
    assert.deepEqual(named, first.t1);
    assert.equal(calls, 80);
    await assert.rejects(
      () => gitsSearchGrid(model, 21, settings),
      /skip_type gits: steps must be an integer in \[1, 20\] \(gits_teacher_steps\): got 21/,
    );
  } finally {
    await model.close();
    await gmm.cleanup();
  }
});

Deno.test("namedGrid() builds every grid family, and refuses AYS where no table fits", async () => {
  const gmm = await makeTinyGmm();
  const model = await loadModel(gmm.config);
  try {
    for (const kind of ["time_uniform", "time_quadratic", "logSNR", "edm", "dmn"] as const) {
      const t = await namedGrid(model, kind, 6, { solverName: "uni_pc" });
      assert.equal(t.length, 7, kind);
    }
    assert.equal((await namedGrid(model, "gits_table", 10, { solverName: "ipndm" })).length, 12);
    await assert.rejects(
      () => namedGrid(model, "ays", 6, { solverName: "uni_pc" }),
      /skip_type ays: AYS has no table for this model's ve schedule/,
    );
    await assert.rejects(
      () => prepareSampler(model, { solverName: "uni_pc", steps: 6, skipType: "ays" }),
      /skip_type ays/,
    );
  } finally {
    await model.close();
    await gmm.cleanup();
  }
});
