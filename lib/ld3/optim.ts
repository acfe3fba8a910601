/**
 * The optimizers LD3 trains its schedule with, following PyTorch's update equations exactly
 * (`torch.optim.RMSprop`, `torch.optim.SGD`, `torch.nn.utils.clip_grad_norm_`), on float64
 * parameter vectors. Their state is a plain JSON object that the optimizer updates in place: a
 * trainer keeps it inside its own state, so a checkpoint of that state restores the optimizer
 * bit for bit.
 *
 * @module
 */

/** Options of {@linkcode Rmsprop} (PyTorch's names and defaults). */
export interface RmspropOptions {
  /** Learning rate. */
  lr: number;
  /** Smoothing constant of the squared-gradient average. @default {0.99} */
  alpha?: number;
  /** Added to the root of the average. @default {1e-8} */
  eps?: number;
  /** L2 penalty added to the gradient. @default {0} */
  weightDecay?: number;
  /** Momentum factor. @default {0} */
  momentum?: number;
  /** Normalise by the centred second moment (the gradient's variance). @default {false} */
  centered?: boolean;
}

/** State of an {@linkcode Rmsprop}: JSON-safe, updated in place by every step. */
export interface RmspropState {
  /** Current learning rate (a trainer decays it here). */
  lr: number;
  /** Steps taken so far. */
  step: number;
  /** Running average v of the squared gradients, one per parameter. */
  squareAvg: number[];
  /** Momentum buffer b, one per parameter (zeros without momentum). */
  momentumBuffer: number[];
  /** Running average ḡ of the gradients (used when `centered`). */
  gradAvg: number[];
}

/** The state of a new {@linkcode Rmsprop} over `size` parameters at learning rate `lr`. */
export function rmspropState(size: number, lr: number): RmspropState {
  const zeros = () => new Array<number>(size).fill(0);
  return { lr, step: 0, squareAvg: zeros(), momentumBuffer: zeros(), gradAvg: zeros() };
}

function checkLr(lr: number): void {
  if (!(Number.isFinite(lr) && lr >= 0)) {
    throw new RangeError(`Learning rate must be a non-negative number: got ${lr}`);
  }
}

function checkSizes(params: Float64Array, grad: Float64Array, size: number): void {
  if (params.length !== size || grad.length !== size) {
    throw new RangeError(
      `Optimizer expects ${size} parameters and gradients: got ${params.length} and ${grad.length}`,
    );
  }
}

/**
 * RMSprop as in `torch.optim.RMSprop`:
 *
 * ```
 * g ← g + weight_decay·θ
 * v ← α·v + (1−α)·g²
 * centered: ḡ ← α·ḡ + (1−α)·g,  avg = √(v − ḡ²) + eps;  else avg = √v + eps
 * momentum > 0: b ← momentum·b + g/avg,  θ ← θ − lr·b;  else θ ← θ − lr·g/avg
 * ```
 */
export class Rmsprop {
  /** Smoothing constant α of the squared-gradient average. */
  readonly alpha: number;
  /** Added to the root of the average. */
  readonly eps: number;
  /** L2 penalty added to the gradient. */
  readonly weightDecay: number;
  /** Momentum factor (0: none). */
  readonly momentum: number;
  /** Whether the average is centred (divides by the gradient's variance). */
  readonly centered: boolean;
  readonly #state: RmspropState;

  /**
   * An RMSprop over `size` parameters.
   * @param state The state to update in place (a trainer's, or one restored from a
   * checkpoint; its `lr` wins over `options.lr`). Default: a new one at `options.lr`.
   */
  constructor(size: number, options: RmspropOptions, state?: RmspropState) {
    checkLr(options.lr);
    this.alpha = options.alpha ?? 0.99;
    this.eps = options.eps ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0;
    this.momentum = options.momentum ?? 0;
    this.centered = options.centered ?? false;
    if (!(this.alpha >= 0 && this.alpha <= 1)) {
      throw new RangeError(`RMSprop alpha must be in [0, 1]: got ${this.alpha}`);
    }
    if (!(this.momentum >= 0)) {
      throw new RangeError(`RMSprop momentum must be non-negative: got ${this.momentum}`);
    }
    this.#state = state ?? rmspropState(size, options.lr);
    checkRmspropSize(this.#state, size);
  }

  /** Current learning rate (decayed by the trainer), kept in the state. */
  get lr(): number {
    return this.#state.lr;
  }
  set lr(lr: number) {
    this.#state.lr = lr;
  }

  /** Updates `params` in place from `grad`. */
  step(params: Float64Array, grad: Float64Array): void {
    const s = this.#state;
    const size = s.squareAvg.length;
    checkSizes(params, grad, size);
    s.step++;
    const { alpha, eps, weightDecay, momentum, lr } = this;
    for (let i = 0; i < size; i++) {
      const g = weightDecay !== 0 ? grad[i] + weightDecay * params[i] : grad[i];
      const v = s.squareAvg[i] = alpha * s.squareAvg[i] + (1 - alpha) * g * g;
      let avg: number;
      if (this.centered) {
        const ga = s.gradAvg[i] = alpha * s.gradAvg[i] + (1 - alpha) * g;
        avg = Math.sqrt(v - ga * ga) + eps;
      } else {
        avg = Math.sqrt(v) + eps;
      }
      if (momentum > 0) {
        const b = s.momentumBuffer[i] = momentum * s.momentumBuffer[i] + g / avg;
        params[i] -= lr * b;
      } else {
        params[i] -= lr * g / avg;
      }
    }
  }

  /** A copy of the state. */
  state(): RmspropState {
    return structuredClone(this.#state);
  }

  /** Restores a state from {@linkcode Rmsprop.state} (copied into this optimizer's state). */
  load(state: RmspropState): void {
    checkRmspropSize(state, this.#state.squareAvg.length);
    Object.assign(this.#state, structuredClone(state));
  }
}

function checkRmspropSize(state: RmspropState, size: number): void {
  if (state.squareAvg.length !== size) {
    throw new RangeError(`RMSprop state has ${state.squareAvg.length} values: expected ${size}`);
  }
}

/** Options of {@linkcode Sgd} (PyTorch's names and defaults). */
export interface SgdOptions {
  /** Learning rate. */
  lr: number;
  /** Momentum factor. @default {0} */
  momentum?: number;
  /** Dampening of the momentum. @default {0} */
  dampening?: number;
  /** L2 penalty added to the gradient. @default {0} */
  weightDecay?: number;
  /** Nesterov momentum. @default {false} */
  nesterov?: boolean;
}

/** State of an {@linkcode Sgd}: JSON-safe, updated in place by every step. */
export interface SgdState {
  /** Current learning rate (a trainer decays it here). */
  lr: number;
  /** Steps taken so far. */
  step: number;
  /** Momentum buffer, one per parameter; null until the first step with momentum. */
  momentumBuffer: number[] | null;
}

/** The state of a new {@linkcode Sgd} at learning rate `lr`. */
export function sgdState(lr: number): SgdState {
  return { lr, step: 0, momentumBuffer: null };
}

/**
 * SGD as in `torch.optim.SGD`: `g ← g + wd·θ`; with momentum the buffer starts at `g` and then
 * `b ← μ·b + (1−dampening)·g`, the step uses `g + μ·b` (Nesterov) or `b`; `θ ← θ − lr·step`.
 */
export class Sgd {
  /** Momentum factor μ (0: none). */
  readonly momentum: number;
  /** Dampening of the momentum. */
  readonly dampening: number;
  /** L2 penalty added to the gradient. */
  readonly weightDecay: number;
  /** Whether the step uses Nesterov momentum. */
  readonly nesterov: boolean;
  readonly #state: SgdState;
  readonly #size: number;

  /**
   * An SGD over `size` parameters.
   * @param state The state to update in place (a trainer's, or one restored from a
   * checkpoint; its `lr` wins over `options.lr`). Default: a new one at `options.lr`.
   */
  constructor(size: number, options: SgdOptions, state?: SgdState) {
    checkLr(options.lr);
    this.momentum = options.momentum ?? 0;
    this.dampening = options.dampening ?? 0;
    this.weightDecay = options.weightDecay ?? 0;
    this.nesterov = options.nesterov ?? false;
    if (this.nesterov && (this.momentum <= 0 || this.dampening !== 0)) {
      throw new RangeError("SGD nesterov needs momentum > 0 and dampening 0");
    }
    this.#size = size;
    this.#state = state ?? sgdState(options.lr);
    const buffer = this.#state.momentumBuffer;
    if (buffer && buffer.length !== size) {
      throw new RangeError(`SGD state has ${buffer.length} values: expected ${size}`);
    }
  }

  /** Current learning rate (decayed by the trainer), kept in the state. */
  get lr(): number {
    return this.#state.lr;
  }
  set lr(lr: number) {
    this.#state.lr = lr;
  }

  /** Updates `params` in place from `grad`. */
  step(params: Float64Array, grad: Float64Array): void {
    checkSizes(params, grad, this.#size);
    const s = this.#state;
    s.step++;
    const { momentum, dampening, weightDecay, nesterov, lr } = this;
    const first = s.momentumBuffer === null;
    if (momentum !== 0 && first) s.momentumBuffer = new Array<number>(this.#size).fill(0);
    for (let i = 0; i < this.#size; i++) {
      let g = weightDecay !== 0 ? grad[i] + weightDecay * params[i] : grad[i];
      if (momentum !== 0) {
        const buf = s.momentumBuffer!;
        buf[i] = first ? g : momentum * buf[i] + (1 - dampening) * g;
        g = nesterov ? g + momentum * buf[i] : buf[i];
      }
      params[i] -= lr * g;
    }
  }

  /** A copy of the state. */
  state(): SgdState {
    return structuredClone(this.#state);
  }

  /** Restores a state from {@linkcode Sgd.state} (copied into this optimizer's state). */
  load(state: SgdState): void {
    Object.assign(this.#state, structuredClone(state));
  }
}

/**
 * `torch.nn.utils.clip_grad_norm_` (2-norm over all given gradients): scales them in place by
 * `min(1, maxNorm/(‖g‖ + 1e-6))` and returns the norm before clipping.
 */
export function clipGradNorm(grads: readonly Float64Array[], maxNorm: number): number {
  if (!(maxNorm > 0)) throw new RangeError(`maxNorm must be positive: got ${maxNorm}`);
  let sq = 0;
  for (const g of grads) for (let i = 0; i < g.length; i++) sq += g[i] * g[i];
  const norm = Math.sqrt(sq);
  const coef = Math.min(1, maxNorm / (norm + 1e-6));
  if (coef < 1) { for (const g of grads) for (let i = 0; i < g.length; i++) g[i] *= coef; }
  return norm;
}
