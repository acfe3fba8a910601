/**
 * Small helpers shared by the data tasks (`generate`, `sample`, `bench`): option parsing and
 * the one-line error exit.
 *
 * @module
 */
import { readNpy } from "../lib/npy.ts";

/** Parses an optional integer option; `undefined` when absent. */
export function intOption(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === "" || !Number.isSafeInteger(n)) {
    throw new TypeError(`--${name} must be an integer: got "${value}"`);
  }
  return n;
}

/** Parses an optional number option; `undefined` when absent. */
export function numberOption(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n)) {
    throw new TypeError(`--${name} must be a number: got "${value}"`);
  }
  return n;
}

/** Reads a condition table from a `.npy` file (rows of one sample's condition). */
export async function conditionOption(
  path: string | undefined,
): Promise<{ data: Float32Array; shape: number[] } | undefined> {
  if (path === undefined) return undefined;
  const array = await readNpy(path);
  if (array.data instanceof BigInt64Array) {
    return { data: Float32Array.from(array.data, Number), shape: array.shape };
  }
  return { data: Float32Array.from(array.data), shape: array.shape };
}

/**
 * Runs a task's `main`, turning any error into one line on stderr (no stack trace) and exit
 * code 1.
 */
export async function runTask(main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    console.error(`error: ${message.replace(/\s*\n\s*/g, " ")}`);
    Deno.exit(1);
  }
}
