/**
 * The options that pick a solver, declared once for every entry point that takes them
 * (`generate`, `sample`, `eval`, `train`, the demo and their library functions). Each entry
 * point sets its own step count by overriding `steps.default`: 20 for a teacher, 10 for the LD3
 * student.
 *
 * @module
 */
import type { OptionDeclarations } from "../options.ts";
import { DPM_3M_VARIANTS, DPM_SOLVER_PREDICTIONS, SOLVER_NAMES } from "./mod.ts";

/**
 * `--solver_name`, `--steps`, `--order`, `--unipc_variant`, and the two named alternatives to the
 * LD3 reference's behaviour: `--lower_order_final_below`, `--dpm_3m`, `--dpm_solver_prediction`.
 */
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
  lowerOrderFinalBelow: {
    flag: "lower_order_final_below",
    kind: "integer",
    arg: "N",
    min: 1,
    defaultText: "every step count, as the LD3 reference",
    help: "lower the final steps' orders (dpm_solver++, uni_pc) only below N steps; 15 is " +
      "DPM-Solver's and diffusers' rule",
  },
  variant3M: {
    flag: "dpm_3m",
    kind: "string",
    choices: DPM_3M_VARIANTS,
    defaultText: "reference",
    help: "DPM-Solver++(3M)'s second-difference weight: reference (1/(r0+r1), DPM-Solver's and " +
      "LD3's code) or exact (2/(r0+r1), third order)",
  },
  prediction: {
    flag: "dpm_solver_prediction",
    kind: "string",
    choices: DPM_SOLVER_PREDICTIONS,
    defaultText: "noise",
    help: "singlestep dpm_solver's expansion: noise (DPM-Solver, the LD3 reference) or data " +
      "(singlestep DPM-Solver++)",
  },
} as const satisfies OptionDeclarations;
