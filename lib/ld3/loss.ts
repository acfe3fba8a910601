/**
 * The LD3 objective on one batch and its exact gradient: the student solver runs from the relaxed
 * latents `x'` on the grid of (θ1, θ2), its output (decoded for latent models) is compared with
 * the teacher's, and the batch-mean loss is back-propagated through the unrolled solver to θ1,
 * θ2 and `x'`. The trainer (`trainer.ts`) calls these; they hold no training state.
 *
 * @module
 */
import {
  backwardPlan,
  forwardPlan,
  type Planner,
  type PlanTape,
  solveVjp,
} from "../grad/backprop.ts";
import type { DifferentiableDecoder, DifferentiableDenoiser } from "../differentiable.ts";
import type { ImageArray, SampleLoss } from "../metrics/losses.ts";
import type { Grid } from "../solvers/plan.ts";
import { runPlan } from "../solvers/mod.ts";
import { type ParameterizationOptions, thetaToGrid, thetaToGridVjp } from "./parameterization.ts";

/** The student problem: model, solver, loss and parameterization, for one batch at a time. */
export interface Ld3Problem {
  /** The network (or exact GMM) the student solver calls, with its VJP. */
  denoiser: DifferentiableDenoiser;
  /** Unrolls the student solver on a grid (t1, t2) into a plan. */
  planner: Planner;
  /** Per-sample distance of the student's output to the teacher's, with its gradient. */
  loss: SampleLoss;
  /** Decoder from latents to images (latent models); absent: the loss compares solver outputs. */
  decode?: DifferentiableDecoder;
  /** How θ1/θ2 become the grids t1/t2. */
  param: ParameterizationOptions;
}

/** A batch: relaxed latents, teachers and conditioning, concatenated. */
export interface Ld3Batch {
  /** Relaxed latents `x'` of the batch, `batch` samples concatenated (x_T = priorScale·x'). */
  latents: Float64Array;
  /** The teacher's outputs for those latents, in the same sample order. */
  teacher: ImageArray;
  /** Number of samples in the batch. */
  batch: number;
  /** Conditioning of the batch, `[batch, ...conditionShape]`, for conditional models. */
  condition?: Float32Array;
}

/** `x_T = priorScale·x'` of a batch. */
function startState(problem: Ld3Problem, data: Ld3Batch): Float64Array {
  const scale = problem.denoiser.schedule.priorScale;
  const xT = new Float64Array(data.latents.length);
  for (let i = 0; i < xT.length; i++) xT[i] = data.latents[i] * scale;
  return xT;
}

/** The student's image on `grid`, with the tape its backward pass needs. */
async function studentImage(
  problem: Ld3Problem,
  grid: Grid,
  data: Ld3Batch,
): Promise<{ tape: PlanTape; image: Float64Array }> {
  const plan = problem.planner(grid);
  const x = startState(problem, data);
  const tape = await forwardPlan(plan, problem.denoiser, x, { condition: data.condition });
  const image = problem.decode ? await problem.decode.decode(tape.output, data.batch) : tape.output;
  return { tape, image };
}

/**
 * Per-sample losses of the student with parameters θ on a batch (no gradients). Runs the plan
 * without a tape (`runPlan`, whose sums are bit-identical to `forwardPlan`'s): validation and
 * the accept-if-better test of the latents need no backward pass.
 */
export async function ld3Loss(
  problem: Ld3Problem,
  theta: { theta1: ArrayLike<number>; theta2: ArrayLike<number> },
  data: Ld3Batch,
): Promise<Float64Array> {
  const g = thetaToGrid(problem.denoiser.schedule, theta.theta1, theta.theta2, problem.param);
  const output = await runPlan(problem.planner(g), problem.denoiser, startState(problem, data), {
    condition: data.condition,
  });
  const image = problem.decode ? await problem.decode.decode(output, data.batch) : output;
  return problem.loss.value(image, data.teacher, data.batch);
}

/** Losses and gradients of the batch-mean loss. */
export interface Ld3Gradient {
  /** Per-sample losses. */
  losses: Float64Array;
  /** Batch mean of the losses (the objective). */
  loss: number;
  /** ∂mean/∂θ1 and ∂mean/∂θ2 (zero when `latentsOnly`). */
  theta1: Float64Array;
  /** ∂mean/∂θ2 (zero when `latentsOnly`). */
  theta2: Float64Array;
  /** ∂mean/∂x' (per sample). */
  latents: Float64Array;
}

/**
 * The LD3 objective and its exact gradient on one batch: `mean_b d(decode(solve(priorScale·x'_b;
 * t1(θ1), t2(θ1, θ2))), teacher_b)` with respect to θ1, θ2 and x'.
 */
export async function ld3LossAndGradient(
  problem: Ld3Problem,
  theta: { theta1: ArrayLike<number>; theta2: ArrayLike<number> },
  data: Ld3Batch,
  options: { latentsOnly?: boolean } = {},
): Promise<Ld3Gradient> {
  const schedule = problem.denoiser.schedule;
  const grid = thetaToGrid(schedule, theta.theta1, theta.theta2, problem.param);
  const { tape, image } = await studentImage(problem, grid, data);
  const { value, grad } = await problem.loss.grad(image, data.teacher, data.batch);
  const inv = 1 / data.batch;
  for (let i = 0; i < grad.length; i++) grad[i] *= inv;
  const output = tape.output;
  const cot = problem.decode ? await problem.decode.vjp(output, grad, data.batch) : grad;
  let mean = 0;
  for (const v of value) mean += v * inv;
  const n = theta.theta1.length;
  let gx: Float64Array;
  let g1: Float64Array = new Float64Array(n);
  let g2: Float64Array = new Float64Array(n);
  if (options.latentsOnly) {
    gx = (await backwardPlan(tape, problem.denoiser, cot, n)).x;
  } else {
    // T and eps are fixed by the parameterization (thetaToGridVjp drops their cotangents).
    const sg = await solveVjp(problem.planner, grid, tape, problem.denoiser, cot, {
      fixedEndpoints: true,
    });
    gx = sg.x;
    const gt = thetaToGridVjp(schedule, theta.theta1, theta.theta2, sg, problem.param);
    g1 = gt.theta1;
    g2 = gt.theta2;
  }
  const scale = schedule.priorScale;
  for (let i = 0; i < gx.length; i++) gx[i] *= scale;
  return { losses: value, loss: mean, theta1: g1, theta2: g2, latents: gx };
}
