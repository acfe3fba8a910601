/**
 * The nine ways a skeptical user lost work or got a misleading result (issue 15), each run as
 * the user ran it: as task processes on the command line. Each asserts the exact outcome.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { decodeNpz } from "../../lib/io/npz.ts";
import { normalNoise } from "../../lib/rng.ts";
import { hashTree, makeTinyGmm } from "../_tiny_gmm.ts";
import { reshapingModel } from "../fixtures/tiny_models.ts";
import {
  assertFailed,
  assertNoStrayFiles,
  assertOk,
  datasetDir,
  exists,
  generateArgs,
  halvingModel,
  listFiles,
  nanModel,
  runFolder,
  runTask,
  spawnTask,
  waitFor,
  writeModel,
} from "./_harness.ts";

/** Every sample of the dataset in `dir` holds the noise of the manifest's seed. */
async function assertSamplesMatchManifest(dir: string): Promise<void> {
  const manifest = JSON.parse(await Deno.readTextFile(join(dir, "manifest.json")));
  const size = manifest.shapes.z.reduce((a: number, b: number) => a * b, 1);
  for (let i = 0; i < manifest.count; i++) {
    const name = `${String(i).padStart(6, "0")}.npz`;
    const arrays = decodeNpz(await Deno.readFile(join(dir, "samples", name)));
    const expected = Float32Array.from(normalNoise(manifest.noise.seed, i, size));
    assert.deepEqual(arrays.z.data, expected, `sample ${i}: not seed ${manifest.noise.seed}'s`);
  }
}

/** Width and height from a PNG's IHDR chunk. */
function pngSize(bytes: Uint8Array): [number, number] {
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  return [view.getUint32(16), view.getUint32(20)];
}

Deno.test("case 1: a generate that fails before its first sample leaves the folder as it was", async () => {
  const root = await Deno.makeTempDir({ prefix: "ld3-fault-" });
  try {
    const config = await writeModel(join(root, "model"), nanModel([3]), [3]);
    const data = join(root, "data");
    const args = generateArgs(config, data, ["--total_samples", "8"]);
    assertFailed(await runTask("generate", args), /^error: Model "fault" produced a non-finite/);
    assert.equal(await exists(data), false, "the data dir was made and left behind");
    // An existing data dir keeps exactly what it held.
    await Deno.mkdir(data);
    await Deno.writeTextFile(join(data, "notes.txt"), "mine");
    assertFailed(await runTask("generate", args), /non-finite/);
    assert.deepEqual(await listFiles(data), ["notes.txt"]);
    // The corrected model (same config, same folder) is not refused.
    await Deno.writeFile(join(root, "model", "model.onnx"), halvingModel([3]));
    const fixed = await runTask("generate", args);
    assertOk(fixed);
    assert.match(fixed.stdout, /8 samples generated, 0 already complete/);
    await assertNoStrayFiles(root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("case 2: two generates with different seeds into one folder never mix", async () => {
  const gmm = await makeTinyGmm();
  try {
    const data = join(gmm.dir, "data");
    const args = (seed: number) =>
      generateArgs(gmm.config, data, ["--total_samples", "1500", "--seed", String(seed)]);
    const runs = await Promise.all([0, 1].map((s) => spawnTask("generate", args(s)).done));
    const ok = runs.filter((r) => r.code === 0);
    assert.equal(ok.length, 1, runs.map((r) => r.stderr).join("\n"));
    const failed = runs.find((r) => r.code !== 0)!;
    assertFailed(failed, /in use by generate, process \d+|made with different parameters/);
    await assertSamplesMatchManifest(datasetDir(data));
    await assertNoStrayFiles(data);
  } finally {
    await gmm.cleanup();
  }
});

Deno.test("case 2: a sample of another seed in a dataset is found and made again", async () => {
  const gmm = await makeTinyGmm();
  try {
    const ours = join(gmm.dir, "ours");
    const theirs = join(gmm.dir, "theirs");
    const args = (dir: string, seed: number) =>
      generateArgs(gmm.config, dir, ["--total_samples", "8", "--seed", String(seed)]);
    assertOk(await runTask("generate", args(ours, 0)));
    assertOk(await runTask("generate", args(theirs, 1)));
    const before = await hashTree(datasetDir(ours));
    await Deno.copyFile(
      join(datasetDir(theirs), "samples", "000003.npz"),
      join(datasetDir(ours), "samples", "000003.npz"),
    );
    const rerun = await runTask("generate", args(ours, 0));
    assertOk(rerun);
    assert.match(rerun.stdout, /1 samples generated, 7 already complete/);
    await assertSamplesMatchManifest(datasetDir(ours));
    assert.deepEqual(await hashTree(datasetDir(ours)), before);
  } finally {
    await gmm.cleanup();
  }
});

Deno.test("case 3: a second generate into a running one's folder fails and touches nothing", async () => {
  const gmm = await makeTinyGmm();
  try {
    const data = join(gmm.dir, "data");
    // Long enough that the second starts well before the first ends, even on a loaded machine.
    const args = generateArgs(gmm.config, data, ["--total_samples", "3000"]);
    const first = spawnTask("generate", args);
    const samples = join(datasetDir(data), "samples");
    await waitFor(async () => (await listFiles(samples)).length > 0, "the first samples");
    const second = await runTask("generate", args);
    assertFailed(
      second,
      new RegExp(
        `^error: .*dpm_solver\\+\\+_NFE4_logSNR is in use by generate, process ${first.pid}`,
      ),
    );
    const done = await first.done;
    assertOk(done);
    assert.match(done.stdout, /3000 samples generated/);
    await assertSamplesMatchManifest(datasetDir(data));
    await assertNoStrayFiles(data);
  } finally {
    await gmm.cleanup();
  }
});

Deno.test("case 4: two trains into one run folder: one runs, the other fails at once", async () => {
  const gmm = await makeTinyGmm();
  try {
    const data = join(gmm.dir, "data");
    assertOk(await runTask("generate", generateArgs(gmm.config, data, ["--total_samples", "24"])));
    const args = (logs: string) => [
      ...["--config", gmm.config, "--data_dir", datasetDir(data), "--log_path", logs],
      ...["--num_train", "12", "--num_valid", "12", "--steps", "4", "--solver_name", "ipndm"],
      ...["--training_rounds_v1", "1", "--training_rounds_v2", "2", "--quiet"],
    ];
    const logs = join(gmm.dir, "logs");
    const runs = await Promise.all([0, 1].map(() => spawnTask("train", args(logs)).done));
    const ok = runs.filter((r) => r.code === 0);
    assert.equal(ok.length, 1, runs.map((r) => r.stderr).join("\n"));
    assertFailed(runs.find((r) => r.code !== 0)!, /run folder|in use by train, process \d+/);
    // The log is the one a lone run writes, line for line.
    assertOk(await runTask("train", args(join(gmm.dir, "alone"))));
    assert.equal(
      await Deno.readTextFile(join((await runFolder(logs))!, "log.jsonl")),
      await Deno.readTextFile(join((await runFolder(join(gmm.dir, "alone")))!, "log.jsonl")),
    );
    await assertNoStrayFiles(logs);
  } finally {
    await gmm.cleanup();
  }
});

Deno.test("case 5: a grid file's evaluation times t2 are checked against the schedule", async () => {
  const gmm = await makeTinyGmm();
  try {
    const grid = join(gmm.dir, "grid.json");
    await Deno.writeTextFile(
      grid,
      JSON.stringify({
        format: "ld3-grid",
        version: 1,
        schedule: { kind: "ve", tMax: 80, tMin: 0.002 },
        t1: [80, 10, 1, 0.1, 0.002],
        t2: [80, 1000, 1, 0.1, 0.002],
        steps: 4,
      }),
    );
    const out = join(gmm.dir, "out.png");
    const run = await runTask("sample", [
      ...["--config", gmm.config, "--load_from", grid, "--out", out],
    ]);
    assertFailed(run, /grid\.json: evaluation time t2\[1\] = 1000 falls outside .*\[80, 0\.002\]/);
    assert.equal(await exists(out), false);
  } finally {
    await gmm.cleanup();
  }
});

Deno.test("case 6: an output of the right size but the wrong dims is refused", async () => {
  const root = await Deno.makeTempDir({ prefix: "ld3-fault-" });
  try {
    const config = await writeModel(
      join(root, "model"),
      reshapingModel([1, 28, 28], [1, 14, 56]),
      [1, 28, 28],
    );
    const data = join(root, "data");
    const run = await runTask("generate", generateArgs(config, data, ["--total_samples", "8"]));
    assertFailed(run, /output "out" has dims \[4,1,14,56\], expected \[4,1,28,28\]/);
    assert.equal(await exists(data), false);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("case 7: eval --out into a missing folder makes it and writes the result", async () => {
  const gmm = await makeTinyGmm();
  try {
    const out = join(gmm.dir, "results", "deeper", "eval.json");
    const run = await runTask("eval", [
      ...["--config", gmm.config, "--steps", "4", "--exact_gmm", "--num_samples", "20"],
      ...["--out", out],
    ]);
    assertOk(run);
    assert.equal(JSON.parse(await Deno.readTextFile(out)).format, "ld3-eval");
    assert.deepEqual(await listFiles(join(gmm.dir, "results")), ["deeper/eval.json"]);
  } finally {
    await gmm.cleanup();
  }
});

/** Deno's cache folder, so a task run with another HOME finds the modules it already has. */
export function denoDir(): string {
  const env = Deno.env.toObject();
  if (env.DENO_DIR) return env.DENO_DIR;
  if (env.XDG_CACHE_HOME) return join(env.XDG_CACHE_HOME, "deno");
  return join(env.HOME ?? "/root", ".cache", "deno");
}

Deno.test("case 8: a task writes nothing outside its output folder (no telemetry)", async () => {
  const gmm = await makeTinyGmm();
  const home = await Deno.makeTempDir({ prefix: "ld3-home-" });
  const tmp = await Deno.makeTempDir({ prefix: "ld3-tmp-" });
  try {
    const outDir = join(gmm.dir, "out");
    await Deno.mkdir(outDir);
    const env = {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: home,
      TMPDIR: tmp,
      DENO_DIR: denoDir(),
      NO_COLOR: "1",
    };
    const run = await runTask("sample", [
      ...["--config", gmm.config, "--steps", "4", "--num_samples", "4"],
      ...["--out", join(outDir, "s.png")],
    ], { env, clearEnv: true });
    assertOk(run);
    assert.deepEqual(await listFiles(outDir), ["s.png"]);
    // The only cache ld3 documents is Deno's own (DENO_DIR, given here).
    assert.deepEqual(await listFiles(home), [], "files under HOME");
    // ONNX Runtime's telemetry log goes to $TMPDIR (/tmp/mat-debug-<pid>.log without it).
    assert.deepEqual(await listFiles(tmp), [], "files under TMPDIR");
    // The documented switch turns ONNX Runtime's telemetry back on.
    const optIn = await runTask("sample", [
      ...["--config", gmm.config, "--steps", "4", "--num_samples", "4"],
      ...["--out", join(outDir, "t.png")],
    ], { env: { ...env, LD3_ORT_TELEMETRY: "1" }, clearEnv: true });
    assertOk(optIn);
    assert.ok((await listFiles(tmp)).includes(`mat-debug-${optIn.pid}.log`), "no telemetry log");
  } finally {
    await gmm.cleanup();
    await Deno.remove(home, { recursive: true });
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("case 9: samples of 2 channels are drawn; undrawable shapes fail before any work", async () => {
  const root = await Deno.makeTempDir({ prefix: "ld3-fault-" });
  try {
    const config = await writeModel(join(root, "two"), halvingModel([2, 4, 4]), [2, 4, 4]);
    const out = join(root, "s.png");
    const sample = await runTask("sample", [
      ...["--config", config, "--steps", "4", "--num_samples", "6", "--out", out, "--scale", "1"],
    ]);
    assertOk(sample);
    // Six tiles in a row, each the 2 channels side by side (8 × 4), padding 2 (not enlarged).
    assert.deepEqual(pngSize(await Deno.readFile(out)), [6 * (8 + 2) + 2, 4 + 2 + 2]);
    const data = join(root, "data");
    const generate = await runTask(
      "generate",
      generateArgs(config, data, ["--total_samples", "6", "--save_png"]),
    );
    assertOk(generate);
    const files = await listFiles(datasetDir(data));
    assert.ok(files.includes("grid.png") && files.includes("png/000005.png"), String(files));

    // A shape no picture can show, on a network that would fail at its first call: the
    // refusal comes first, so no network call was made.
    const bad = await writeModel(join(root, "video"), nanModel([2, 2, 4, 4]), [2, 2, 4, 4]);
    const out2 = join(root, "v.png");
    assertFailed(
      await runTask("sample", ["--config", bad, "--steps", "4", "--out", out2]),
      /out: samples of shape \[2,2,4,4\] cannot be drawn as pictures/,
    );
    assert.equal(await exists(out2), false);
    const data2 = join(root, "data2");
    assertFailed(
      await runTask("generate", generateArgs(bad, data2, ["--total_samples", "6", "--save_png"])),
      /save_png: samples of shape \[2,2,4,4\] cannot be drawn/,
    );
    assert.equal(await exists(data2), false);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("errors about a file name the file: a non-ONNX model, a corrupt sample", async () => {
  const gmm = await makeTinyGmm();
  try {
    const bad = join(gmm.dir, "bad");
    await Deno.mkdir(bad);
    await Deno.writeTextFile(join(bad, "model.onnx"), "this is not a network\n");
    await Deno.writeTextFile(join(bad, "model.yml"), await Deno.readTextFile(gmm.config));
    assertFailed(
      await runTask("sample", ["--config", join(bad, "model.yml"), "--out", join(bad, "s.png")]),
      new RegExp(`Not an ONNX model: ${join(bad, "model.onnx")}`),
    );

    const data = join(gmm.dir, "data");
    assertOk(await runTask("generate", generateArgs(gmm.config, data, ["--total_samples", "8"])));
    const sample = join(datasetDir(data), "samples", "000003.npz");
    const bytes = await Deno.readFile(sample);
    await Deno.writeFile(sample, bytes.subarray(0, bytes.length - 40));
    const train = await runTask("train", [
      ...["--config", gmm.config, "--data_dir", datasetDir(data), "--log_path", gmm.dir],
      ...["--num_train", "4", "--num_valid", "4", "--steps", "3", "--quiet"],
    ]);
    assertFailed(train, /samples\/000003\.npz: /);
  } finally {
    await gmm.cleanup();
  }
});
