/**
 * The option groups every pipeline shares, declared once: the model and its device, and the
 * sampler (solver and step grid). Each pipeline declares its own options beside its function
 * (`EVAL_OPTIONS` in `evaluate.ts`, `TRAIN_OPTIONS` in `train/run.ts`, …) from these groups; the
 * tasks build their command lines from the same declarations (`lib/options.ts`).
 *
 * @module
 */
import type { OptionDeclarations } from "../options.ts";
import { SOLVER_OPTIONS } from "../solvers/options.ts";
import { GRID_KINDS } from "../step_grid.ts";

/** `--config`, `--device`, `--threads`: which model, and where and how wide it runs. */
export const MODEL_OPTIONS = {
  config: {
    flag: "config",
    kind: "string",
    arg: "FILE",
    required: true,
    help: "the model's YAML config",
  },
  device: {
    flag: "device",
    kind: "string",
    arg: "DEVICE",
    defaultText: "the config's",
    help: "execution device: cpu, cuda[:N] or webgpu",
  },
  threads: {
    flag: "threads",
    kind: "integer",
    arg: "N",
    min: 1,
    defaultText: "the config's threads, else one per core",
    help: "CPU threads of each ONNX Runtime session (1 can win on a busy machine)",
  },
} as const satisfies OptionDeclarations;

/** `--skip_type`, `--rho`, `--load_from`, `--sigmas`: one step grid (at most one of the kinds). */
export const GRID_OPTIONS = {
  skipType: {
    flag: "skip_type",
    kind: "string",
    choices: GRID_KINDS,
    default: "edm",
    help: "step grid family",
    exclusive: "grid",
  },
  rho: {
    flag: "rho",
    kind: "number",
    arg: "R",
    above: 0,
    default: 7,
    help: "exponent ρ of the edm grid",
  },
  loadFrom: {
    flag: "load_from",
    kind: "string",
    arg: "FILE",
    help: "a grid file (e.g. learned by LD3) instead of --skip_type; fixes the steps",
    exclusive: "grid",
  },
  sigmas: {
    flag: "sigmas",
    kind: "numbers",
    arg: "LIST",
    help: "explicit σ list, largest first, e.g. 80,10,1,0.002; fixes the steps",
    exclusive: "grid",
  },
} as const satisfies OptionDeclarations;

/** The solver and its grid, 20 steps by default (LD3's teacher: UniPC, 20 steps, edm). */
export const SAMPLER_OPTIONS = {
  ...SOLVER_OPTIONS,
  steps: { ...SOLVER_OPTIONS.steps, default: 20 },
  ...GRID_OPTIONS,
} as const satisfies OptionDeclarations;

/** `--num_samples`, `--batch_size`, `--seed`: seeded samples, and the batch they are solved in. */
export const SAMPLES_OPTIONS = {
  numSamples: { flag: "num_samples", kind: "integer", arg: "N", min: 1, help: "samples" },
  batchSize: {
    flag: "batch_size",
    kind: "integer",
    arg: "N",
    min: 1,
    defaultText: "the config's batch_size",
    help: "samples per solver batch",
  },
  seed: { flag: "seed", kind: "integer", arg: "N", min: 0, default: 0, help: "noise seed" },
} as const satisfies OptionDeclarations;

/** `--fid_ref`: FID reference statistics, by default the config's. */
export const FID_REF_OPTIONS = {
  fidRef: {
    flag: "fid_ref",
    kind: "string",
    arg: "FILE",
    defaultText: "the config's eval.fid_ref",
    help: "FID reference statistics .npz (mu, sigma)",
  },
} as const satisfies OptionDeclarations;

/** `--scale`: how much picture grids enlarge each image pixel. */
export const SCALE_OPTIONS = {
  scale: {
    flag: "scale",
    kind: "integer",
    arg: "N",
    min: 1,
    max: 64,
    defaultText: "≥ 84 px per image",
    help: "enlarge each image pixel to N×N in picture grids (nearest neighbour: pixels stay sharp)",
  },
} as const satisfies OptionDeclarations;
