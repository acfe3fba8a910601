/**
 * The optimizers LD3 trains its schedule with, following PyTorch's update equations exactly
 * (`torch.optim.RMSprop`, `torch.optim.SGD`, `torch.nn.utils.clip_grad_norm_`), on float64
 * parameter vectors. Their state is plain JSON so a checkpoint can restore it bit for bit.
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

/** Serialisable state of an {@linkcode Rmsprop}. */
export interface RmspropState {
  lr: number;
  step: number;
  squareAvg: number[];
  momentumBuffer: number[];
  gradAvg: number[];
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
  /** Current learning rate (decayed by the trainer). */
  lr: number;
  readonly alpha: number;
  readonly eps: number;
  readonly weightDecay: number;
  readonly momentum: number;
  readonly centered: boolean;
  #step = 0;
  #squareAvg: Float64Array;
  #momentumBuffer: Float64Array;
  #gradAvg: Float64Array;

  constructor(size: number, options: RmspropOptions) {
    checkLr(options.lr);
    this.lr = options.lr;
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
    this.#squareAvg = new Float64Array(size);
    this.#momentumBuffer = new Float64Array(size);
    this.#gradAvg = new Float64Array(size);
  }

  /** Updates `params` in place from `grad`. */
  step(params: Float64Array, grad: Float64Array): void {
    const size = this.#squareAvg.length;
    checkSizes(params, grad, size);
    this.#step++;
    const { alpha, eps, weightDecay, momentum, lr } = this;
    for (let i = 0; i < size; i++) {
      const g = weightDecay !== 0 ? grad[i] + weightDecay * params[i] : grad[i];
      const v = this.#squareAvg[i] = alpha * this.#squareAvg[i] + (1 - alpha) * g * g;
      let avg: number;
      if (this.centered) {
        const ga = this.#gradAvg[i] = alpha * this.#gradAvg[i] + (1 - alpha) * g;
        avg = Math.sqrt(v - ga * ga) + eps;
      } else {
        avg = Math.sqrt(v) + eps;
      }
      if (momentum > 0) {
        const b = this.#momentumBuffer[i] = momentum * this.#momentumBuffer[i] + g / avg;
        params[i] -= lr * b;
      } else {
        params[i] -= lr * g / avg;
      }
    }
  }

  /** A JSON-safe copy of the state. */
  state(): RmspropState {
    return {
      lr: this.lr,
      step: this.#step,
      squareAvg: Array.from(this.#squareAvg),
      momentumBuffer: Array.from(this.#momentumBuffer),
      gradAvg: Array.from(this.#gradAvg),
    };
  }

  /** Restores a state from {@linkcode Rmsprop.state}. */
  load(state: RmspropState): void {
    if (state.squareAvg.length !== this.#squareAvg.length) {
      throw new RangeError(
        `RMSprop state has ${state.squareAvg.length} values: expected ${this.#squareAvg.length}`,
      );
    }
    this.lr = state.lr;
    this.#step = state.step;
    this.#squareAvg = Float64Array.from(state.squareAvg);
    this.#momentumBuffer = Float64Array.from(state.momentumBuffer);
    this.#gradAvg = Float64Array.from(state.gradAvg);
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

/** Serialisable state of an {@linkcode Sgd}. */
export interface SgdState {
  lr: number;
  step: number;
  momentumBuffer: number[] | null;
}

/**
 * SGD as in `torch.optim.SGD`: `g ← g + wd·θ`; with momentum the buffer starts at `g` and then
 * `b ← μ·b + (1−dampening)·g`, the step uses `g + μ·b` (Nesterov) or `b`; `θ ← θ − lr·step`.
 */
export class Sgd {
  /** Current learning rate (decayed by the trainer). */
  lr: number;
  readonly momentum: number;
  readonly dampening: number;
  readonly weightDecay: number;
  readonly nesterov: boolean;
  #step = 0;
  #buffer: Float64Array | null = null;
  readonly #size: number;

  constructor(size: number, options: SgdOptions) {
    checkLr(options.lr);
    this.lr = options.lr;
    this.momentum = options.momentum ?? 0;
    this.dampening = options.dampening ?? 0;
    this.weightDecay = options.weightDecay ?? 0;
    this.nesterov = options.nesterov ?? false;
    if (this.nesterov && (this.momentum <= 0 || this.dampening !== 0)) {
      throw new RangeError("SGD nesterov needs momentum > 0 and dampening 0");
    }
    this.#size = size;
  }

  /** Updates `params` in place from `grad`. */
  step(params: Float64Array, grad: Float64Array): void {
    checkSizes(params, grad, this.#size);
    this.#step++;
    const { momentum, dampening, weightDecay, nesterov, lr } = this;
    const first = this.#buffer === null;
    if (momentum !== 0 && first) this.#buffer = new Float64Array(this.#size);
    for (let i = 0; i < this.#size; i++) {
      let g = weightDecay !== 0 ? grad[i] + weightDecay * params[i] : grad[i];
      if (momentum !== 0) {
        const buf = this.#buffer!;
        buf[i] = first ? g : momentum * buf[i] + (1 - dampening) * g;
        g = nesterov ? g + momentum * buf[i] : buf[i];
      }
      params[i] -= lr * g;
    }
  }

  /** A JSON-safe copy of the state. */
  state(): SgdState {
    return {
      lr: this.lr,
      step: this.#step,
      momentumBuffer: this.#buffer ? Array.from(this.#buffer) : null,
    };
  }

  /** Restores a state from {@linkcode Sgd.state}. */
  load(state: SgdState): void {
    this.lr = state.lr;
    this.#step = state.step;
    this.#buffer = state.momentumBuffer ? Float64Array.from(state.momentumBuffer) : null;
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
