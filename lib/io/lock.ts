/**
 * Exclusive ownership of an output (a dataset folder, an LD3 run folder, an evaluation result)
 * while one process works on it, so that two runs never write into the same place at once.
 *
 * The lock of a target `dir/name` is the file `dir/.name.lock` beside it, holding the owner's
 * record as JSON (`{ "pid", "host", "started", "what" }`). Ownership itself is an OS file lock
 * (`flock`) on that file, held as long as the owner runs: the kernel releases it when the owner
 * exits in any way, `kill -9` included, so a lock file whose owner died is never an obstacle —
 * the next run finds it unlocked and takes it over. A second process that finds the lock held
 * reads the record and fails with one line naming the owner ({@linkcode LockedError}).
 *
 * Releasing removes the lock file while still holding the lock; a process that opened the file
 * just before it was removed notices (its open file is no longer the one at the path) and tries
 * again, so two processes never both believe they own the target.
 *
 * Temporary files of atomic writes (`atomic.ts`) to the target, or in the target folder, that a
 * killed owner left are removed once the lock is taken, and only then: any other moment they
 * may be a live run's.
 *
 * On a file system without `flock` the record decides: a lock whose owner runs on this host
 * under a live pid is held, any other is stale and taken over.
 *
 * A *shared* lock (`{ shared: true }`) lets several processes hold a target together — the
 * shards of one sharded run writing one dataset folder — while keeping out an exclusive owner
 * (a plain run), and the other way round. Shared holders write no record and remove nothing;
 * the last one to release removes the lock file. Each shard owns its own part exclusively with a
 * lock of its own.
 *
 * @module
 */
import { basename, dirname, join } from "node:path";
import { hostname } from "node:os";
import { isTempFileName, isTempFileOf } from "./atomic.ts";
import { makeDirs, removeEmptyDirs } from "./fs.ts";

/** The record a lock file holds: who owns the target. */
export interface LockOwner {
  /** Process id of the owner. */
  pid: number;
  /** Host name of the machine it runs on. */
  host: string;
  /** ISO time the owner took the lock. */
  started: string;
  /** What the owner does, e.g. `generate`. */
  what?: string;
}

/** The target is owned by another process. */
export class LockedError extends Error {
  /** The target. */
  readonly target: string;
  /** The lock file. */
  readonly lockFile: string;
  /** Its owner, when the record could be read. */
  readonly owner: LockOwner | undefined;
  /** `holders` describes the owner when its record could not be read. */
  constructor(target: string, lockFile: string, owner: LockOwner | undefined, holders?: string) {
    const who = owner
      ? `${owner.what ? `${owner.what}, ` : ""}process ${owner.pid} on ${owner.host} since ` +
        owner.started
      : holders ?? "another process";
    super(
      `${target} is in use by ${who} (lock ${lockFile}): wait for it to finish or stop it, ` +
        `or choose another output`,
    );
    this.name = "LockedError";
    this.target = target;
    this.lockFile = lockFile;
    this.owner = owner;
  }
}

/** Options of {@linkcode lockOutput}. */
export interface LockOutputOptions {
  /** What the owner does, recorded for the message a second process prints. */
  what?: string;
  /**
   * Hold the target together with other shared holders, never with an exclusive owner: no
   * record is written, no temporary files are removed, and at release the folders made for it
   * stay (another holder may use them). @default {false}
   */
  shared?: boolean;
}

/** Options of {@linkcode OutputLock.release}. */
export interface ReleaseOptions {
  /**
   * Also remove the folders the lock created for the target (its missing parents) where they
   * are still empty: a run that wrote nothing leaves no trace. @default {true}
   */
  removeCreatedDirs?: boolean;
}

/** A held lock on a target. */
export interface OutputLock {
  /** The target. */
  readonly target: string;
  /** The lock file. */
  readonly lockFile: string;
  /** Folders created so that the target's folder exists, outermost first. */
  readonly createdDirs: readonly string[];
  /** The owner of a stale lock this one took over (a process that died holding it). */
  readonly tookOverFrom: LockOwner | undefined;
  /**
   * Removes the lock file and releases the lock, then the folders it created where they are
   * empty (again: nothing).
   */
  release(options?: ReleaseOptions): Promise<void>;
  /** {@linkcode release}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * The lock file of a target: `.name.lock` beside it.
 *
 * @example
 * ```ts
 * console.log(lockFileOf("train_data/uni_pc_NFE20_edm")); // "train_data/.uni_pc_NFE20_edm.lock"
 * ```
 */
export function lockFileOf(target: string): string {
  return join(dirname(target), `.${basename(target)}.lock`);
}

/** Whether a process with this record runs now (unknowable for another host: assumed so). */
export function ownerAlive(owner: LockOwner): boolean {
  if (owner.host !== hostname()) return true;
  if (owner.pid === Deno.pid) return true;
  try {
    Deno.kill(owner.pid, 0);
    return true;
  } catch (e) {
    // ESRCH: no such process. EPERM: it exists but belongs to someone else.
    return !(e instanceof Deno.errors.NotFound);
  }
}

function parseOwner(bytes: Uint8Array): LockOwner | undefined {
  try {
    const v = JSON.parse(new TextDecoder().decode(bytes));
    if (Number.isSafeInteger(v?.pid) && typeof v.host === "string") return v as LockOwner;
  } catch { /* empty or partly written: no record */ }
  return undefined;
}

async function readOwner(file: Deno.FsFile): Promise<LockOwner | undefined> {
  await file.seek(0, Deno.SeekMode.Start);
  const chunks: Uint8Array[] = [];
  const buffer = new Uint8Array(4096);
  for (let n = await file.read(buffer); n !== null && n > 0; n = await file.read(buffer)) {
    chunks.push(buffer.slice(0, n));
    if (chunks.length > 16) break; // not a record of ours
  }
  const bytes = new Uint8Array(chunks.reduce((a, c) => a + c.length, 0));
  let offset = 0;
  for (const c of chunks) {
    bytes.set(c, offset);
    offset += c.length;
  }
  return parseOwner(bytes);
}

/**
 * The record of an owner that has just taken the lock and not yet written it: read again for a
 * moment, so the message can name it.
 */
async function awaitOwner(file: Deno.FsFile): Promise<LockOwner | undefined> {
  for (let k = 0; k < 20; k++) {
    await new Promise((r) => setTimeout(r, 10));
    const owner = await readOwner(file);
    if (owner) return owner;
  }
  return undefined;
}

/** Whether the open file is still the one at `path` (a releasing owner may have removed it). */
async function stillAtPath(file: Deno.FsFile, path: string): Promise<boolean> {
  const [open, named] = [await file.stat(), await Deno.stat(path).catch(() => undefined)];
  return named !== undefined && open.ino === named.ino && open.dev === named.dev;
}

/** An OS lock on the file, or, where the file system has none, the record's verdict. */
async function tryOsLock(
  file: Deno.FsFile,
  exclusive = true,
): Promise<"locked" | "held" | "unsupported"> {
  try {
    return await file.tryLock(exclusive) ? "locked" : "held";
  } catch {
    return "unsupported";
  }
}

function openError(e: unknown, target: string, lockFile: string): Error {
  if (e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotCapable) {
    return new Deno.errors.PermissionDenied(
      `Cannot write beside ${target}: ${lockFile}: ${(e as Error).message}`,
    );
  }
  if (e instanceof Error && /read-only|EROFS/i.test(e.message)) {
    return new Error(`Cannot write beside ${target} (read-only file system): ${lockFile}`);
  }
  return new Error(`Cannot create the lock ${lockFile}: ${(e as Error).message}`);
}

/**
 * Takes exclusive ownership of `target` (a file or folder, which need not exist): creates its
 * missing parent folders, then the lock file beside it. Fails at once, never waits.
 *
 * @throws {LockedError} When another process (or another lock in this one) owns the target.
 * @throws {Deno.errors.PermissionDenied} When the target's folder cannot be written.
 *
 * @example
 * ```ts
 * const dir = Deno.makeTempDirSync();
 * const lock = await lockOutput(`${dir}/out.json`, { what: "eval" });
 * await Deno.writeTextFile(`${dir}/out.json`, "{}");
 * await lock.release();
 * ```
 */
export async function lockOutput(
  target: string,
  options: LockOutputOptions = {},
): Promise<OutputLock> {
  const lockFile = lockFileOf(target);
  let createdDirs: string[];
  try {
    createdDirs = await makeDirs(dirname(target));
  } catch (e) {
    throw openError(e, target, lockFile);
  }
  try {
    // A few rounds: each lost race against a releasing owner costs one.
    for (let attempt = 0; attempt < 20; attempt++) {
      const lock = await tryLockOnce(target, lockFile, createdDirs, options);
      if (lock) return lock;
    }
    throw new LockedError(target, lockFile, undefined);
  } catch (e) {
    await removeEmptyDirs(createdDirs);
    throw e;
  }
}

async function tryLockOnce(
  target: string,
  lockFile: string,
  createdDirs: string[],
  options: LockOutputOptions,
): Promise<OutputLock | undefined> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(lockFile, { read: true, write: true, create: true });
  } catch (e) {
    throw openError(e, target, lockFile);
  }
  try {
    const os = await tryOsLock(file, !options.shared);
    const previous = await readOwner(file);
    if (os === "held") {
      // A releasing owner removed it meanwhile: try again.
      if (!await stillAtPath(file, lockFile)) {
        file.close();
        return undefined;
      }
      const owner = previous ?? await awaitOwner(file);
      if (owner === undefined && await sharedHolders(file)) {
        throw new LockedError(target, lockFile, undefined, "the shards of a sharded run");
      }
      throw new LockedError(target, lockFile, owner);
    }
    if (os === "unsupported" && previous && ownerAlive(previous)) {
      throw new LockedError(target, lockFile, previous);
    }
    if (!await stillAtPath(file, lockFile)) {
      file.close();
      return undefined;
    }
    if (options.shared) return sharedLock(target, lockFile, file, createdDirs);
    const owner: LockOwner = {
      pid: Deno.pid,
      host: hostname(),
      started: new Date().toISOString(),
      ...(options.what ? { what: options.what } : {}),
    };
    try {
      await file.truncate(0);
      await file.seek(0, Deno.SeekMode.Start);
      await file.write(new TextEncoder().encode(JSON.stringify(owner) + "\n"));
      await removeTempFilesOf(target);
    } catch (e) {
      // Ours, but unusable (a full disk): take it away again while still holding it.
      await Deno.remove(lockFile).catch(() => {});
      throw new Error(`Cannot write the lock ${lockFile}: ${(e as Error).message}`);
    }
    return heldLock(target, lockFile, file, createdDirs, previous);
  } catch (e) {
    try {
      file.close();
    } catch { /* already closed */ }
    throw e;
  }
}

/** Removes the temporary files of writes to `target` and, for a folder, those in it. */
async function removeTempFilesOf(target: string): Promise<void> {
  const name = basename(target);
  const remove = async (dir: string, test: (entry: string) => boolean) => {
    try {
      for await (const entry of Deno.readDir(dir)) {
        if (entry.isFile && test(entry.name)) await Deno.remove(join(dir, entry.name));
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory)) throw e;
    }
  };
  await remove(dirname(target), (entry) => isTempFileOf(entry, name));
  await remove(target, isTempFileName);
}

/**
 * Whether the lock a file's holders keep is a shared one: a shared lock of our own is granted
 * only then (and given back at once).
 */
async function sharedHolders(file: Deno.FsFile): Promise<boolean> {
  try {
    if (!await file.tryLock(false)) return false;
    await file.unlock();
    return true;
  } catch {
    return false;
  }
}

/** A shared hold on a target: at release the last holder removes the lock file. */
function sharedLock(
  target: string,
  lockFile: string,
  file: Deno.FsFile,
  createdDirs: string[],
): OutputLock {
  let released = false;
  const release = async () => {
    if (released) return;
    released = true;
    // Alone when an exclusive lock is granted: then the file goes, as an exclusive owner's does.
    const alone = await file.tryLock(true).catch(() => false);
    if (alone && await stillAtPath(file, lockFile)) await Deno.remove(lockFile).catch(() => {});
    file.close();
  };
  return {
    target,
    lockFile,
    createdDirs,
    tookOverFrom: undefined,
    release,
    [Symbol.asyncDispose]: () => release(),
  };
}

function heldLock(
  target: string,
  lockFile: string,
  file: Deno.FsFile,
  createdDirs: string[],
  previous: LockOwner | undefined,
): OutputLock {
  let released = false;
  const release = async (options: ReleaseOptions = {}) => {
    if (released) return;
    released = true;
    // Removed while still held: whoever opens it next finds a new file, not ours.
    await Deno.remove(lockFile).catch(() => {});
    file.close();
    if (options.removeCreatedDirs ?? true) await removeEmptyDirs(createdDirs);
  };
  return {
    target,
    lockFile,
    createdDirs,
    tookOverFrom: previous,
    release,
    [Symbol.asyncDispose]: () => release(),
  };
}

/** Several held locks, released together. */
export interface OutputLocks {
  /** The locks, in the order of their targets. */
  readonly locks: readonly OutputLock[];
  /** Releases every lock, the last taken first. */
  release(options?: ReleaseOptions): Promise<void>;
  /** {@linkcode release}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Locks every target of `targets` (duplicates once), in order, with {@linkcode lockOutput}; on
 * a failure releases those already taken. For a task's output files, so that a path that
 * cannot be written fails before any work.
 */
export async function lockOutputs(
  targets: readonly string[],
  options: LockOutputOptions = {},
): Promise<OutputLocks> {
  const locks: OutputLock[] = [];
  const release = async (opts: ReleaseOptions = {}) => {
    for (const lock of [...locks].reverse()) await lock.release(opts);
  };
  try {
    for (const target of [...new Set(targets)]) locks.push(await lockOutput(target, options));
  } catch (e) {
    await release();
    throw e;
  }
  return { locks, release, [Symbol.asyncDispose]: () => release() };
}
