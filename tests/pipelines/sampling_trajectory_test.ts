/**
 * `sampleImages({ trajectory: true })`: the decoded x0-prediction of every network evaluation,
 * on the tiny Gaussian-mixture ONNX model.
 */
import assert from "node:assert/strict";
import { type LoadedModel, loadModel } from "../../lib/onnx/model.ts";
import {
  initialNoise,
  type SampledImages,
  sampleImages,
  type SampleImagesOptions,
  stackedTrajectoryFrames,
  trajectoryFrames,
} from "../../lib/pipelines/sampling.ts";
import { sigmaOf } from "../../lib/noise_schedule.ts";
import { makeTinyGmm } from "../_tiny_gmm.ts";

async function withTinyModel(fn: (model: LoadedModel) => Promise<void>): Promise<void> {
  const gmm = await makeTinyGmm();
  const model = await loadModel(gmm.config);
  try {
    await fn(model);
  } finally {
    await model.close();
    await gmm.cleanup();
  }
}

function rms(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return Math.sqrt(s / a.length);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Frame `k` of the trajectory: all samples' predictions at evaluation `k`. */
function frame(r: SampledImages, k: number): Float32Array {
  const n = r.images.length;
  return r.trajectory!.images.subarray(k * n, (k + 1) * n);
}

Deno.test("sampleImages() records the decoded prediction of every network evaluation", async () => {
  await withTinyModel(async (model) => {
    // Heun: 2·3 − 1 = 5 evaluations on 3 steps, two of them at the same time t_1 or t_2.
    const options: SampleImagesOptions = {
      solverName: "heun",
      steps: 3,
      skipType: "edm",
      numSamples: 3,
      seed: 7,
    };
    const plain = await sampleImages(model, options);
    assert.equal(plain.trajectory, undefined);
    const r = await sampleImages(model, { ...options, trajectory: true });
    const tr = r.trajectory!;
    assert.equal(r.sampler.nfe, 5);
    assert.equal(tr.t.length, 5);
    assert.equal(tr.sigma.length, 5);
    assert.equal(tr.images.length, 5 * r.images.length);
    // Recording must not change the samples.
    assert.deepEqual(r.images, plain.images);
    // The times are the plan's evaluation times, in order; σ is their σ/α, non-increasing.
    const planTimes = r.sampler.plan.ops.flatMap((op) => op.kind === "eval" ? [op.t] : []);
    assert.deepEqual(Array.from(tr.t), planTimes);
    tr.t.forEach((t, k) => assert.equal(tr.sigma[k], sigmaOf(model.denoiser.schedule, t)));
    for (let k = 1; k < 5; k++) assert.ok(tr.sigma[k] <= tr.sigma[k - 1], `σ rises at ${k}`);
    assert.ok(Math.abs(tr.sigma[0] - 80) < 1e-9, `first σ ${tr.sigma[0]}`);
    // The first frame is D(x_T, T) of each sample, computed here independently.
    const { xT } = initialNoise(7, [0, 1, 2], {
      shape: model.sampleShape,
      priorScale: model.denoiser.schedule.priorScale,
    });
    const first = await model.decode(await model.denoiser.denoise(xT, tr.t[0]));
    assert.ok(maxAbsDiff(frame(r, 0), first) < 1e-6);
  });
});

Deno.test("sampleImages() trajectory: σ falls and the last prediction nears the sample", async () => {
  await withTinyModel(async (model) => {
    // First-order DPM-Solver++ (DDIM): one evaluation per step at t_0 … t_{N−1}, and each step
    // moves x most of the way onto the data prediction.
    const r = await sampleImages(model, {
      solverName: "dpm_solver++",
      order: 1,
      steps: 4,
      skipType: "logSNR",
      numSamples: 4,
      trajectory: true,
    });
    const tr = r.trajectory!;
    assert.equal(tr.t.length, r.sampler.nfe);
    assert.equal(tr.t.length, 4);
    for (let k = 1; k < 4; k++) assert.ok(tr.sigma[k] < tr.sigma[k - 1], `σ not falling at ${k}`);
    assert.deepEqual(Array.from(tr.t), Array.from(r.sampler.grid.t2.subarray(0, 4)));
    const firstGap = rms(frame(r, 0), r.images);
    const lastGap = rms(frame(r, 3), r.images);
    assert.ok(firstGap > 0.1, `first prediction already at the sample: ${firstGap}`);
    assert.ok(lastGap < 0.05 * firstGap, `last gap ${lastGap} vs first ${firstGap}`);
  });
});

Deno.test("sampleImages() trajectory does not depend on the batch size", async () => {
  await withTinyModel(async (model) => {
    const options: SampleImagesOptions = {
      solverName: "uni_pc",
      steps: 4,
      skipType: "time_uniform",
      numSamples: 5,
      seed: 3,
      trajectory: true,
    };
    const split = await sampleImages(model, { ...options, batchSize: 2 });
    const whole = await sampleImages(model, { ...options, batchSize: 5 });
    assert.deepEqual(split.trajectory!.t, whole.trajectory!.t);
    assert.deepEqual(split.trajectory!.sigma, whole.trajectory!.sigma);
    // Float32 kernels may group a batch of 2 and of 5 differently: a few ulps, no more.
    assert.ok(maxAbsDiff(split.trajectory!.images, whole.trajectory!.images) < 1e-5);
    assert.ok(maxAbsDiff(split.images, whole.images) < 1e-5);
    // Samples differ from each other, so a mix-up of batch offsets would show.
    const size = split.images.length / 5;
    const last = frame(split, split.sampler.nfe - 1);
    assert.ok(rms(last.subarray(0, size), last.subarray(2 * size, 3 * size)) > 1e-3);
  });
});

Deno.test("trajectoryFrames() gives one captioned frame per evaluation, then the sample", async () => {
  await withTinyModel(async (model) => {
    const r = await sampleImages(model, {
      solverName: "euler",
      steps: 3,
      skipType: "edm",
      numSamples: 2,
      trajectory: true,
    });
    const frames = trajectoryFrames(r);
    assert.equal(frames.length, r.sampler.nfe + 1);
    assert.equal(frames[0].caption, "NFE 1/3  σ = 80");
    assert.match(frames[2].caption!, /^NFE 3\/3 {2}σ = \d/);
    assert.equal(frames[3].caption, "final sample");
    assert.deepEqual(frames[1].images, frame(r, 1));
    assert.deepEqual(frames[3].images, r.images);
    const plain = await sampleImages(model, { solverName: "euler", steps: 3, numSamples: 2 });
    assert.throws(() => trajectoryFrames(plain), TypeError);
  });
});

Deno.test("stackedTrajectoryFrames() stacks runs as row blocks per evaluation", async () => {
  await withTinyModel(async (model) => {
    const run = (skipType: string, steps = 3) =>
      sampleImages(model, {
        solverName: "euler",
        steps,
        skipType,
        numSamples: 2,
        trajectory: true,
      });
    const edm = await run("edm");
    const logSnr = await run("logSNR");
    const frames = stackedTrajectoryFrames([
      { label: "EDM", sampled: edm },
      { label: "logSNR", sampled: logSnr },
    ]);
    assert.equal(frames.length, 4);
    assert.equal(frames[0].caption, "NFE 1/3  rows: EDM, logSNR");
    assert.equal(frames[3].caption, "final sample  rows: EDM, logSNR");
    const n = edm.images.length;
    assert.deepEqual((frames[1].images as Float32Array).slice(0, n), frame(edm, 1));
    assert.deepEqual((frames[1].images as Float32Array).slice(n), frame(logSnr, 1));
    assert.deepEqual((frames[3].images as Float32Array).slice(n), logSnr.images);

    assert.throws(() => stackedTrajectoryFrames([]), RangeError);
    const longer = await run("edm", 4);
    assert.throws(
      () =>
        stackedTrajectoryFrames([{ label: "a", sampled: edm }, { label: "b", sampled: longer }]),
      /runs "b" has NFE 4: "a" has 3/,
    );
    const plain = await sampleImages(model, { solverName: "euler", steps: 3, numSamples: 2 });
    assert.throws(
      () => stackedTrajectoryFrames([{ label: "p", sampled: plain }]),
      /runs "p": Sampled images hold no trajectory/,
    );
  });
});
