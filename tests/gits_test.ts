import assert from "node:assert/strict";
import { createGmm, gmmDenoiser } from "../lib/gmm.ts";
import { gitsCostMatrix, gitsPath, gitsTrajectory } from "../lib/gits.ts";
import { veSchedule, vpLinearSchedule } from "../lib/noise_schedule.ts";
import { normalNoise } from "../lib/rng.ts";
import { edmGrid } from "../lib/step_grid.ts";

const GMM = createGmm([[0.5, -0.2, 0.1, 0.3], [-0.4, 0.3, 0.6, -0.1]], [0.02, 0.05]);

/** The cheapest weighted path by trying every subset of interior points. */
function bruteForce(cost: Float64Array, points: number, steps: number, coeff: number): number[] {
  let best: number[] = [];
  let bestValue = Infinity;
  const interior = Array.from({ length: points - 2 }, (_, i) => i + 1);
  const choose = (from: number, picked: number[]) => {
    if (picked.length === steps - 1) {
      const path = [0, ...picked, points - 1];
      let value = 0;
      for (let k = 0; k < steps; k++) value += coeff ** k * cost[path[k] * points + path[k + 1]];
      if (value < bestValue) [best, bestValue] = [path, value];
      return;
    }
    for (let i = from; i < interior.length; i++) choose(i + 1, [...picked, interior[i]]);
  };
  choose(0, []);
  return best;
}

Deno.test("gitsPath() finds the cheapest weighted path of exactly N steps", () => {
  const points = 8;
  for (let seed = 0; seed < 5; seed++) {
    const noise = normalNoise(seed, 0, points * points);
    const cost = Float64Array.from(noise, (z) => Math.abs(z) + 0.1);
    for (const steps of [1, 2, 3, 5, 7]) {
      for (const coeff of [1, 1.15, 0.8]) {
        assert.deepEqual(
          gitsPath(cost, points, steps, coeff),
          bruteForce(cost, points, steps, coeff),
          `seed ${seed} N=${steps} c=${coeff}`,
        );
      }
    }
  }
  assert.throws(() => gitsPath(new Float64Array(9), 3, 3), /GITS steps .*\[1, 2\]: got 3/);
  assert.throws(() => gitsPath(new Float64Array(9), 3, 1, 0), /coeff must be > 0/);
});

Deno.test("gitsTrajectory() records every fine point; an Euler teacher makes single steps free", async () => {
  for (const schedule of [veSchedule(), vpLinearSchedule()]) {
    const denoiser = gmmDenoiser(GMM, schedule);
    const batch = 3;
    const xT = normalNoise(1, 0, batch * 4).map((z) => z * schedule.priorScale);
    const fine = edmGrid(schedule, 12);
    const trajectory = await gitsTrajectory(denoiser, xT, batch, fine, { solverName: "euler" });
    assert.equal(trajectory.states.length, 13);
    assert.equal(trajectory.outputs.length, 12);
    assert.deepEqual(trajectory.states[0], xT);
    for (const metric of ["l2", "dev"] as const) {
      const cost = gitsCostMatrix(schedule, fine, trajectory, metric);
      for (let i = 0; i < 12; i++) {
        // The Euler step from x_i to t_{i+1} is the teacher's own step.
        assert.ok(Math.abs(cost[i * 13 + i + 1]) < 1e-9, `${metric} ${i}`);
        // Jumping further costs something (l2), and no entry below the diagonal is set.
        if (metric === "l2" && i < 11) assert.ok(cost[i * 13 + 12] > 0);
        assert.equal(cost[(i + 1) * 13 + i], 0);
      }
    }
    const ipndm = await gitsTrajectory(denoiser, xT, batch, fine);
    assert.equal(ipndm.states.length, 13);
  }
  await assert.rejects(
    () =>
      gitsTrajectory(gmmDenoiser(GMM), new Float64Array(4), 1, edmGrid(veSchedule(), 4), {
        solverName: "uni_pc",
      }),
    /GITS teacher must be one of ipndm, dpm_solver\+\+, euler: got "uni_pc"/,
  );
});
