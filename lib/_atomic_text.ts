/**
 * Minimal atomic text write used by modules that must not depend on the data I/O layer.
 * @module
 */
import { rename, writeFile } from "node:fs/promises";

/** Writes `text` to a temporary sibling then renames it over `path`. */
export async function writeTextAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.${Deno.pid}.${Date.now()}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, path);
}
