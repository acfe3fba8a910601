import assert from "node:assert/strict";
import { backwardPlan, forwardPlan, type Planner, solveVjp } from "../lib/backprop.ts";
import { logSnrGrid } from "../lib/grid.ts";
import { normalNoise } from "../lib/rng.ts";
import { veSchedule } from "../lib/schedule.ts";
import { runPlan } from "../lib/solver.ts";
import { planSolver, SOLVER_NAMES, type SolverOptions } from "../lib/solvers/mod.ts";
import { relativeError, smallGmm, stencil } from "./ld3/_gmm_problem.ts";

const schedule = veSchedule();
const dim = 16;
const batch = 2;
const gmm = smallGmm(schedule, { dim });
const xT = Float64Array.from(normalNoise(3, 0, dim * batch), (v) => v * schedule.priorScale);
const weights = normalNoise(4, 0, dim * batch);

const cases: [string, SolverOptions][] = [
  ...SOLVER_NAMES.map((n): [string, SolverOptions] => [n, {}]),
  ["uni_pc", { variant: "bh2" }],
];

/** ⟨w, solve(x, grid)⟩: a scalar loss linear in the output. */
async function objective(planner: Planner, t1: Float64Array, t2: Float64Array, x: Float64Array) {
  const out = await runPlan(planner({ t1, t2 }), gmm, x);
  return out.reduce((s, v, i) => s + v * weights[i], 0);
}

for (const [name, options] of cases) {
  const label = `${name}${options.variant ? ` ${options.variant}` : ""}`;
  Deno.test(`solveVjp() matches finite differences in x_T, t1 and t2 (${label})`, async () => {
    const steps = 5;
    const planner: Planner = (g) =>
      planSolver(name as Parameters<typeof planSolver>[0], schedule, g, options);
    const t1 = logSnrGrid(schedule, steps);
    // Decoupled evaluation times: move interior points by a fraction of their gap.
    const t2 = Float64Array.from(
      t1,
      (t, k) => k === 0 || k === steps ? t : t * Math.exp(0.1 * Math.sin(k)),
    );
    const tape = await forwardPlan(planner({ t1, t2 }), gmm, xT);
    const ref = await runPlan(planner({ t1, t2 }), gmm, xT);
    assert.deepEqual(tape.output, ref, "the tape's forward equals runPlan");
    const g = await solveVjp(planner, { t1, t2 }, tape, gmm, weights);

    const fdx = new Float64Array(xT.length);
    for (let i = 0; i < xT.length; i++) {
      fdx[i] = await stencil((h) => {
        const x = Float64Array.from(xT);
        x[i] += h;
        return objective(planner, t1, t2, x);
      }, 1e-2);
    }
    assert.ok(relativeError(g.x, fdx) < 1e-7, `x_T: ${relativeError(g.x, fdx)}`);

    const fd1 = new Float64Array(steps + 1);
    const fd2 = new Float64Array(steps + 1);
    for (let k = 1; k < steps; k++) {
      const h = 1e-3 * Math.min(t1[k - 1] - t1[k], t1[k] - t1[k + 1]);
      fd1[k] = await stencil((e) => {
        const a = Float64Array.from(t1);
        a[k] += e;
        return objective(planner, a, t2, xT);
      }, h);
      fd2[k] = await stencil((e) => {
        const b = Float64Array.from(t2);
        b[k] += e;
        return objective(planner, t1, b, xT);
      }, h);
    }
    const inner = (a: Float64Array) => a.slice(1, steps);
    assert.ok(
      relativeError(inner(g.t1), inner(fd1)) < 1e-6,
      `t1: ${g.t1} vs ${fd1}`,
    );
    assert.ok(
      relativeError(inner(g.t2), inner(fd2)) < 1e-6,
      `t2: ${g.t2} vs ${fd2}`,
    );
  });
}

Deno.test("backwardPlan() makes one VJP per network call and releases the tape", async () => {
  const t1 = logSnrGrid(schedule, 4);
  const plan = planSolver("ipndm", schedule, { t1, t2: t1.slice() });
  const before = { ...gmm.calls };
  const tape = await forwardPlan(plan, gmm, xT);
  const g = await backwardPlan(tape, gmm, weights, t1.length);
  assert.equal(gmm.calls.denoise - before.denoise, plan.nfe);
  assert.equal(gmm.calls.vjp - before.vjp, plan.nfe);
  assert.ok(tape.values.every((v) => v === undefined), "every stored state was released");
  assert.equal(g.coefs.length, plan.ops.length);
});

Deno.test("forwardPlan() rejects a plan that reads an unwritten register", async () => {
  const plan = {
    ops: [{ kind: "combine" as const, out: 1, terms: [{ coef: 1, reg: 2 }] }],
    registers: 3,
    output: 1,
    nfe: 0,
  };
  await assert.rejects(() => forwardPlan(plan, gmm, xT), RangeError);
});
