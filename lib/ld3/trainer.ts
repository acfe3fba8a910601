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
 * The loop is a deterministic function of its inputs and seed. The whole state is saved as a
 * JSON-safe {@linkcode Ld3Checkpoint} after every round start, training step and round end,
 * and a run resumed from any of them finishes exactly as the uninterrupted run.
 *
 * @module
 */
import type { Planner } from "../grad/backprop.ts";
import type { DifferentiableDecoder, DifferentiableDenoiser } from "../differentiable.ts";
import type { ImageArray, SampleLoss } from "../metrics/losses.ts";
import { concatFloat32, concatFloat64 } from "../_arrays.ts";
import type { Grid } from "../solvers/plan.ts";
import { planSolver, type SolverName, type SolverOptions } from "../solvers/mod.ts";
import { acceptIfBetter, defaultPriorBound, defaultShiftLr, relaxedStep } from "./ball.ts";
import { clipGradNorm, Rmsprop, type RmspropState, Sgd, type SgdState } from "./optim.ts";
import { thetaFromGrid, thetaToGrid, type TimeMode } from "./parameterization.ts";
import { type Ld3Batch, ld3Loss, ld3LossAndGradient, type Ld3Problem } from "./loss.ts";
import { type Fingerprint, fingerprintDiff } from "../fingerprint.ts";

/** Options of {@linkcode trainLd3}; names follow the reference tool, defaults its CIFAR-10 config. */
export interface Ld3Options {
  /** Student solver. @default {"uni_pc"} */
  solverName?: SolverName;
  /** Student solver order (solver default when unset). @default {3} */
  order?: number;
  /** UniPC B(h) variant. @default {"bh1"} */
  unipcVariant?: "bh1" | "bh2";
  /** Student grid intervals N (the NFE for all solvers but Heun). @default {10} */
  steps?: number;
  /** Steps affine in t or in λ. @default {"lambda"} */
  timeMode?: TimeMode;
  /** θ2 window as a fraction of the smallest grid gap. @default {0.5} */
  winRate?: number;
  /** Training batch size. @default {2} */
  trainBatchSize?: number;
  /** Validation batch size (full validation). @default {150} */
  validBatchSize?: number;
  /**
   * Samples of the single validation batch used until the first patience hit: the reference
   * validates on the first batch of its validation loader, i.e. `min(validBatchSize, valid)`.
   * @default {validBatchSize}
   */
  validOneBatchSize?: number;
  /** Phase-1 rounds (θ1 only). @default {2} */
  trainingRoundsV1?: number;
  /** Phase-2 rounds (θ1 and θ2). @default {5} */
  trainingRoundsV2?: number;
  /** RMSprop learning rate of θ1. @default {0.005} */
  lrTime1?: number;
  /** SGD learning rate of θ2 before division by `steps`. @default {0.1} */
  lrTime2?: number;
  /** RMSprop momentum of θ1. @default {0.9} */
  momentumTime1?: number;
  /** RMSprop weight decay of θ1. @default {0} */
  weightDecayTime1?: number;
  /** Floor of lr1. @default {5e-5} */
  minLrTime1?: number;
  /** Floor of lr2. @default {1e-6} */
  minLrTime2?: number;
  /** Learning-rate decay factor on patience. @default {0.8} */
  lrTimeDecay?: number;
  /** Validations without improvement before reload (+ decay). @default {5} */
  patient?: number;
  /** Stop after lr2 hits its floor this many times. @default {5} */
  lr2Patient?: number;
  /** Ball radius on the standard-normal latent; 0 = hard objective. @default {0.001·size/steps²} */
  priorBound?: number;
  /** SGD step of the relaxed latents. @default {12/steps} */
  shiftLr?: number;
  /** `shift_lr` decay when a round moved no validation latent. @default {0.5} */
  shiftLrDecay?: number;
  /** Gradient-norm clip of θ1 and of θ2 (each). @default {1} */
  clipNorm?: number;
  /** Skip phase 1 (`--no_v1`). @default {false} */
  noV1?: boolean;
  /** Start from this step grid (`--match_prior`), N+1 times from T to eps. @default {undefined} */
  priorGrid?: ArrayLike<number>;
  /** Seed of the training-set shuffles. @default {0} */
  seed?: number;
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

/** A JSON-safe snapshot of parameters and relaxed latents. */
export interface Ld3Snapshot {
  theta1: number[];
  theta2: number[];
  t1: number[];
  t2: number[];
  trainLatents: number[][];
  validLatents: number[][];
}

/** The whole trainer state: enough to resume bit for bit. */
export interface Ld3Checkpoint {
  format: "ld3-checkpoint";
  version: 1;
  /** The current state. */
  current: Ld3Snapshot;
  /** The best state so far (the learned schedule), null before the first validation. */
  best: (Ld3Snapshot & { loss: number }) | null;
  rmsprop: RmspropState;
  sgd: SgdState;
  shiftLr: number;
  /** Round in progress, next batch of its pass, whether its start ran, global step count. */
  round: number;
  batch: number;
  roundStarted: boolean;
  globalStep: number;
  countWorse: number;
  countMinLrHit: number;
  validOnOne: boolean;
  stopped: boolean;
  /** Training-set order of the current round (from the seeded shuffle). */
  order: number[];
  seed: number;
  /** Checks that a resume uses the same problem. */
  fingerprint: string;
}

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
  /** Persists the state (write it atomically); a throw here aborts the run. */
  saveCheckpoint?: (checkpoint: Ld3Checkpoint, reason: CheckpointReason) => void | Promise<void>;
  /** Continue from this state instead of starting fresh. */
  resumeFrom?: Ld3Checkpoint;
  /** Replace the solver planner (tests); default `planSolver(solverName, …)`. */
  planner?: Planner;
}

/** What {@linkcode trainLd3} returns. */
export interface Ld3Result {
  /** The best grid. */
  grid: Grid;
  theta1: Float64Array;
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
  & Required<Omit<Ld3Options, "priorGrid" | "order">>
  & { order?: number; priorGrid?: ArrayLike<number> };

/** Fills in the defaults of the spec's table and validates. */
export function resolveLd3Options(options: Ld3Options, sampleSize: number): ResolvedLd3Options {
  const steps = options.steps ?? 10;
  const trainBatchSize = options.trainBatchSize ?? 2;
  const validBatchSize = options.validBatchSize ?? 150;
  const r: ResolvedLd3Options = {
    solverName: options.solverName ?? "uni_pc",
    order: options.order,
    unipcVariant: options.unipcVariant ?? "bh1",
    steps,
    timeMode: options.timeMode ?? "lambda",
    winRate: options.winRate ?? 0.5,
    trainBatchSize,
    validBatchSize,
    validOneBatchSize: options.validOneBatchSize ?? validBatchSize,
    trainingRoundsV1: options.trainingRoundsV1 ?? 2,
    trainingRoundsV2: options.trainingRoundsV2 ?? 5,
    lrTime1: options.lrTime1 ?? 0.005,
    lrTime2: options.lrTime2 ?? 0.1,
    momentumTime1: options.momentumTime1 ?? 0.9,
    weightDecayTime1: options.weightDecayTime1 ?? 0,
    minLrTime1: options.minLrTime1 ?? 5e-5,
    minLrTime2: options.minLrTime2 ?? 1e-6,
    lrTimeDecay: options.lrTimeDecay ?? 0.8,
    patient: options.patient ?? 5,
    lr2Patient: options.lr2Patient ?? 5,
    priorBound: options.priorBound ?? defaultPriorBound(sampleSize, steps),
    shiftLr: options.shiftLr ?? defaultShiftLr(steps),
    shiftLrDecay: options.shiftLrDecay ?? 0.5,
    clipNorm: options.clipNorm ?? 1,
    noV1: options.noV1 ?? false,
    priorGrid: options.priorGrid,
    seed: options.seed ?? 0,
  };
  const positiveInt: (keyof ResolvedLd3Options)[] = [
    "steps",
    "trainBatchSize",
    "validBatchSize",
    "validOneBatchSize",
    "patient",
    "lr2Patient",
  ];
  for (const key of positiveInt) {
    const v = r[key] as number;
    if (!(Number.isInteger(v) && v >= 1)) {
      throw new RangeError(`Option ${key} must be a positive integer: got ${v}`);
    }
  }
  for (const key of ["trainingRoundsV1", "trainingRoundsV2", "seed"] as const) {
    if (!(Number.isInteger(r[key]) && r[key] >= 0)) {
      throw new RangeError(`Option ${key} must be a non-negative integer: got ${r[key]}`);
    }
  }
  const nonNegative = [
    "lrTime1",
    "lrTime2",
    "momentumTime1",
    "weightDecayTime1",
    "minLrTime1",
    "minLrTime2",
    "priorBound",
    "shiftLr",
    "winRate",
  ] as const;
  for (const key of nonNegative) {
    if (!(Number.isFinite(r[key]) && r[key] >= 0)) {
      throw new RangeError(`Option ${key} must be a non-negative number: got ${r[key]}`);
    }
  }
  for (const key of ["lrTimeDecay", "shiftLrDecay"] as const) {
    if (!(r[key] > 0 && r[key] <= 1)) {
      throw new RangeError(`Option ${key} must be in (0, 1]: got ${r[key]}`);
    }
  }
  if (!(r.clipNorm > 0)) {
    throw new RangeError(`Option clipNorm must be positive: got ${r.clipNorm}`);
  }
  return r;
}

/** Small deterministic PRNG (mulberry32) for the shuffles; state is (seed, round). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The training order of a round: a Fisher–Yates shuffle keyed by (seed, round). */
export function roundOrder(count: number, seed: number, round: number): number[] {
  const rand = mulberry32((seed * 0x9e3779b1 + round * 0x85ebca6b + 0x1234567) >>> 0);
  const order = Array.from({ length: count }, (_, i) => i);
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
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

/**
 * Runs LD3 training.
 *
 * @throws {RangeError} On inconsistent data (shapes, counts), bad options or a checkpoint of
 * another problem.
 */
export async function trainLd3(options: Ld3Options, io: Ld3Io): Promise<Ld3Result> {
  const { denoiser } = io;
  const schedule = denoiser.schedule;
  const size = denoiser.sampleShape.reduce((a, b) => a * b, 1);
  const o = resolveLd3Options(options, size);
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
  const solverOptions: SolverOptions = { order: o.order, variant: o.unipcVariant };
  const planner: Planner = io.planner ??
    ((grid) => planSolver(o.solverName, schedule, grid, solverOptions));
  const problem: Ld3Problem = {
    denoiser,
    planner,
    loss: io.loss,
    decode: io.decode,
    param: { timeMode: o.timeMode, winRate: o.winRate },
  };
  const n = o.steps + 1;
  const fingerprint = fingerprintOf(o, io);
  const history: Ld3Event[] = [];
  const emit = (e: Ld3Event) => {
    history.push(e);
    io.onEvent?.(e);
  };

  // ---- state -------------------------------------------------------------------------------
  let theta1: Float64Array;
  const theta2 = new Float64Array(n);
  if (o.priorGrid) {
    if (o.priorGrid.length !== n) {
      throw new RangeError(`Prior grid must have steps+1 = ${n} points: got ${o.priorGrid.length}`);
    }
    theta1 = thetaFromGrid(schedule, o.priorGrid, problem.param);
  } else {
    theta1 = new Float64Array(n).fill(1);
  }
  let trainLatents = io.train.map((s) => Float64Array.from(s.z));
  let validLatents = io.valid.map((s) => Float64Array.from(s.z));
  const rmsprop = new Rmsprop(n, {
    lr: o.lrTime1,
    momentum: o.momentumTime1,
    weightDecay: o.weightDecayTime1,
  });
  const sgd = new Sgd(n, { lr: o.lrTime2 / o.steps });
  let shiftLr = o.shiftLr;
  let round = 0;
  let batchIndex = 0;
  let roundStarted = false;
  let globalStep = 0;
  let countWorse = 0;
  let countMinLrHit = 0;
  let validOnOne = true;
  let stopped = false;
  let order: number[] = [];
  let best: (Ld3Snapshot & { loss: number }) | null = null;

  const snapshot = (): Ld3Snapshot => {
    const g = thetaToGrid(schedule, theta1, theta2, problem.param);
    return {
      theta1: Array.from(theta1),
      theta2: Array.from(theta2),
      t1: Array.from(g.t1),
      t2: Array.from(g.t2),
      trainLatents: trainLatents.map((a) => Array.from(a)),
      validLatents: validLatents.map((a) => Array.from(a)),
    };
  };
  /** Reloads θ1 and θ2 of a snapshot. */
  const restoreTheta = (s: Ld3Snapshot) => {
    theta1 = Float64Array.from(s.theta1);
    theta2.set(s.theta2);
  };
  /** Reloads a whole snapshot: θ and both sets of relaxed latents. */
  const restore = (s: Ld3Snapshot) => {
    restoreTheta(s);
    trainLatents = s.trainLatents.map((a) => Float64Array.from(a));
    validLatents = s.validLatents.map((a) => Float64Array.from(a));
  };
  const checkpoint = (): Ld3Checkpoint => ({
    format: "ld3-checkpoint",
    version: 1,
    current: snapshot(),
    best: best ? { ...best } : null,
    rmsprop: rmsprop.state(),
    sgd: sgd.state(),
    shiftLr,
    round,
    batch: batchIndex,
    roundStarted,
    globalStep,
    countWorse,
    countMinLrHit,
    validOnOne,
    stopped,
    order: [...order],
    seed: o.seed,
    fingerprint,
  });
  const save = async (reason: CheckpointReason) => {
    if (io.saveCheckpoint) await io.saveCheckpoint(checkpoint(), reason);
  };

  if (io.resumeFrom) {
    const c = io.resumeFrom;
    if (c.format !== "ld3-checkpoint" || c.version !== 1) {
      throw new RangeError(`Not an ld3 checkpoint: format ${c.format}, version ${c.version}`);
    }
    if (c.fingerprint !== fingerprint) {
      const diff = fingerprintDiff(parseFingerprint(c.fingerprint), JSON.parse(fingerprint));
      throw new RangeError(
        `Checkpoint belongs to another run (differs in: ${diff.join(", ") || "fingerprint"}): ` +
          `resume with the run's own options, or start a new run folder`,
      );
    }
    restore(c.current);
    best = c.best ? { ...c.best } : null;
    rmsprop.load(c.rmsprop);
    sgd.load(c.sgd);
    shiftLr = c.shiftLr;
    round = c.round;
    batchIndex = c.batch;
    roundStarted = c.roundStarted;
    globalStep = c.globalStep;
    countWorse = c.countWorse;
    countMinLrHit = c.countMinLrHit;
    validOnOne = c.validOnOne;
    stopped = c.stopped;
    order = [...c.order];
  }

  // ---- helpers -----------------------------------------------------------------------------
  const batchOf = (
    set: readonly Ld3Sample[],
    latents: Float64Array[],
    idx: number[],
  ): Ld3Batch => ({
    latents: concatFloat64(idx.map((i) => latents[i])),
    teacher: concatFloat64(idx.map((i) => set[i].teacher)),
    batch: idx.length,
    condition: concatConditions(idx.map((i) => set[i])),
  });
  const ranges = (count: number, size: number): number[][] => {
    const out: number[][] = [];
    for (let s = 0; s < count; s += size) {
      out.push(Array.from({ length: Math.min(size, count - s) }, (_, i) => s + i));
    }
    return out;
  };
  const validate = async (full: boolean): Promise<number> => {
    const count = full ? io.valid.length : Math.min(o.validOneBatchSize, io.valid.length);
    let total = 0;
    for (const idx of ranges(count, o.validBatchSize)) {
      const losses = await ld3Loss(
        problem,
        { theta1, theta2 },
        batchOf(io.valid, validLatents, idx),
      );
      for (const v of losses) total += v;
    }
    return total / count;
  };
  /**
   * Validates and applies the patience rules; returns nothing, mutates the state. As in the
   * reference, lr2 decays (and its floor hits count towards the stop) only in phase 2, where
   * θ2 trains: phase-1 patience must not eat into the θ2 learning rate before it is used.
   */
  const examine = async (phase: 1 | 2) => {
    const full = !validOnOne;
    const loss = await validate(full);
    const improved = best === null || loss < best.loss;
    if (improved) {
      best = { ...snapshot(), loss };
      countWorse = 0;
    } else {
      countWorse++;
    }
    emit({
      type: "validation",
      round,
      step: globalStep,
      loss,
      best: best!.loss,
      improved,
      full,
    });
    if (improved || countWorse < o.patient) return;
    countWorse = 0;
    restore(best!);
    if (validOnOne) {
      // From now on validate on everything; re-measure the best under the new metric.
      validOnOne = false;
      best = { ...best!, loss: await validate(true) };
    } else {
      rmsprop.lr = Math.max(rmsprop.lr * o.lrTimeDecay, o.minLrTime1);
      if (phase === 2) {
        sgd.lr = Math.max(sgd.lr * o.lrTimeDecay, o.minLrTime2);
        if (sgd.lr <= o.minLrTime2) {
          countMinLrHit++;
          if (countMinLrHit >= o.lr2Patient) stopped = true;
        }
      }
    }
    emit({
      type: "reload",
      round,
      step: globalStep,
      full: !validOnOne,
      lr1: rmsprop.lr,
      lr2: sgd.lr,
    });
  };
  /** One projected, accept-if-better SGD step of some latents; returns how many moved. */
  const relax = async (
    latents: Float64Array[],
    set: readonly Ld3Sample[],
    idx: number[],
    data: Ld3Batch,
    grad: { losses: Float64Array; latents: Float64Array },
  ): Promise<number> => {
    const z = concatFloat64(idx.map((i) => set[i].z));
    const candidate = relaxedStep(data.latents, grad.latents, z, {
      lr: shiftLr,
      radius: o.priorBound,
      batch: idx.length,
    });
    const newLosses = await ld3Loss(problem, { theta1, theta2 }, { ...data, latents: candidate });
    const x = Float64Array.from(data.latents);
    const accepted = acceptIfBetter(x, candidate, { old: grad.losses, new: newLosses });
    idx.forEach((i, b) => latents[i] = x.slice(b * size, (b + 1) * size));
    return accepted.filter(Boolean).length;
  };

  // ---- the loop ----------------------------------------------------------------------------
  const roundsV1 = o.noV1 ? 0 : o.trainingRoundsV1;
  const totalRounds = roundsV1 + o.trainingRoundsV2;
  while (!stopped && round < totalRounds) {
    const phase: 1 | 2 = round < roundsV1 ? 1 : 2;
    if (!roundStarted) {
      emit({ type: "round", round, phase });
      if (round > 0 && best) {
        // The reference reloads the best θ only (both latent sets keep their progress) and
        // restarts the patience count.
        restoreTheta(best);
        countWorse = 0;
      }
      order = roundOrder(io.train.length, o.seed, round);
      batchIndex = 0;
      roundStarted = true;
      await examine(phase);
      await save("round_start");
      if (stopped) break;
    }
    const batches = ranges(io.train.length, o.trainBatchSize).map((r) => r.map((i) => order[i]));
    while (!stopped && batchIndex < batches.length) {
      const idx = batches[batchIndex];
      const data = batchOf(io.train, trainLatents, idx);
      const g = await ld3LossAndGradient(problem, { theta1, theta2 }, data);
      const moved = o.priorBound > 0 ? await relax(trainLatents, io.train, idx, data, g) : 0;
      const gradNorm1 = clipGradNorm([g.theta1], o.clipNorm);
      rmsprop.step(theta1, g.theta1);
      let gradNorm2 = 0;
      if (phase === 2) {
        gradNorm2 = clipGradNorm([g.theta2], o.clipNorm);
        sgd.step(theta2, g.theta2);
      }
      globalStep++;
      batchIndex++;
      emit({
        type: "step",
        round,
        step: globalStep,
        loss: g.loss,
        gradNorm1,
        gradNorm2,
        lr1: rmsprop.lr,
        lr2: sgd.lr,
        moved,
      });
      await examine(phase);
      await save("step");
    }
    if (stopped) break;
    if (o.priorBound > 0) {
      let moved = 0;
      // The reference relaxes the validation latents in training-size batches: the latent
      // step is shift_lr times the gradient of the batch-mean loss, so the batch size sets
      // how far each latent moves.
      for (const idx of ranges(io.valid.length, o.trainBatchSize)) {
        const data = batchOf(io.valid, validLatents, idx);
        const g = await ld3LossAndGradient(problem, { theta1, theta2 }, data, {
          latentsOnly: true,
        });
        moved += await relax(validLatents, io.valid, idx, data, g);
      }
      if (moved === 0) shiftLr *= o.shiftLrDecay;
      emit({ type: "relax_valid", round, moved, shiftLr });
    }
    round++;
    batchIndex = 0;
    roundStarted = false;
    await save("round_end");
  }
  emit({
    type: "stop",
    round,
    step: globalStep,
    reason: stopped ? "lr2_floor" : "rounds",
  });
  const final = best ?? { ...snapshot(), loss: await validate(true) };
  return {
    grid: { t1: Float64Array.from(final.t1), t2: Float64Array.from(final.t2) },
    theta1: Float64Array.from(final.theta1),
    theta2: Float64Array.from(final.theta2),
    history,
    bestValidLoss: final.loss,
    checkpoint: checkpoint(),
  };
}
