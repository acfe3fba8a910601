/**
 * The hyperparameters of the LD3 trainer, declared once: {@linkcode resolveLd3Options} takes its
 * defaults and checks from here, and `deno task train` its flags and help (the reference tool's
 * names and its CIFAR-10 defaults).
 *
 * @module
 */
import type { OptionDeclarations } from "../options.ts";
import { SOLVER_OPTIONS } from "../solvers/options.ts";
import { TIME_MODES } from "./parameterization.ts";

/** The latents validation scores a grid on: `original` (the samples' z) or `relaxed`. */
export const VALID_LATENTS = ["original", "relaxed"] as const;

/** The trainer's options (the student solver among them, 10 steps by default). */
export const LD3_OPTIONS = {
  ...SOLVER_OPTIONS,
  steps: { ...SOLVER_OPTIONS.steps, default: 10 },
  timeMode: {
    flag: "time_mode",
    kind: "string",
    choices: TIME_MODES,
    default: "lambda",
    help: "grid parameterization: steps affine in t, or in λ = log(α/σ)",
  },
  // Above one half, neighbouring evaluation times could cross, and the grid file would not be
  // a grid any more (the file check refuses it).
  winRate: {
    flag: "win_rate",
    kind: "number",
    min: 0,
    max: 0.5,
    default: 0.5,
    help: "θ2 window, as a fraction of the smallest gap of the grid",
  },
  trainBatchSize: {
    flag: "main_train_batch_size",
    kind: "integer",
    arg: "N",
    min: 1,
    default: 2,
    help: "training batch",
  },
  validBatchSize: {
    flag: "main_valid_batch_size",
    kind: "integer",
    arg: "N",
    min: 1,
    default: 150,
    help: "validation batch",
  },
  validOneBatchSize: {
    flag: "valid_one_batch_size",
    kind: "integer",
    arg: "N",
    min: 1,
    defaultText: "main_valid_batch_size",
    help: "samples validated until the first patience hit (the reference's first batch)",
  },
  validLatents: {
    flag: "valid_latents",
    kind: "string",
    choices: VALID_LATENTS,
    default: "original",
    help: "latents the best grid is chosen on: the validation samples' original z (held out), " +
      "or their relaxed latents, as the reference (relaxed for whichever grid was current, so " +
      "the comparison credits a grid with the relaxation)",
  },
  trainingRoundsV1: {
    flag: "training_rounds_v1",
    kind: "integer",
    arg: "N",
    min: 0,
    default: 2,
    help: "phase-1 rounds, θ1 only",
  },
  trainingRoundsV2: {
    flag: "training_rounds_v2",
    kind: "integer",
    arg: "N",
    min: 0,
    default: 5,
    help: "phase-2 rounds, θ1 and θ2",
  },
  lrTime1: {
    flag: "lr_time_1",
    kind: "number",
    arg: "LR",
    min: 0,
    default: 0.005,
    help: "RMSprop learning rate of θ1",
  },
  lrTime2: {
    flag: "lr_time_2",
    kind: "number",
    arg: "LR",
    min: 0,
    default: 0.1,
    help: "SGD learning rate of θ2, divided by steps",
  },
  momentumTime1: {
    flag: "momentum_time_1",
    kind: "number",
    min: 0,
    default: 0.9,
    help: "RMSprop momentum of θ1",
  },
  weightDecayTime1: {
    flag: "weight_decay_time_1",
    kind: "number",
    min: 0,
    default: 0,
    help: "RMSprop weight decay of θ1",
  },
  minLrTime1: {
    flag: "min_lr_time_1",
    kind: "number",
    arg: "LR",
    min: 0,
    default: 5e-5,
    help: "floor of lr1",
  },
  minLrTime2: {
    flag: "min_lr_time_2",
    kind: "number",
    arg: "LR",
    min: 0,
    default: 1e-6,
    help: "floor of lr2",
  },
  lrTimeDecay: {
    flag: "lr_time_decay",
    kind: "number",
    above: 0,
    max: 1,
    default: 0.8,
    help: "learning-rate decay on patience",
  },
  patient: {
    flag: "patient",
    kind: "integer",
    arg: "N",
    min: 1,
    default: 5,
    help: "validations without improvement before the best state is reloaded",
  },
  lr2Patient: {
    flag: "lr2_patient",
    kind: "integer",
    arg: "N",
    min: 1,
    default: 5,
    help: "stop after lr2 hit its floor N times",
  },
  shiftLr: {
    flag: "shift_lr",
    kind: "number",
    arg: "LR",
    min: 0,
    defaultText: "12/steps",
    help: "step of the relaxed latents",
  },
  shiftLrDecay: {
    flag: "shift_lr_decay",
    kind: "number",
    above: 0,
    max: 1,
    default: 0.5,
    help: "shift_lr decay when a round moved no validation latent",
  },
  clipNorm: {
    flag: "clip_norm",
    kind: "number",
    above: 0,
    default: 1,
    help: "gradient-norm clip of θ1 and of θ2, each",
  },
  noV1: { flag: "no_v1", kind: "boolean", default: false, help: "skip phase 1" },
  seed: {
    flag: "seed",
    kind: "integer",
    arg: "N",
    min: 0,
    default: 0,
    help: "seed of the training-set shuffles",
  },
} as const satisfies OptionDeclarations;
