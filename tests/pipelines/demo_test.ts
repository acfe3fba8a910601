/**
 * The end-to-end demo at quick sizes on gmm-mnist: the library call (numbers checked against the
 * training run's own evaluation and against evaluateSchedule), a re-run that reuses everything,
 * the CLI's printout, and bad input.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { GIF, Image } from "imagescript";
import {
  DEMO_GRIDS,
  type DemoResult,
  formatDemoReport,
  runDemo,
} from "../../lib/pipelines/demo.ts";
import { evaluateSchedule } from "../../lib/pipelines/evaluate.ts";
import { writeFidRefs } from "../../lib/metrics/fid.ts";
import { loadGridFile } from "../../lib/io/grid_file.ts";
import { linearFeatureModel } from "../fixtures/tiny_models.ts";
import { runTask } from "../_run_task.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const CONFIG = join(ROOT, "configs", "gmm-mnist.yml");

/** A linear 784 → 3 feature model for [B,1,28,28] images, so FID runs in milliseconds. */
const featureOnnx = () => linearFeatureModel([1, 28, 28], 3, (i) => Math.cos(0.37 * i) / 28);

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47];

async function assertPicture(path: string | undefined, magic = PNG_MAGIC): Promise<Uint8Array> {
  assert.ok(path, "picture path missing");
  const bytes = await Deno.readFile(path);
  assert.deepEqual(Array.from(bytes.subarray(0, magic.length)), magic, path);
  return bytes;
}

Deno.test("runDemo() --quick trains, evaluates and draws on gmm-mnist, and a re-run reuses it", async () => {
  const out = await Deno.makeTempDir({ prefix: "ld3_demo_test_" });
  try {
    const features = join(out, "features.onnx");
    await Deno.writeFile(features, featureOnnx());
    const fidRef = join(out, "ref.npz");
    await writeFidRefs(fidRef, {
      mu: new Float64Array([0.2, -0.1, 0.05]),
      sigma: new Float64Array([1, 0.1, 0, 0.1, 0.5, 0, 0, 0, 0.25]),
    });
    const options = {
      config: CONFIG,
      out,
      quick: true,
      progress: false,
      features: { path: features },
      fidRef,
    };
    const started = performance.now();
    const r = await runDemo(options);
    const seconds = (performance.now() - started) / 1000;
    assert.ok(seconds < 60, `quick demo took ${seconds.toFixed(1)} s`);

    // Sizes and defaults.
    assert.equal(r.model, "gmm-mnist");
    assert.equal(r.solverName, "ipndm");
    assert.equal(r.nfe, 6);
    assert.equal(r.steps, 6);
    assert.equal(r.numTrain + r.numValid, 8);
    assert.equal(r.lossType, "L2");
    assert.equal(r.matchPrior, "edm");
    assert.deepEqual(r.rounds, { v1: 1, v2: 1 });
    assert.equal(r.teacher.generated, 8);
    assert.equal(r.teacher.nfe, 20);
    assert.equal(r.train.resumed, false);
    assert.deepEqual(r.rows.map((row) => row.grid), [...DEMO_GRIDS]);

    // The distances are the training run's own validation losses (same latents, L2), computed
    // independently here from the plain model: float32 decoding is the only difference.
    const ev = r.train.evaluation;
    const byGrid = Object.fromEntries(r.rows.map((row) => [row.grid, row]));
    for (
      const [grid, loss] of [
        ["LD3", ev.ld3],
        ["EDM", ev.edm],
        ["logSNR", ev.logSNR],
        ["time_uniform", ev.time_uniform],
      ] as const
    ) {
      assert.ok(
        Math.abs(byGrid[grid].l2.mean - loss) <= 1e-5 * loss + 1e-9,
        `${grid}: ${byGrid[grid].l2.mean} vs ${loss}`,
      );
      assert.ok(byGrid[grid].l1.mean > 0 && byGrid[grid].l2.std >= 0);
    }
    assert.ok(byGrid.LD3.l2.mean < byGrid.EDM.l2.mean, "LD3 should beat EDM");
    assert.ok(byGrid.LD3.l2.mean < byGrid.logSNR.l2.mean, "LD3 should beat logSNR");

    // The σ lists: LD3's is the grid file's, the baselines span the schedule.
    const gridFile = await loadGridFile(r.files.gridJson);
    assert.deepEqual(byGrid.LD3.sigmas, gridFile.sigma1);
    for (const row of r.rows) {
      assert.equal(row.sigmas.length, 7);
      assert.ok(Math.abs(row.sigmas[0] - 80) < 1e-9 && Math.abs(row.sigmas[6] - 0.002) < 1e-12);
    }

    // FID: every grid and the teacher, equal to evaluateSchedule's for the same sampler.
    assert.equal(r.fidSamples, 16);
    for (const row of r.rows) assert.ok(Number.isFinite(row.fid) && row.fid! >= 0, row.grid);
    assert.ok(Number.isFinite(r.teacher.fid));
    const edmFid = await evaluateSchedule(CONFIG, {
      solverName: "ipndm",
      steps: 6,
      skipType: "edm",
      numSamples: 16,
      features: { path: features },
      fidRef,
    });
    assert.equal(byGrid.EDM.fid, edmFid.metrics.fid);

    // Pictures: comparison.png has four rows of previewed samples (teacher, LD3, EDM, logSNR).
    await assertPicture(r.files.schedulePng);
    await assertPicture(r.files.samplesPng);
    await assertPicture(r.files.scheduleGif, [0x47, 0x49, 0x46]);
    const comparison = await Image.decode(await assertPicture(r.files.comparisonPng));
    // Four rows of 28 px digits enlarged 3× (84 px each, 2 px padding enlarged too).
    assert.equal(comparison.height, (4 * 30 + 2) * 3);
    assert.ok(comparison.width > 4 * 84);
    // trajectory.gif: LD3 / EDM / logSNR rows, one frame per network evaluation plus the samples.
    const gif = await GIF.decode(await assertPicture(r.files.trajectoryGif, [0x47, 0x49, 0x46]));
    assert.equal(gif.length, 6 + 1);
    const saved = JSON.parse(await Deno.readTextFile(r.files.demoJson)) as DemoResult;
    assert.deepEqual(saved.rows, JSON.parse(JSON.stringify(r.rows)));

    // The printout names every grid, the σ list and the files.
    const text = formatDemoReport(r);
    for (const grid of DEMO_GRIDS) assert.match(text, new RegExp(`^${grid}\\s`, "m"));
    assert.match(text, /LD3 is [\d.]+× closer to the teacher/);
    assert.match(text, /^LD3 σ: 80, /m);
    assert.match(
      text,
      /^demo settings: rounds 1 \+ 1 \(train default 2 \+ 5\), start edm \(match_prior\), FID on 16 samples per grid$/m,
    );
    assert.ok(text.includes(r.files.comparisonPng!));
    assert.ok(text.includes(r.files.trajectoryGif!));

    // A re-run reuses the teacher samples and resumes the finished run: same grid, same numbers.
    const again = await runDemo(options);
    assert.equal(again.teacher.generated, 0);
    assert.equal(again.teacher.skipped, 8);
    assert.equal(again.train.resumed, true);
    assert.equal(again.train.runDir, r.train.runDir);
    assert.equal(again.train.steps, r.train.steps);
    assert.deepEqual(again.rows, r.rows);

    // A run started from another grid is not resumed as this one.
    await assert.rejects(
      () => runDemo({ ...options, matchPrior: "none" }),
      /it was started from edm, got match_prior none \(start in another folder/,
    );

    // Another sample count in the same folder is refused with a message that says what to do.
    await assert.rejects(
      () => runDemo({ ...options, samples: 10 }),
      /holds a run with 8 samples: got numSamples 10 \(use another out folder/,
    );
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("deno task demo --quick prints the comparison table and the file paths", async () => {
  const out = await Deno.makeTempDir({ prefix: "ld3_demo_cli_" });
  try {
    // A config with an `eval` section whose paths are relative to the config file, as in
    // configs/mnist-edm.yml: the demo measures FID without --features/--fid_ref.
    await Deno.writeFile(join(out, "features.onnx"), featureOnnx());
    await writeFidRefs(join(out, "ref.npz"), {
      mu: new Float64Array([0.2, -0.1, 0.05]),
      sigma: new Float64Array([1, 0.1, 0, 0.1, 0.5, 0, 0, 0, 0.25]),
    });
    const config = join(out, "model.yml");
    const gmm = await Deno.readTextFile(CONFIG);
    await Deno.writeTextFile(
      config,
      gmm.replace(
        "../models/gmm-mnist/model.onnx",
        join(ROOT, "models", "gmm-mnist", "model.onnx"),
      ) +
        'eval:\n  features: { path: features.onnx, input_range: "[-1,1]" }\n  fid_ref: ref.npz\n',
    );
    const { code, stdout: text, stderr } = await runTask("demo", [
      "--quick",
      "--quiet",
      "--config",
      config,
      "--match_prior",
      "none",
      "--fid_samples",
      "8",
      "--solver_name",
      "uni_pc",
      "--steps",
      "4",
      "--out",
      out,
    ]);
    assert.equal(code, 0, stderr);
    assert.equal(stderr, "", "--quiet draws no progress bars");
    assert.match(text, /^gmm-mnist: uni_pc at NFE 4 \(4 steps\)/);
    const table = text.split("\n").filter((l) => /^(LD3|EDM|logSNR|time_uniform)\s+\d/.test(l));
    assert.equal(table.length, 4, text);
    // Every grid and the teacher have an FID cell, from the config's eval section.
    assert.match(text, /^grid\s+L2 to teacher\s+L1\s+FID \(8\)$/m);
    for (const line of table) assert.match(line, /\s\d+\.\d\d$/, line);
    assert.match(text, /^teacher \(NFE 20\)\s.*\d\.\d\d$/m);
    assert.match(text, /start logSNR \(match_prior\), FID on 8 samples per grid/);
    assert.match(text, /comparison\.png\s+\S+comparison\.png/);
    await assertPicture(join(out, "comparison.png"));
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("runDemo() rejects bad options before writing anything", async () => {
  const out = join(await Deno.makeTempDir({ prefix: "ld3_demo_bad_" }), "never");
  const base = { config: CONFIG, out, quick: true, progress: false };
  await assert.rejects(
    () => runDemo({ ...base, solverName: "rk45" as never }),
    /solverName must be one of .*: got "rk45"/,
  );
  await assert.rejects(() => runDemo({ ...base, solverName: "heun", nfe: 6 }), /odd NFE/);
  await assert.rejects(
    () => runDemo({ ...base, samples: 1 }),
    /numSamples must be an integer >= 2: got 1/,
  );
  await assert.rejects(
    () => runDemo({ ...base, trainingRoundsV1: 0, trainingRoundsV2: 0 }),
    /trainingRoundsV1 \+ trainingRoundsV2 must be >= 1: got 0/,
  );
  await assert.rejects(
    () => runDemo({ ...base, trainingRoundsV2: -1 }),
    /trainingRoundsV2 must be an integer >= 0: got -1/,
  );
  await assert.rejects(
    () => runDemo({ ...base, features: { path: "f.onnx" } }),
    /FID needs both a feature model and reference statistics: got no fid_ref/,
  );
  await assert.rejects(() => Deno.stat(out), Deno.errors.NotFound);
  await Deno.remove(join(out, ".."), { recursive: true });
});
