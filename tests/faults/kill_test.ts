/**
 * `kill -9` at random points of generate, train and eval, each resumed by running the same
 * command again (with `--resume` for a train whose folder holds a checkpoint): the result must
 * be the uninterrupted run's, and nothing a killed run leaves behind may be half-written.
 *
 * The kill times are drawn from a seeded generator (printed; set `LD3_FAULT_SEED` to replay
 * them) over the uninterrupted run's wall time, so some kills land before any output, most in
 * the middle, some after the end.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { decodeNpz } from "../../lib/io/npz.ts";
import { hashTree, makeTinyGmm } from "../_tiny_gmm.ts";
import {
  assertNoStrayFiles,
  assertOk,
  datasetDir,
  exists,
  generateArgs,
  listFiles,
  runFolder,
  runTask,
  seededRandom,
  spawnTask,
  type TaskRun,
} from "./_harness.ts";

const SEED = Number(Deno.env.get("LD3_FAULT_SEED") ?? Date.now() % 1_000_000);
console.log(`kill points: LD3_FAULT_SEED=${SEED}`);
const random = seededRandom(SEED);

/** Runs the task and kills it after a random share of `ms`; returns the run. */
async function killSomewhere(task: string, args: string[], ms: number): Promise<TaskRun> {
  const running = spawnTask(task, args);
  const delay = random() * ms;
  const timer = setTimeout(() => running.kill(), delay);
  const run = await running.done;
  clearTimeout(timer);
  assert.ok(run.killed || run.code === 0, `not killed, failed:\n${run.stderr}`);
  return run;
}

/** What a killed generate may leave: complete, self-consistent sample files only. */
async function assertNoHalfWrittenSamples(dir: string): Promise<void> {
  for (const file of await listFiles(join(dir, "samples"))) {
    const name = file.slice(file.lastIndexOf("/") + 1);
    if (name.startsWith(".") && name.endsWith(".tmp")) continue; // cleaned by the next run
    const arrays = decodeNpz(await Deno.readFile(join(dir, "samples", file)));
    const meta = JSON.parse(new TextDecoder().decode(arrays.meta.data as Uint8Array));
    assert.equal(meta.index, Number(name.slice(0, 6)), file);
  }
  if (await exists(join(dir, "manifest.json"))) {
    JSON.parse(await Deno.readTextFile(join(dir, "manifest.json")));
  }
}

/** A manifest without its creation time. */
async function manifestOf(dir: string): Promise<Record<string, unknown>> {
  const { created: _created, ...rest } = JSON.parse(
    await Deno.readTextFile(join(dir, "manifest.json")),
  );
  return rest;
}

Deno.test("generate killed at random points and rerun gives the uninterrupted dataset", async () => {
  const gmm = await makeTinyGmm();
  try {
    const args = (dir: string) =>
      generateArgs(gmm.config, dir, ["--total_samples", "800", "--save_png"]);
    const reference = await runTask("generate", args(join(gmm.dir, "ref")));
    assertOk(reference);
    const data = join(gmm.dir, "data");
    for (let k = 0; k < 3; k++) {
      await killSomewhere("generate", args(data), reference.ms);
      await assertNoHalfWrittenSamples(datasetDir(data));
    }
    assertOk(await runTask("generate", args(data)));
    const { "manifest.json": _a, ...got } = await hashTree(datasetDir(data));
    const { "manifest.json": _b, ...want } = await hashTree(datasetDir(join(gmm.dir, "ref")));
    assert.deepEqual(got, want);
    assert.deepEqual(
      await manifestOf(datasetDir(data)),
      await manifestOf(datasetDir(join(gmm.dir, "ref"))),
    );
    await assertNoStrayFiles(data);
  } finally {
    await gmm.cleanup();
  }
});

/** The files of a run folder that must not depend on interruptions, as comparable values. */
async function runRecord(logs: string): Promise<Record<string, unknown>> {
  const dir = (await runFolder(logs))!;
  const grid = JSON.parse(await Deno.readTextFile(join(dir, "grid.json")));
  delete grid.meta.runDir;
  const { trainSeconds: _s, grid: _g, ...summary } = JSON.parse(
    await Deno.readTextFile(join(dir, "summary.json")),
  );
  // A resumed session logs where it picked up; everything else is the same line for line.
  const log = (await Deno.readTextFile(join(dir, "log.jsonl"))).split("\n")
    .filter((line) => line !== "" && JSON.parse(line).type !== "resume");
  const bytes = await hashTree(dir);
  return {
    grid,
    summary,
    log,
    pictures: [bytes["samples.png"], bytes["schedule.png"], bytes["schedule.gif"]],
  };
}

Deno.test("train killed at random points and resumed gives the uninterrupted run", async () => {
  const gmm = await makeTinyGmm();
  try {
    const data = join(gmm.dir, "data");
    assertOk(await runTask("generate", generateArgs(gmm.config, data, ["--total_samples", "24"])));
    const args = (logs: string) => [
      ...["--config", gmm.config, "--data_dir", datasetDir(data), "--log_path", logs],
      ...["--num_train", "12", "--num_valid", "12", "--steps", "4", "--solver_name", "ipndm"],
      ...["--training_rounds_v1", "1", "--training_rounds_v2", "2", "--quiet"],
    ];
    const refLogs = join(gmm.dir, "ref");
    const reference = await runTask("train", args(refLogs));
    assertOk(reference);
    const logs = join(gmm.dir, "logs");
    const resumeFlag = async () => {
      const dir = await runFolder(logs);
      return dir && await exists(join(dir, "checkpoint.json")) ? ["--resume"] : [];
    };
    for (let k = 0; k < 3; k++) {
      await killSomewhere("train", [...args(logs), ...await resumeFlag()], reference.ms);
    }
    assertOk(await runTask("train", [...args(logs), ...await resumeFlag()]));
    assert.deepEqual(await runRecord(logs), await runRecord(refLogs));
    await assertNoStrayFiles(logs);
  } finally {
    await gmm.cleanup();
  }
});

/** An eval result without its timing. */
async function resultOf(path: string): Promise<Record<string, unknown>> {
  const { seconds: _s, created: _c, ...rest } = JSON.parse(await Deno.readTextFile(path));
  return rest;
}

Deno.test("eval killed at random points and rerun gives the uninterrupted result", async () => {
  const gmm = await makeTinyGmm();
  try {
    const args = (out: string) => [
      ...["--config", gmm.config, "--steps", "4", "--exact_gmm", "--num_samples", "2000"],
      ...["--batch_size", "10", "--checkpoint_seconds", "0", "--out", out],
    ];
    const refOut = join(gmm.dir, "ref", "eval.json");
    const reference = await runTask("eval", args(refOut));
    assertOk(reference);
    const out = join(gmm.dir, "eval", "eval.json");
    for (let k = 0; k < 3; k++) await killSomewhere("eval", args(out), reference.ms);
    assertOk(await runTask("eval", args(out)));
    assert.deepEqual(await resultOf(out), await resultOf(refOut));
    assert.deepEqual(await listFiles(join(gmm.dir, "eval")), ["eval.json"]);
  } finally {
    await gmm.cleanup();
  }
});
