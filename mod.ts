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
 * Where things live: schedules (`lib/schedule.ts`), step grids (`lib/grid.ts`), solvers
 * (`lib/solvers/`, one file each), the ONNX runtime (`lib/model.ts`), gradients
 * (`lib/vjp/`, `lib/backprop.ts`, `lib/model_grad.ts`), LD3 training (`lib/ld3/`), metrics
 * (`lib/fid.ts`, `lib/distance.ts`), data I/O (`lib/dataset.ts`, `lib/npz.ts`, `lib/image.ts`).
 *
 * @module
 */

// Forward processes, step grids and grid files.
export * from "./lib/schedule.ts";
export * from "./lib/grid.ts";
export * from "./lib/grid_file.ts";

// Solvers: the plan IR, its executor, and the six solvers.
export * from "./lib/solver.ts";
export * from "./lib/solvers/mod.ts";

// The model contract and its implementations.
export * from "./lib/denoiser.ts";
export * from "./lib/differentiable.ts";
export * from "./lib/config.ts";
export * from "./lib/model.ts";
export * from "./lib/model_grad.ts";
export * from "./lib/model_check.ts";
export * from "./lib/gmm.ts";
export * from "./lib/gmm_grad.ts";
export * from "./lib/gmm_onnx.ts";

// Gradients of ONNX graphs and through solvers.
export * from "./lib/vjp/mod.ts";
export * from "./lib/backprop.ts";

// LD3.
export * from "./lib/ld3/parameterization.ts";
export * from "./lib/ld3/optim.ts";
export * from "./lib/ld3/ball.ts";
export * from "./lib/ld3/trainer.ts";
export * from "./lib/losses.ts";
export * from "./lib/lpips.ts";
export * from "./lib/ld3/run.ts";
export * from "./lib/ld3/run_checkpoint.ts";
export * from "./lib/ld3/grids.ts";
export * from "./lib/ld3/report.ts";
export * from "./lib/schedule_export.ts";

// Sampling, datasets and evaluation.
export * from "./lib/rng.ts";
export * from "./lib/sampling.ts";
export * from "./lib/dataset.ts";
export * from "./lib/evaluate.ts";
export * from "./lib/eval_checkpoint.ts";
export * from "./lib/fingerprint.ts";
export * from "./lib/schedule_bench.ts";
export * from "./lib/schedule_bench_report.ts";
export * from "./lib/demo.ts";
export * from "./lib/fid.ts";
export * from "./lib/features.ts";
export * from "./lib/distance.ts";

// Files and pictures.
export * from "./lib/npy.ts";
export * from "./lib/npz.ts";
export * from "./lib/image.ts";
export * from "./lib/animation.ts";
export * from "./lib/plot.ts";
export * from "./lib/atomic.ts";
export * from "./lib/fs.ts";
export * from "./lib/progress.ts";
