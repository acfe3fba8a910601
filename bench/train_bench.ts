/**
 * LD3 training cost on a bundled model, all numbers from one run on the same network:
 *
 * - **forward**: the student's plain forward trajectory for a batch (`runPlan`);
 * - **LD3 step**: one training step's gradient (forward that keeps what each VJP needs, backward
 *   through every solver step and network VJP, coefficient and θ gradients), as the trainer runs
 *   it, and the same step with every VJP recomputing its forward (`keepResiduals: false`);
 * - **latent test**: the accept-if-better forward of the moved latents;
 * - the memory the kept residuals take for one trajectory (what saving the forward costs);
 * - with `--torch`, PyTorch eager forward and forward+backward of the same trajectory (the same
 *   plan, weights read from the same ONNX file: `bench/torch_trajectory.py`), at 1 and 2 threads.
 *
 * The ld3 calls are timed round-robin after a warm-up, so that they share the machine's load:
 * first what the trainer runs (forward, LD3 step, latent test), then the forward against the
 * recomputing step (kept apart, so that the two steps' sessions do not evict each other from
 * the caches); PyTorch runs after them in its own process. With `--full <dataset folder>` it also times a full
 * default training run (50/50 samples, rounds 2/5, L2; `--match_prior G` starts it from a prior
 * grid).
 *
 * ```sh
 * deno run -A bench/train_bench.ts [--config configs/mnist-edm.yml] [--solver ipndm] [--steps 6]
 *   [--batch 2] [--repeats 15] [--warmup 3] [--threads N] [--torch] [--torch_threads 1,2]
 *   [--full train_data/uni_pc_NFE20_edm] [--match_prior edm]
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { ld3Loss, ld3LossAndGradient, type Ld3Problem } from "../lib/ld3/loss.ts";
import { runLd3Training } from "../lib/pipelines/train/run.ts";
import { l2Loss } from "../lib/metrics/losses.ts";
import { loadModel } from "../lib/onnx/model.ts";
import { differentiableDenoiser } from "../lib/grad/model_grad.ts";
import { forwardPlan } from "../lib/grad/backprop.ts";
import { normalNoise } from "../lib/rng.ts";
import { planSolver, runPlan, type SolverName } from "../lib/solvers/mod.ts";
import { thetaToGrid } from "../lib/ld3/parameterization.ts";

const { values } = parseArgs({
  args: Deno.args,
  strict: true,
  options: {
    config: { type: "string", default: "configs/mnist-edm.yml" },
    solver: { type: "string", default: "ipndm" },
    steps: { type: "string", default: "6" },
    batch: { type: "string", default: "2" },
    repeats: { type: "string", default: "15" },
    warmup: { type: "string", default: "3" },
    threads: { type: "string" },
    torch: { type: "boolean", default: false },
    torch_threads: { type: "string", default: "1,2" },
    match_prior: { type: "string" },
    full: { type: "string" },
  },
});
const solver = values.solver as SolverName;
const steps = Number(values.steps);
const batch = Number(values.batch);
const repeats = Number(values.repeats);
const warmup = Number(values.warmup);
const threads = values.threads === undefined ? undefined : Number(values.threads);

const model = await loadModel(values.config, { threads });
const denoiser = await differentiableDenoiser(model);
const recomputing = await differentiableDenoiser(model, { keepResiduals: false });
const schedule = denoiser.schedule;
const size = model.sampleShape.reduce((a, b) => a * b, 1);
const theta = { theta1: new Float64Array(steps + 1).fill(1), theta2: new Float64Array(steps + 1) };
const grid = thetaToGrid(schedule, theta.theta1, theta.theta2);
const problem = (d: typeof denoiser): Ld3Problem => ({
  denoiser: d,
  planner: (g) => planSolver(solver, schedule, g),
  loss: l2Loss,
  param: { timeMode: "lambda" },
});
const latents = Float64Array.from(normalNoise(0, 0, batch * size));
const teacher = new Float64Array(batch * size);
const xT = Float64Array.from(latents, (v) => v * schedule.priorScale);

/** Medians of several functions, timed round-robin (one call of each per round). */
async function timeAll(fs: (() => Promise<unknown>)[]): Promise<number[]> {
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
  () => ld3LossAndGradient(problem(denoiser), theta, data),
  () => ld3Loss(problem(denoiser), theta, data),
]);
const [forward2Ms, recomputeMs] = await timeAll([
  () => runPlan(plan, denoiser, xT),
  () => ld3LossAndGradient(problem(recomputing), theta, data),
]);
const savedBytes = (await forwardPlan(plan, denoiser, xT)).savedBytes;
const load = Deno.readTextFileSync("/proc/loadavg").split(" ")[0];
const ms = (v: number) => `${v.toFixed(1)} ms`;
console.log(
  `${model.config.name} ${solver} N=${steps} (NFE ${plan.nfe}) batch ${batch}, ` +
    `${model.threads} ORT thread(s), medians of ${repeats} (load ${load}):`,
);
console.log(`  forward trajectory            ${ms(forwardMs)}`);
console.log(
  `  LD3 step (kept residuals)     ${ms(stepMs)}  = ${(stepMs / forwardMs).toFixed(2)}× forward`,
);
console.log(
  `  LD3 step (recomputing)        ${ms(recomputeMs)}  = ${
    (recomputeMs / forward2Ms).toFixed(2)
  }× forward (${ms(forward2Ms)} beside it)`,
);
console.log(`  latent test                   ${ms(relaxMs)}`);
console.log(
  `  residuals kept per trajectory ${(savedBytes / 2 ** 20).toFixed(1)} MiB ` +
    `(${(savedBytes / plan.nfe / batch / 2 ** 20).toFixed(2)} MiB per sample and network call)`,
);

if (values.torch) {
  const dir = await Deno.makeTempDir({ prefix: "train_bench_" });
  const planFile = join(dir, "plan.json");
  await Deno.writeTextFile(
    planFile,
    JSON.stringify({
      ops: plan.ops,
      output: plan.output,
      times: Array.from(grid.t2),
      batch,
      shape: model.sampleShape,
      priorScale: schedule.priorScale,
    }),
  );
  const script = new URL("./torch_trajectory.py", import.meta.url).pathname;
  const out = await new Deno.Command("/usr/bin/python3", {
    args: [
      script,
      planFile,
      "--onnx",
      model.config.model.path,
      "--threads",
      values.torch_threads,
      "--repeats",
      String(repeats),
      "--warmup",
      String(warmup),
    ],
    stderr: "inherit",
  }).output();
  await Deno.remove(dir, { recursive: true });
  if (!out.success) throw new Error("bench/torch_trajectory.py failed");
  const r = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    params: number;
    torch: string;
    threads: Record<string, { forward_ms: number; forward_backward_ms: number }>;
  };
  console.log(`PyTorch ${r.torch} eager, the same plan and weights (${r.params} parameters):`);
  for (const [n, t] of Object.entries(r.threads)) {
    console.log(
      `  ${n} thread(s): forward ${ms(t.forward_ms)}, forward+backward ` +
        `${ms(t.forward_backward_ms)}; LD3 step / forward+backward = ${
          (stepMs / t.forward_backward_ms).toFixed(2)
        }`,
    );
  }
}
await denoiser.close();
await recomputing.close();
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
    threads,
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
