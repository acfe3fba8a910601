/**
 * Reverse mode through a {@linkcode SolverPlan}: exact gradients of a loss on the solver's
 * output with respect to `x_T`, the step grid `t1` and the evaluation grid `t2`.
 *
 * The forward pass ({@linkcode forwardPlan}) runs the plan and keeps every value a later
 * backward step reads: the input of each network call and the registers that the linear
 * combinations read, and, from a denoiser that offers `denoiseForVjp`, what each network call
 * kept for its VJP (so the backward walk runs no network forward again). Plans are SSA-like
 * straight-line programs with a handful of ops per step, so that is O(NFE) states (about one
 * per op); each value is released as soon as the backward walk has passed the op that wrote it.
 *
 * The backward walk ({@linkcode backwardPlan}) visits the ops in reverse:
 *
 * - `combine` (`out = Σ c_j·r_j`) is linear: `cot(r_j) += c_j·cot(out)` and
 *   `∂L/∂c_j = ⟨cot(out), r_j⟩` (summed over the batch: the grid is shared);
 * - `eval` (`out = D(in, t2[k])`) asks the denoiser for one VJP: `cot(in) += ⟨cot, ∂D/∂x⟩`
 *   and `∂L/∂t2[k] += ⟨cot, ∂D/∂t⟩`.
 *
 * The coefficients are scalar functions of the grid computed by the solver's planner; their
 * derivatives with respect to each grid point come from re-planning on perturbed grids
 * ({@linkcode coefficientJacobianVjp}), which costs no network call.
 *
 * @module
 */
import type { DenoiseInfo } from "../denoiser.ts";
import type { DifferentiableDenoiser, SavedForward, VjpInfo } from "../differentiable.ts";
import type { Grid, SolverPlan } from "../solvers/plan.ts";

/** Builds the plan of one solver on a grid (the solver name and options are bound). */
export type Planner = (grid: Grid) => SolverPlan;

/** What {@linkcode forwardPlan} records for the backward walk. */
export interface PlanTape {
  /** The plan that ran. */
  readonly plan: SolverPlan;
  /** The solver's output `x_eps` (a copy the caller may keep). */
  readonly output: Float64Array;
  /** Number of samples in the batch. */
  readonly batch: number;
  /** Conditioning passed to every network call. */
  readonly condition?: Float32Array;
  /**
   * `values[i + 1]` is the value written by op `i`; `values[0]` is `x_T`. Entries nobody reads
   * are dropped. Consumed (released) by {@linkcode backwardPlan}.
   */
  readonly values: (Float64Array | undefined)[];
  /** For op `i`, the value index each of its inputs read (`0` = x_T, `j + 1` = op j). */
  readonly reads: Int32Array[];
  /**
   * For eval op `i`, what the denoiser's forward call kept for its VJP (`denoiseForVjp`);
   * released by {@linkcode backwardPlan} as it passes the op.
   */
  readonly saved: (SavedForward | undefined)[];
  /** Bytes held in `saved` after the forward pass: the memory the tape costs beyond `values`. */
  readonly savedBytes: number;
}

/** Options of {@linkcode forwardPlan}. */
export interface ForwardPlanOptions {
  /** Conditioning for the batch, passed to every network call. */
  condition?: Float32Array;
  /**
   * Let network calls keep what their VJPs need (`denoiseForVjp`, when the denoiser has it), so
   * that the backward walk runs no forward pass again; off, every VJP recomputes its forward.
   * @default {true}
   */
  keepForVjp?: boolean;
}

/**
 * Runs a plan forwards and records what {@linkcode backwardPlan} needs.
 *
 * @param plan The unrolled solver.
 * @param denoiser The model (its `denoise` is used here).
 * @param xT The batch of start states (batch × sample size values).
 * @throws {RangeError} When the plan reads a register before it is written.
 */
export async function forwardPlan(
  plan: SolverPlan,
  denoiser: DifferentiableDenoiser,
  xT: Float64Array,
  options: ForwardPlanOptions = {},
): Promise<PlanTape> {
  const size = denoiser.sampleShape.reduce((a, b) => a * b, 1);
  const batch = xT.length / size;
  if (!Number.isInteger(batch) || batch < 1) {
    throw new RangeError(`xT must hold a whole batch of ${size}-value samples: got ${xT.length}`);
  }
  const values: (Float64Array | undefined)[] = [Float64Array.from(xT)];
  const reads: Int32Array[] = [];
  const version = new Int32Array(plan.registers).fill(-1);
  version[0] = 0;
  const needed = new Uint8Array(plan.ops.length + 1);
  const resolve = (reg: number, op: number): number => {
    const v = version[reg];
    if (v < 0) throw new RangeError(`Plan op ${op} reads register ${reg} before it is written`);
    needed[v] = 1;
    return v;
  };
  const saved: (SavedForward | undefined)[] = new Array(plan.ops.length);
  let savedBytes = 0;
  const keep = options.keepForVjp !== false && denoiser.denoiseForVjp !== undefined;
  let step = 0;
  for (let i = 0; i < plan.ops.length; i++) {
    const op = plan.ops[i];
    let out: Float64Array;
    if (op.kind === "eval") {
      const v = resolve(op.input, i);
      reads.push(Int32Array.of(v));
      const info: DenoiseInfo = { step: step++ };
      if (options.condition) info.condition = options.condition;
      if (keep) {
        const r = await denoiser.denoiseForVjp!(values[v]!, op.t, info);
        out = r.output;
        saved[i] = r.saved;
        savedBytes += r.saved?.bytes ?? 0;
      } else {
        out = await denoiser.denoise(values[v]!, op.t, info);
      }
    } else {
      const r = Int32Array.from(op.terms, (term) => resolve(term.reg, i));
      reads.push(r);
      out = combineForward(op.terms, r, values, xT.length);
    }
    values.push(out);
    version[op.out] = i + 1;
  }
  const outVersion = version[plan.output];
  if (outVersion < 0) throw new RangeError(`Plan output register ${plan.output} is never written`);
  const output = Float64Array.from(values[outVersion]!);
  // Values nobody reads (the output itself, dead writes) need not stay alive.
  for (let v = 0; v < values.length; v++) if (!needed[v]) values[v] = undefined;
  // The output's version is still needed as the seed of the backward walk.
  return {
    plan,
    output,
    batch,
    condition: options.condition,
    values,
    reads,
    saved,
    savedBytes,
  };
}

/**
 * `Σ_j coef_j · values[r_j]` into a new array, one pass over the elements. The sum runs left
 * to right from 0 for every element, exactly as one `out[e] += coef_j·src_j[e]` pass per term
 * would (and as `runPlan` does), so the result is bit-identical to either.
 */
function combineForward(
  terms: ReadonlyArray<{ readonly coef: number }>,
  r: Int32Array,
  values: (Float64Array | undefined)[],
  length: number,
): Float64Array {
  const out = new Float64Array(length);
  const m = r.length;
  if (m === 1) {
    const c0 = terms[0].coef;
    const x0 = values[r[0]]!;
    for (let e = 0; e < length; e++) out[e] = 0 + c0 * x0[e];
    return out;
  }
  if (m === 2) {
    const c0 = terms[0].coef, c1 = terms[1].coef;
    const x0 = values[r[0]]!, x1 = values[r[1]]!;
    for (let e = 0; e < length; e++) out[e] = 0 + c0 * x0[e] + c1 * x1[e];
    return out;
  }
  // Three terms fused per pass; a longer combination takes further passes in term order.
  for (let j = 0; j < m; j += 3) {
    const c0 = terms[j].coef;
    const x0 = values[r[j]]!;
    if (j + 2 < m) {
      const c1 = terms[j + 1].coef, c2 = terms[j + 2].coef;
      const x1 = values[r[j + 1]]!, x2 = values[r[j + 2]]!;
      for (let e = 0; e < length; e++) out[e] = out[e] + c0 * x0[e] + c1 * x1[e] + c2 * x2[e];
    } else if (j + 1 < m) {
      const c1 = terms[j + 1].coef;
      const x1 = values[r[j + 1]]!;
      for (let e = 0; e < length; e++) out[e] = out[e] + c0 * x0[e] + c1 * x1[e];
    } else {
      for (let e = 0; e < length; e++) out[e] += c0 * x0[e];
    }
  }
  return out;
}

/**
 * Reverse of one combine op in one pass over the elements: `coefGrad_j = ⟨cOut, src_j⟩` and
 * `dst_j += coef_j·cOut`. Per element, the additions into every accumulator happen in term
 * order, as separate per-term passes would do them, so the results are bit-identical (also
 * when two terms read the same value and share an accumulator).
 */
function combineBackward(
  terms: ReadonlyArray<{ readonly coef: number }>,
  r: Int32Array,
  values: (Float64Array | undefined)[],
  cOut: Float64Array,
  dst: Float64Array[],
  coefGrad: Float64Array,
): void {
  const n = cOut.length;
  // Two terms per pass keep the loop body small enough for the JIT to keep in registers.
  for (let j = 0; j < r.length; j += 2) {
    const s0 = values[r[j]]!, d0 = dst[j], c0 = terms[j].coef;
    if (j + 1 < r.length) {
      const s1 = values[r[j + 1]]!, d1 = dst[j + 1], c1 = terms[j + 1].coef;
      let dot0 = 0, dot1 = 0;
      for (let e = 0; e < n; e++) {
        const g = cOut[e];
        dot0 += g * s0[e];
        dot1 += g * s1[e];
        d0[e] += c0 * g;
        d1[e] += c1 * g;
      }
      coefGrad[j] = dot0;
      coefGrad[j + 1] = dot1;
    } else {
      let dot0 = 0;
      for (let e = 0; e < n; e++) {
        const g = cOut[e];
        dot0 += g * s0[e];
        d0[e] += c0 * g;
      }
      coefGrad[j] = dot0;
    }
  }
}

/** Gradients of the loss with respect to everything a plan consumed. */
export interface PlanGradient {
  /** ∂L/∂x_T, same layout as x_T. */
  readonly x: Float64Array;
  /** ∂L/∂coef for op i, term j (`coefs[i]` is empty for eval ops). */
  readonly coefs: Float64Array[];
  /** ∂L/∂t2[k] through the network's time input only (summed over the evals at k). */
  readonly evalTimes: Float64Array;
}

/**
 * Walks a tape backwards from the cotangent of the output.
 *
 * Releases the tape's stored values as it goes: a tape is good for one backward walk.
 *
 * @param tape From {@linkcode forwardPlan}.
 * @param denoiser The same model (its `vjp` is used here).
 * @param cotangent ∂L/∂output, same length as the output.
 * @param gridSize N+1, the number of grid points (length of `evalTimes`).
 */
export async function backwardPlan(
  tape: PlanTape,
  denoiser: DifferentiableDenoiser,
  cotangent: Float64Array,
  gridSize: number,
): Promise<PlanGradient> {
  const { plan, values, reads } = tape;
  const n = tape.output.length;
  if (cotangent.length !== n) {
    throw new RangeError(`cotangent must have the output's length ${n}: got ${cotangent.length}`);
  }
  const cot: (Float64Array | undefined)[] = new Array(values.length);
  // Find the output's version: the last op writing the output register.
  let outVersion = 0;
  for (let i = plan.ops.length - 1; i >= 0; i--) {
    if (plan.ops[i].out === plan.output) {
      outVersion = i + 1;
      break;
    }
  }
  cot[outVersion] = Float64Array.from(cotangent);
  const coefs: Float64Array[] = plan.ops.map((op) =>
    new Float64Array(op.kind === "combine" ? op.terms.length : 0)
  );
  const evalTimes = new Float64Array(gridSize);
  const accumulate = (v: number, src: Float64Array, scale: number) => {
    let dst = cot[v];
    if (!dst) dst = cot[v] = new Float64Array(n);
    for (let e = 0; e < n; e++) dst[e] += scale * src[e];
  };
  let step = plan.nfe;
  for (let i = plan.ops.length - 1; i >= 0; i--) {
    const op = plan.ops[i];
    const cOut = cot[i + 1];
    cot[i + 1] = undefined;
    if (op.kind === "eval") {
      step--;
      if (cOut) {
        const v = reads[i][0];
        const info: VjpInfo = { step };
        if (tape.condition) info.condition = tape.condition;
        if (tape.saved[i]) info.saved = tape.saved[i];
        const r = await denoiser.vjp(values[v]!, op.t, cOut, info);
        accumulate(v, r.x, 1);
        evalTimes[op.evalIndex] += r.t;
      }
    } else if (cOut) {
      const r = reads[i];
      const dst: Float64Array[] = new Array(r.length);
      for (let j = 0; j < r.length; j++) dst[j] = cot[r[j]] ??= new Float64Array(n);
      combineBackward(op.terms, r, values, cOut, dst, coefs[i]);
    }
    // Nothing before op i reads the value op i wrote, nor what its forward call saved (freed
    // here when no cotangent reached the op).
    values[i + 1] = undefined;
    if (op.kind === "eval" && !cOut) tape.saved[i]?.release?.();
    tape.saved[i] = undefined;
  }
  const x = cot[0] ?? new Float64Array(n);
  values[0] = undefined;
  return { x, coefs, evalTimes };
}

/** Options of {@linkcode coefficientJacobianVjp}. */
export interface CoefficientVjpOptions {
  /**
   * Perturbation of grid point k as a fraction of its smallest adjacent gap. @default {1e-3}
   */
  relativeStep?: number;
  /**
   * Skip the grid endpoints `t[0]` and `t[N]` (their gradients come back as 0): for callers
   * that hold T and eps fixed, such as LD3, whose parameterization drops those cotangents. It
   * saves four re-plans and changes no interior value. @default {false}
   */
  fixedEndpoints?: boolean;
  /**
   * The plan of `grid` itself, when the caller already has it (the forward pass built it):
   * saves one re-plan. It must be `planner(grid)`. @default {planner(grid)}
   */
  basePlan?: SolverPlan;
}

function sameStructure(a: SolverPlan, b: SolverPlan): boolean {
  if (a.ops.length !== b.ops.length || a.output !== b.output) return false;
  for (let i = 0; i < a.ops.length; i++) {
    const x = a.ops[i];
    const y = b.ops[i];
    if (x.kind !== y.kind || x.out !== y.out) return false;
    if (x.kind === "eval" && y.kind === "eval") {
      if (x.input !== y.input || x.evalIndex !== y.evalIndex) return false;
    } else if (x.kind === "combine" && y.kind === "combine") {
      if (x.terms.length !== y.terms.length) return false;
      for (let j = 0; j < x.terms.length; j++) if (x.terms[j].reg !== y.terms[j].reg) return false;
    }
  }
  return true;
}

/** `Σ_ops Σ_terms gradCoef · coef(plan)`: the linear functional whose grid derivative we need. */
function contract(plan: SolverPlan, coefGrad: Float64Array[]): number {
  let s = 0;
  for (let i = 0; i < plan.ops.length; i++) {
    const op = plan.ops[i];
    if (op.kind === "combine") {
      for (let j = 0; j < op.terms.length; j++) s += coefGrad[i][j] * op.terms[j].coef;
    }
  }
  return s;
}

/**
 * Pulls ∂L/∂coefficients back to the grids: `∂L/∂t1[k] = Σ ∂L/∂c · ∂c/∂t1[k]` (and the same
 * for `t2`, in case a planner makes coefficients depend on the evaluation grid).
 *
 * The coefficient functions are differentiated by re-planning on grids with one point moved
 * by `±δ, ±2δ` (4-point central stencil, O(δ⁴)); interior points use `δ` = `relativeStep` ×
 * the smaller adjacent gap, the endpoints a one-sided inward 3-point stencil (O(δ²)). The
 * coefficients are smooth functions of λ on that scale, so with the default step the
 * relative error is about 1e-10 for interior points (measured against the whole-pipeline
 * finite-difference tests). No network call is made.
 *
 * @throws {RangeError} When the planner's plan structure changes with the grid values.
 */
export function coefficientJacobianVjp(
  planner: Planner,
  grid: Grid,
  coefGrad: Float64Array[],
  options: CoefficientVjpOptions = {},
): { t1: Float64Array; t2: Float64Array } {
  const rel = options.relativeStep ?? 1e-3;
  const n = grid.t1.length;
  const base = options.basePlan ?? planner(grid);
  const t1Grad = new Float64Array(n);
  const t2Grad = new Float64Array(n);
  // One scratch copy of each grid, moved and restored point by point (the planner reads the
  // grid it is given and keeps nothing of it).
  const t1 = Float64Array.from(grid.t1);
  const t2 = Float64Array.from(grid.t2);
  const evalAt = (which: "t1" | "t2", k: number, delta: number): number => {
    const moved = which === "t1" ? t1 : t2;
    const original = moved[k];
    moved[k] = original + delta;
    const plan = planner({ t1, t2 });
    moved[k] = original;
    if (!sameStructure(base, plan)) {
      throw new RangeError(`Planner changed the plan structure when ${which}[${k}] moved`);
    }
    return contract(plan, coefGrad);
  };
  const gapAt = (k: number): number => {
    const left = k > 0 ? Math.abs(grid.t1[k - 1] - grid.t1[k]) : Infinity;
    const right = k < n - 1 ? Math.abs(grid.t1[k] - grid.t1[k + 1]) : Infinity;
    return Math.min(left, right);
  };
  const derivative = (which: "t1" | "t2", k: number): number => {
    const delta = rel * gapAt(k);
    if (k > 0 && k < n - 1) {
      return (-evalAt(which, k, 2 * delta) + 8 * evalAt(which, k, delta) -
        8 * evalAt(which, k, -delta) + evalAt(which, k, -2 * delta)) / (12 * delta);
    }
    // Endpoints: step inward only, so the step grid stays inside [eps, T].
    const s = k === 0 ? -delta : delta;
    const f0 = contract(base, coefGrad);
    return (-3 * f0 + 4 * evalAt(which, k, s) - evalAt(which, k, 2 * s)) / (2 * s);
  };
  const first = options.fixedEndpoints ? 1 : 0;
  const last = options.fixedEndpoints ? n - 2 : n - 1;
  for (let k = first; k <= last; k++) t1Grad[k] = derivative("t1", k);
  // Most planners read only t1 for coefficients: detect that once and skip the t2 sweep.
  const moved = Float64Array.from(grid.t2, (t, k) => t + rel * gapAt(k));
  if (!sameCoefficients(base, planner({ t1: grid.t1, t2: moved }))) {
    for (let k = first; k <= last; k++) t2Grad[k] = derivative("t2", k);
  }
  return { t1: t1Grad, t2: t2Grad };
}

function sameCoefficients(a: SolverPlan, b: SolverPlan): boolean {
  if (!sameStructure(a, b)) return false;
  for (let i = 0; i < a.ops.length; i++) {
    const x = a.ops[i];
    const y = b.ops[i];
    if (x.kind === "combine" && y.kind === "combine") {
      for (let j = 0; j < x.terms.length; j++) {
        if (x.terms[j].coef !== y.terms[j].coef) return false;
      }
    }
  }
  return true;
}

/** Gradients of a loss on a solve with respect to its start state and both grids. */
export interface SolveGradient {
  /** ∂L/∂x_T. */
  readonly x: Float64Array;
  /** ∂L/∂t1 (coefficients). */
  readonly t1: Float64Array;
  /** ∂L/∂t2 (network time inputs, plus coefficients if the planner reads t2). */
  readonly t2: Float64Array;
}

/**
 * The backward half of a solve: walks the tape and pulls the coefficient gradients back to
 * the grids. `tape` must come from `forwardPlan(planner(grid), …)` (its plan is reused as the
 * base of the coefficient derivatives). `fixedEndpoints` skips the derivatives at `t[0]` and
 * `t[N]` (returned as 0), for callers that never move them.
 */
export async function solveVjp(
  planner: Planner,
  grid: Grid,
  tape: PlanTape,
  denoiser: DifferentiableDenoiser,
  cotangent: Float64Array,
  options: Pick<CoefficientVjpOptions, "fixedEndpoints"> = {},
): Promise<SolveGradient> {
  const g = await backwardPlan(tape, denoiser, cotangent, grid.t1.length);
  const c = coefficientJacobianVjp(planner, grid, g.coefs, {
    ...options,
    basePlan: tape.plan,
  });
  const t2 = Float64Array.from(g.evalTimes, (v, k) => v + c.t2[k]);
  return { x: g.x, t1: c.t1, t2 };
}
