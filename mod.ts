/**
 * # ld3 — Learning to Discretize Denoising Diffusion ODEs, for Deno
 *
 * Sample any ONNX diffusion model with six ODE solvers on any step schedule, and learn where a
 * sampler's 4–10 steps should go by distilling from a many-step teacher (LD3, Tong et al.,
 * ICLR 2025) — without retraining the network.
 *
 * ```ts
 * import { loadModel, solve, skipGrid, toGrid, normalNoise } from "./mod.ts";
 *
 * const model = await loadModel("configs/gmm-mnist.yml");
 * const schedule = model.denoiser.schedule;
 * const grid = toGrid(skipGrid("edm", schedule, 6));
 * const size = model.sampleShape.reduce((a, b) => a * b, 1);
 * const xT = normalNoise(0, 0, size).map((z) => z * schedule.priorScale);
 * const x0 = await solve("uni_pc", model.denoiser, xT, grid);
 * await model.close();
 * ```
 *
 * Where things live — `lib/` is in layers, each importing only from the ones below it:
 *
 * | folder | what |
 * | --- | --- |
 * | `lib/` (top level) | the math core: noise schedules, step grids, `solvers/` (the plan IR and one file per solver), the denoiser contract, RNG, the exact Gaussian mixture |
 * | `lib/io/` | `.npy`/`.npz`, PNG, charts (SVG/PNG, loaded lazily), labelled picture grids, GIFs, HTML reports, grid files, teacher datasets, atomic writes, progress |
 * | `lib/onnx/` | configs, loading a network as a denoiser, devices, sessions, the model check |
 * | `lib/vjp/`, `lib/grad/` | VJP graphs of ONNX models; reverse mode through plans; differentiable denoisers |
 * | `lib/metrics/` | losses (L2, L1, LPIPS), distances, FID and its features |
 * | `lib/ld3/` | the LD3 algorithm: parameterisation, optimisers, ball relaxation, trainer |
 * | `lib/pipelines/` | what the tasks run: sampling, datasets, evaluation, the schedule matrix, export, LD3 runs (`train/`), the demo |
 *
 * @module
 */

export * from "./lib/mod.ts";
export * from "./lib/io/mod.ts";
export * from "./lib/onnx/mod.ts";
export * from "./lib/vjp/mod.ts";
export * from "./lib/grad/mod.ts";
export * from "./lib/metrics/mod.ts";
export * from "./lib/ld3/mod.ts";
export * from "./lib/pipelines/mod.ts";
