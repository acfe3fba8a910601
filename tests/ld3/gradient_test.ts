import assert from "node:assert/strict";
import type { Planner } from "../../lib/grad/backprop.ts";
import { l2Loss } from "../../lib/metrics/losses.ts";
import { thetaToGrid, type TimeMode } from "../../lib/ld3/parameterization.ts";
import { ld3Loss, ld3LossAndGradient, type Ld3Problem } from "../../lib/ld3/loss.ts";
import { normalNoise } from "../../lib/rng.ts";
import { type NoiseSchedule, veSchedule, vpLinearSchedule } from "../../lib/noise_schedule.ts";
import {
  planSolver,
  SOLVER_NAMES,
  type SolverName,
  type SolverOptions,
} from "../../lib/solvers/mod.ts";
import { relativeError, smallGmm, stencil } from "./_gmm_problem.ts";

const dim = 16;
const batch = 2;
const steps = 4;

const cases: [SolverName, SolverOptions][] = [
  ...SOLVER_NAMES.map((n): [SolverName, SolverOptions] => [n, {}]),
  ["uni_pc", { variant: "bh2" }],
];

/** The whole LD3 objective mean_b L2(solve(priorScale·x'; grid(θ1, θ2)), teacher). */
function problemFor(schedule: NoiseSchedule, name: SolverName, o: SolverOptions, mode: TimeMode) {
  const denoiser = smallGmm(schedule, { dim });
  const planner: Planner = (g) => planSolver(name, schedule, g, o);
  const problem: Ld3Problem = {
    denoiser,
    planner,
    loss: l2Loss,
    param: { timeMode: mode, winRate: 0.5 },
  };
  return problem;
}

async function check(schedule: NoiseSchedule, name: SolverName, o: SolverOptions, mode: TimeMode) {
  const problem = problemFor(schedule, name, o, mode);
  const theta1 = Float64Array.from(normalNoise(11, 0, steps + 1), (v) => 1 + 0.3 * v);
  const grid = thetaToGrid(schedule, theta1, new Float64Array(steps + 1), problem.param);
  // θ2 inside the window, except index 2, which is clipped (gradient then flows to θ1).
  const theta2 = Float64Array.from(normalNoise(12, 0, steps + 1), (v) => 0.3 * grid.window * v);
  theta2[2] = 3 * grid.window;
  const latents = normalNoise(13, 0, dim * batch);
  const teacher = normalNoise(14, 0, dim * batch);
  const data = { latents, teacher, batch };
  const g = await ld3LossAndGradient(problem, { theta1, theta2 }, data);
  const mean = async (t1: Float64Array, t2: Float64Array, x: Float64Array) => {
    const v = await ld3Loss(problem, { theta1: t1, theta2: t2 }, { ...data, latents: x });
    return (v[0] + v[1]) / 2;
  };
  assert.ok(Math.abs(g.loss - await mean(theta1, theta2, latents)) < 1e-14);

  const fd1 = new Float64Array(steps + 1);
  const fd2 = new Float64Array(steps + 1);
  for (let k = 0; k <= steps; k++) {
    fd1[k] = await stencil((h) => {
      const a = Float64Array.from(theta1);
      a[k] += h;
      return mean(a, theta2, latents);
    }, 1e-3);
    fd2[k] = await stencil((h) => {
      const b = Float64Array.from(theta2);
      b[k] += h;
      return mean(theta1, b, latents);
    }, 1e-3 * grid.window);
  }
  const e1 = relativeError(g.theta1, fd1);
  const e2 = relativeError(g.theta2, fd2);
  assert.ok(e1 < 1e-7, `theta1 ${name} ${mode}: error ${e1}\n${g.theta1}\n${fd1}`);
  assert.ok(e2 < 1e-7, `theta2 ${name} ${mode}: error ${e2}\n${g.theta2}\n${fd2}`);
  assert.equal(g.theta2[2], 0, "a clipped θ2 gets no gradient");
  assert.ok(Math.abs(g.theta1[0]) < 1e-12, "θ1_0 cancels out of the grid");
  // x': a few coordinates and one random direction.
  const dir = normalNoise(15, 0, latents.length);
  const fdDir = await stencil(
    (h) => mean(theta1, theta2, latents.map((v, i) => v + h * dir[i])),
    1e-3,
  );
  const dirGrad = g.latents.reduce((s, v, i) => s + v * dir[i], 0);
  assert.ok(Math.abs(dirGrad - fdDir) < 1e-5 * Math.abs(fdDir), `x' ${dirGrad} vs ${fdDir}`);
  for (const i of [0, 5, dim + 3]) {
    const fd = await stencil((h) => {
      const x = Float64Array.from(latents);
      x[i] += h;
      return mean(theta1, theta2, x);
    }, 1e-3);
    assert.ok(
      Math.abs(g.latents[i] - fd) <= 1e-5 * Math.max(Math.abs(fd), 1e-3 * Math.abs(fdDir)),
      `x'[${i}]`,
    );
  }
  if (Deno.env.get("LD3_PRINT_ERRORS")) {
    console.log(`${name} ${mode}: θ1 ${e1.toExponential(1)} θ2 ${e2.toExponential(1)}`);
  }
  return { e1, e2 };
}

for (const mode of ["time", "lambda"] as const) {
  for (const [name, o] of cases) {
    const label = `${name}${o.variant ? ` ${o.variant}` : ""}`;
    Deno.test(`ld3LossAndGradient() matches finite differences in θ1, θ2, x' (${label}, ${mode})`, async () => {
      await check(veSchedule(), name, o, mode);
    });
  }
}

Deno.test("ld3LossAndGradient() matches finite differences on a VP schedule", async () => {
  for (const mode of ["time", "lambda"] as const) {
    await check(vpLinearSchedule(), "uni_pc", {}, mode);
    await check(vpLinearSchedule(), "dpm_solver++", {}, mode);
  }
});
