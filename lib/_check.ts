/**
 * Argument checks of the library's entry points that take no option declaration, in the words
 * of `lib/options.ts`, so that a CLI user sees the same message from every task.
 *
 * @module
 */
import { checkValue } from "./options.ts";

/** Throws a `RangeError` naming `name` unless `value` is a safe integer `>= min`. */
export function checkCount(name: string, value: number, min: number): void {
  checkValue({ flag: name, kind: "integer", help: "", min }, value, name);
}

/** Throws a `RangeError` naming `name` unless `value` is a safe integer in `[min, max]`. */
export function checkIntegerIn(name: string, value: number, min: number, max: number): void {
  checkValue({ flag: name, kind: "integer", help: "", min, max }, value, name);
}
