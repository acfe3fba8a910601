/**
 * The math core of ld3: pure functions and contracts, no files and no ONNX Runtime.
 *
 * - noise schedules (α_t, σ_t, λ_t and their inverses): `noise_schedule.ts`;
 * - step grids (where a sampler's steps go: `time_uniform`, `logSNR`, `edm`, …): `step_grid.ts`;
 *   the model-free DMN optimisation: `dmn.ts`; Align Your Steps' published schedules: `ays.ts`;
 * - the plan IR every solver compiles to, its executor, and one file per solver: `solvers/`;
 * - the denoiser contract solvers call, and its differentiable extension: `denoiser.ts`,
 *   `differentiable.ts`;
 * - the per-sample counter RNG: `rng.ts`; the exact Gaussian-mixture model: `gmm.ts`,
 *   `gmm_grad.ts`; canonical fingerprints of options: `fingerprint.ts`; option declarations
 *   (defaults, checks, command lines, docs): `options.ts`.
 *
 * Every other layer of `lib/` (`io/`, `onnx/`, `grad/` and `vjp/`, `metrics/`, `ld3/`,
 * `pipelines/`) builds on this one; nothing here imports from them.
 *
 * @module
 */
export * from "./noise_schedule.ts";
export * from "./step_grid.ts";
export * from "./dmn.ts";
export * from "./ays.ts";
export * from "./solvers/mod.ts";
export * from "./solvers/options.ts";
export * from "./denoiser.ts";
export * from "./differentiable.ts";
export * from "./rng.ts";
export * from "./gmm.ts";
export * from "./gmm_grad.ts";
export * from "./fingerprint.ts";
export * from "./options.ts";
export * from "./shard.ts";
