/**
 * The solver executor's own cost: {@linkcode runPlan} with a denoiser that does no work,
 * against one ONNX Runtime call of the GMM-MNIST network, both on a batch of 16 × 784 values.
 *
 * Run: `deno bench -A bench/solver_bench.ts`
 *
 * The trivial denoiser returns its input `x` (no copy), so a bench's time is the plan's
 * `combine` ops (linear combinations in float64) plus the `await` of each eval. Divide by the
 * NFE (10 for most solvers, 19 for heun) to compare one step with one network call.
 *
 * @module
 */
import { ort } from "../lib/deps.ts";
import { createSession } from "../lib/onnx/session.ts";
import { veSchedule } from "../lib/noise_schedule.ts";
import { planSolver, SOLVER_NAMES } from "../lib/solvers/mod.ts";
import { runPlan } from "../lib/solvers/plan.ts";
import { skipGrid, toGrid } from "../lib/step_grid.ts";
import { normalNoise } from "../lib/rng.ts";

const BATCH = 16;
const SIZE = 784;
const STEPS = 10;

const schedule = veSchedule({ sigmaMax: 80, sigmaMin: 0.002 });
const grid = toGrid(skipGrid("edm", schedule, STEPS, { rho: 7 }));
const xT = normalNoise(0, 0, BATCH * SIZE).map((v) => 80 * v);
const identity = { denoise: (x: Float64Array) => Promise.resolve(x) };

for (const name of SOLVER_NAMES) {
  const plan = planSolver(name, schedule, grid, {});
  Deno.bench(`runPlan ${name} (NFE ${plan.nfe}), identity denoiser`, {
    group: "solver",
  }, async () => {
    await runPlan(plan, identity, xT);
  });
}

const session = await createSession(
  await Deno.readFile(new URL("../models/gmm-mnist/model.onnx", import.meta.url)),
);
const feeds = {
  x: new ort.Tensor("float32", Float32Array.from(xT), [BATCH, 1, 28, 28]),
  sigma: new ort.Tensor("float32", new Float32Array(BATCH).fill(2.5), [BATCH]),
};
Deno.bench("one ORT call of gmm-mnist, batch 16", { group: "solver", baseline: true }, async () => {
  const result = await session.run(feeds);
  for (const tensor of Object.values(result)) tensor.dispose();
});
