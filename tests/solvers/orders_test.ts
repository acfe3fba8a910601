/**
 * Convergence orders of every solver, measured against the exact Gaussian-mixture ODE.
 *
 * Setup: VE/EDM schedule (σ 80 → 0.002, λ spans ≈ 10.6), λ-uniform (logSNR) grids, the d = 8
 * three-component mixture of `_fixture.ts`, RMS error of 4 samples against RK4 with 4000 steps
 * in log σ (its own error, checked against 8000 steps, is ~1e-12, far below the smallest
 * solver error here, ~3e-8). N = 48, 96, 192, 384: below ~40 steps the λ-step h ≳ 0.25 and the
 * high-order methods are still pre-asymptotic (slopes overshoot), so the fit starts at 48.
 *
 * The expected value is the global order of the method as implemented. Two caveats apply:
 * multistep methods warm up with lower orders (a one-off local error O(h^{k+1}) from a warm-up
 * step of order k, strongly damped here because the first steps run at σ ≈ 80 where the
 * denoiser barely changes), and UniPC-p is p+1 with its corrector (its warm-up bound is
 * 3, which shows as ≈ 3.8 for p = 3 in this range). iPNDM's fixed Adams–Bashforth weights are
 * exact only for steps uniform in σ̃; on a λ-uniform grid every order ≥ 2 is second order.
 * DPM-Solver++(3M) in its default (reference) form gives the second difference half the weight
 * of the third-order form, so it is second order; `variant3M: "exact"` is third order. The
 * final steps run at lowered orders (the default at every N): their one-off local errors sit at
 * σ ≈ 0.002, where the denoiser is nearly linear, and do not show in these slopes.
 * The per-step (local) orders are checked separately in local_orders_test.ts.
 * The test prints the table of docs/solver-orders.md.
 */
import assert from "node:assert/strict";
import { gmmDenoiser, gmmReferenceSolve } from "../../lib/gmm.ts";
import { logSnrGrid, toGrid } from "../../lib/step_grid.ts";
import { veSchedule } from "../../lib/noise_schedule.ts";
import { solve, type SolverName, type SolverOptions } from "../../lib/solvers/mod.ts";
import { convergenceOrder, rmsError, testGmm, testXT } from "./_fixture.ts";

interface OrderCase {
  name: SolverName;
  options: SolverOptions;
  label: string;
  /** Nominal order of one step. */
  nominal: number;
  /** Expected asymptotic global order on this setup. */
  expected: number;
}

const CASES: OrderCase[] = [
  { name: "euler", options: {}, label: "DDIM", nominal: 1, expected: 1 },
  { name: "heun", options: {}, label: "EDM Alg. 1", nominal: 2, expected: 2 },
  { name: "dpm_solver", options: { order: 1 }, label: "order 1", nominal: 1, expected: 1 },
  { name: "dpm_solver", options: { order: 2 }, label: "DPM-Solver-2", nominal: 2, expected: 2 },
  { name: "dpm_solver", options: { order: 3 }, label: "DPM-Solver-3", nominal: 3, expected: 3 },
  {
    name: "dpm_solver",
    options: { order: 2, prediction: "data" },
    label: "order 2 (2S, data)",
    nominal: 2,
    expected: 2,
  },
  {
    name: "dpm_solver",
    options: { order: 3, prediction: "data" },
    label: "order 3 (3S, data)",
    nominal: 3,
    expected: 3,
  },
  { name: "dpm_solver++", options: { order: 1 }, label: "order 1", nominal: 1, expected: 1 },
  { name: "dpm_solver++", options: { order: 2 }, label: "2M", nominal: 2, expected: 2 },
  {
    name: "dpm_solver++",
    options: { order: 3 },
    label: "3M (reference form)",
    nominal: 2,
    expected: 2,
  },
  {
    name: "dpm_solver++",
    options: { order: 3, variant3M: "exact" },
    label: "3M exact",
    nominal: 3,
    expected: 3,
  },
  ...(["bh1", "bh2"] as const).flatMap((variant) =>
    [1, 2, 3].map((order) => ({
      name: "uni_pc" as const,
      options: { order, variant },
      label: `UniPC-${order} ${variant}`,
      nominal: order + 1,
      expected: order + 1,
    }))
  ),
  {
    name: "uni_pc",
    options: { order: 3, corrector: false },
    label: "UniP-3",
    nominal: 3,
    expected: 3,
  },
  ...[1, 2, 3, 4].map((order) => ({
    name: "ipndm" as const,
    options: { order },
    label: `order ${order}`,
    nominal: order,
    expected: Math.min(order, 2),
  })),
];

const STEPS = [48, 96, 192, 384];

Deno.test("every solver converges at its theoretical order on the Gaussian mixture", async () => {
  const schedule = veSchedule();
  const gmm = testGmm();
  const denoiser = gmmDenoiser(gmm, schedule);
  const xT = testXT(schedule);
  const reference = gmmReferenceSolve(gmm, xT, schedule.tMax, schedule.tMin);
  const grids = STEPS.map((n) => toGrid(logSnrGrid(schedule, n)));
  const rows: string[] = [];
  const failures: string[] = [];
  for (const c of CASES) {
    const errors: number[] = [];
    for (const grid of grids) {
      errors.push(rmsError(await solve(c.name, denoiser, xT, grid, c.options), reference));
    }
    const measured = convergenceOrder(STEPS, errors);
    rows.push(
      `| ${c.name} | ${c.label} | ${c.nominal} | ${c.expected} | ${measured.toFixed(2)} | ` +
        `${errors[0].toExponential(1)} → ${errors[errors.length - 1].toExponential(1)} |`,
    );
    if (Math.abs(measured - c.expected) > 0.3) {
      failures.push(
        `${c.name} ${c.label}: measured ${measured.toFixed(2)}, expected ${c.expected}`,
      );
    }
  }
  console.log(
    "| solver | order / variant | nominal step order | expected global order | measured slope | RMS error N=48 → 384 |\n" +
      "| --- | --- | --- | --- | --- | --- |\n" + rows.join("\n"),
  );
  assert.deepEqual(failures, []);
});
