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
  // Every number is named: the start (θ1 = 1 in lambda mode is logSNR), the other baselines,
  // the relaxed-latent loss, and what the trainer tracked.
  assert.equal(e.startGrid, "logSNR");
  assert.ok(Math.abs(e.start - e.logSNR) <= 1e-12 * e.logSNR);
  assert.equal(e.tracked, "original");
  assert.ok(Math.abs(r.bestValidLoss - e.ld3) <= 1e-12 * e.ld3);
  for (const v of [e.time_quadratic, e.dmn, e.ld3Relaxed]) assert.ok(Number.isFinite(v) && v > 0);
  const beaten = [e.start, e.time_uniform, e.time_quadratic, e.logSNR, e.edm, e.dmn]
    .filter((v) => e.ld3 > v);
  assert.equal(e.warnings.length, beaten.length);
  const file = JSON.parse(await Deno.readTextFile(r.gridPath));
  assert.deepEqual(file.meta.evaluation, JSON.parse(JSON.stringify(e)));
  await Deno.remove(root, { recursive: true });
});

Deno.test("a learned grid worse than a baseline is named in the printout, grid.json, summary.json and report.html", async () => {
  const { trainReport } = await import("../../../tasks/train.ts");
  const root = await Deno.makeTempDir();
  // Learning rates 0: the grid stays the time-uniform start (to rounding: no warning for it),
  // which LD3's time_quadratic beats here.
  const r = await runLd3Training(
    await small(root, {
      matchPrior: "time_uniform",
      lrTime1: 0,
      lrTime2: 0,
      minLrTime1: 0,
      minLrTime2: 0,
    }),
  );
  const e = r.evaluation;
  assert.equal(e.startGrid, "time_uniform");
  assert.ok(Math.abs(e.ld3 - e.start) <= 1e-12 * e.start, `${e.ld3} vs start ${e.start}`);
  assert.ok(e.time_quadratic < e.ld3, `${JSON.stringify(e)}`);
  // One line per grid it loses to, with both losses and the margin; never the start it equals.
  const losers = (["time_quadratic", "logSNR", "edm", "dmn"] as const).filter((b) => e[b] < e.ld3);
  assert.deepEqual(e.warnings.map((w) => w.split(":")[0]), losers);
  const margin = (100 * (e.ld3 / e.time_quadratic - 1)).toFixed(1);
  assert.equal(
    e.warnings[0],
    `time_quadratic: ${e.ld3.toPrecision(4)} vs ${e.time_quadratic.toPrecision(4)} (+${margin} %)`,
  );
  // The task's last line says so; grid.json and summary.json record it.
  const lines = trainReport(r);
  assert.equal(
    lines.at(-1),
    `warning: the learned grid is worse on the original latents than ${e.warnings.join("; ")}`,
  );
  assert.match(lines[1], /^loss on the validation samples' original latents: LD3 /);
  assert.match(lines[2], /is from the original latents, best .*relaxed latents kept with it: /);
  const file = JSON.parse(await Deno.readTextFile(r.gridPath));
  assert.deepEqual(file.meta.warnings, e.warnings);
  assert.deepEqual(file.meta.evaluation.warnings, e.warnings);
  const summary = JSON.parse(await Deno.readTextFile(join(r.runDir, "summary.json")));
  assert.deepEqual(summary.evaluation.warnings, e.warnings);
  const html = await Deno.readTextFile(join(r.runDir, "report.html"));
  assert.ok(html.includes("Warning: the learned grid is worse than"), "report.html warns");
  assert.ok(html.includes("start (time_uniform)"), "report.html names the start grid");
  await Deno.remove(root, { recursive: true });
});

Deno.test("worseThan() names each grid the learned one loses to, with the margin, and ignores rounding", async () => {
  const { worseThan } = await import("../../../lib/pipelines/train/summary.ts");
  assert.deepEqual(worseThan(0.2, [["start (logSNR)", 0.2 * (1 - 1e-13)], ["edm", 0.25]]), []);
  assert.deepEqual(worseThan(0.2, [["start (edm)", 0.1], ["dmn", 0.19996]]), [
    "start (edm): 0.2000 vs 0.1000 (+100.0 %)",
    "dmn: 0.2000 vs 0.2000 (+0.020 %)",
  ]);
});
