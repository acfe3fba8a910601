/**
 * The LD3 algorithm (Tong et al., ICLR 2025) and nothing else: the θ1/θ2 parameterisation of a
 * step grid, the optimisers, the ball relaxation of the latents, the LD3 loss and its gradient
 * (`loss.ts`), and the trainer. Run folders, checkpoints on disk and reports are in
 * `lib/pipelines/train/`.
 *
 * @module
 */
export * from "./parameterization.ts";
export * from "./optim.ts";
export * from "./ball.ts";
export * from "./loss.ts";
export * from "./state.ts";
export * from "./trainer.ts";
export * from "./options.ts";
