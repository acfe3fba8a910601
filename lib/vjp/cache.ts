/**
 * A disk cache of built VJP models, so that a second run on the same network starts its
 * backward passes at once instead of rebuilding the graphs (a shape pass over the network, the
 * rules, the encoding: a few hundred milliseconds on the bundled UNet, seconds on larger ones).
 *
 * An entry is keyed by the SHA-256 of the network's ONNX bytes and of a JSON record of what was
 * built (the kind of build, the differentiated inputs and output, the input shapes, the
 * builder's own sources). It is a folder holding the model files and, written last,
 * `entry.json` with the SHA-256 of each file; every file is written atomically (`lib/io/atomic.ts`).
 * A reader checks every file against `entry.json`; a missing, partial or corrupt entry counts as
 * absent and is built and written again.
 *
 * Location: `$LD3_CACHE_DIR/vjp` when `LD3_CACHE_DIR` is set (set it to `off` to turn the cache
 * off), else `$XDG_CACHE_HOME/ld3/vjp`, else `~/.cache/ld3/vjp`. Entries are never removed by
 * ld3: delete the folder to reclaim the space.
 *
 * @module
 */
import { join } from "node:path";
import { writeFileAtomic, writeJsonAtomic } from "../io/atomic.ts";
import { canonicalJson } from "../fingerprint.ts";

/** The environment variable that moves (or, set to `off`, disables) the cache. */
export const CACHE_DIR_VARIABLE = "LD3_CACHE_DIR";

/**
 * Bump when a change to the VJP builder must not reuse models built before it (the builder's
 * sources are also part of every key when they are local files).
 */
const CACHE_FORMAT = 1;

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no --allow-env: no cache
  }
}

/**
 * The folder of built VJP models: see the module doc; `undefined` when the cache is off or no
 * home folder is known.
 *
 * @example
 * ```ts
 * Deno.env.set("LD3_CACHE_DIR", "/tmp/ld3-cache");
 * console.log(vjpCacheDir()); // /tmp/ld3-cache/vjp
 * Deno.env.delete("LD3_CACHE_DIR");
 * ```
 */
export function vjpCacheDir(): string | undefined {
  const explicit = env(CACHE_DIR_VARIABLE);
  if (explicit !== undefined && explicit !== "") {
    return explicit === "off" ? undefined : join(explicit, "vjp");
  }
  const xdg = env("XDG_CACHE_HOME");
  if (xdg) return join(xdg, "ld3", "vjp");
  const home = env("HOME");
  return home ? join(home, ".cache", "ld3", "vjp") : undefined;
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

let builderHash: Promise<string> | undefined;

/**
 * A hash of the VJP builder's sources (this folder and its rules) when they are local files,
 * so that editing a rule never reuses a graph built by the old one; the format number alone
 * when the module was loaded from elsewhere.
 */
function builderFingerprint(): Promise<string> {
  builderHash ??= (async () => {
    const here = new URL(".", import.meta.url);
    if (here.protocol !== "file:") return `format ${CACHE_FORMAT}`;
    const parts: string[] = [];
    for (const dir of [here, new URL("rules/", here)]) {
      const names: string[] = [];
      try {
        for await (const e of Deno.readDir(dir)) if (e.name.endsWith(".ts")) names.push(e.name);
      } catch {
        return `format ${CACHE_FORMAT}`;
      }
      for (const name of names.sort()) {
        parts.push(name, await Deno.readTextFile(new URL(name, dir)));
      }
    }
    return await sha256Hex(new TextEncoder().encode(`${CACHE_FORMAT}\n${parts.join("\n")}`));
  })();
  return builderHash;
}

/** What `entry.json` records. */
interface EntryRecord {
  key: unknown;
  /** SHA-256 of each file of the entry, by file name. */
  files: Record<string, string>;
  /** What the builder returned besides the files (JSON). */
  meta: unknown;
}

/** A cache entry's files and metadata. */
export interface CachedBuild<M> {
  /** Model files by name. */
  files: Record<string, Uint8Array>;
  /** The builder's metadata. */
  meta: M;
  /**
   * The entry's folder, holding the files under their names, when they are in the cache (a
   * reader in another thread can open them from there instead of being sent the bytes).
   */
  dir?: string;
}

/** Options of {@linkcode cachedBuild}. */
export interface CachedBuildOptions {
  /** The cache folder. @default {vjpCacheDir()} */
  dir?: string;
}

/**
 * The build of `key` for the network `model`: read from the cache when a whole, intact entry is
 * there, else made by `build` and written to the cache (a failed write only costs the next run
 * a rebuild). File names must be plain names (`forward.onnx`).
 *
 * @example
 * ```ts ignore
 * const { files } = await cachedBuild(bytes, { kind: "vjp", wrt: ["x"] }, async () => ({
 *   files: { "vjp.onnx": await buildVjpModel(bytes, { wrt: ["x"] }) },
 *   meta: null,
 * }));
 * ```
 */
export async function cachedBuild<M>(
  model: Uint8Array,
  key: Record<string, unknown>,
  build: () => Promise<CachedBuild<M>>,
  options: CachedBuildOptions = {},
): Promise<CachedBuild<M>> {
  const root = options.dir ?? vjpCacheDir();
  if (root === undefined) return await build();
  const fullKey = { ...key, builder: await builderFingerprint() };
  const keyHash = (await sha256Hex(new TextEncoder().encode(canonicalJson(fullKey)))).slice(0, 24);
  const dir = join(root, (await sha256Hex(model)).slice(0, 24), keyHash);
  const hit = await readEntry<M>(dir);
  if (hit) return { ...hit, dir };
  const built = await build();
  const written = await writeEntry(dir, fullKey, built).then(() => true, () => false);
  return written ? { ...built, dir } : built;
}

/** An entry whose every file matches its record, or `undefined`. */
async function readEntry<M>(dir: string): Promise<CachedBuild<M> | undefined> {
  try {
    const record = JSON.parse(await Deno.readTextFile(join(dir, "entry.json"))) as EntryRecord;
    const files: Record<string, Uint8Array> = {};
    for (const [name, hash] of Object.entries(record.files)) {
      const bytes = await Deno.readFile(join(dir, name));
      if (await sha256Hex(bytes) !== hash) return undefined;
      files[name] = bytes;
    }
    return { files, meta: record.meta as M };
  } catch {
    return undefined;
  }
}

/** Writes the files, then the record that names them (so a torn entry reads as absent). */
async function writeEntry<M>(dir: string, key: unknown, built: CachedBuild<M>): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const files: Record<string, string> = {};
  for (const [name, bytes] of Object.entries(built.files)) {
    await writeFileAtomic(join(dir, name), bytes);
    files[name] = await sha256Hex(bytes);
  }
  const record: EntryRecord = { key, files, meta: built.meta };
  await writeJsonAtomic(join(dir, "entry.json"), record);
}
