import assert from "node:assert/strict";
import { edmGrid, logSnrGrid, timeUniformGrid } from "../../lib/step_grid.ts";
import { thetaFromGrid, thetaToGrid } from "../../lib/ld3/parameterization.ts";
import { veSchedule, vpLinearSchedule } from "../../lib/noise_schedule.ts";

function close(a: ArrayLike<number>, b: ArrayLike<number>, rel = 1e-12) {
  for (let k = 0; k < b.length; k++) {
    assert.ok(Math.abs(a[k] - b[k]) <= rel * Math.abs(b[k]), `[${k}] ${a[k]} vs ${b[k]}`);
  }
}

Deno.test("thetaToGrid() with all-ones θ1 gives the time-uniform and logSNR grids", () => {
  for (const schedule of [veSchedule(), vpLinearSchedule()]) {
    const ones = new Float64Array(7).fill(1);
    const zeros = new Float64Array(7);
    const time = thetaToGrid(schedule, ones, zeros, { timeMode: "time" });
    close(time.t1, timeUniformGrid(schedule, 6));
    const lambda = thetaToGrid(schedule, ones, zeros);
    close(lambda.t1, logSnrGrid(schedule, 6), 1e-10);
    assert.deepEqual(lambda.t2, lambda.t1, "zero θ2: t2 = t1");
  }
});

Deno.test("thetaToGrid() clips θ2 to win_rate × the smallest gap and fixes the endpoints", () => {
  const schedule = veSchedule();
  const theta1 = Float64Array.from([1, 0.2, 1.5, 0.7, 1]);
  const theta2 = Float64Array.from([5, 100, -100, 1e-3, -5]);
  const g = thetaToGrid(schedule, theta1, theta2, { winRate: 0.5 });
  let minGap = Infinity;
  for (let k = 0; k < 4; k++) minGap = Math.min(minGap, g.y1[k + 1] - g.y1[k]);
  assert.ok(Math.abs(g.window - 0.5 * minGap) < 1e-15);
  assert.equal(g.t2[0], g.t1[0]);
  assert.equal(g.t2[4], g.t1[4]);
  assert.ok(Math.abs(g.y2[1] - g.y1[1] - g.window) < 1e-12);
  assert.ok(Math.abs(g.y2[2] - g.y1[2] + g.window) < 1e-12);
  assert.ok(Math.abs(g.y2[3] - g.y1[3] - 1e-3) < 1e-12);
  assert.throws(() => thetaToGrid(schedule, theta1, new Float64Array(3)), RangeError);
  assert.throws(() => thetaToGrid(schedule, theta1, theta2, { winRate: -1 }), /winRate/);
});

Deno.test("thetaFromGrid() inverts the parameterization (match_prior)", () => {
  for (const schedule of [veSchedule(), vpLinearSchedule()]) {
    for (const timeMode of ["time", "lambda"] as const) {
      const prior = edmGrid(schedule, 6);
      const theta = thetaFromGrid(schedule, prior, { timeMode });
      const g = thetaToGrid(schedule, theta, new Float64Array(7), { timeMode });
      close(g.t1, prior, 1e-9);
    }
    const uniform = thetaFromGrid(schedule, logSnrGrid(schedule, 5));
    close(uniform, new Float64Array(6).fill(1), 1e-9);
  }
  assert.throws(() => thetaFromGrid(veSchedule(), [80, 90, 0.002]), RangeError);
  assert.throws(() => thetaFromGrid(veSchedule(), [70, 1, 0.002]), /must run from T/);
});

Deno.test("thetaToGrid() pins both grids' endpoints to exactly T and eps", () => {
  for (const schedule of [veSchedule(), vpLinearSchedule()]) {
    for (const timeMode of ["time", "lambda"] as const) {
      const thetas = [
        Float64Array.from([1, 0.3, 2.1, -0.4, 1.7, 0.9, 1.2]),
        thetaFromGrid(schedule, edmGrid(schedule, 6), { timeMode }),
      ];
      for (const theta1 of thetas) {
        const theta2 = Float64Array.from([3, 1e-3, -1e-3, 100, -100, 0.5, -3]);
        const g = thetaToGrid(schedule, theta1, theta2, { timeMode });
        for (const t of [g.t1, g.t2]) {
          assert.equal(t[0], schedule.tMax);
          assert.equal(t[6], schedule.tMin);
        }
        assert.equal(g.y1[0], g.y2[0]);
        assert.equal(g.y1[6], g.y2[6]);
      }
    }
  }
});
