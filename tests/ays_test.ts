import assert from "node:assert/strict";
import { AYS_SIGMAS, aysGrid, aysModelsFor, aysSigmas } from "../lib/ays.ts";
import {
  discreteBetas,
  sigmaOf,
  veSchedule,
  vpDiscreteSchedule,
  vpLinearSchedule,
} from "../lib/noise_schedule.ts";
import { gridSigmas } from "../lib/step_grid.ts";

const SD = vpDiscreteSchedule({ betas: discreteBetas("scaled_linear") });
const SVD = veSchedule({ sigmaMax: 700 });

Deno.test("aysSigmas() is the published table at 10 steps and log-linear in between", () => {
  for (const model of ["sd1.5", "sdxl", "svd"] as const) {
    assert.deepEqual(Array.from(aysSigmas(model, 10)).map((s) => Number(s.toPrecision(6))), [
      ...AYS_SIGMAS[model],
    ]);
    const twenty = aysSigmas(model, 20);
    const table = AYS_SIGMAS[model];
    for (let k = 0; k < 10; k++) {
      assert.ok(Math.abs(twenty[2 * k] / table[k] - 1) < 1e-12);
      const mid = Math.sqrt(table[k] * table[k + 1]);
      assert.ok(Math.abs(twenty[2 * k + 1] / mid - 1) < 1e-12, `midpoint ${k}`);
    }
  }
});

Deno.test("aysGrid() on Stable Diffusion's schedule: SD 1.5's table by default, SDXL's on request", () => {
  assert.deepEqual(aysModelsFor(SD), ["sd1.5", "sdxl"]);
  for (const [model, steps] of [["sd1.5", 10], ["sdxl", 10], ["sd1.5", 6], ["sdxl", 25]] as const) {
    const t = model === "sd1.5" && steps === 10
      ? aysGrid(SD, steps)
      : aysGrid(SD, steps, { model });
    assert.equal(t.length, steps + 1);
    assert.equal(t[0], SD.tMax);
    assert.equal(t[steps], SD.tMin);
    const sigmas = gridSigmas(SD, t);
    const want = aysSigmas(model, steps);
    for (let k = 1; k < steps; k++) {
      assert.ok(t[k] < t[k - 1]);
      assert.ok(Math.abs(sigmas[k] / want[k] - 1) < 1e-9, `${model} N=${steps} k=${k}`);
    }
  }
});

Deno.test("aysGrid() on SVD's σ range uses SVD's table", () => {
  assert.deepEqual(aysModelsFor(SVD), ["svd"]);
  const t = aysGrid(SVD, 10);
  assert.ok(Math.abs(t[1] - 54.5) < 1e-9);
  assert.equal(t[0], 700);
});

Deno.test("aysGrid() refuses a schedule no table belongs to, with one clear line", () => {
  assert.throws(
    () => aysGrid(veSchedule(), 6),
    /skip_type ays: AYS has no table for this model's ve schedule \(σ 0\.00200…80\.00\); AYS publishes schedules for sd1\.5 0\.029…14\.615, sdxl 0\.029…14\.615, svd 0\.002…700/,
  );
  assert.throws(
    () => aysGrid(vpLinearSchedule(), 6),
    /AYS has no table for this model's vp_linear/,
  );
  assert.throws(() => aysGrid(SD, 6, { model: "svd" }), /the svd table does not fit/);
  assert.throws(() => aysGrid(SD, 6, { model: "sd2" as "svd" }), /AYS model must be one of/);
  assert.ok(Math.abs(sigmaOf(SD, SD.tMax) / 14.615 - 1) < 1e-3);
});
