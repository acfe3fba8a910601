/**
 * Small file-system helpers shared by the modules that resume work from disk (datasets, LD3
 * runs, benchmarks, evaluation checkpoints): they treat "not there" as an answer and every
 * other failure (permissions, I/O) as an error.
 *
 * @module
 */

/**
 * Whether something exists at `path`.
 *
 * @throws Any error of `Deno.stat` other than `NotFound` (e.g. a permission error), so that an
 * unreadable file is never mistaken for a missing one.
 *
 * @example
 * ```ts
 * console.log(await pathExists(Deno.makeTempDirSync())); // true
 * ```
 */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** Removes the file at `path` if there is one; a missing file is not an error. */
export async function removeIfExists(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}
