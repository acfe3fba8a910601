/**
 * The options that pick a solver, declared once for every entry point that takes them
 * (`generate`, `sample`, `eval`, `train`, the demo and their library functions). Each entry
 * point sets its own step count by overriding `steps.default`: 20 for a teacher, 10 for the LD3
 * student.
 *
 * @module
 */
import type { OptionDeclarations } from "../options.ts";
import { SOLVER_NAMES } from "./mod.ts";

/** `--solver_name`, `--steps`, `--order`, `--unipc_variant`. */
export const SOLVER_OPTIONS = {
  solverName: {
    flag: "solver_name",
    kind: "string",
    arg: "NAME",
    choices: SOLVER_NAMES,
    default: "uni_pc",
    help: "ODE solver",
  },
  steps: {
    flag: "steps",
    kind: "integer",
    arg: "N",
    min: 1,
    help: "solver steps N (grid intervals; the NFE for every solver but heun, 2N − 1)",
  },
  order: {
    flag: "order",
    kind: "integer",
    arg: "N",
    min: 1,
    defaultText: "the solver's highest",
    help: "solver order (dpm_solver, dpm_solver++, uni_pc: 1–3; ipndm: 1–4)",
  },
  unipcVariant: {
    flag: "unipc_variant",
    kind: "string",
    choices: ["bh1", "bh2"],
    default: "bh1",
    help: "UniPC's B(h): h or e^h − 1",
  },
} as const satisfies OptionDeclarations;
