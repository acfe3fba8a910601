/**
 * # ld3 — Learning to Discretize Denoising Diffusion ODEs, for Deno
 *
 * Sample any ONNX diffusion model with six ODE solvers on any step schedule, and learn where a
 * sampler's 4–10 steps should go by distilling from a many-step teacher (LD3, Tong et al.,
 * ICLR 2025) — without retraining the network.
 *
 * ```ts
 * import { loadModel, sample, skipGrid, toGrid, normalNoise } from "./mod.ts";
 *
 * const model = await loadModel("configs/gmm-mnist.yml");
 * const schedule = model.denoiser.schedule;
 * const grid = toGrid(skipGrid("edm", schedule, 6));
 * const size = model.sampleShape.reduce((a, b) => a * b, 1);
 * const xT = normalNoise(0, 0, size).map((z) => z * schedule.priorScale);
 * const x0 = await sample("uni_pc", model.denoiser, xT, grid);
 * await model.close();
 * ```
 *
 * Where things live: schedules (`lib/noise_schedule.ts`), step grids (`lib/step_grid.ts`), solvers
 * (`lib/solvers/`, one file each), the ONNX runtime (`lib/onnx/model.ts`), gradients
 * (`lib/vjp/`, `lib/grad/backprop.ts`, `lib/grad/model_grad.ts`), LD3 training (`lib/ld3/`), metrics
 * (`lib/metrics/fid.ts`, `lib/metrics/distance.ts`), data I/O (`lib/io/dataset.ts`, `lib/io/npz.ts`, `lib/io/image.ts`).
 *
 * @module
 */

// Forward processes, step grids and grid files.
export * from "./lib/noise_schedule.ts";
export * from "./lib/step_grid.ts";
export * from "./lib/io/grid_file.ts";

// Solvers: the plan IR, its executor, and the six solvers.
export * from "./lib/solvers/plan.ts";
export * from "./lib/solvers/mod.ts";

// The model contract and its implementations.
export * from "./lib/denoiser.ts";
export * from "./lib/differentiable.ts";
export * from "./lib/onnx/config.ts";
export * from "./lib/onnx/model.ts";
export * from "./lib/grad/model_grad.ts";
export * from "./lib/onnx/model_check.ts";
export * from "./lib/gmm.ts";
export * from "./lib/gmm_grad.ts";
export * from "./lib/onnx/gmm_onnx.ts";

// Gradients of ONNX graphs and through solvers.
export * from "./lib/vjp/mod.ts";
export * from "./lib/grad/backprop.ts";

// LD3.
export * from "./lib/ld3/parameterization.ts";
export * from "./lib/ld3/optim.ts";
export * from "./lib/ld3/ball.ts";
export * from "./lib/ld3/trainer.ts";
export * from "./lib/metrics/losses.ts";
export * from "./lib/metrics/lpips.ts";
export * from "./lib/pipelines/train/run.ts";
export * from "./lib/pipelines/train/checkpoint.ts";
export * from "./lib/pipelines/train/grid_set.ts";
export * from "./lib/pipelines/train/report.ts";
export * from "./lib/pipelines/grid_export.ts";

// Sampling, datasets and evaluation.
export * from "./lib/rng.ts";
export * from "./lib/pipelines/sampling.ts";
export * from "./lib/io/dataset.ts";
export * from "./lib/pipelines/evaluate.ts";
export * from "./lib/pipelines/eval_checkpoint.ts";
export * from "./lib/fingerprint.ts";
export * from "./lib/pipelines/grid_bench.ts";
export * from "./lib/pipelines/grid_bench_report.ts";
export * from "./lib/pipelines/demo.ts";
export * from "./lib/metrics/fid.ts";
export * from "./lib/metrics/features.ts";
export * from "./lib/metrics/distance.ts";

// Files and pictures.
export * from "./lib/io/npy.ts";
export * from "./lib/io/npz.ts";
export * from "./lib/io/image.ts";
export * from "./lib/io/animation.ts";
export * from "./lib/io/plot.ts";
export * from "./lib/io/atomic.ts";
export * from "./lib/io/fs.ts";
export * from "./lib/io/progress.ts";
