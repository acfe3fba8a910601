import assert from "node:assert/strict";
import {
  backwardPlan,
  coefficientJacobianVjp,
  forwardPlan,
  type Planner,
  solveVjp,
} from "../../lib/grad/backprop.ts";
import { logSnrGrid } from "../../lib/step_grid.ts";
import { normalNoise } from "../../lib/rng.ts";
import { veSchedule } from "../../lib/noise_schedule.ts";
import { runPlan } from "../../lib/solvers/plan.ts";
import { planSolver, SOLVER_NAMES, type SolverOptions } from "../../lib/solvers/mod.ts";
import { relativeError, smallGmm, stencil } from "../ld3/_gmm_problem.ts";

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

Deno.test("coefficientJacobianVjp() with fixedEndpoints and a base plan keeps every interior value", async () => {
  const steps = 6;
  const planner: Planner = (g) => planSolver("uni_pc", schedule, g);
  const t1 = logSnrGrid(schedule, steps);
  const t2 = Float64Array.from(t1, (t, k) => k === 0 || k === steps ? t : t * 1.05);
  const plan = planner({ t1, t2 });
  const tape = await forwardPlan(plan, gmm, xT);
  const { coefs } = await backwardPlan(tape, gmm, weights, steps + 1);
  const full = coefficientJacobianVjp(planner, { t1, t2 }, coefs);
  const fixed = coefficientJacobianVjp(planner, { t1, t2 }, coefs, {
    fixedEndpoints: true,
    basePlan: plan,
  });
  assert.deepEqual(fixed.t1.slice(1, steps), full.t1.slice(1, steps));
  assert.deepEqual(fixed.t2.slice(1, steps), full.t2.slice(1, steps));
  assert.equal(fixed.t1[0], 0);
  assert.equal(fixed.t1[steps], 0);
  assert.notEqual(full.t1[0], 0, "the full sweep does differentiate the endpoints");
});

Deno.test("forwardPlan() and backwardPlan() handle long combines and repeated reads", async () => {
  // r1 = 1.5·x − 2·x = −0.5·x; r2 = 0.5·r1 + x + 2·r1 + 3·x − r1 = 3.25·x.
  const plan = {
    ops: [
      { kind: "combine" as const, out: 1, terms: [{ coef: 1.5, reg: 0 }, { coef: -2, reg: 0 }] },
      {
        kind: "combine" as const,
        out: 2,
        terms: [
          { coef: 0.5, reg: 1 },
          { coef: 1, reg: 0 },
          { coef: 2, reg: 1 },
          { coef: 3, reg: 0 },
          { coef: -1, reg: 1 },
        ],
      },
    ],
    registers: 3,
    output: 2,
    nfe: 0,
  };
  const tape = await forwardPlan(plan, gmm, xT);
  assert.deepEqual(tape.output, await runPlan(plan, gmm, xT));
  for (let i = 0; i < xT.length; i++) {
    assert.ok(Math.abs(tape.output[i] - 3.25 * xT[i]) <= 1e-15 * Math.abs(xT[i]) * 8);
  }
  const g = await backwardPlan(tape, gmm, weights, 1);
  let wx = 0;
  for (let i = 0; i < xT.length; i++) {
    assert.ok(Math.abs(g.x[i] - 3.25 * weights[i]) <= 1e-14 * Math.abs(weights[i]) * 8);
    wx += weights[i] * xT[i];
  }
  // ∂L/∂coef of op 1: ⟨w, r⟩ with r = r1 = −0.5·x or r = x; of op 0: ⟨cot(r1), x⟩, cot(r1) = 1.5·w.
  const expected = [[1.5 * wx, 1.5 * wx], [-0.5 * wx, wx, -0.5 * wx, wx, -0.5 * wx]];
  for (let op = 0; op < 2; op++) {
    expected[op].forEach((e, j) => {
      assert.ok(Math.abs(g.coefs[op][j] - e) <= 1e-12 * Math.abs(wx), `op ${op} term ${j}`);
    });
  }
});
