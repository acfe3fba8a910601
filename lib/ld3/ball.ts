/**
 * LD3's relaxed ("soft") objective: the student may start from `x'` anywhere in the ball
 * `‖x' − z‖₂ ≤ prior_bound` around the teacher's standard-normal latent `z` (one ball per
 * sample). A relaxation step moves `x'` by SGD, projects it back into the ball and keeps the
 * move only for samples whose loss went down.
 *
 * @module
 */

/** Default radius `0.001·C·H·W / steps²` (CIFAR-10 at 10 steps: 0.03072). */
export function defaultPriorBound(sampleSize: number, steps: number): number {
  return 0.001 * sampleSize / (steps * steps);
}

/** Default SGD step of the relaxed latents, `12 / steps`. */
export function defaultShiftLr(steps: number): number {
  return 12 / steps;
}

/**
 * Projects each sample of `x` onto its ball `‖x_b − z_b‖₂ ≤ radius` (in place) and returns
 * `x`. A sample already inside is left untouched; one outside is moved radially onto the
 * sphere (to within 1e-12 relative, on the inside even after rounding).
 *
 * @throws {RangeError} On mismatched lengths or a negative radius.
 */
export function projectToBall(
  x: Float64Array,
  z: Float64Array,
  options: { radius: number; batch: number },
): Float64Array {
  const { radius, batch } = options;
  if (!(radius >= 0)) throw new RangeError(`Ball radius must be non-negative: got ${radius}`);
  if (x.length !== z.length) {
    throw new RangeError(`x and z must have equal lengths: got ${x.length} and ${z.length}`);
  }
  const size = x.length / batch;
  if (!Number.isInteger(size)) {
    throw new RangeError(`Batch ${batch} does not divide ${x.length} values`);
  }
  for (let b = 0; b < batch; b++) {
    const off = b * size;
    const norm = distance(x, z, off, size);
    if (norm <= radius) continue;
    // x = z + δ is rounded to z's ulp, which can leave the distance a few 1e-15 (relative to
    // δ) above the radius: aim 1e-12 inside, and shrink further if rounding still says outside.
    let target = radius * (1 - 1e-12);
    for (let attempt = 0; attempt < 40; attempt++) {
      const scale = target / distance(x, z, off, size);
      for (let i = off; i < off + size; i++) x[i] = z[i] + (x[i] - z[i]) * scale;
      if (distance(x, z, off, size) <= radius) break;
      target *= 1 - 1e-12 * 2 ** attempt;
    }
  }
  return x;
}

/** ‖x_b − z_b‖₂ of one sample. */
export function distance(x: Float64Array, z: Float64Array, off: number, size: number): number {
  let sq = 0;
  for (let i = off; i < off + size; i++) {
    const e = x[i] - z[i];
    sq += e * e;
  }
  return Math.sqrt(sq);
}

/**
 * One projected SGD step of the relaxed latents: `projectToBall(x − lr·grad)`. Returns a new
 * array; `x` is unchanged.
 */
export function relaxedStep(
  x: Float64Array,
  grad: Float64Array,
  z: Float64Array,
  options: { lr: number; radius: number; batch: number },
): Float64Array {
  if (grad.length !== x.length) {
    throw new RangeError(`grad must have the length of x (${x.length}): got ${grad.length}`);
  }
  const moved = Float64Array.from(x, (v, i) => v - options.lr * grad[i]);
  return projectToBall(moved, z, options);
}

/**
 * Accept-if-better: writes `candidate`'s sample b into `x` (in place) where
 * `newLoss[b] < oldLoss[b]`, leaves the others untouched, and returns which samples moved.
 */
export function acceptIfBetter(
  x: Float64Array,
  candidate: Float64Array,
  losses: { old: ArrayLike<number>; new: ArrayLike<number> },
): boolean[] {
  const batch = losses.old.length;
  if (losses.new.length !== batch || candidate.length !== x.length) {
    throw new RangeError("acceptIfBetter: mismatched batch or sample lengths");
  }
  const size = x.length / batch;
  const accepted: boolean[] = [];
  for (let b = 0; b < batch; b++) {
    const ok = losses.new[b] < losses.old[b];
    accepted.push(ok);
    if (ok) x.set(candidate.subarray(b * size, (b + 1) * size), b * size);
  }
  return accepted;
}
