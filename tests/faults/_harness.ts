/**
 * Fault-injection helpers: tasks run as separate processes (so they can be killed, raced and
 * starved of disk), small models that fail in chosen ways, and the checks every fault case
 * makes of its outcome — the exit code, exactly one `error:` line, nothing half-written, no
 * stray files.
 *
 * Models are built with `lib/onnx/build.ts`, data with the tiny Gaussian mixture of
 * `tests/_tiny_gmm.ts`, so a task run costs well under a second.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { buildModel, type Dim, ElemType, node, tensor, valueInfo } from "../../lib/onnx/build.ts";
import { ROOT } from "../_run_task.ts";

export { ROOT };

/** What a finished task process did. */
export interface TaskRun {
  code: number;
  stdout: string;
  stderr: string;
  /** Its process id. */
  pid: number;
  /** Wall time from spawn to exit, ms. */
  ms: number;
  /** Whether it was killed with SIGKILL. */
  killed: boolean;
}

/** A task process started by {@linkcode spawnTask}. */
export interface RunningTask {
  readonly pid: number;
  /** Resolves when it exits. */
  readonly done: Promise<TaskRun>;
  /** `kill -9` (nothing when it has exited). */
  kill(): void;
}

/** Options of {@linkcode spawnTask}. */
export interface SpawnOptions {
  cwd?: string;
  /** Environment on top of `NO_COLOR=1` and the inherited one. */
  env?: Record<string, string>;
  /** Replace the inherited environment entirely with `env`. */
  clearEnv?: boolean;
}

/** Starts `deno task <task>` as a user would (`tasks/<task>.ts`, all permissions). */
export function spawnTask(task: string, args: string[], options: SpawnOptions = {}): RunningTask {
  const started = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", join(ROOT, "tasks", `${task}.ts`), ...args],
    cwd: options.cwd ?? ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...options.env },
    clearEnv: options.clearEnv,
  }).spawn();
  let exited = false;
  const done = child.output().then((out) => {
    exited = true;
    return {
      code: out.code,
      stdout: new TextDecoder().decode(out.stdout),
      stderr: new TextDecoder().decode(out.stderr),
      pid: child.pid,
      ms: performance.now() - started,
      killed: out.signal === "SIGKILL",
    };
  });
  return {
    pid: child.pid,
    done,
    kill() {
      if (exited) return;
      try {
        child.kill("SIGKILL");
      } catch { /* exited meanwhile */ }
    },
  };
}

/** Runs a task to its end. */
export function runTask(task: string, args: string[], options: SpawnOptions = {}) {
  return spawnTask(task, args, options).done;
}

/** Resolves once `check` holds (polled every 10 ms), or fails after `ms`. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  what: string,
  ms = 20000,
): Promise<void> {
  const end = performance.now() + ms;
  while (!await check()) {
    if (performance.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Whether a path exists. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** The `error:` lines of a run's stderr. */
export function errorLines(run: TaskRun): string[] {
  return run.stderr.split(/\r?\n/).filter((l) => l.startsWith("error:"));
}

/**
 * The run failed as a task should: exit code 1, exactly one `error:` line, which matches
 * `pattern`, and no stack trace. Returns the line.
 */
export function assertFailed(run: TaskRun, pattern: RegExp): string {
  const context = `exit ${run.code}, stderr:\n${run.stderr}\nstdout:\n${run.stdout}`;
  assert.equal(run.code, 1, context);
  const lines = errorLines(run);
  assert.equal(lines.length, 1, context);
  assert.match(lines[0], pattern, context);
  assert.doesNotMatch(run.stderr, /^\s+at /m, `a stack trace: ${context}`);
  return lines[0];
}

/** The run succeeded. */
export function assertOk(run: TaskRun): void {
  assert.equal(run.code, 0, `exit ${run.code}, stderr:\n${run.stderr}\nstdout:\n${run.stdout}`);
}

/** Every file under `root` (relative paths, sorted); an absent root has none. */
export async function listFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(dir: string, rel: string): Promise<void> {
    for await (const e of Deno.readDir(dir)) {
      const key = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory) await walk(join(dir, e.name), key);
      else out.push(key);
    }
  }
  if (await exists(root)) await walk(root, "");
  return out.sort();
}

/** The one run folder under a train's `--log_path` (lock files beside it ignored). */
export async function runFolder(logs: string): Promise<string | undefined> {
  if (!await exists(logs)) return undefined;
  const dirs = (await Array.fromAsync(Deno.readDir(logs))).filter((e) => e.isDirectory);
  assert.ok(dirs.length <= 1, `run folders under ${logs}: ${dirs.map((d) => d.name)}`);
  return dirs.length === 1 ? join(logs, dirs[0].name) : undefined;
}

/** Temporary files of atomic writes and lock files left under `root`. */
export async function strayFiles(root: string): Promise<string[]> {
  return (await listFiles(root)).filter((f) => {
    const name = f.slice(f.lastIndexOf("/") + 1);
    return (name.startsWith(".") && name.endsWith(".tmp")) || name.endsWith(".lock");
  });
}

/** No temporary or lock files under `root`. */
export async function assertNoStrayFiles(root: string): Promise<void> {
  assert.deepEqual(await strayFiles(root), [], `stray files under ${root}`);
}

/** A seeded generator of uniform numbers in [0, 1) (mulberry32), for reproducible faults. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A model config in `dir` for `model.onnx` there: x0 prediction, time input t, VE schedule. */
export function modelYaml(shape: readonly number[]): string {
  return [
    "name: fault",
    "model:",
    "  path: model.onnx",
    "  inputs: { x: x, t: t }",
    "  output: out",
    "  prediction: x0",
    "  time_input: t",
    "schedule: { kind: ve, sigma_max: 80, sigma_min: 0.002 }",
    `shape: [${shape.join(", ")}]`,
    "",
  ].join("\n");
}

/** Writes `model.onnx` and `model.yml` into `dir`; returns the config's path. */
export async function writeModel(
  dir: string,
  onnx: Uint8Array,
  shape: readonly number[],
): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeFile(join(dir, "model.onnx"), onnx);
  await Deno.writeTextFile(join(dir, "model.yml"), modelYaml(shape));
  return join(dir, "model.yml");
}

/** `out = 0.5·x + 0·t` over x `[batch, ...shape]`: finite, of any channel count. */
export function halvingModel(shape: readonly number[]): Uint8Array {
  return elementwiseModel(shape, "half");
}

/** `out = x / (0·t)` over x `[batch, ...shape]`: ±Inf or NaN at every call. */
export function nanModel(shape: readonly number[]): Uint8Array {
  return elementwiseModel(shape, "nan");
}

function elementwiseModel(shape: readonly number[], kind: "half" | "nan"): Uint8Array {
  const axes = BigInt64Array.from(shape.map((_, i) => BigInt(i + 1)));
  const batch: Dim = "batch";
  return buildModel({
    nodes: [
      node("Mul", ["t", "zero"], ["t0"]),
      node("Unsqueeze", ["t0", "axes"], ["tb"]),
      kind === "half" ? node("Mul", ["x", "half"], ["hx"]) : node("Div", ["x", "tb"], ["hx"]),
      node("Add", ["hx", "tb"], ["out"]),
    ],
    initializers: [
      tensor("zero", [], [0]),
      tensor("half", [], [0.5]),
      tensor("axes", [axes.length], axes),
    ],
    inputs: [
      valueInfo("x", ElemType.float, [batch, ...shape]),
      valueInfo("t", ElemType.float, [batch]),
    ],
    outputs: [valueInfo("out", ElemType.float, [batch, ...shape])],
  });
}

/** The options every generate of the tiny mixture here shares (tiny, fast, deterministic). */
export function generateArgs(config: string, dataDir: string, extra: string[] = []): string[] {
  return [
    "--config",
    config,
    "--data_dir",
    dataDir,
    "--steps",
    "4",
    "--solver_name",
    "dpm_solver++",
    "--skip_type",
    "logSNR",
    "--sampling_batch_size",
    "4",
    ...extra,
  ];
}

/** The dataset folder {@linkcode generateArgs} writes under `dataDir`. */
export function datasetDir(dataDir: string): string {
  return join(dataDir, "dpm_solver++_NFE4_logSNR");
}
