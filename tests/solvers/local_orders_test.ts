/**
 * Per-step (local) orders of the multistep coefficient functions, with exact history.
 *
 * The model output is a known function of λ alone, D(λ) = sin λ, so a single step from the
 * exact state with exact past outputs has the closed-form answer
 * `x_t = (σ_t/σ_s)·x_s + σ_t ∫ e^λ sin λ dλ` (VE). A method of order p has local error
 * O(h^{p+1}). The window sits at λ ≈ −2, where D, D', D'' and D''' are all far from zero (a
 * window where D'' = 0 would hide a wrong second-difference weight), and the steps are unequal
 * so the r-ratios are exercised.
 */
import assert from "node:assert/strict";
import { gridValues } from "../../lib/solvers/_coefficients.ts";
import {
  dpmSolverPP2MCoefficients,
  dpmSolverPP3MCoefficients,
  uniPcCoefficients,
} from "../../lib/solvers/mod.ts";
import { veSchedule } from "../../lib/noise_schedule.ts";
import { convergenceOrder } from "./_fixture.ts";

const schedule = veSchedule();

function antiderivative(l: number): number {
  return Math.exp(l) * (Math.sin(l) - Math.cos(l)) / 2;
}

/** Local error of one step from grid index 2 to 3 with exact history on a 4-point λ window. */
function localError(
  h: number,
  step: (values: ReturnType<typeof gridValues>) => { x: number; d: readonly number[] },
): number {
  const lambdas = [-2, -2 + 1.2 * h, -2 + 2.1 * h, -2 + 3.1 * h];
  const values = gridValues(schedule, lambdas.map((l) => schedule.inverseLambda(l)));
  const xs = 0.7;
  const exact = (values.sigma[3] / values.sigma[2]) * xs +
    values.sigma[3] * (antiderivative(values.lambda[3]) - antiderivative(values.lambda[2]));
  const outputs = [2, 1, 0].map((k) => Math.sin(values.lambda[k]));
  const c = step(values);
  return Math.abs(c.x * xs + c.d.reduce((s, coef, k) => s + coef * outputs[k], 0) - exact);
}

const H = [0.08, 0.04, 0.02, 0.01];

for (
  const [label, order, step] of [
    ["dpmSolverPP2MCoefficients", 2, (v) => dpmSolverPP2MCoefficients(v, 2)],
    // The reference form (the default) gives D'' half its weight: a second-order step.
    ["dpmSolverPP3MCoefficients (reference)", 2, (v) => dpmSolverPP3MCoefficients(v, 2)],
    ["dpmSolverPP3MCoefficients (exact)", 3, (v) => dpmSolverPP3MCoefficients(v, 2, "exact")],
    ["uniPcCoefficients (UniP-2, bh1)", 2, (v) => {
      const c = uniPcCoefficients(v, 2, 2, "bh1", false);
      return { x: c.x, d: c.m };
    }],
    ["uniPcCoefficients (UniP-3, bh2)", 3, (v) => {
      const c = uniPcCoefficients(v, 2, 3, "bh2", false);
      return { x: c.x, d: c.m };
    }],
  ] as const satisfies readonly (readonly [
    string,
    number,
    (v: ReturnType<typeof gridValues>) => { x: number; d: readonly number[] },
  ])[]
) {
  Deno.test(`${label}() has local error O(h^${order + 1})`, () => {
    const errors = H.map((h) => localError(h, step));
    const measured = convergenceOrder(H.map((h) => 1 / h), errors);
    console.log(label, "local slope", measured.toFixed(2));
    assert.ok(Math.abs(measured - (order + 1)) < 0.25, `slope ${measured}`);
  });
}
