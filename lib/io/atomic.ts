/**
 * Atomic file writes: readers see the old file or the complete new one, never a partial one.
 *
 * The data goes to a uniquely named temporary file in the *same directory* (a rename is only
 * atomic within one file system) and is then renamed over the target. A crashed process
 * leaves at most a stray `.*.tmp` file, which {@linkcode isTempFileName} recognises. Surviving
 * a power loss also needs the data on disk before the rename: pass `sync: true` for that (it
 * costs milliseconds per file, which would dominate writing a dataset of small samples).
 *
 * @module
 */
import { basename, dirname, join } from "node:path";

let tempCounter = 0;

/** Whether a file name is one of this module's temporary files. */
export function isTempFileName(name: string): boolean {
  return name.startsWith(".") && name.endsWith(".tmp");
}

/**
 * Whether a file name is a temporary file of a write to a file named `target` (in the same
 * folder): `.<target>.<pid>.<n>.<random>.tmp`.
 *
 * @example
 * ```ts
 * console.log(isTempFileOf(".a.json.12.0.x1y2.tmp", "a.json")); // true
 * console.log(isTempFileOf(".a.json.partial.npz.12.0.x1y2.tmp", "a.json")); // false
 * ```
 */
export function isTempFileOf(name: string, target: string): boolean {
  const prefix = `.${target}.`;
  return name.startsWith(prefix) && /^\d+\.\d+\.[a-z0-9]*\.tmp$/.test(name.slice(prefix.length));
}

/** Options of {@linkcode writeFileAtomic}. */
export interface WriteFileAtomicOptions {
  /** Flush the data to disk (fsync) before the rename. @default {false} */
  sync?: boolean;
}

/**
 * Writes `bytes` to `path` atomically (temporary sibling + rename).
 *
 * @param path Target file; its directory must exist.
 * @param bytes File content.
 * @param options Whether to fsync before the rename.
 *
 * @example
 * ```ts
 * const dir = Deno.makeTempDirSync();
 * await writeFileAtomic(`${dir}/a.bin`, new Uint8Array([1, 2]));
 * console.log(Deno.readFileSync(`${dir}/a.bin`).length); // 2
 * ```
 */
export async function writeFileAtomic(
  path: string,
  bytes: Uint8Array,
  options: WriteFileAtomicOptions = {},
): Promise<void> {
  const tmp = join(
    dirname(path),
    `.${basename(path)}.${Deno.pid}.${tempCounter++}.${Math.random().toString(36).slice(2, 8)}.tmp`,
  );
  try {
    if (options.sync) {
      const file = await Deno.open(tmp, { write: true, createNew: true });
      try {
        let written = 0;
        while (written < bytes.length) written += await file.write(bytes.subarray(written));
        await file.sync();
      } finally {
        file.close();
      }
    } else {
      await Deno.writeFile(tmp, bytes, { createNew: true });
    }
    await Deno.rename(tmp, path);
  } catch (error) {
    await Deno.remove(tmp).catch(() => {});
    throw error;
  }
}

/** Writes `text` (UTF-8) to `path` atomically. */
export async function writeTextFileAtomic(
  path: string,
  text: string,
  options: WriteFileAtomicOptions = {},
): Promise<void> {
  await writeFileAtomic(path, new TextEncoder().encode(text), options);
}

/** Writes `value` as indented JSON (with a final newline) to `path` atomically. */
export async function writeJsonAtomic(
  path: string,
  value: unknown,
  options: WriteFileAtomicOptions = {},
): Promise<void> {
  await writeTextFileAtomic(path, JSON.stringify(value, null, 2) + "\n", options);
}
