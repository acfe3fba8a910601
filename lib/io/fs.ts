/**
 * Small file-system helpers shared by the modules that resume work from disk (datasets, LD3
 * runs, benchmarks, evaluation checkpoints): they treat "not there" as an answer and every
 * other failure (permissions, I/O) as an error.
 *
 * @module
 */
import { dirname, resolve } from "node:path";

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

/**
 * Creates folder `dir` and its missing parents, like `mkdir -p`, and says which it created.
 *
 * @returns The folders created, outermost first (empty when `dir` existed).
 *
 * @example
 * ```ts
 * const root = Deno.makeTempDirSync();
 * console.log((await makeDirs(`${root}/a/b`)).length); // 2
 * ```
 */
export async function makeDirs(dir: string): Promise<string[]> {
  const missing: string[] = [];
  for (let d = resolve(dir); !await pathExists(d); d = dirname(d)) {
    missing.unshift(d);
    if (dirname(d) === d) break;
  }
  const created: string[] = [];
  for (const d of missing) {
    try {
      await Deno.mkdir(d);
      created.push(d);
    } catch (e) {
      // Another process made it meanwhile: not ours to remove later.
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
    }
  }
  return created;
}

/**
 * Removes the folders `dirs` (as {@linkcode makeDirs} returns them, outermost first) from the
 * innermost out, each only while it is empty; never fails.
 */
export async function removeEmptyDirs(dirs: readonly string[]): Promise<void> {
  for (const d of [...dirs].reverse()) {
    try {
      await Deno.remove(d);
    } catch (e) {
      // Not empty (or not ours to remove): the folders above it are not empty either.
      if (!(e instanceof Deno.errors.NotFound)) return;
    }
  }
}
