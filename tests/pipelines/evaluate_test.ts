import assert from "node:assert/strict";
import { join, resolve } from "node:path";
import {
  evaluateSchedule,
  meanStd,
  resultPath,
  writeEvalResult,
} from "../../lib/pipelines/evaluate.ts";
import { loadFeatureModel } from "../../lib/metrics/features.ts";
import { loadLpips } from "../../lib/metrics/lpips.ts";
import { featureStats, writeFidRefs } from "../../lib/metrics/fid.ts";
import { gridFromSigmas, toGrid } from "../../lib/step_grid.ts";
import { makeGridFile, saveGridFile } from "../../lib/io/grid_file.ts";
import { readDataset } from "../../lib/io/dataset.ts";
import { generateDataset } from "../../lib/pipelines/generate.ts";
import { veSchedule } from "../../lib/noise_schedule.ts";
import { makeTinyGmm, type TinyGmm } from "../_tiny_gmm.ts";
import { linearFeatureModel } from "../fixtures/tiny_models.ts";

/** A tiny feature model: flatten [B,1,4,4] to [B,16] and project to 3 features. */
const tinyFeatureOnnx = (dim = 3) =>
  linearFeatureModel([1, 4, 4], dim, (i) => Math.sin(1.3 * i + 0.2));

/** Tiny model, a 12-sample teacher dataset (uni_pc, 10 steps, edm) and a feature model. */
async function setup(): Promise<TinyGmm & { teacher: string; features: string }> {
  const gmm = await makeTinyGmm();
  const result = await generateDataset(gmm.config, {
    dataDir: join(gmm.dir, "data"),
    totalSamples: 12,
    samplingBatchSize: 5,
    steps: 10,
    solverName: "uni_pc",
    skipType: "edm",
    seed: 3,
    progress: false,
  });
  const features = join(gmm.dir, "features.onnx");
  await Deno.writeFile(features, tinyFeatureOnnx());
  return { ...gmm, teacher: result.dir, features };
}

Deno.test("meanStd() gives the mean and the n−1 standard deviation", () => {
  const { mean, std } = meanStd([1, 2, 3, 4]);
  assert.equal(mean, 2.5);
  assert.ok(Math.abs(std - Math.sqrt(5 / 3)) < 1e-15);
  assert.deepEqual(meanStd([7]), { mean: 7, std: 0 });
});

Deno.test("evaluateSchedule() teacher distance: ≈ 0 on the teacher's grid, larger on 4 steps", async () => {
  const t = await setup();
  try {
    const own = await evaluateSchedule(t.config, {
      solverName: "uni_pc",
      steps: 10,
      skipType: "edm",
      teacherDir: t.teacher,
      batchSize: 4,
    });
    assert.equal(own.options.num_samples, 12);
    assert.equal(own.options.seed, 3);
    assert.equal(own.options.noise, "teacher");
    const ownL2 = own.metrics.teacher!.l2.mean;
    // Same x_T, grid and solver; only float32 rounding (batch split) may differ.
    assert.ok(ownL2 < 1e-10, `own grid L2 ${ownL2}`);
    const short = await evaluateSchedule(t.config, {
      solverName: "uni_pc",
      steps: 4,
      skipType: "time_uniform",
      teacherDir: t.teacher,
      numSamples: 6,
    });
    assert.equal(short.options.num_samples, 6);
    assert.ok(short.metrics.teacher!.l2.mean > 1e-4, `4-step L2 ${short.metrics.teacher!.l2.mean}`);
    assert.ok(short.metrics.teacher!.l1.mean > 1e-3);
    assert.equal(short.nfe, 4);
    assert.equal(short.grid.t1.length, 5);
  } finally {
    await t.cleanup();
  }
});

Deno.test("evaluateSchedule() LPIPS to the teacher: from the option or the config's eval.lpips", async () => {
  const t = await setup();
  try {
    const lpipsPath = resolve("models/lpips-tiny/lpips-tiny.onnx");
    const teacherOptions = {
      solverName: "uni_pc",
      steps: 10,
      skipType: "edm",
      teacherDir: t.teacher,
    };
    const own = await evaluateSchedule(t.config, { ...teacherOptions, lpips: lpipsPath });
    assert.ok(
      own.metrics.teacher!.lpips!.mean < 1e-6,
      `own grid LPIPS ${own.metrics.teacher!.lpips!.mean}`,
    );
    assert.equal(own.metrics.teacher!.lpips_model, resultPath(lpipsPath));
    const coarse = await evaluateSchedule(t.config, {
      ...teacherOptions,
      steps: 3,
      skipType: "time_uniform",
      lpips: lpipsPath,
    });
    const coarseLpips = coarse.metrics.teacher!.lpips!.mean;
    assert.ok(coarseLpips > 1e-4, `3-step LPIPS ${coarseLpips}`);

    // A loaded model (left open for the caller) gives the same numbers; none asked, none given.
    const lpips = await loadLpips(lpipsPath, { imageShape: [1, 4, 4] });
    const loaded = await evaluateSchedule(t.config, {
      ...teacherOptions,
      steps: 3,
      skipType: "time_uniform",
      lpips,
    });
    assert.deepEqual(loaded.metrics.teacher!.lpips, coarse.metrics.teacher!.lpips);
    assert.equal(loaded.metrics.teacher!.lpips_model, "(loaded)");
    assert.ok((await lpips.value(new Float64Array(16), new Float32Array(16), 1))[0] === 0);
    await lpips.close();
    const none = await evaluateSchedule(t.config, { ...teacherOptions, steps: 3 });
    assert.equal(none.metrics.teacher!.lpips, undefined);

    // The config's eval.lpips is used whenever there is a teacher, and only then.
    const withLpips = join(t.dir, "lpips.yml");
    await Deno.writeTextFile(
      withLpips,
      (await Deno.readTextFile(t.config)) + `eval: { lpips: ${lpipsPath} }\n`,
    );
    const fromConfig = await evaluateSchedule(withLpips, {
      ...teacherOptions,
      steps: 3,
      skipType: "time_uniform",
    });
    assert.deepEqual(fromConfig.metrics.teacher!.lpips, coarse.metrics.teacher!.lpips);
    const off = await evaluateSchedule(withLpips, {
      ...teacherOptions,
      steps: 3,
      skipType: "time_uniform",
      configEval: false,
    });
    assert.equal(off.metrics.teacher!.lpips, undefined);
    await assert.rejects(
      () =>
        evaluateSchedule(t.config, {
          solverName: "euler",
          steps: 3,
          exactGmm: true,
          lpips: lpipsPath,
        }),
      /LPIPS distance is to a teacher/,
    );
  } finally {
    await t.cleanup();
  }
});

Deno.test("evaluateSchedule() is deterministic for a seed", async () => {
  const gmm = await makeTinyGmm();
  try {
    const options = {
      solverName: "dpm_solver++",
      steps: 5,
      skipType: "logSNR",
      numSamples: 7,
      seed: 11,
      batchSize: 3,
      exactGmm: true,
      exactSteps: 100,
    };
    const a = await evaluateSchedule(gmm.config, options);
    const b = await evaluateSchedule(gmm.config, options);
    assert.deepEqual(a.metrics, b.metrics);
    assert.ok(a.metrics.exact!.rms.mean > 0);
    // Another batch split changes only the network's float32 rounding, not the noise.
    const c = await evaluateSchedule(gmm.config, { ...options, batchSize: 7 });
    assert.ok(Math.abs(c.metrics.exact!.rms.mean - a.metrics.exact!.rms.mean) < 1e-5);
    const other = await evaluateSchedule(gmm.config, { ...options, seed: 12 });
    assert.notDeepEqual(other.metrics, a.metrics);
    const path = join(gmm.dir, "r.json");
    await writeEvalResult(path, a);
    const back = JSON.parse(await Deno.readTextFile(path));
    assert.equal(back.format, "ld3-eval");
    assert.deepEqual(back.metrics, JSON.parse(JSON.stringify(a.metrics)));
    assert.equal(back.solver.name, "dpm_solver++");
  } finally {
    await gmm.cleanup();
  }
});

Deno.test("evaluateSchedule() of a grid file equals the same explicit sigma list", async () => {
  const gmm = await makeTinyGmm();
  try {
    const sigmas = [80, 12, 2.5, 0.6, 0.1, 0.002];
    const schedule = veSchedule();
    const file = makeGridFile(schedule, toGrid(gridFromSigmas(schedule, sigmas)), {
      solver: "ipndm",
      source: "manual",
    });
    const path = join(gmm.dir, "grid.json");
    await saveGridFile(path, file);
    const common = { solverName: "ipndm", numSamples: 5, exactGmm: true, exactSteps: 100 };
    const fromFile = await evaluateSchedule(gmm.config, { ...common, loadFrom: path });
    const fromList = await evaluateSchedule(gmm.config, { ...common, sigmas });
    assert.deepEqual(fromFile.metrics, fromList.metrics);
    assert.deepEqual(fromFile.grid.t1, fromList.grid.t1);
    assert.equal(fromFile.grid.kind, "file");
    assert.equal(fromList.grid.kind, "sigmas");
    // More steps on the same model get closer to the exact solution.
    const fine = await evaluateSchedule(gmm.config, { ...common, skipType: "edm", steps: 30 });
    assert.ok(fine.metrics.exact!.rms.mean < fromList.metrics.exact!.rms.mean);
  } finally {
    await gmm.cleanup();
  }
});

Deno.test("evaluateSchedule() FID end to end on a tiny feature model", async () => {
  const t = await setup();
  try {
    // Reference statistics: features of the teacher's own outputs.
    const data = await readDataset(t.teacher);
    const images = new Float32Array(12 * 16);
    for await (const s of data) images.set(s.x, s.index * 16);
    const fm = await loadFeatureModel(t.features);
    const feats = await fm.features(images, 12);
    await fm.close();
    const ref = join(t.dir, "ref.npz");
    await writeFidRefs(ref, featureStats(feats, 12, 3));
    const features = { path: t.features };
    const same = await evaluateSchedule(t.config, {
      solverName: "uni_pc",
      steps: 10,
      skipType: "edm",
      numSamples: 12,
      seed: 3,
      features,
      fidRef: ref,
    });
    assert.ok(Math.abs(same.metrics.fid!) < 1e-6, `FID ${same.metrics.fid}`);
    assert.equal(same.metrics.fidInfo!.dim, 3);
    const coarse = await evaluateSchedule(t.config, {
      solverName: "euler",
      steps: 2,
      skipType: "time_uniform",
      numSamples: 12,
      seed: 3,
      features,
      fidRef: ref,
    });
    assert.ok(coarse.metrics.fid! > 1e-3, `coarse FID ${coarse.metrics.fid}`);
  } finally {
    await t.cleanup();
  }
});

Deno.test("evaluateSchedule() resumes an interrupted run from its checkpoint with identical metrics", async () => {
  const t = await setup();
  try {
    const data = await readDataset(t.teacher);
    const images = new Float32Array(12 * 16);
    for await (const s of data) images.set(s.x, s.index * 16);
    const fm = await loadFeatureModel(t.features);
    const ref = join(t.dir, "ref.npz");
    await writeFidRefs(ref, featureStats(await fm.features(images, 12), 12, 3));
    await fm.close();
    const options = {
      solverName: "dpm_solver++",
      steps: 3,
      skipType: "logSNR",
      teacherDir: t.teacher,
      features: { path: t.features },
      fidRef: ref,
      exactGmm: true,
      batchSize: 4,
      previewImages: 6,
    } as const;
    let whole: Float32Array | undefined;
    const full = await evaluateSchedule(t.config, {
      ...options,
      onPreview: (images, count) => {
        assert.equal(count, 6);
        whole = images.slice();
      },
    });

    // Interrupt after the second batch (a stand-in for a kill): 8 of 12 samples are saved.
    const checkpoint = join(t.dir, "run.partial.npz");
    let batches = 0;
    await assert.rejects(
      () =>
        evaluateSchedule(t.config, {
          ...options,
          checkpoint,
          checkpointSeconds: 0,
          onBatch: () => {
            if (++batches === 3) throw new Error("killed");
          },
        }),
      /killed/,
    );
    assert.ok((await Deno.stat(checkpoint)).isFile);

    // Another evaluation must not take over (or destroy) this checkpoint.
    await assert.rejects(
      () => evaluateSchedule(t.config, { ...options, steps: 4, checkpoint }),
      /another evaluation \(differs in: grid, solver\)/,
    );

    const progress: number[] = [];
    let resumedBatches = 0;
    let resumedPreview: Float32Array | undefined;
    const resumed = await evaluateSchedule(t.config, {
      ...options,
      checkpoint,
      onProgress: (done) => progress.push(done),
      onBatch: () => resumedBatches++,
      onPreview: (images) => resumedPreview = images.slice(),
    });
    assert.deepEqual(progress, [8, 12], "starts after the saved batches");
    assert.equal(resumedBatches, 1, "only the missing batch is sampled");
    assert.deepEqual(resumed.metrics, full.metrics);
    assert.deepEqual(resumedPreview, whole, "the preview includes the earlier run's images");
    await assert.rejects(() => Deno.stat(checkpoint), Deno.errors.NotFound);
  } finally {
    await t.cleanup();
  }
});

Deno.test("evaluateSchedule() rejects bad input with one clear error", async () => {
  const t = await setup();
  try {
    const ref4 = join(t.dir, "ref4.npz");
    await writeFidRefs(ref4, { mu: new Float64Array(4), sigma: new Float64Array(16) });
    await assert.rejects(
      evaluateSchedule(t.config, { features: { path: t.features }, fidRef: ref4, numSamples: 4 }),
      /Reference statistics have dimension 4 but the feature model outputs 3/,
    );
    await assert.rejects(
      evaluateSchedule(t.config, { fidRef: ref4 }),
      /FID needs both a feature model and reference statistics/,
    );
    await assert.rejects(evaluateSchedule(t.config, {}), /Nothing to measure/);
    await assert.rejects(
      evaluateSchedule(t.config, { solverName: "rk45", teacherDir: t.teacher }),
      /solverName must be one of .*: got "rk45"/,
    );
    await assert.rejects(
      evaluateSchedule(t.config, { loadFrom: join(t.dir, "nope.json"), teacherDir: t.teacher }),
      /Cannot read grid file/,
    );
    await assert.rejects(
      evaluateSchedule(t.config, { sigmas: [80, 1, 0.002], skipType: "edm", exactGmm: true }),
      /Give one of skipType, loadFrom, sigmas: got skipType and sigmas/,
    );
    await assert.rejects(
      evaluateSchedule(t.config, { teacherDir: t.teacher, numSamples: 13 }),
      /exceeds the 12 samples/,
    );
    await assert.rejects(
      evaluateSchedule(t.config, { teacherDir: t.teacher, seed: 4 }),
      /seed 4 differs from the teacher dataset's seed 3/,
    );
  } finally {
    await t.cleanup();
  }
});

Deno.test("resultPath: relative inside the working directory, absolute outside it", () => {
  const cwd = Deno.cwd();
  assert.equal(resultPath(join(cwd, "models", "a.onnx")), join("models", "a.onnx"));
  assert.equal(resultPath(join("models", "..", "b.npz")), "b.npz");
  assert.equal(resultPath(cwd), ".");
  const outside = resolve(cwd, "..", "elsewhere", "ref.npz");
  assert.equal(resultPath(outside), outside);
  // A sibling whose name merely starts with ".." is still inside.
  assert.equal(resultPath(join(cwd, "..data")), "..data");
});
