/**
 * The LD3 training loop (Tong et al. 2025): learn a solver's step grid `t1` and evaluation
 * grid `t2` by distilling a teacher, back-propagating through the unrolled student solver.
 *
 * Per round: restore the best θ (rounds after the first), validate, then one pass over
 * the shuffled training set. Each training step forwards the student from the relaxed latents
 * `x'`, back-propagates the mean loss, moves `x'` by one projected SGD step inside the ball
 * `‖x' − z‖ ≤ prior_bound` (kept per sample only if its loss went down), clips and applies the
 * schedule updates (RMSprop on θ1; SGD on θ2 in phase 2) and validates. Validation runs on one
 * batch until the first patience hit, then on all validation samples; improvement snapshots
 * the best state; `patient` misses reload the best and (after the switch to full validation)
 * decay lr1, and lr2 in phase 2; the run stops when lr2 has sat on its floor `lr2_patient`
 * times or the round budget is spent. After each training pass the validation latents get the same
 * relaxation in training-size batches (no schedule update); if none moved, `shift_lr` decays.
 *
 * The loop is a deterministic function of its inputs and seed. Everything it carries from one
 * step to the next is one object, {@linkcode Ld3TrainerState} (`state.ts`); a copy of it is
 * handed out as an {@linkcode Ld3Checkpoint} after every round start, training step and round
 * end, and a run resumed from any of them finishes exactly as the uninterrupted run.
 *
 * @module
 */
import type { Planner } from "../grad/backprop.ts";
import type { DifferentiableDecoder, DifferentiableDenoiser } from "../differentiable.ts";
import type { ImageArray, SampleLoss } from "../metrics/losses.ts";
import { concatFloat32, concatFloat64 } from "../_arrays.ts";
import { shuffledOrder } from "../rng.ts";
import type { Grid } from "../solvers/plan.ts";
import { planSolver, type SolverName, type SolverOptions } from "../solvers/mod.ts";
import { acceptIfBetter, defaultPriorBound, defaultShiftLr, relaxedStep } from "./ball.ts";
import { clipGradNorm, Rmsprop, rmspropState, Sgd, sgdState } from "./optim.ts";
import { thetaFromGrid, thetaToGrid } from "./parameterization.ts";
import { type Ld3Batch, ld3Loss, ld3LossAndGradient, type Ld3Problem } from "./loss.ts";
import {
  checkCheckpointHeader,
  LD3_CHECKPOINT_VERSION,
  type Ld3Checkpoint,
  type Ld3Snapshot,
  type Ld3TrainerState,
  type Ld3Variables,
} from "./state.ts";
import { type Fingerprint, fingerprintDiff } from "../fingerprint.ts";
import { type OptionValues, type ResolvedOptions, resolveOptions } from "../options.ts";
import { LD3_OPTIONS } from "./options.ts";

// The checkpoint types are part of the trainer's interface; they are declared with the state.
export type { Ld3Checkpoint, Ld3Snapshot } from "./state.ts";

/**
 * Options of {@linkcode trainLd3}: the hyperparameters of {@linkcode LD3_OPTIONS} (the reference
 * tool's names, its CIFAR-10 defaults), and these two.
 */
export interface Ld3Options extends OptionValues<typeof LD3_OPTIONS> {
  /**
   * Ball radius on the standard-normal latent; 0 = hard objective.
   * @default {0.001·size/steps² (`defaultPriorBound`)}
   */
  priorBound?: number;
  /** Start from this step grid (`--match_prior`), N+1 times from T to eps. @default {undefined} */
  priorGrid?: ArrayLike<number>;
}

/** One teacher pair: the standard-normal latent and the teacher's image (decoded if latent). */
export interface Ld3Sample {
  /** z ~ N(0, I), one sample (the student starts from `priorScale·x'`, x' near z). */
  readonly z: Float64Array;
  /** The teacher's output for z (decoded image for latent models). */
  readonly teacher: ImageArray;
  /** Conditioning of this sample (concatenated per batch). */
  readonly condition?: Float32Array;
}

/** What the loop reports while it runs (one JSONL line each, for the log). */
export type Ld3Event =
  | { type: "round"; round: number; phase: 1 | 2 }
  | {
    type: "step";
    round: number;
    step: number;
    loss: number;
    gradNorm1: number;
    gradNorm2: number;
    lr1: number;
    lr2: number;
    moved: number;
  }
  | {
    type: "validation";
    round: number;
    step: number;
    loss: number;
    best: number;
    improved: boolean;
    full: boolean;
  }
  | { type: "reload"; round: number; step: number; full: boolean; lr1: number; lr2: number }
  | { type: "relax_valid"; round: number; moved: number; shiftLr: number }
  | { type: "stop"; round: number; step: number; reason: "rounds" | "lr2_floor" };

/** Why a checkpoint was emitted. */
export type CheckpointReason = "round_start" | "step" | "round_end";

/** What {@linkcode trainLd3} needs besides options. */
export interface Ld3Io {
  /** The model, with VJPs. */
  denoiser: DifferentiableDenoiser;
  /** Latent-to-image decoder with VJP (latent models only). */
  decode?: DifferentiableDecoder;
  /** The distance to the teacher. */
  loss: SampleLoss;
  /** Training pairs. */
  train: readonly Ld3Sample[];
  /** Validation pairs. */
  valid: readonly Ld3Sample[];
  /** Progress and log events. */
  onEvent?: (event: Ld3Event) => void;
  /**
   * Persists the state (a copy, the callee's to keep; write it atomically); a throw here
   * aborts the run.
   */
  saveCheckpoint?: (checkpoint: Ld3Checkpoint, reason: CheckpointReason) => void | Promise<void>;
  /**
   * Continue from this checkpoint instead of starting fresh: one this trainer handed out, or
   * one read back with `deserializeLd3Checkpoint`. It is copied, never changed.
   */
  resumeFrom?: Ld3Checkpoint;
  /** Replace the solver planner (tests); default `planSolver(solverName, …)`. */
  planner?: Planner;
}

/** What {@linkcode trainLd3} returns. */
export interface Ld3Result {
  /** The best grid. */
  grid: Grid;
  /** θ1 of the best state. */
  theta1: Float64Array;
  /** θ2 of the best state. */
  theta2: Float64Array;
  /** Events of this invocation (a resumed run reports only what it ran). */
  history: Ld3Event[];
  /** Validation loss of the best state. */
  bestValidLoss: number;
  /** Final state. */
  checkpoint: Ld3Checkpoint;
}

/** Resolved options (every default filled in). */
export type ResolvedLd3Options =
  & ResolvedOptions<typeof LD3_OPTIONS>
  & { solverName: SolverName; validOneBatchSize: number; shiftLr: number; priorBound: number }
  & { priorGrid?: ArrayLike<number> };

/**
 * Fills in the defaults of {@linkcode LD3_OPTIONS} and those that depend on the problem (the
 * ball radius on the sample size, `shiftLr` on the steps), and checks every value.
 *
 * @throws {TypeError | RangeError} Naming the first bad option.
 */
export function resolveLd3Options(options: Ld3Options, sampleSize: number): ResolvedLd3Options {
  const r = resolveOptions(LD3_OPTIONS, options);
  const priorBound = options.priorBound ?? defaultPriorBound(sampleSize, r.steps);
  if (!(Number.isFinite(priorBound) && priorBound >= 0)) {
    throw new RangeError(`priorBound must be a number >= 0: got ${priorBound}`);
  }
  return {
    ...r,
    solverName: r.solverName as SolverName,
    validOneBatchSize: r.validOneBatchSize ?? r.validBatchSize,
    shiftLr: r.shiftLr ?? defaultShiftLr(r.steps),
    priorBound,
    priorGrid: options.priorGrid,
  };
}

/**
 * The training order of a round: a permutation keyed by the run's seed and the round
 * (`lib/rng.ts`), so a resumed run shuffles as the uninterrupted one did.
 */
export function roundOrder(count: number, seed: number, round: number): number[] {
  return shuffledOrder(count, seed, round);
}

function fingerprintOf(o: ResolvedLd3Options, io: Ld3Io): string {
  return JSON.stringify({
    solver: o.solverName,
    order: o.order ?? null,
    variant: o.unipcVariant,
    steps: o.steps,
    timeMode: o.timeMode,
    train: io.train.length,
    valid: io.valid.length,
    size: io.train[0]?.z.length ?? 0,
    seed: o.seed,
    // A run started from another grid is another run: never resume across starting grids.
    prior: o.priorGrid ? Array.from(o.priorGrid) : null,
  });
}

/** A stored fingerprint as an object; an unreadable one compares unequal to every field. */
function parseFingerprint(text: string): Fingerprint {
  try {
    const value = JSON.parse(text);
    return value !== null && typeof value === "object" ? value : {};
  } catch {
    return {};
  }
}

/** The conditioning of a batch, concatenated; undefined when a sample has none. */
function concatConditions(samples: readonly Ld3Sample[]): Float32Array | undefined {
  if (!samples.every((s) => s.condition)) return undefined;
  return concatFloat32(samples.map((s) => s.condition!));
}

/** The samples `idx` of `set` as one batch, starting from their relaxed `latents`. */
function batchOf(set: readonly Ld3Sample[], latents: Float64Array[], idx: number[]): Ld3Batch {
  return {
    latents: concatFloat64(idx.map((i) => latents[i])),
    teacher: concatFloat64(idx.map((i) => set[i].teacher)),
    batch: idx.length,
    condition: concatConditions(idx.map((i) => set[i])),
  };
}

/** `0 … count−1` cut into consecutive batches of at most `size`. */
function ranges(count: number, size: number): number[][] {
  const out: number[][] = [];
  for (let s = 0; s < count; s += size) {
    out.push(Array.from({ length: Math.min(size, count - s) }, (_, i) => s + i));
  }
  return out;
}

/** A copy of the variables of a state or snapshot (θ and both latent sets). */
function variablesOf(v: Ld3Variables): Ld3Variables {
  return {
    theta1: v.theta1.slice(),
    theta2: v.theta2.slice(),
    trainLatents: v.trainLatents.map((a) => a.slice()),
    validLatents: v.validLatents.map((a) => a.slice()),
  };
}

/**
 * Refuses data the loop cannot use: empty sets, samples of the wrong sizes, a prior grid of
 * the wrong length.
 */
function checkInputs(o: ResolvedLd3Options, io: Ld3Io, size: number): void {
  if (io.train.length < 1) throw new RangeError("Training set is empty");
  if (io.valid.length < 1) throw new RangeError("Validation set is empty");
  const teacherSize = io.train[0].teacher.length;
  for (const [name, set] of [["train", io.train], ["valid", io.valid]] as const) {
    set.forEach((s, i) => {
      if (s.z.length !== size) {
        throw new RangeError(`${name}[${i}].z must hold ${size} values: got ${s.z.length}`);
      }
      if (s.teacher.length !== teacherSize) {
        throw new RangeError(
          `${name}[${i}].teacher must hold ${teacherSize} values: got ${s.teacher.length}`,
        );
      }
    });
  }
  const n = o.steps + 1;
  if (o.priorGrid && o.priorGrid.length !== n) {
    throw new RangeError(`Prior grid must have steps+1 = ${n} points: got ${o.priorGrid.length}`);
  }
}

/** The student problem the options and the model describe. */
function studentProblem(o: ResolvedLd3Options, io: Ld3Io): Ld3Problem {
  const solverOptions: SolverOptions = { order: o.order, variant: o.unipcVariant };
  const schedule = io.denoiser.schedule;
  return {
    denoiser: io.denoiser,
    planner: io.planner ?? ((grid) => planSolver(o.solverName, schedule, grid, solverOptions)),
    loss: io.loss,
    decode: io.decode,
    param: { timeMode: o.timeMode, winRate: o.winRate },
  };
}

/**
 * The state of a fresh run: θ1 of the prior grid (`match_prior`) or all ones (the grid uniform
 * in the time mode), θ2 = 0, the latents at their teacher's z, nothing validated yet.
 */
function initialState(o: ResolvedLd3Options, io: Ld3Io, problem: Ld3Problem): Ld3TrainerState {
  const n = o.steps + 1;
  const theta1 = o.priorGrid
    ? thetaFromGrid(io.denoiser.schedule, o.priorGrid, problem.param)
    : new Float64Array(n).fill(1);
  return {
    current: {
      theta1,
      theta2: new Float64Array(n),
      trainLatents: io.train.map((s) => Float64Array.from(s.z)),
      validLatents: io.valid.map((s) => Float64Array.from(s.z)),
    },
    best: null,
    rmsprop: rmspropState(n, o.lrTime1),
    sgd: sgdState(o.lrTime2 / o.steps),
    shiftLr: o.shiftLr,
    round: 0,
    batch: 0,
    roundStarted: false,
    globalStep: 0,
    countWorse: 0,
    countMinLrHit: 0,
    validOnOne: true,
    stopped: false,
    order: [],
  };
}

/**
 * The state to resume from `c`, a copy (the run mutates its state; the caller's checkpoint
 * stays as it was).
 *
 * @throws {RangeError} When `c` is no checkpoint of this version, or of another run.
 */
function resumedState(c: Ld3Checkpoint, fingerprint: string): Ld3TrainerState {
  checkCheckpointHeader(c);
  if (c.fingerprint !== fingerprint) {
    const diff = fingerprintDiff(parseFingerprint(c.fingerprint), JSON.parse(fingerprint));
    throw new RangeError(
      `Checkpoint belongs to another run (differs in: ${diff.join(", ") || "fingerprint"}): ` +
        `resume with the run's own options, or start a new run folder`,
    );
  }
  const { format: _format, version: _version, fingerprint: _fingerprint, ...state } =
    structuredClone(c);
  return state;
}

/**
 * A training run in progress: the problem, the state, and the steps of the loop, each a
 * method that moves the state (see the module doc for the order).
 */
class Ld3Run {
  /** Events of this invocation. */
  readonly history: Ld3Event[] = [];
  readonly #o: ResolvedLd3Options;
  readonly #io: Ld3Io;
  readonly #size: number;
  readonly #problem: Ld3Problem;
  readonly #fingerprint: string;
  readonly #state: Ld3TrainerState;
  readonly #rmsprop: Rmsprop;
  readonly #sgd: Sgd;

  constructor(o: ResolvedLd3Options, io: Ld3Io, size: number) {
    this.#o = o;
    this.#io = io;
    this.#size = size;
    this.#problem = studentProblem(o, io);
    this.#fingerprint = fingerprintOf(o, io);
    this.#state = io.resumeFrom
      ? resumedState(io.resumeFrom, this.#fingerprint)
      : initialState(o, io, this.#problem);
    // The optimizers update their parts of the state (moments, step counts, lr) in place.
    const n = o.steps + 1;
    this.#rmsprop = new Rmsprop(n, {
      lr: o.lrTime1,
      momentum: o.momentumTime1,
      weightDecay: o.weightDecayTime1,
    }, this.#state.rmsprop);
    this.#sgd = new Sgd(n, { lr: o.lrTime2 / o.steps }, this.#state.sgd);
  }

  /** The round loop: phase 1 (θ1) rounds, then phase 2 (θ1 and θ2), until the budget or stop. */
  async train(): Promise<void> {
    const s = this.#state;
    const roundsV1 = this.#o.noV1 ? 0 : this.#o.trainingRoundsV1;
    const totalRounds = roundsV1 + this.#o.trainingRoundsV2;
    while (!s.stopped && s.round < totalRounds) {
      const phase: 1 | 2 = s.round < roundsV1 ? 1 : 2;
      // A run resumed mid-round has run the round's start and continues at its next batch.
      if (!s.roundStarted) await this.#startRound(phase);
      await this.#trainingPass(phase);
      if (s.stopped) break;
      await this.#endRound();
    }
    const reason = s.stopped ? "lr2_floor" : "rounds";
    this.#emit({ type: "stop", round: s.round, step: s.globalStep, reason });
  }

  /** The best grid and θ (or the current ones if nothing was validated), and the final state. */
  async result(): Promise<Ld3Result> {
    const final = this.#state.best ?? { ...this.#snapshot(), loss: await this.#validate(true) };
    return {
      grid: { t1: Float64Array.from(final.t1), t2: Float64Array.from(final.t2) },
      theta1: Float64Array.from(final.theta1),
      theta2: Float64Array.from(final.theta2),
      history: this.history,
      bestValidLoss: final.loss,
      checkpoint: this.#checkpoint(),
    };
  }

  /** Reload the best θ, shuffle, validate, save. */
  async #startRound(phase: 1 | 2): Promise<void> {
    const s = this.#state;
    this.#emit({ type: "round", round: s.round, phase });
    if (s.round > 0 && s.best) {
      // The reference reloads the best θ only (both latent sets keep their progress) and
      // restarts the patience count.
      s.current.theta1 = s.best.theta1.slice();
      s.current.theta2 = s.best.theta2.slice();
      s.countWorse = 0;
    }
    s.order = roundOrder(this.#io.train.length, this.#o.seed, s.round);
    s.batch = 0;
    s.roundStarted = true;
    await this.#examine(phase);
    await this.#save("round_start");
  }

  /** The round's pass over the shuffled training set, from the next batch on. */
  async #trainingPass(phase: 1 | 2): Promise<void> {
    const s = this.#state;
    const batches = ranges(this.#io.train.length, this.#o.trainBatchSize)
      .map((r) => r.map((i) => s.order[i]));
    while (!s.stopped && s.batch < batches.length) {
      await this.#trainStep(phase, batches[s.batch]);
      await this.#examine(phase);
      await this.#save("step");
    }
  }

  /**
   * One training step: the loss and its gradient on a batch, the relaxation of its latents
   * (from the gradient at the θ it was computed for), then the clipped updates of θ1 and, in
   * phase 2, θ2.
   */
  async #trainStep(phase: 1 | 2, idx: number[]): Promise<void> {
    const o = this.#o;
    const s = this.#state;
    const v = s.current;
    const data = batchOf(this.#io.train, v.trainLatents, idx);
    const g = await ld3LossAndGradient(this.#problem, v, data);
    const moved = o.priorBound > 0
      ? await this.#relax(v.trainLatents, this.#io.train, idx, data, g)
      : 0;
    const gradNorm1 = clipGradNorm([g.theta1], o.clipNorm);
    this.#rmsprop.step(v.theta1, g.theta1);
    let gradNorm2 = 0;
    if (phase === 2) {
      gradNorm2 = clipGradNorm([g.theta2], o.clipNorm);
      this.#sgd.step(v.theta2, g.theta2);
    }
    s.globalStep++;
    s.batch++;
    this.#emit({
      type: "step",
      round: s.round,
      step: s.globalStep,
      loss: g.loss,
      gradNorm1,
      gradNorm2,
      lr1: s.rmsprop.lr,
      lr2: s.sgd.lr,
      moved,
    });
  }

  /** After the training pass: relax the validation latents, then close the round. */
  async #endRound(): Promise<void> {
    const s = this.#state;
    if (this.#o.priorBound > 0) await this.#relaxValidation();
    s.round++;
    s.batch = 0;
    s.roundStarted = false;
    await this.#save("round_end");
  }

  /**
   * One relaxation step of every validation latent (no schedule update); `shift_lr` decays
   * when none moved. The reference relaxes them in training-size batches: the latent step is
   * shift_lr times the gradient of the batch-mean loss, so the batch size sets how far each
   * latent moves.
   */
  async #relaxValidation(): Promise<void> {
    const s = this.#state;
    const valid = this.#io.valid;
    let moved = 0;
    for (const idx of ranges(valid.length, this.#o.trainBatchSize)) {
      const data = batchOf(valid, s.current.validLatents, idx);
      const g = await ld3LossAndGradient(this.#problem, s.current, data, { latentsOnly: true });
      moved += await this.#relax(s.current.validLatents, valid, idx, data, g);
    }
    if (moved === 0) s.shiftLr *= this.#o.shiftLrDecay;
    this.#emit({ type: "relax_valid", round: s.round, moved, shiftLr: s.shiftLr });
  }

  /** One projected, accept-if-better SGD step of some latents; returns how many moved. */
  async #relax(
    latents: Float64Array[],
    set: readonly Ld3Sample[],
    idx: number[],
    data: Ld3Batch,
    grad: { losses: Float64Array; latents: Float64Array },
  ): Promise<number> {
    const size = this.#size;
    const z = concatFloat64(idx.map((i) => set[i].z));
    const candidate = relaxedStep(data.latents, grad.latents, z, {
      lr: this.#state.shiftLr,
      radius: this.#o.priorBound,
      batch: idx.length,
    });
    const candidateData = { ...data, latents: candidate };
    const newLosses = await ld3Loss(this.#problem, this.#state.current, candidateData);
    const x = Float64Array.from(data.latents);
    const accepted = acceptIfBetter(x, candidate, { old: grad.losses, new: newLosses });
    idx.forEach((i, b) => latents[i] = x.slice(b * size, (b + 1) * size));
    return accepted.filter(Boolean).length;
  }

  /**
   * Validates and keeps the best state; after `patient` validations without improvement,
   * reloads the best ({@linkcode Ld3Run.#reloadBest}).
   */
  async #examine(phase: 1 | 2): Promise<void> {
    const s = this.#state;
    const full = !s.validOnOne;
    const loss = await this.#validate(full);
    const improved = s.best === null || loss < s.best.loss;
    if (improved) {
      s.best = { ...this.#snapshot(), loss };
      s.countWorse = 0;
    } else {
      s.countWorse++;
    }
    const best = s.best!.loss;
    this.#emit({
      type: "validation",
      round: s.round,
      step: s.globalStep,
      loss,
      best,
      improved,
      full,
    });
    if (!improved && s.countWorse >= this.#o.patient) await this.#reloadBest(phase);
  }

  /**
   * Patience ran out: back to the best variables; the first time, switch from one validation
   * batch to all samples, afterwards decay the learning rates.
   */
  async #reloadBest(phase: 1 | 2): Promise<void> {
    const s = this.#state;
    const best = s.best!;
    s.countWorse = 0;
    s.current = variablesOf(best);
    if (s.validOnOne) {
      // From now on validate on everything; re-measure the best under the new metric, unless
      // the one batch was everything already (the default: 150 ≥ num_valid), when the measure
      // at the best's own variables would repeat its loss bit for bit.
      s.validOnOne = false;
      const coveredAll = this.#o.validOneBatchSize >= this.#io.valid.length;
      s.best = coveredAll ? best : { ...best, loss: await this.#validate(true) };
    } else {
      this.#decayLearningRates(phase);
    }
    const [lr1, lr2] = [s.rmsprop.lr, s.sgd.lr];
    this.#emit({
      type: "reload",
      round: s.round,
      step: s.globalStep,
      full: !s.validOnOne,
      lr1,
      lr2,
    });
  }

  /**
   * Decays lr1 towards its floor, and lr2 in phase 2, counting lr2's floor hits towards the
   * stop. As in the reference, lr2 decays only in phase 2, where θ2 trains: phase-1 patience
   * must not eat into the θ2 learning rate before it is used.
   */
  #decayLearningRates(phase: 1 | 2): void {
    const o = this.#o;
    const s = this.#state;
    s.rmsprop.lr = Math.max(s.rmsprop.lr * o.lrTimeDecay, o.minLrTime1);
    if (phase !== 2) return;
    s.sgd.lr = Math.max(s.sgd.lr * o.lrTimeDecay, o.minLrTime2);
    if (s.sgd.lr <= o.minLrTime2) {
      s.countMinLrHit++;
      if (s.countMinLrHit >= o.lr2Patient) s.stopped = true;
    }
  }

  /**
   * Mean validation loss at the current variables: on the first `validOneBatchSize` samples,
   * or on all (`full`).
   */
  async #validate(full: boolean): Promise<number> {
    const o = this.#o;
    const { valid } = this.#io;
    const current = this.#state.current;
    const count = full ? valid.length : Math.min(o.validOneBatchSize, valid.length);
    let total = 0;
    for (const idx of ranges(count, o.validBatchSize)) {
      const batch = batchOf(valid, current.validLatents, idx);
      for (const v of await ld3Loss(this.#problem, current, batch)) total += v;
    }
    return total / count;
  }

  /** A copy of the current variables with the grids they give. */
  #snapshot(): Ld3Snapshot {
    const v = this.#state.current;
    const g = thetaToGrid(this.#io.denoiser.schedule, v.theta1, v.theta2, this.#problem.param);
    return { ...variablesOf(v), t1: Float64Array.from(g.t1), t2: Float64Array.from(g.t2) };
  }

  /** A copy of the state, with what identifies the run. */
  #checkpoint(): Ld3Checkpoint {
    return {
      format: "ld3-checkpoint",
      version: LD3_CHECKPOINT_VERSION,
      fingerprint: this.#fingerprint,
      ...structuredClone(this.#state),
    };
  }

  async #save(reason: CheckpointReason): Promise<void> {
    if (this.#io.saveCheckpoint) await this.#io.saveCheckpoint(this.#checkpoint(), reason);
  }

  #emit(event: Ld3Event): void {
    this.history.push(event);
    this.#io.onEvent?.(event);
  }
}

/**
 * Runs LD3 training.
 *
 * @throws {RangeError} On inconsistent data (shapes, counts), bad options or a checkpoint of
 * another problem.
 */
export async function trainLd3(options: Ld3Options, io: Ld3Io): Promise<Ld3Result> {
  const size = io.denoiser.sampleShape.reduce((a, b) => a * b, 1);
  const o = resolveLd3Options(options, size);
  checkInputs(o, io, size);
  const run = new Ld3Run(o, io, size);
  await run.train();
  return await run.result();
}
