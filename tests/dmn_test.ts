import assert from "node:assert/strict";
import { dmnGrid, dmnObjective, expMoment } from "../lib/dmn.ts";
import { discreteBetas, veSchedule, vpDiscreteSchedule } from "../lib/noise_schedule.ts";
import { edmGrid, gridLambdas, logSnrGrid } from "../lib/step_grid.ts";
import { multistepOrders } from "../lib/solvers/mod.ts";

/** ∫_0^h e^{u−h} u^k/k! du by composite Simpson with many panels. */
function quadrature(k: number, h: number): number {
  const n = 20000;
  let factorial = 1;
  for (let j = 2; j <= k; j++) factorial *= j;
  const f = (u: number) => Math.exp(u - h) * u ** k / factorial;
  let s = f(0) + f(h);
  for (let i = 1; i < n; i++) s += (i % 2 === 1 ? 4 : 2) * f((i * h) / n);
  return (s * h) / (3 * n);
}

Deno.test("expMoment() is the exponential-integrator moment on both sides of h = 1", () => {
  for (const h of [1e-3, 0.2, 0.999, 1, 1.001, 2.5, 6]) {
    for (let k = 0; k <= 3; k++) {
      const want = quadrature(k, h);
      assert.ok(Math.abs(expMoment(k, h) - want) <= 1e-10 * Math.max(want, 1e-12), `k=${k} h=${h}`);
    }
  }
});

Deno.test("dmnObjective() of order 1 is Σ(e^h − 1)·e^{−λ_N}, minimised by the logSNR grid", () => {
  const lambdas = [-4.4, -2, 0.5, 1, 6.2];
  const want = lambdas.slice(1).reduce((s, l, i) => s + Math.expm1(l - lambdas[i]), 0) *
    Math.exp(-6.2);
  assert.ok(Math.abs(dmnObjective(lambdas, [1, 1, 1, 1]) - want) < 1e-14);
  const ve = veSchedule();
  const dmn = gridLambdas(ve, dmnGrid(ve, 5, { order: 1 }));
  const uniform = gridLambdas(ve, logSnrGrid(ve, 5));
  for (let k = 0; k <= 5; k++) assert.ok(Math.abs(dmn[k] - uniform[k]) < 1e-5, `k=${k}`);
});

Deno.test("dmnGrid() is a grid from T to eps whose bound beats logSNR's and edm's", () => {
  for (
    const [schedule, power] of [
      [veSchedule(), 1],
      [vpDiscreteSchedule({ betas: discreteBetas("scaled_linear") }), 2],
    ] as const
  ) {
    for (const steps of [2, 4, 6, 10]) {
      for (const order of [2, 3, 4]) {
        const t = dmnGrid(schedule, steps, { order, errorPower: power });
        assert.equal(t.length, steps + 1);
        assert.equal(t[0], schedule.tMax);
        assert.equal(t[steps], schedule.tMin);
        for (let k = 1; k <= steps; k++) assert.ok(t[k] < t[k - 1]);
        const orders = multistepOrders(steps, order, true);
        const bound = (g: Float64Array) => dmnObjective(gridLambdas(schedule, g), orders, power);
        assert.ok(bound(t) <= bound(logSnrGrid(schedule, steps)) + 1e-15);
        assert.ok(bound(t) <= bound(edmGrid(schedule, steps)) + 1e-15);
        assert.deepEqual(dmnGrid(schedule, steps, { order, errorPower: power }), t);
      }
    }
  }
  assert.throws(() => dmnGrid(veSchedule(), 4, { order: 5 }), /DMN order.*got 5/);
  assert.throws(() => dmnGrid(veSchedule(), 0), /steps must be an integer >= 1: got 0/);
});

Deno.test("dmnGrid() is within 20 % of the LD3 reference's DMN grids up to 6 steps", async () => {
  const fixture = JSON.parse(
    await Deno.readTextFile(new URL("./fixtures/ld3_reference/samplers.json", import.meta.url)),
  );
  const cases = [
    ["ve", veSchedule(), 1],
    ["vp_discrete", vpDiscreteSchedule({ betas: discreteBetas("scaled_linear") }), 2],
  ] as const;
  for (const [name, schedule, power] of cases) {
    for (const g of fixture.schedules[name].dmn as { steps: number; t: number[] }[]) {
      if (g.steps > 6) continue; // from 8 steps the reference lets the middle steps cancel
      const t = dmnGrid(schedule, g.steps, { order: 3, errorPower: power });
      t.forEach((v, k) => {
        assert.ok(Math.abs(v / g.t[k] - 1) < 0.2, `${name} N=${g.steps} k=${k}: ${v} vs ${g.t[k]}`);
      });
    }
  }
});
