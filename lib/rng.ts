/**
 * Counter-based random numbers: Philox4x32-10 (Salmon et al., "Parallel random numbers: as
 * easy as 1, 2, 3", SC 2011).
 *
 * A counter-based generator is a keyed bijection of a 128-bit counter, so any block of random
 * bits can be computed directly from `(key, counter)` with no sequential state. ld3 keys it
 * with the run's seed and puts the sample index in the counter: sample `i` gets the same
 * noise whether it is drawn alone, in a batch of 7, or after a resume.
 *
 * Layout: key = `[seed mod 2³², ⌊seed / 2³²⌋]`, counter = `[block, 0, index mod 2³²,
 * ⌊index / 2³²⌋]`; block `b` of sample `index` yields 4 uint32 words, i.e. 2 Box–Muller pairs,
 * i.e. normal values `4b … 4b+3`.
 *
 * All of ld3's randomness comes from this module: the noise above, and the permutations of
 * LD3's training rounds ({@linkcode shuffledOrder}), which keep the generator they have always
 * had so that learned grids stay reproducible.
 *
 * @module
 */
import { concatFloat64 } from "./_arrays.ts";

/** Philox4x32 round multipliers. */
const PHILOX_M0 = 0xd2511f53;
const PHILOX_M1 = 0xcd9e8d57;
/** Philox4x32 key schedule (Weyl) increments: golden ratio and √3 − 1. */
const PHILOX_W0 = 0x9e3779b9;
const PHILOX_W1 = 0xbb67ae85;
const TWO_POW_32 = 4294967296;

/**
 * High 32 bits of the 64-bit product of two uint32 values, exact: `a = aHi·2¹⁶ + aLo`, and
 * every partial product stays below 2⁵³. (V8 turns the divisions by 2¹⁶ into cheap exact
 * operations; this form measured faster than a four-way 16-bit split with `>>>`.)
 */
function mulHi32(a: number, b: number): number {
  const low = (a & 0xffff) * b; // < 2^48
  const mid = (a >>> 16) * b + Math.floor(low / 65536); // < 2^49
  return Math.floor(mid / 65536) >>> 0;
}

/** Output words of the last {@linkcode philoxBlock} call (module scratch: no allocation). */
const BLOCK = new Uint32Array(4);

/**
 * Philox4x32-10 on counter `(c0, c1, c2, c3)` with key `(k0, k1)`, all uint32 numbers, into
 * {@linkcode BLOCK}. Scalar arguments keep the hot loop of {@linkcode normalNoise} free of
 * array reads and allocations.
 */
function philoxBlock(c0: number, c1: number, c2: number, c3: number, k0: number, k1: number) {
  for (let round = 0; round < 10; round++) {
    if (round > 0) {
      k0 = (k0 + PHILOX_W0) >>> 0;
      k1 = (k1 + PHILOX_W1) >>> 0;
    }
    const hi0 = mulHi32(PHILOX_M0, c0);
    const lo0 = Math.imul(PHILOX_M0, c0) >>> 0;
    const hi1 = mulHi32(PHILOX_M1, c2);
    const lo1 = Math.imul(PHILOX_M1, c2) >>> 0;
    c0 = (hi1 ^ c1 ^ k0) >>> 0;
    c1 = lo1;
    c2 = (hi0 ^ c3 ^ k1) >>> 0;
    c3 = lo0;
  }
  BLOCK[0] = c0;
  BLOCK[1] = c1;
  BLOCK[2] = c2;
  BLOCK[3] = c3;
}

/**
 * Philox4x32-10 block function: 10 rounds over the 4-word counter with a 2-word key.
 *
 * Writes the 4 output words into `out` (which may be the same array as `counter`).
 *
 * @example
 * ```ts
 * const out = new Uint32Array(4);
 * philox4x32(new Uint32Array(4), new Uint32Array(2), out);
 * console.log(out[0].toString(16)); // "6627e8d5" (Random123 known-answer vector)
 * ```
 */
export function philox4x32(
  counter: ArrayLike<number>,
  key: ArrayLike<number>,
  out: Uint32Array,
): Uint32Array {
  philoxBlock(
    counter[0] >>> 0,
    counter[1] >>> 0,
    counter[2] >>> 0,
    counter[3] >>> 0,
    key[0] >>> 0,
    key[1] >>> 0,
  );
  out.set(BLOCK);
  return out;
}

/** Box–Muller's 2π, as the original expression `2 * Math.PI` evaluates it (bit-identical). */
const TWO_PI = 2 * Math.PI;

function checkCounterValue(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`${name} must be a non-negative safe integer: got ${value}`);
  }
}

/**
 * `size` standard-normal float64 values for sample `index` of the stream keyed by `seed`.
 *
 * Each Philox block gives words `(a, b, c, d)`; the pairs `(a, b)` and `(c, d)` become
 * uniforms `u = (w + ½)/2³²` in the open interval (0, 1) and then two normals each by
 * Box–Muller, `r = √(−2 ln u₁)`, `(r cos 2πu₂, r sin 2πu₂)`. The result depends only on
 * `(seed, index)`, and the first `k` values of a longer request equal a request of size `k`.
 *
 * @param seed Non-negative safe integer.
 * @param index Sample index (non-negative safe integer).
 * @param size Number of values.
 * @throws {RangeError} When an argument is not a non-negative safe integer.
 *
 * @example
 * ```ts
 * const a = normalNoise(0, 5, 3);
 * const b = normalNoise(0, 5, 10);
 * console.log(a[2] === b[2]); // true
 * ```
 */
export function normalNoise(seed: number, index: number, size: number): Float64Array {
  checkCounterValue("seed", seed);
  checkCounterValue("index", index);
  checkCounterValue("size", size);
  // The block number lives in one 32-bit counter word.
  if (size > 4 * TWO_POW_32) throw new RangeError(`size must be at most 2^34: got ${size}`);
  const k0 = seed % TWO_POW_32;
  const k1 = Math.floor(seed / TWO_POW_32);
  const c2 = index % TWO_POW_32;
  const c3 = Math.floor(index / TWO_POW_32);
  const out = new Float64Array(size);
  const fullBlocks = Math.floor(size / 4);
  for (let block = 0; block * 4 < size; block++) {
    philoxBlock(block, 0, c2, c3, k0, k1);
    const j = block * 4;
    // Same expressions, in the same order, as the reference `(w + ½)/2³²`, `√(−2 ln u₁)`,
    // `2π·u₂`: the values are bit-identical to the straightforward loop.
    const r0 = Math.sqrt(-2 * Math.log((BLOCK[0] + 0.5) / TWO_POW_32));
    const a0 = TWO_PI * ((BLOCK[1] + 0.5) / TWO_POW_32);
    const r1 = Math.sqrt(-2 * Math.log((BLOCK[2] + 0.5) / TWO_POW_32));
    const a1 = TWO_PI * ((BLOCK[3] + 0.5) / TWO_POW_32);
    if (block < fullBlocks) {
      out[j] = r0 * Math.cos(a0);
      out[j + 1] = r0 * Math.sin(a0);
      out[j + 2] = r1 * Math.cos(a1);
      out[j + 3] = r1 * Math.sin(a1);
    } else {
      // The last, partial block: keep only the values asked for.
      const tail = [r0 * Math.cos(a0), r0 * Math.sin(a0), r1 * Math.cos(a1), r1 * Math.sin(a1)];
      for (let k = 0; j + k < size; k++) out[j + k] = tail[k];
    }
  }
  return out;
}

/**
 * Noise for a batch of consecutive samples `start, start+1, …, start+count−1`, concatenated:
 * exactly `normalNoise(seed, start + b, size)` for each `b`, so a batch split never changes it.
 */
export function normalNoiseBatch(
  seed: number,
  start: number,
  options: { count: number; size: number },
): Float64Array {
  const { count, size } = options;
  checkCounterValue("count", count);
  return concatFloat64(Array.from({ length: count }, (_, b) => normalNoise(seed, start + b, size)));
}

/**
 * The uniform stream of the training-set shuffles (mulberry32 on one 32-bit word of state). It
 * is not Philox because every learned grid depends on the order it gives: replacing it changes
 * each published result (the demo's LD3 distance moved from 0.0190 to 0.0255 with a Philox
 * shuffle, seed noise of a 75-step run), so it is kept bit for bit, and only here.
 */
function mulberry32(state: number): () => number {
  let a = state >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / TWO_POW_32;
  };
}

/**
 * A Fisher–Yates permutation of `0 … count−1` keyed by `(seed, index)`: the same pair gives the
 * same order on any machine (LD3's training order of round `index`).
 *
 * @example
 * ```ts
 * import { shuffledOrder } from "./rng.ts";
 * const order = shuffledOrder(5, 0, 1);
 * console.log([...order].sort().join()); // "0,1,2,3,4"
 * ```
 */
export function shuffledOrder(count: number, seed: number, index: number): number[] {
  checkCounterValue("count", count);
  const rand = mulberry32((seed * 0x9e3779b1 + index * 0x85ebca6b + 0x1234567) >>> 0);
  const order = Array.from({ length: count }, (_, i) => i);
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}
