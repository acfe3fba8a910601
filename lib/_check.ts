/**
 * Argument checks shared by the library's entry points: one wording for every "must be an
 * integer" error, so that a CLI user sees the same message from every task.
 *
 * @module
 */

/** Throws a `RangeError` naming `name` unless `value` is a safe integer `>= min`. */
export function checkCount(name: string, value: number, min: number): void {
  if (!(Number.isSafeInteger(value) && value >= min)) {
    throw new RangeError(`${name} must be an integer >= ${min}: got ${value}`);
  }
}

/** Throws a `RangeError` naming `name` unless `value` is a safe integer in `[min, max]`. */
export function checkIntegerIn(name: string, value: number, min: number, max: number): void {
  if (!(Number.isSafeInteger(value) && value >= min && value <= max)) {
    throw new RangeError(`${name} must be an integer in [${min}, ${max}]: got ${value}`);
  }
}
