import assert from "node:assert/strict";
import type { Denoiser } from "../../lib/denoiser.ts";
import { veSchedule } from "../../lib/noise_schedule.ts";
import {
  type EvalInfo,
  registerLastUse,
  runPlan,
  type SolverPlan,
} from "../../lib/solvers/plan.ts";

/** A toy denoiser D(x, t) = t·x whose results are easy to follow by hand. */
function scaling(): Denoiser {
  return {
    schedule: veSchedule(),
    sampleShape: [2],
    denoise: (x, t) => Promise.resolve(x.map((v) => t * v)),
  };
}

const PLAN: SolverPlan = {
  ops: [
    { kind: "eval", out: 1, input: 0, evalIndex: 0, t: 2 },
    { kind: "combine", out: 2, terms: [{ coef: 1, reg: 0 }, { coef: 0.5, reg: 1 }] },
    { kind: "eval", out: 3, input: 2, evalIndex: 1, t: 3 },
    { kind: "combine", out: 4, terms: [{ coef: -1, reg: 1 }, { coef: 1, reg: 3 }] },
  ],
  registers: 5,
  output: 4,
  nfe: 2,
};

Deno.test("runPlan() executes evals and combines in order", async () => {
  const xT = Float64Array.of(1, -2);
  // r1 = 2x, r2 = x + x = 2x, r3 = 3·2x = 6x, r4 = −2x + 6x = 4x.
  const out = await runPlan(PLAN, scaling(), xT);
  assert.deepEqual(out, Float64Array.of(4, -8));
  assert.deepEqual(xT, Float64Array.of(1, -2), "x_T must not be modified");
});

Deno.test("runPlan() reports every evaluation and passes step and condition", async () => {
  const infos: EvalInfo[] = [];
  const seen: unknown[] = [];
  const condition = Float32Array.of(7);
  const denoiser: Denoiser = {
    ...scaling(),
    denoise(x, t, info) {
      seen.push([info?.step, info?.condition]);
      return Promise.resolve(x.map((v) => t * v));
    },
  };
  await runPlan(PLAN, denoiser, Float64Array.of(1, 1), {
    condition,
    onEval: (info) => infos.push(info),
  });
  assert.deepEqual(infos, [
    { nfe: 1, totalNfe: 2, evalIndex: 0, t: 2 },
    { nfe: 2, totalNfe: 2, evalIndex: 1, t: 3 },
  ]);
  assert.deepEqual(seen, [[0, condition], [1, condition]]);
});

Deno.test("registerLastUse() finds the last reader of each register", () => {
  assert.deepEqual([...registerLastUse(PLAN)], [1, 3, 2, 3, -1]);
});

Deno.test("runPlan() rejects a plan that reads an unwritten register", async () => {
  const bad: SolverPlan = {
    ops: [{ kind: "combine", out: 1, terms: [{ coef: 1, reg: 0 }, { coef: 1, reg: 2 }] }],
    registers: 3,
    output: 1,
    nfe: 0,
  };
  await assert.rejects(runPlan(bad, scaling(), Float64Array.of(1, 1)), /register 2/);
});

Deno.test("runPlan() returns a fresh array for an empty plan", async () => {
  const xT = Float64Array.of(3, 4);
  const out = await runPlan({ ops: [], registers: 1, output: 0, nfe: 0 }, scaling(), xT);
  assert.deepEqual(out, xT);
  assert.notEqual(out, xT);
});
