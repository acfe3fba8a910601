/**
 * Small array helpers shared inside the library (not part of `mod.ts`).
 *
 * @module
 */

/** The arrays one after another, in a new array of `Type`. */
function concat<T extends Float32Array | Float64Array>(
  Type: new (length: number) => T,
  arrays: readonly ArrayLike<number>[],
): T {
  const out = new Type(arrays.reduce((n, a) => n + a.length, 0));
  let offset = 0;
  for (const a of arrays) {
    out.set(a, offset);
    offset += a.length;
  }
  return out;
}

/** The arrays one after another, in float64 (rows of numbers, or float32/float64 arrays). */
export function concatFloat64(arrays: readonly ArrayLike<number>[]): Float64Array {
  return concat(Float64Array, arrays);
}

/** The arrays one after another, in float32 (conditioning vectors of a batch). */
export function concatFloat32(arrays: readonly ArrayLike<number>[]): Float32Array {
  return concat(Float32Array, arrays);
}
