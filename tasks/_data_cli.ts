/**
 * Small helpers shared by the task CLIs (`generate`, `sample`, `eval`, `train`, `bench`, …):
 * option parsing, the shared sampler option specs and help lines, and the one-line error exit.
 *
 * @module
 */
import { readNpy } from "../lib/io/npy.ts";
import type { ConditionInput } from "../lib/pipelines/sampling.ts";
import type { SamplerOptions } from "../lib/pipelines/sampler.ts";
import type { SolverName } from "../lib/solvers/mod.ts";

/** Parses an optional integer option; `undefined` when absent. */
export function intOption(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === "" || !Number.isSafeInteger(n)) {
    throw new TypeError(`--${name} must be an integer: got "${value}"`);
  }
  return n;
}

/** Parses an optional number option; `undefined` when absent. */
export function numberOption(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n)) {
    throw new TypeError(`--${name} must be a number: got "${value}"`);
  }
  return n;
}

/**
 * The conditions of `--condition FILE` (a `.npy` of rows, one sample's condition each) or
 * `--labels 3,1,4` (classes of a class-conditional model, one-hot); at most one of them.
 */
export async function conditionOption(
  path: string | undefined,
  labels?: string,
): Promise<ConditionInput | undefined> {
  if (labels !== undefined) {
    if (path !== undefined) throw new TypeError("Give --condition or --labels, not both");
    return { labels: numberList("labels", labels, true) };
  }
  if (path === undefined) return undefined;
  const array = await readNpy(path);
  if (array.data instanceof BigInt64Array) {
    return { data: Float32Array.from(array.data, Number), shape: array.shape };
  }
  return { data: Float32Array.from(array.data), shape: array.shape };
}

/**
 * Runs a task's `main`, turning any error into one line on stderr (no stack trace) and exit
 * code 1.
 */
export async function runTask(main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    console.error(`error: ${message.replace(/\s*\n\s*/g, " ")}`);
    Deno.exit(1);
  }
}

/** The `parseArgs` specs of the options that pick the solver (`sample`, `generate`, `eval`, `train`). */
export const SOLVER_OPTIONS = {
  solver_name: { type: "string" },
  steps: { type: "string" },
  order: { type: "string" },
  unipc_variant: { type: "string" },
} as const;

/** The `parseArgs` specs of the options that pick the grid (`sample`, `generate`, `eval`). */
export const GRID_OPTIONS = {
  skip_type: { type: "string" },
  rho: { type: "string" },
  load_from: { type: "string" },
  sigmas: { type: "string" },
} as const;

/** The `parseArgs` specs of the noise seed and the execution device (every sampling task). */
export const RUN_OPTIONS = {
  seed: { type: "string" },
  device: { type: "string" },
} as const;

/** Raw values of {@linkcode SOLVER_OPTIONS}, as `parseArgs` returns them. */
export interface SolverOptionValues {
  solver_name?: string;
  steps?: string;
  order?: string;
  unipc_variant?: string;
}

/** Raw values of {@linkcode SOLVER_OPTIONS} and {@linkcode GRID_OPTIONS}. */
export interface SamplerOptionValues extends SolverOptionValues {
  skip_type?: string;
  rho?: string;
  load_from?: string;
  sigmas?: string;
}

/** Parses `--sigmas 80,10,1,0.002` (the library checks the order and the range). */
export function sigmasOption(value: string | undefined): number[] | undefined {
  return value === undefined ? undefined : numberList("sigmas", value, false);
}

/** `--flag 1,2,3`: finite numbers (or safe integers), every item present. */
function numberList(flag: string, value: string, integers: boolean): number[] {
  const parts = value.split(",").map((p) => p.trim());
  const values = parts.map(Number);
  const valid = (p: string, v: number) =>
    p !== "" && (integers ? Number.isSafeInteger(v) : Number.isFinite(v));
  if (!parts.every((p, i) => valid(p, values[i]))) {
    throw new TypeError(
      `--${flag} must be a comma-separated list of ${integers ? "integers" : "numbers"}: ` +
        `got "${value}"`,
    );
  }
  return values;
}

/**
 * The solver part of `SamplerOptions` from the raw option values. The solver name and the
 * UniPC variant are only typed here; the library checks them (with messages that name them).
 */
export function solverOptions(values: SolverOptionValues): {
  solverName: SolverName | undefined;
  steps: number | undefined;
  order: number | undefined;
  unipcVariant: "bh1" | "bh2" | undefined;
} {
  return {
    solverName: values.solver_name as SolverName | undefined,
    steps: intOption("steps", values.steps),
    order: intOption("order", values.order),
    unipcVariant: values.unipc_variant as "bh1" | "bh2" | undefined,
  };
}

/** `SamplerOptions` (solver and one grid) from the raw option values. */
export function samplerOptions(values: SamplerOptionValues): SamplerOptions {
  const grids = [values.skip_type, values.load_from, values.sigmas].filter((v) => v !== undefined);
  if (grids.length > 1) throw new TypeError("Give one grid: --skip_type, --load_from or --sigmas");
  // Key order is parse order: with several bad options the first one named here is reported.
  return {
    ...solverOptions(values),
    skipType: values.skip_type,
    rho: numberOption("rho", values.rho),
    loadFrom: values.load_from,
    sigmas: sigmasOption(values.sigmas),
  };
}

/** Help texts of the options whose meaning is the same in every task. */
const SHARED_HELP = {
  solver_name: [
    "--solver_name NAME",
    "euler | heun | dpm_solver | dpm_solver++ | uni_pc | ipndm (default uni_pc)",
  ],
  skip_type: [
    "--skip_type T",
    "time_uniform | time_quadratic | logSNR | edm | gits (default edm)",
  ],
  rho: ["--rho R", "EDM schedule exponent (default 7)"],
  sigmas: ["--sigmas LIST", "explicit σ list, largest first, e.g. 80,10,1,0.002"],
  device: ["--device D", "execution device (default: the config's)"],
} as const;

/**
 * One usage line of a shared option, its text starting at column `width` after the two-space
 * indent (each task aligns its own help).
 */
export function optionHelp(name: keyof typeof SHARED_HELP, width: number): string {
  const [flag, text] = SHARED_HELP[name];
  return `  ${flag.padEnd(width)}${text}`;
}
