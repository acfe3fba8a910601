/**
 * LD3 training cost on a bundled model: the time of one training step (student forward with
 * tape, backward through every solver step and network VJP, parameter gradients) against the
 * time of the student's plain forward trajectory for the same batch, as a ratio measured in one
 * run (target ≤ 4×: one forward pass plus one VJP per NFE), and the same step with the
 * accept-if-better test of the moved latents (one more forward). The three are timed round-robin
 * after a JIT warm-up so that they share the machine's load. With `--full <dataset folder>` it
 * also times a full default training run (50/50 samples, rounds 2/5, L2; `--match_prior G` starts
 * it from a prior grid).
 *
 * ```sh
 * deno run -A bench/train_bench.ts [--config configs/gmm-mnist.yml] [--solver ipndm] [--steps 4]
 *   [--batch 2] [--repeats 300] [--full train_data/uni_pc_NFE20_edm] [--match_prior edm]
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { ld3Loss, ld3LossAndGradient, type Ld3Problem } from "../lib/ld3/loss.ts";
import { runLd3Training } from "../lib/pipelines/train/run.ts";
import { l2Loss } from "../lib/metrics/losses.ts";
import { loadModel } from "../lib/onnx/model.ts";
import { differentiableDenoiser } from "../lib/grad/model_grad.ts";
import { normalNoise } from "../lib/rng.ts";
import { planSolver, runPlan, type SolverName } from "../lib/solvers/mod.ts";
import { thetaToGrid } from "../lib/ld3/parameterization.ts";

const { values } = parseArgs({
  args: Deno.args,
  strict: true,
  options: {
    config: { type: "string", default: "configs/gmm-mnist.yml" },
    solver: { type: "string", default: "ipndm" },
    steps: { type: "string", default: "4" },
    batch: { type: "string", default: "2" },
    repeats: { type: "string", default: "300" },
    match_prior: { type: "string" },
    full: { type: "string" },
  },
});
const solver = values.solver as SolverName;
const steps = Number(values.steps);
const batch = Number(values.batch);
const repeats = Number(values.repeats);

const model = await loadModel(values.config);
const denoiser = await differentiableDenoiser(model);
const schedule = denoiser.schedule;
const size = model.sampleShape.reduce((a, b) => a * b, 1);
const theta = { theta1: new Float64Array(steps + 1).fill(1), theta2: new Float64Array(steps + 1) };
const grid = thetaToGrid(schedule, theta.theta1, theta.theta2);
const problem: Ld3Problem = {
  denoiser,
  planner: (g) => planSolver(solver, schedule, g),
  loss: l2Loss,
  param: { timeMode: "lambda" },
};
const noise = normalNoise(0, 0, batch * size);
const latents = Float64Array.from(noise);
const teacher = new Float64Array(batch * size);
const xT = Float64Array.from(latents, (v) => v * schedule.priorScale);

/**
 * Median times of several functions, measured round-robin (one call of each per round) so
 * that all see the same machine load; the first `warmup` rounds let the JIT settle.
 */
async function timeAll(fs: (() => Promise<unknown>)[], warmup = 50): Promise<number[]> {
  for (let i = 0; i < warmup; i++) for (const f of fs) await f();
  const times = fs.map(() => [] as number[]);
  for (let i = 0; i < repeats; i++) {
    for (let j = 0; j < fs.length; j++) {
      const t0 = performance.now();
      await fs[j]();
      times[j].push(performance.now() - t0);
    }
  }
  return times.map((t) => t.sort((a, b) => a - b)[Math.floor(t.length / 2)]);
}

const plan = planSolver(solver, schedule, grid);
const data = { latents, teacher, batch };
const [forwardMs, stepMs, relaxMs] = await timeAll([
  () => runPlan(plan, denoiser, xT),
  // Forward with tape, backward (one VJP per NFE), coefficient and θ gradients.
  () => ld3LossAndGradient(problem, theta, data),
  // The accept-if-better test of the moved latents: one more loss evaluation.
  () => ld3Loss(problem, theta, data),
]);
console.log(
  `${model.config.name} ${solver} N=${steps} batch ${batch} (median of ${repeats}): ` +
    `forward ${forwardMs.toFixed(3)} ms, gradient step ${stepMs.toFixed(3)} ms ` +
    `(${(stepMs / forwardMs).toFixed(2)}×), with the latent test ${
      (stepMs + relaxMs).toFixed(3)
    } ms (${((stepMs + relaxMs) / forwardMs).toFixed(2)}×)`,
);
await denoiser.close();
await model.close();

if (values.full) {
  const logPath = await Deno.makeTempDir({ prefix: "train_bench_" });
  const t0 = performance.now();
  const r = await runLd3Training({
    config: values.config,
    dataDir: values.full,
    logPath,
    solverName: solver,
    steps,
    lossType: "L2",
    progress: false,
    matchPrior: values.match_prior,
  });
  const wall = (performance.now() - t0) / 1000;
  console.log(
    `full default run (50/50, rounds 2/5, start ${
      values.match_prior ?? "logSNR"
    }): ${r.steps} steps, training ${r.trainSeconds.toFixed(1)} s, wall-clock ${
      wall.toFixed(1)
    } s; LD3 ${r.evaluation.ld3.toPrecision(4)} vs logSNR ${r.evaluation.logSNR.toPrecision(4)}`,
  );
  await Deno.remove(logPath, { recursive: true });
}
