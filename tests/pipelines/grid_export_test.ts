import assert from "node:assert/strict";
import { makeGridFile } from "../../lib/io/grid_file.ts";
import { edmGrid, logSnrGrid, toGrid } from "../../lib/step_grid.ts";
import { discreteBetas, veSchedule, vpDiscreteSchedule } from "../../lib/noise_schedule.ts";
import {
  exportSchedule,
  exportSigmas,
  hasDecoupledTimes,
} from "../../lib/pipelines/grid_export.ts";

const ve = veSchedule();

Deno.test("sigma formats descend from sigma_max and end in a trailing 0", () => {
  const file = makeGridFile(ve, toGrid(edmGrid(ve, 6)));
  for (const format of ["comfyui", "diffusers-sigmas", "k-diffusion"] as const) {
    const out = exportSchedule(file, format);
    assert.equal(out.values.length, 8);
    assert.equal(out.values[0], 80);
    assert.equal(out.values[6], 0.002);
    assert.equal(out.values[7], 0);
    for (let k = 1; k < out.values.length; k++) assert.ok(out.values[k] < out.values[k - 1]);
    assert.equal(out.warning, undefined);
  }
  assert.match(exportSchedule(file, "diffusers-sigmas").text, /^sigmas=\[80\.0, .*, 0\.0\]$/);
  assert.match(exportSchedule(file, "comfyui").text, /^80\.0, .*, 0\.002, 0\.0$/);
  const parsed = JSON.parse(exportSchedule(file, "k-diffusion").text);
  assert.deepEqual(parsed, exportSchedule(file, "k-diffusion").values);
});

Deno.test("decoupled evaluation times produce a warning", () => {
  const t1 = logSnrGrid(ve, 4);
  const t2 = Float64Array.from(t1);
  t2[2] *= 1.01;
  const file = makeGridFile(ve, toGrid(t1, t2));
  assert.ok(hasDecoupledTimes(file));
  const out = exportSchedule(file, "comfyui");
  assert.match(out.warning ?? "", /decoupled evaluation times.*dropped/);
  // The exported sigmas are those of t1, not t2.
  assert.equal(out.values[2], t1[2]);
  assert.equal(exportSchedule(makeGridFile(ve, toGrid(t1)), "comfyui").warning, undefined);
});

Deno.test("diffusers timesteps are integer training steps of a discrete VP grid", () => {
  const vp = vpDiscreteSchedule({ betas: discreteBetas("scaled_linear", 1000) });
  const file = makeGridFile(vp, toGrid(logSnrGrid(vp, 5)));
  const out = exportSchedule(file, "diffusers-timesteps");
  assert.equal(out.values.length, 5);
  assert.equal(out.values[0], 999);
  for (const v of out.values) assert.ok(Number.isInteger(v) && v >= 0 && v <= 999);
  for (let k = 1; k < 5; k++) assert.ok(out.values[k] < out.values[k - 1]);
  assert.match(out.text, /^timesteps=\[999, \d+, \d+, \d+, \d+\]$/);
  // The sigma formats of a VP grid use σ/α (here sqrt((1 − ᾱ)/ᾱ) at the last training step).
  const sigmas = exportSigmas(file, { schedule: vp });
  assert.ok(Math.abs(sigmas[0] - vp.sigma(1) / vp.alpha(1)) < 1e-12 * sigmas[0]);
  assert.throws(
    () => exportSchedule(makeGridFile(ve, toGrid(edmGrid(ve, 4))), "diffusers-timesteps"),
    /needs a discrete VP schedule.*"ve"/,
  );
});

Deno.test("a config of another schedule kind is refused", () => {
  const vp = vpDiscreteSchedule({ betas: discreteBetas("linear", 1000) });
  const file = makeGridFile(ve, toGrid(edmGrid(ve, 4)));
  assert.throws(() => exportSchedule(file, "comfyui", { schedule: vp }), /"ve" schedule/);
});
