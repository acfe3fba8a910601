import assert from "node:assert/strict";
import { join } from "node:path";
import {
  Ld3Interrupted,
  type RunLd3Options,
  runLd3Training,
} from "../../../lib/pipelines/train/run.ts";
import { loadGridFile } from "../../../lib/io/grid_file.ts";
import { generateDataset } from "../../../lib/pipelines/generate.ts";

const CONFIG = "configs/gmm-mnist.yml";

/** A small teacher dataset from generate (uni_pc, 20 NFE, edm), made once per file. */
let dataDir: Promise<string> | undefined;
function teacherData(): Promise<string> {
  dataDir ??= (async () => {
    const root = await Deno.makeTempDir({ prefix: "ld3_run_test_" });
    const r = await generateDataset(CONFIG, {
      dataDir: root,
      totalSamples: 40,
      samplingBatchSize: 20,
      steps: 20,
      solverName: "uni_pc",
      skipType: "edm",
      progress: false,
    });
    return r.dir;
  })();
  return dataDir;
}

async function small(logPath: string, extra: Partial<RunLd3Options> = {}): Promise<RunLd3Options> {
  return {
    config: CONFIG,
    dataDir: await teacherData(),
    logPath,
    solverName: "ipndm",
    steps: 4,
    lossType: "L2",
    numTrain: 4,
    numValid: 4,
    trainingRoundsV1: 1,
    trainingRoundsV2: 1,
    progress: false,
    previewCount: 2,
    ...extra,
  };
}

async function snapshot(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const e of Deno.readDir(dir)) {
    const bytes = await Deno.readFile(join(dir, e.name));
    out.set(
      e.name,
      Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes))).join(),
    );
  }
  return out;
}

const exists = (path: string) => Deno.stat(path).then(() => true, () => false);

const events = (text: string) =>
  text.trim().split("\n").map((l) => JSON.parse(l)).filter((e) => e.type !== "resume");

Deno.test("a run folder has every artefact and resume after an interruption finishes identically", async () => {
  const root = await Deno.makeTempDir();
  const full = await runLd3Training(await small(join(root, "a")));
  assert.match(full.runDir, /ipndm-N4-b0\.049-L2-lr20\.1rv11-rv21-seed0$/);
  for (
    const name of [
      "grid.json",
      "config.yml",
      "log.jsonl",
      "checkpoint.json",
      "schedule.png",
      "schedule.svg",
      "schedule.gif",
      "samples.png",
      "summary.json",
      "report.html",
    ]
  ) {
    assert.ok((await Deno.stat(join(full.runDir, name))).size > 0, name);
  }
  const gridFile = await loadGridFile(full.gridPath);
  assert.deepEqual(gridFile.t1, Array.from(full.grid.t1));
  assert.equal(gridFile.solver, "ipndm");
  assert.equal(full.steps, 4);

  const bOptions = await small(join(root, "b"));
  await assert.rejects(
    () => runLd3Training({ ...bOptions, stopAfterStep: 3 }),
    (e) => e instanceof Ld3Interrupted && e.step === 3,
  );
  // The training loop draws nothing: the pictures come at the end of the run.
  const stopped = join(root, "b", (await Array.fromAsync(Deno.readDir(join(root, "b"))))[0].name);
  assert.ok(await exists(join(stopped, "grid.json")), "grid.json is written on improvement");
  for (const name of ["schedule.png", "schedule.gif", "samples.png"]) {
    assert.ok(!await exists(join(stopped, name)), `${name} is not drawn mid-run`);
  }
  // A fresh start over the interrupted run is refused; resume (here "auto") continues it.
  await assert.rejects(() => runLd3Training(bOptions), /already holds a checkpoint/);
  const resumed = await runLd3Training({ ...bOptions, resume: "auto" });
  assert.ok(resumed.resumed);
  const a = await loadGridFile(full.gridPath);
  const b = await loadGridFile(resumed.gridPath);
  assert.deepEqual(b.t1, a.t1);
  assert.deepEqual(b.t2, a.t2);
  assert.equal(resumed.bestValidLoss, full.bestValidLoss);
  assert.deepEqual(
    events(await Deno.readTextFile(join(resumed.runDir, "log.jsonl"))),
    events(await Deno.readTextFile(join(full.runDir, "log.jsonl"))),
  );
  // The resumed run draws the same evolution (its frames travel in the checkpoint).
  assert.deepEqual(
    await Deno.readFile(join(resumed.runDir, "schedule.gif")),
    await Deno.readFile(join(full.runDir, "schedule.gif")),
  );
  await Deno.remove(root, { recursive: true });
});

Deno.test("bad input fails with a clear error and leaves the run folder untouched", async () => {
  const root = await Deno.makeTempDir();
  const options = await small(root);
  const run = await runLd3Training(options);
  const before = await snapshot(run.runDir);

  // A dataset made by another model: copy it and change the recorded hash.
  const other = join(root, "other_data");
  await Deno.mkdir(join(other, "samples"), { recursive: true });
  for await (const e of Deno.readDir(join(options.dataDir, "samples"))) {
    await Deno.copyFile(join(options.dataDir, "samples", e.name), join(other, "samples", e.name));
  }
  const manifest = JSON.parse(await Deno.readTextFile(join(options.dataDir, "manifest.json")));
  await Deno.writeTextFile(
    join(other, "manifest.json"),
    JSON.stringify({ ...manifest, model: { ...manifest.model, sha256: "0".repeat(64) } }),
  );
  await assert.rejects(
    () => runLd3Training({ ...options, dataDir: other }),
    /was made with model sha256 0{64}/,
  );
  await Deno.writeTextFile(
    join(other, "manifest.json"),
    JSON.stringify({ ...manifest, shapes: { ...manifest.shapes, x: [1, 28, 27] } }),
  );
  await assert.rejects(
    () => runLd3Training({ ...options, dataDir: other }),
    /images have shape \[1,28,27\]/,
  );
  await assert.rejects(
    () => runLd3Training({ ...options, numTrain: 30, numValid: 20 }),
    /holds 40 samples: num_train \+ num_valid = 50 needed/,
  );
  await assert.rejects(
    () => runLd3Training({ ...options, priorBound: -0.001 }),
    /priorBound must be a number >= 0: got -0\.001/,
  );
  await assert.rejects(() => runLd3Training(options), /already holds a checkpoint/);
  // The folder name does not say where a run started: resuming from another grid names both.
  await assert.rejects(
    () => runLd3Training({ ...options, matchPrior: "edm", resume: "auto" }),
    /Cannot resume .*: it was started from none, got match_prior edm \(start in another folder/,
  );
  await assert.rejects(
    () => runLd3Training({ ...options, lossType: "LPIPS" }),
    /LPIPS needs an LPIPS ONNX model/,
  );
  assert.deepEqual(await snapshot(run.runDir), before);
  await Deno.remove(root, { recursive: true });
});

Deno.test("end to end on gmm-mnist: LD3 at NFE 4 beats the logSNR and EDM grids", async () => {
  const root = await Deno.makeTempDir();
  const r = await runLd3Training(
    await small(root, { numTrain: 16, numValid: 16, trainingRoundsV1: 1, trainingRoundsV2: 2 }),
  );
  const e = r.evaluation;
  assert.ok(e.ld3 < e.logSNR, `LD3 ${e.ld3} vs logSNR ${e.logSNR}`);
  assert.ok(e.ld3 < e.edm, `LD3 ${e.ld3} vs EDM ${e.edm}`);
  await Deno.remove(root, { recursive: true });
});
