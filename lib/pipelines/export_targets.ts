/**
 * The consumers of exported step schedules, one per export format: what each is (the node,
 * function or scheduler argument that takes the numbers), what it does with them (units, the
 * trailing zero, shifts) and which schedule kinds it can run. `exportSchedule` in
 * `grid_export.ts` builds the numbers; `deno task docs` writes `docs/export.md` from this table.
 *
 * Read in the consumers' source: ComfyUI `comfy_extras/nodes_custom_sampler.py` (ManualSigmas),
 * `comfy/model_sampling.py` (ModelSamplingDiscrete.timestep, ModelSamplingDiscreteFlow,
 * ModelSamplingContinuousEDM); k-diffusion `k_diffusion/sampling.py` (get_sigmas_*, sample_*),
 * `k_diffusion/external.py` (DiscreteSchedule.sigma_to_t); diffusers `schedulers/` (the
 * `set_timesteps` of each scheduler named below).
 *
 * @module
 */
import type { ScheduleKind } from "../noise_schedule.ts";

/** The formats, each named after its consumer. */
export type ConsumerFormat =
  | "comfyui"
  | "k-diffusion"
  | "diffusers-euler"
  | "diffusers-flow-euler"
  | "diffusers-flow-unipc"
  | "diffusers-edm-euler"
  | "diffusers-dpmsolver";

/** Names of the previous release, kept for one release: use {@linkcode ConsumerFormat}. */
export type DeprecatedExportFormat = "diffusers-sigmas" | "diffusers-timesteps";

/** What `exportSchedule` accepts: a format, or a deprecated name of one. */
export type ExportFormat = ConsumerFormat | DeprecatedExportFormat;

/** Every {@linkcode ConsumerFormat}, for CLIs and docs. */
export const EXPORT_FORMATS: readonly ConsumerFormat[] = [
  "comfyui",
  "k-diffusion",
  "diffusers-euler",
  "diffusers-flow-euler",
  "diffusers-flow-unipc",
  "diffusers-edm-euler",
  "diffusers-dpmsolver",
];

/** The deprecated names and what each now means. */
export const DEPRECATED_EXPORT_FORMATS: Readonly<Record<DeprecatedExportFormat, string>> = {
  "diffusers-sigmas": "diffusers-euler, or diffusers-flow-euler for a flow grid",
  "diffusers-timesteps": "diffusers-dpmsolver",
};

/** How a consumer handles grids of one schedule kind. */
export type FormatSupport =
  | { readonly status: "exact" }
  | { readonly status: "warned"; readonly why: string }
  | { readonly status: "refused"; readonly why: string };

/** A consumer: what it is, what it does with the numbers, which schedule kinds it runs. */
export interface ExportTarget {
  /** Its short name: the node, function or scheduler. */
  readonly name: string;
  /** The program and the exact node, function or scheduler argument that takes the numbers. */
  readonly consumer: string;
  /** The update rule the consumer applies (an ld3 solver name), when it is fixed. */
  readonly solver?: string;
  /** Its conventions: units, trailing zero, shift, text form. */
  readonly conventions: readonly string[];
  /** Per schedule kind: exported as learned, exported with a warning, or refused (and why). */
  readonly support: Readonly<Record<ScheduleKind, FormatSupport>>;
}

const EXACT = { status: "exact" } as const;

const CONTINUOUS_VP_IN_TABLE =
  "a continuous-time VP schedule: the consumer gives the network the training step of each σ " +
  "in its own discrete alphas_cumprod table, which matches ld3's time only when the model was " +
  "trained on that table (σ outside its range is clamped to its ends)";

function refusedFor(kind: string, use: string): FormatSupport {
  return { status: "refused", why: `a ${kind} model needs ${use}` };
}

const FOR_VE = refusedFor(
  "VE/EDM",
  "diffusers-edm-euler (EDMEulerScheduler), comfyui or k-diffusion",
);
const FOR_VP = refusedFor("VP", "diffusers-euler (EulerDiscreteScheduler), comfyui or k-diffusion");
const FOR_FLOW = refusedFor(
  "flow",
  "diffusers-flow-euler (FlowMatchEulerDiscreteScheduler), diffusers-flow-unipc or comfyui",
);

const FLOW_ONLY = {
  ve: FOR_VE,
  vp_linear: FOR_VP,
  vp_discrete: FOR_VP,
  vp_cosine: FOR_VP,
  flow: EXACT,
} as const;

/** The consumers, checked against their source (see docs/export.md for the functions read). */
export const EXPORT_TARGETS: Readonly<Record<ConsumerFormat, ExportTarget>> = {
  "comfyui": {
    name: "ComfyUI ManualSigmas",
    consumer: "ComfyUI: the ManualSigmas node (core, experimental/custom_sampling), its SIGMAS " +
      "into the sigmas input of SamplerCustom or SamplerCustomAdvanced; KJNodes' CustomSigmas " +
      "reads the same text",
    conventions: [
      "units: ComfyUI's σ of the model: σ/α (the EDM noise level) for VE and VP models, the " +
      "flow time t for flow models (ComfyUI gives a flow model t·multiplier and does not " +
      "shift a given list)",
      "trailing 0: included: the N+1 learned levels, then 0.0 (N+1 sampler steps: the learned " +
      "N, then σ_min → 0)",
      "text: comma-separated plain decimals (ManualSigmas' number pattern reads no exponent); " +
      "with KJNodes' CustomSigmas set interpolate_to_steps to N+1 (another count re-interpolates)",
    ],
    support: {
      ve: EXACT,
      vp_linear: { status: "warned", why: CONTINUOUS_VP_IN_TABLE },
      vp_discrete: {
        status: "warned",
        why: "ComfyUI gives a discrete-time network the training step nearest to each σ, so a " +
          "learned time between two steps reaches the network rounded",
      },
      vp_cosine: { status: "warned", why: CONTINUOUS_VP_IN_TABLE },
      flow: EXACT,
    },
  },
  "k-diffusion": {
    name: "k-diffusion samplers",
    consumer: "k-diffusion: the sigmas argument of k_diffusion.sampling.sample_* " +
      "(sample_euler, sample_heun, sample_dpmpp_2m, …)",
    conventions: [
      "units: σ/α, the EDM noise level of x/α that k-diffusion's samplers integrate, for every " +
      "schedule kind (its model wrappers turn σ into the network's time)",
      "trailing 0: included, as its get_sigmas_* functions append it (N+1 sampler steps: the " +
      "learned N, then σ_min → 0)",
      "text: a Python/JSON list",
    ],
    support: {
      ve: EXACT,
      vp_linear: EXACT,
      vp_discrete: EXACT,
      vp_cosine: EXACT,
      flow: {
        status: "warned",
        why: "k-diffusion ships no wrapper for flow models: the values are σ/α = t/(1−t), and " +
          "the model needs a wrapper that calls it at t = σ/(1+σ) on x/(1+σ) and returns its x0",
      },
    },
  },
  "diffusers-euler": {
    name: "EulerDiscreteScheduler",
    consumer: "diffusers: EulerDiscreteScheduler.set_timesteps(sigmas=…), i.e. pipe(…, " +
      "sigmas=[…]) (VP models; Euler on σ/α is DDIM's update)",
    solver: "euler",
    conventions: [
      "units: σ/α = √((1−ᾱ)/ᾱ) on the scale of the scheduler's alphas_cumprod; it derives each " +
      "network timestep from σ by log-σ interpolation of that table (fractional steps)",
      "trailing 0: included: the list holds its own final value (the scheduler appends none): " +
      "N+2 values, N+1 steps (the learned N, then σ_min → 0)",
      "shift: none; use_karras_sigmas and the other sigma options are ignored when sigmas are given",
    ],
    support: {
      ve: FOR_VE,
      vp_linear: { status: "warned", why: CONTINUOUS_VP_IN_TABLE },
      vp_discrete: EXACT,
      vp_cosine: { status: "warned", why: CONTINUOUS_VP_IN_TABLE },
      flow: FOR_FLOW,
    },
  },
  "diffusers-flow-euler": {
    name: "FlowMatchEulerDiscreteScheduler",
    consumer: "diffusers: FlowMatchEulerDiscreteScheduler.set_timesteps(sigmas=…), i.e. " +
      "pipe(…, sigmas=[…]) (flow models: SD3, Flux, …)",
    solver: "euler",
    conventions: [
      "units: the flow time t (x_t = (1−t)·x_0 + t·ε); the network gets t·num_train_timesteps",
      "trailing 0: left out: the scheduler appends it (N+1 values, N+1 steps: the learned N, " +
      "then t_min → 0)",
      "shift: the scheduler shifts given sigmas by its shift (or its dynamic shift): build it " +
      "with shift=1.0 and use_dynamic_shifting=False (the snippet does) so the grid is not " +
      "shifted twice",
    ],
    support: FLOW_ONLY,
  },
  "diffusers-flow-unipc": {
    name: "UniPCMultistepScheduler",
    consumer: "diffusers: UniPCMultistepScheduler(use_flow_sigmas=True).set_timesteps(sigmas=…)" +
      ", i.e. pipe(…, sigmas=np.array([…])) (flow models, with pipelines that pass sigmas on: " +
      "StableDiffusion3Pipeline does; the Flux pipelines drop them for this scheduler)",
    solver: "uni_pc",
    conventions: [
      "units: the flow time t; the scheduler casts the network's timesteps to integers, " +
      "int(t·num_train_timesteps)",
      'trailing 0: left out: the scheduler appends it with final_sigmas_type="zero" (N+1 ' +
      "values, N+1 steps)",
      "shift: the scheduler shifts given sigmas by flow_shift (or its dynamic shift): build it " +
      "with flow_shift=1.0 and use_dynamic_shifting=False (the snippet does)",
      "type: a numpy array (the scheduler multiplies it by flow_shift: a list fails)",
    ],
    support: {
      ...FLOW_ONLY,
      flow: {
        status: "warned",
        why: "the scheduler steps with the exact t but gives the network int(1000·t)",
      },
    },
  },
  "diffusers-edm-euler": {
    name: "EDMEulerScheduler",
    consumer: "diffusers: EDMEulerScheduler.set_timesteps(sigmas=<ramp tensor>), i.e. " +
      "pipe(…, sigmas=torch.tensor([…])) (EDM-preconditioned VE models)",
    solver: "euler",
    conventions: [
      "units: a ramp r, not σ: the scheduler computes σ = (σ_max^(1/ρ) + r·(σ_min^(1/ρ) − " +
      "σ_max^(1/ρ)))^ρ from its sigma_min, sigma_max and rho; the ramp is made for sigma_min = " +
      "σ_N, sigma_max = σ_0, rho = 7 (the snippet sets them), so it runs from exactly 0 to 1",
      'trailing 0: left out: the scheduler appends it with final_sigmas_type="zero" (N+1 ' +
      "values, N+1 steps)",
      "type: a torch tensor (the scheduler calls .to() on it), float64; sigma_schedule must be " +
      '"karras" (the exponential one ignores the ramp\'s values)',
    ],
    support: {
      ve: EXACT,
      vp_linear: FOR_VP,
      vp_discrete: FOR_VP,
      vp_cosine: FOR_VP,
      flow: FOR_FLOW,
    },
  },
  "diffusers-dpmsolver": {
    name: "DPMSolverMultistepScheduler",
    consumer: "diffusers: DPMSolverMultistepScheduler.set_timesteps(timesteps=…), i.e. " +
      "pipe(…, timesteps=[…]) (discrete VP models)",
    solver: "dpm_solver++",
    conventions: [
      "units: integer training steps n = round((t − 1/Nd)·Nd) of the discrete schedule " +
      "(Nd = 1/t_min; the scheduler casts to int64 and reads σ from its alphas_cumprod)",
      "trailing 0: the list ends with the step of t_min (0); the scheduler then appends σ = 0 " +
      'with final_sigmas_type="zero" (N+1 values, N+1 steps)',
      "shift: none; use_karras_sigmas, use_lu_lambdas, use_exponential_sigmas and " +
      "use_beta_sigmas must be off (the scheduler refuses timesteps with them)",
    ],
    support: {
      ve: FOR_VE,
      vp_linear: {
        status: "refused",
        why: "integer training steps exist only for a discrete schedule (vp_discrete): use " +
          "diffusers-euler",
      },
      vp_discrete: {
        status: "warned",
        why: "the learned times are rounded to whole training steps",
      },
      vp_cosine: {
        status: "refused",
        why: "integer training steps exist only for a discrete schedule (vp_discrete): use " +
          "diffusers-euler",
      },
      flow: {
        status: "refused",
        why: "DPMSolverMultistepScheduler ignores given timesteps with use_flow_sigmas: a flow " +
          "model needs diffusers-flow-euler, diffusers-flow-unipc or comfyui",
      },
    },
  },
};
