import { deepEqual, equal, ok, throws } from "node:assert/strict";
import {
  edmGrid,
  edmTimeGrid,
  gitsGrid,
  gridFromSigmas,
  gridSigmas,
  logSnrGrid,
  SKIP_TYPES,
  skipGrid,
  timeQuadraticDpmGrid,
  timeQuadraticGrid,
  timeUniformGrid,
  toGrid,
} from "../lib/step_grid.ts";
import {
  discreteBetas,
  flowSchedule,
  veSchedule,
  vpCosineSchedule,
  vpDiscreteSchedule,
  vpLinearSchedule,
} from "../lib/noise_schedule.ts";
import { gridOfFile, loadGridFile, makeGridFile, saveGridFile } from "../lib/io/grid_file.ts";
import { thetaToGrid } from "../lib/ld3/parameterization.ts";

const SCHEDULES = {
  ve: veSchedule(),
  vp_linear: vpLinearSchedule(),
  vp_discrete: vpDiscreteSchedule({ betas: discreteBetas("scaled_linear") }),
  vp_cosine: vpCosineSchedule(),
  flow: flowSchedule(),
};

for (const [name, s] of Object.entries(SCHEDULES)) {
  for (const skip of SKIP_TYPES) {
    Deno.test(`skipGrid("${skip}") on ${name}: N+1 strictly decreasing points from T to eps`, () => {
      for (const n of [1, 2, 4, 6, 10, 50]) {
        const g = skipGrid(skip, s, n);
        equal(g.length, n + 1);
        equal(g[0], s.tMax);
        equal(g[n], s.tMin);
        for (let k = 1; k <= n; k++) ok(g[k] < g[k - 1], `${skip} N=${n}: index ${k}`);
      }
    });
  }
}

Deno.test("logSnrGrid() is uniform in lambda", () => {
  const s = vpLinearSchedule();
  const g = logSnrGrid(s, 8);
  const l = Array.from(g, (t) => s.lambda(t));
  const h = l[1] - l[0];
  for (let k = 1; k < 8; k++) ok(Math.abs(l[k + 1] - l[k] - h) < 1e-9);
});

Deno.test("edmGrid() on VE reproduces Karras et al. sigmas", () => {
  const s = veSchedule();
  const g = edmGrid(s, 4);
  const a = 80 ** (1 / 7);
  const b = 0.002 ** (1 / 7);
  for (let k = 0; k <= 4; k++) {
    const expected = (a + (k / 4) * (b - a)) ** 7;
    ok(Math.abs(g[k] - expected) < 1e-12 * expected, `k=${k}: ${g[k]} vs ${expected}`);
  }
  ok(edmGrid(s, 4, { rho: 1 })[1] > g[1], "rho changes the spacing");
});

Deno.test("timeUniformGrid(), timeQuadraticGrid() and timeQuadraticDpmGrid() have their shapes", () => {
  const s = vpLinearSchedule();
  const u = timeUniformGrid(s, 4);
  ok(Math.abs(u[2] - (1 + 1e-3) / 2) < 1e-15);
  // LD3's: eps + (T − eps)·((N − k)/N)².
  const q = timeQuadraticGrid(s, 4);
  ok(Math.abs(q[1] - (1e-3 + (1 - 1e-3) * (3 / 4) ** 2)) < 1e-15);
  ok(Math.abs(q[2] - (1e-3 + (1 - 1e-3) / 4)) < 1e-15);
  // DPM-Solver's: uniform in √t.
  const d = timeQuadraticDpmGrid(s, 4);
  ok(Math.abs(Math.sqrt(d[2]) - (1 + Math.sqrt(1e-3)) / 2) < 1e-15);
  // They differ most at the low-noise end of a VP schedule.
  ok(Math.abs(d[3] / q[3] - 1) > 0.15, `${d[3]} vs ${q[3]}`);
});

Deno.test("edmTimeGrid() is the ρ-polynomial in t, equal to edmGrid() on VE only", () => {
  const ve = veSchedule();
  const a = edmTimeGrid(ve, 6);
  const b = edmGrid(ve, 6);
  for (let k = 0; k <= 6; k++) ok(Math.abs(a[k] - b[k]) < 1e-12 * b[k]);
  const vp = vpLinearSchedule();
  const t = edmTimeGrid(vp, 4);
  ok(Math.abs(t[2] - ((1 + 1e-3 ** (1 / 7)) / 2) ** 7) < 1e-15);
  ok(Math.abs(edmGrid(vp, 4)[2] / t[2] - 1) > 0.1);
});

Deno.test("skipGrid() names the valid choices on an unknown skip type", () => {
  // deno-lint-ignore no-explicit-any
  throws(() => skipGrid("cosine" as any, veSchedule(), 4), /Unknown skip type: "cosine".*logSNR/);
  throws(() => skipGrid("edm", veSchedule(), 0), /positive integer/);
});

Deno.test("gitsGrid() starts at sigma_max and follows the published table", () => {
  const s = veSchedule();
  const g = gitsGrid(s, "ipndm", 10);
  equal(g.length, 12);
  equal(g[0], 80);
  ok(Math.abs(gridSigmas(s, g)[2] - 5.9489) < 1e-12);
  throws(() => gitsGrid(s, "euler", 10), /No GITS table/);
});

Deno.test("gridFromSigmas() rejects non-decreasing and out-of-range lists", () => {
  const s = veSchedule();
  throws(() => gridFromSigmas(s, [80, 10, 10, 1]), /strictly decreasing/);
  throws(() => gridFromSigmas(s, [100, 10, 1]), /must lie in/);
});

Deno.test("toGrid() copies t1 into t2 by default and checks lengths", () => {
  const g = toGrid([3, 2, 1]);
  deepEqual(Array.from(g.t2), [3, 2, 1]);
  throws(() => toGrid([3, 2, 1], [3, 1]), /as many points/);
});

Deno.test("grid files round-trip and are checked against the schedule", async () => {
  const s = veSchedule();
  const t1 = edmGrid(s, 6);
  const t2 = Float64Array.from(t1);
  t2[3] *= 1.05;
  const dir = await Deno.makeTempDir();
  const path = `${dir}/grid.json`;
  await saveGridFile(path, makeGridFile(s, { t1, t2 }, { solver: "ipndm", nfe: 6 }));
  const file = await loadGridFile(path);
  equal(file.steps, 6);
  const g = gridOfFile(file, s);
  deepEqual(Array.from(g.t1), Array.from(t1));
  deepEqual(Array.from(g.t2), Array.from(t2));
  throws(() => gridOfFile(file, vpLinearSchedule()), /made for a "ve" schedule/);
  await Deno.writeTextFile(path, JSON.stringify({ ...file, t1: [1, 2, 3] }));
  await loadGridFile(path).then(
    () => ok(false, "should reject"),
    (e) => ok(/strictly decreasing/.test(e.message), e.message),
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("gridOfFile() checks the evaluation grid t2 against the schedule too", () => {
  const s = veSchedule();
  const t1 = edmGrid(s, 4);
  const file = makeGridFile(s, { t1, t2: t1 });
  const withT2 = (t2: number[]) => ({ ...file, t2 });
  const source = "grid file runs/x/grid.json";
  // t2[1] = 1000 on a schedule of [0.002, 80].
  throws(
    () => gridOfFile(withT2([80, 1000, 1, 0.1, 0.002]), s, source),
    /^RangeError: grid file runs\/x\/grid\.json: evaluation time t2\[1\] = 1000 falls outside the model's \[80, 0\.002\]/,
  );
  throws(() => gridOfFile(withT2([80, 10, 1, 0.1, 0.001]), s), /t2\[4\] = 0\.001 falls outside/);
  throws(
    () => gridOfFile(withT2([80, 1, 10, 0.1, 0.002]), s, source),
    /grid\.json: evaluation grid t2 must not increase: t2\[2\] = 10 > t2\[1\] = 1/,
  );
  throws(() => gridOfFile(withT2([80, 10, 1, 0.1]), s, source), /grid\.json: Evaluation grid t2/);
  // LD3's evaluation times (within half the smallest gap of their step) pass, even clamped
  // at the window's edge from both sides, where neighbours meet up to round-off.
  for (const sign of [1, -1]) {
    const theta2 = Float64Array.from({ length: 7 }, (_, k) => sign * (k % 2 ? 1e3 : -1e3));
    const g = thetaToGrid(s, new Float64Array(7).fill(1), theta2, { timeMode: "lambda" });
    gridOfFile(makeGridFile(s, { t1: g.t1, t2: g.t2 }), s);
  }
});
