/**
 * Small array helpers shared inside the library (not part of `mod.ts`).
 *
 * @module
 */

/** The arrays one after another, in float64 (rows of numbers, or float32/float64 arrays). */
export function concatFloat64(arrays: readonly ArrayLike<number>[]): Float64Array {
  const out = new Float64Array(arrays.reduce((n, a) => n + a.length, 0));
  let offset = 0;
  for (const a of arrays) {
    out.set(a, offset);
    offset += a.length;
  }
  return out;
}
