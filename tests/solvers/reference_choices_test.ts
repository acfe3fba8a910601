/**
 * The two solver choices where ld3 follows the LD3 reference rather than asymptotic order,
 * measured against the exact solution (the tables of docs/solver-orders.md come from here):
 *
 * - DPM-Solver++(3M)'s second-difference weight: `reference` (1/(r0+r1), the default) against
 *   `exact` (2/(r0+r1), third order);
 * - lowering the final steps' orders at every step count (the default) against only below 15
 *   steps (`lowerOrderFinalBelow: 15`, DPM-Solver's and diffusers' rule).
 *
 * Setup: the d = 8 mixture of `_fixture.ts`, its 4 fixed samples, relative L2 error against RK4
 * with 4000 steps, VE (σ 80 → 0.002) and SD's discrete scaled-linear schedule, EDM and logSNR
 * grids. The assertions are the facts docs/solver-orders.md states for this mixture.
 */
import assert from "node:assert/strict";
import { gmmDenoiser, gmmReferenceSolve } from "../../lib/gmm.ts";
import {
  discreteBetas,
  type NoiseSchedule,
  veSchedule,
  vpDiscreteSchedule,
} from "../../lib/noise_schedule.ts";
import { solve, type SolverName, type SolverOptions } from "../../lib/solvers/mod.ts";
import { skipGrid } from "../../lib/step_grid.ts";
import { testGmm, testXT } from "./_fixture.ts";

const GMM = testGmm();
const SCHEDULES: [string, NoiseSchedule][] = [
  ["VE", veSchedule()],
  ["SD", vpDiscreteSchedule({ betas: discreteBetas("scaled_linear") })],
];
const GRIDS = ["edm", "logSNR"] as const;

/** Relative L2 error of a solver against the exact solution, per (schedule, grid, N). */
async function errors(
  schedule: NoiseSchedule,
  grid: typeof GRIDS[number],
  steps: readonly number[],
  solver: SolverName,
  options: SolverOptions,
): Promise<number[]> {
  const denoiser = gmmDenoiser(GMM, schedule);
  const xT = testXT(schedule);
  const exact = gmmReferenceSolve(GMM, xT, schedule.tMax, schedule.tMin, { schedule });
  const out: number[] = [];
  for (const n of steps) {
    const t = skipGrid(grid, schedule, n);
    const x = await solve(solver, denoiser, xT, { t1: t, t2: t.slice() }, options);
    let num = 0;
    let den = 0;
    x.forEach((v, i) => {
      num += (v - exact[i]) ** 2;
      den += exact[i] ** 2;
    });
    out.push(Math.sqrt(num / den));
  }
  return out;
}

const e = (v: number) => v.toExponential(2);

Deno.test("DPM-Solver++(3M): the reference weight is closer to exact at few steps, the third-order one at many", async () => {
  const steps = [4, 5, 6, 8, 10, 15, 20, 40, 80, 160];
  const rows: string[] = [];
  for (const [name, schedule] of SCHEDULES) {
    for (const grid of GRIDS) {
      const reference = await errors(schedule, grid, steps, "dpm_solver++", { order: 3 });
      const exact = await errors(schedule, grid, steps, "dpm_solver++", {
        order: 3,
        variant3M: "exact",
      });
      rows.push(
        `| ${name} | ${grid} | ${
          steps.map((_, i) => `${e(reference[i])} / ${e(exact[i])}`).join(" | ")
        } |`,
      );
      // N = 4 runs orders 1, 2, 2, 1: no third-order step, the two forms agree.
      assert.equal(reference[0], exact[0]);
      for (const n of [5, 6, 8]) {
        const i = steps.indexOf(n);
        assert.ok(reference[i] < exact[i], `${name} ${grid} N=${n}`);
      }
      const last = steps.length - 1;
      assert.ok(exact[last] < reference[last] / 2, `${name} ${grid} N=160`);
    }
  }
  console.log(
    `| schedule | grid | ${steps.map((n) => `N=${n}`).join(" | ")} |\n` +
      `| --- | --- | ${steps.map(() => "---").join(" | ")} |\n${rows.join("\n")}`,
  );
});

Deno.test("lowering the final orders at every N against below 15 steps only", async () => {
  const steps = [10, 15, 20, 30];
  const rows: string[] = [];
  const cases: [string, SolverName, SolverOptions][] = [
    ["UniPC-3 bh1", "uni_pc", { order: 3, variant: "bh1" }],
    ["UniPC-3 bh2", "uni_pc", { order: 3, variant: "bh2" }],
    ["DPM-Solver++(3M)", "dpm_solver++", { order: 3 }],
  ];
  for (const [name, schedule] of SCHEDULES) {
    for (const grid of GRIDS) {
      for (const [label, solver, options] of cases) {
        const every = await errors(schedule, grid, steps, solver, options);
        const below = await errors(schedule, grid, steps, solver, {
          ...options,
          lowerOrderFinalBelow: 15,
        });
        rows.push(
          `| ${name} | ${grid} | ${label} | ${
            steps.map((_, i) => `${e(every[i])} / ${e(below[i])}`).join(" | ")
          } |`,
        );
        // Below 15 steps both rules lower; from 15 on they differ.
        assert.equal(every[0], below[0]);
        for (let i = 1; i < steps.length; i++) assert.notEqual(every[i], below[i]);
      }
    }
  }
  console.log(
    `| schedule | grid | solver | ${steps.map((n) => `N=${n}`).join(" | ")} |\n` +
      `| --- | --- | --- | ${steps.map(() => "---").join(" | ")} |\n${rows.join("\n")}`,
  );
});
