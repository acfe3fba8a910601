/**
 * Files given as URLs (`https://`, `http://`, `file://`): configs and the models, decoders,
 * feature models and statistics they name. Each file is downloaded once into a local cache and
 * used from there.
 *
 * Cache layout (`$LD3_CACHE_DIR`, else `$XDG_CACHE_HOME/ld3`, else `~/.cache/ld3`):
 *
 * ```text
 * blobs/<sha256>             every file's bytes, named by their SHA-256 (content-addressed)
 * urls/<key>/<file name>     the file of a URL, a hard link to its blob; <key> is the SHA-256 of
 *                            the URL's folder, so files of one remote folder sit side by side
 *                            (an ONNX model finds its external-data files next to it)
 * partial/<key>-<file name>  a download in progress; a later call resumes it (HTTP Range)
 * ```
 *
 * A file that is in the cache is never fetched again. With an expected SHA-256 the bytes are
 * verified before they enter the cache: a mismatch is one error and caches nothing.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { basename, join } from "node:path";
import { writeFileAtomic } from "./atomic.ts";
import { pathExists } from "./fs.ts";
import { ProgressBar } from "./progress.ts";

/** Whether `pathOrUrl` is a URL ld3 fetches (rather than a local path). */
export function isUrl(pathOrUrl: string | URL): boolean {
  return pathOrUrl instanceof URL || /^(https?|file):\/\//i.test(pathOrUrl);
}

/**
 * Resolves `reference` (a path as written in a config) against `base` (the config's URL or
 * folder): URLs stay URLs, relative paths of a remote config become URLs beside it.
 */
export function resolveReference(base: string, reference: string): string {
  if (isUrl(reference)) return new URL(reference).href;
  return new URL(reference, base).href;
}

/** The cache folder: `$LD3_CACHE_DIR`, else `$XDG_CACHE_HOME/ld3`, else `~/.cache/ld3`. */
export function cacheDir(): string {
  const env = (name: string) => {
    try {
      return Deno.env.get(name) || undefined;
    } catch {
      return undefined; // no env permission: the default below
    }
  };
  const explicit = env("LD3_CACHE_DIR");
  if (explicit) return explicit;
  const xdg = env("XDG_CACHE_HOME");
  if (xdg) return join(xdg, "ld3");
  return join(env("HOME") ?? ".", ".cache", "ld3");
}

/** Options of {@linkcode fetchCached}. */
export interface FetchCachedOptions {
  /** Expected SHA-256 of the file (hex): verified before anything is cached. */
  sha256?: string;
  /** A progress bar on stderr while downloading. @default {true} */
  progress?: boolean;
  /** The cache folder. @default {cacheDir()} */
  cacheDir?: string;
}

function sha256Hex(bytes: Uint8Array | string): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Where the file of `url` lives in the cache: its folder key and its name. */
export function cachedPath(url: string, root: string = cacheDir()): string {
  const u = new URL(url);
  const name = decodeURIComponent(basename(u.pathname)) || "index";
  const folder = new URL(".", u).href;
  return join(root, "urls", sha256Hex(folder).slice(0, 32), name);
}

/** Reads a `file://` URL, with the path in any error. */
async function readFileUrl(url: URL): Promise<Uint8Array> {
  try {
    return await Deno.readFile(url);
  } catch (e) {
    throw new Error(`Cannot read ${url.href}: ${(e as Error).message}`);
  }
}

/**
 * Downloads `url` into `partial`, resuming what an earlier call left there, and returns the
 * whole file's bytes.
 */
async function download(url: string, partial: string, progress: boolean): Promise<Uint8Array> {
  const have = await Deno.readFile(partial).catch(() => new Uint8Array(0));
  const headers: HeadersInit = have.length > 0 ? { Range: `bytes=${have.length}-` } : {};
  let response: Response;
  try {
    response = await fetch(url, { headers });
  } catch (e) {
    throw new Error(`Cannot download ${url}: ${(e as Error).message}`);
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw new Error(`Cannot download ${url}: HTTP ${response.status} ${response.statusText}`);
  }
  // A server that ignores Range sends the whole file again: start over.
  const resumed = response.status === 206;
  const start = resumed ? have.length : 0;
  const length = Number(response.headers.get("content-length") ?? NaN);
  const total = Number.isFinite(length) ? start + length : undefined;
  const bar = progress && total !== undefined && total > 1 << 20
    ? new ProgressBar(total, { label: `download ${basename(partial)}`, unit: "B", initial: start })
    : undefined;
  const file = await Deno.open(partial, { write: true, create: true, truncate: !resumed });
  const parts: Uint8Array[] = resumed ? [have] : [];
  let done = start;
  try {
    if (resumed) await file.seek(0, Deno.SeekMode.End);
    for await (const chunk of response.body!) {
      await file.write(chunk);
      parts.push(chunk);
      done += chunk.length;
      bar?.update(done);
    }
  } finally {
    file.close();
  }
  bar?.finish();
  const bytes = new Uint8Array(done);
  let offset = 0;
  for (const p of parts) bytes.set(p, offset), offset += p.length;
  return bytes;
}

/** Puts verified bytes into the cache: the blob, then the URL's link to it. */
async function store(bytes: Uint8Array, target: string, root: string): Promise<void> {
  const hash = sha256Hex(bytes);
  const blob = join(root, "blobs", hash);
  await Deno.mkdir(join(root, "blobs"), { recursive: true });
  if (!await pathExists(blob)) await writeFileAtomic(blob, bytes);
  await Deno.mkdir(join(target, ".."), { recursive: true });
  const temp = `${target}.${crypto.randomUUID()}.tmp`;
  try {
    await Deno.link(blob, temp);
  } catch {
    await Deno.copyFile(blob, temp); // another file system, or no hard links
  }
  await Deno.rename(temp, target);
}

/**
 * The local path of `url`'s file, downloaded into the cache on first use (see the module doc).
 * A `file://` URL is read in place unless a hash is to be checked.
 *
 * @throws {Error} For a failed download, naming the URL.
 * @throws {RangeError} When the bytes do not have the expected SHA-256 (nothing is cached).
 */
export async function fetchCached(
  url: string | URL,
  options: FetchCachedOptions = {},
): Promise<string> {
  const u = new URL(url);
  const root = options.cacheDir ?? cacheDir();
  if (u.protocol === "file:" && options.sha256 === undefined) return decodeURIComponent(u.pathname);
  const target = cachedPath(u.href, root);
  if (await pathExists(target)) {
    if (options.sha256 === undefined) return target;
    try {
      await verifySha256(target, options.sha256);
      return target;
    } catch {
      // A cached file of another version: fetch the one the config expects.
    }
  }
  const partial = join(root, "partial", basename(join(target, "..")) + "-" + basename(target));
  await Deno.mkdir(join(root, "partial"), { recursive: true });
  const bytes = u.protocol === "file:"
    ? await readFileUrl(u)
    : await download(u.href, partial, options.progress ?? true);
  const hash = sha256Hex(bytes);
  if (options.sha256 !== undefined && hash !== options.sha256.toLowerCase()) {
    await Deno.remove(partial).catch(() => {});
    throw new RangeError(
      `${u.href} has sha256 ${hash}: the config expects ${options.sha256.toLowerCase()}`,
    );
  }
  await store(bytes, target, root);
  await Deno.remove(partial).catch(() => {});
  return target;
}

/**
 * Checks a local file against an expected SHA-256 (hex).
 *
 * @throws {RangeError} Naming the file and both hashes when they differ.
 */
export async function verifySha256(path: string, expected: string): Promise<void> {
  // Streamed: weights files run to gigabytes.
  const hasher = createHash("sha256");
  const file = await Deno.open(path);
  for await (const chunk of file.readable) hasher.update(chunk); // closes the file at the end
  const hash = hasher.digest("hex");
  if (hash !== expected.toLowerCase()) {
    throw new RangeError(
      `${path} has sha256 ${hash}: the config expects ${expected.toLowerCase()}`,
    );
  }
}
