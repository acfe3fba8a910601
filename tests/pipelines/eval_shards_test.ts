/**
 * A sharded evaluation and its merge: for any number of shards the merged metrics — FID from
 * the shards' feature moments, the classifier check, the teacher distances, the exact-solution
 * error — are one process's bit for bit, and so are the preview images; a killed shard resumes
 * from its checkpoint; a missing or foreign part fails the merge with one line.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { featureStats, writeFidRefs } from "../../lib/metrics/fid.ts";
import { buildModel, ElemType, node, tensor, valueInfo } from "../../lib/onnx/build.ts";
import { loadModel } from "../../lib/onnx/model.ts";
import { type EvaluateOptions, evaluateSchedule } from "../../lib/pipelines/evaluate.ts";
import {
  evaluateShard,
  mergeEvalShards,
  readEvalShards,
  writeEvalShard,
} from "../../lib/pipelines/eval_shards.ts";
import { generateDataset } from "../../lib/pipelines/generate.ts";
import { makeTinyGmm } from "../_tiny_gmm.ts";

/** [B,1,4,4] → 3 features (offset far from 0) → 4 class logits. */
function tinyClassifierOnnx(): Uint8Array {
  const w = Float32Array.from({ length: 16 * 3 }, (_, i) => Math.sin(1.3 * i + 0.2));
  const v = Float32Array.from({ length: 3 * 4 }, (_, i) => 4 * Math.cos(0.7 * i + 0.4));
  return buildModel({
    nodes: [
      node("Reshape", ["image", "flat"], ["x"]),
      node("MatMul", ["x", "w"], ["raw"]),
      node("Add", ["raw", "offset"], ["features"]),
      node("MatMul", ["features", "v"], ["logits"]),
    ],
    initializers: [
      tensor("flat", [2], BigInt64Array.of(-1n, 16n)),
      tensor("w", [16, 3], w),
      tensor("offset", [3], [30, -20, 5]),
      tensor("v", [3, 4], v),
    ],
    inputs: [valueInfo("image", ElemType.float, ["batch", 1, 4, 4])],
    outputs: [
      valueInfo("features", ElemType.float, ["batch", 3]),
      valueInfo("logits", ElemType.float, ["batch", 4]),
    ],
  });
}

/** The tiny mixture, a 23-sample teacher, a classifier and reference statistics. */
async function setup() {
  const gmm = await makeTinyGmm();
  const teacher = await generateDataset(gmm.config, {
    dataDir: join(gmm.dir, "data"),
    totalSamples: 23,
    samplingBatchSize: 5,
    steps: 10,
    solverName: "uni_pc",
    skipType: "edm",
    seed: 3,
    progress: false,
  });
  const features = join(gmm.dir, "classifier.onnx");
  await Deno.writeFile(features, tinyClassifierOnnx());
  const ref = join(gmm.dir, "ref.npz");
  const points = Float64Array.from({ length: 5 * 3 }, (_, i) => 10 * Math.cos(2.1 * i) + 5);
  await writeFidRefs(ref, featureStats(points, 5, 3));
  const options: EvaluateOptions = {
    solverName: "euler",
    steps: 4,
    skipType: "logSNR",
    teacherDir: teacher.dir,
    batchSize: 4,
    features: { path: features },
    fidRef: ref,
    quality: { threshold: 0.6 },
    exactGmm: true,
    exactSteps: 20,
  };
  return { ...gmm, options };
}

Deno.test("merged eval shards give one process's metrics and previews bit for bit, for any split", async () => {
  const t = await setup();
  const model = await loadModel(t.config);
  try {
    let preview: Float32Array | undefined;
    const one = await evaluateSchedule(model, {
      ...t.options,
      previewImages: 64,
      onPreview: (images) => preview = images.slice(),
    });
    assert.ok(
      one.metrics.fid! > 0 && one.metrics.quality && one.metrics.teacher && one.metrics.exact,
    );
    // 23 samples in batches of 4 are 6 batches: 7 shards leave one empty.
    for (const count of [1, 2, 3, 4, 7]) {
      const dir = join(t.dir, `split-${count}`, "eval.json.shards");
      await Deno.mkdir(dir, { recursive: true });
      for (let index = 0; index < count; index++) {
        const part = await evaluateShard(model, { ...t.options, shard: { index, count } });
        await writeEvalShard(join(dir, `shard-${index}-of-${count}.npz`), part);
      }
      const merged = await mergeEvalShards(dir);
      assert.equal(merged.shards, count);
      assert.deepEqual(merged.result.metrics, one.metrics, `${count} shards`);
      const { seconds: _a, created: _b, metrics: _m, ...rest } = merged.result;
      const { seconds: _c, created: _d, metrics: _n, ...expected } = one;
      assert.deepEqual(rest, expected);
      assert.equal(merged.preview.count, 23);
      assert.deepEqual(merged.preview.images, preview);
    }
  } finally {
    await model.close();
    await t.cleanup();
  }
});

Deno.test("a killed eval shard resumes from its checkpoint; the merge names missing and foreign parts", async () => {
  const t = await setup();
  const model = await loadModel(t.config);
  try {
    const dir = join(t.dir, "eval.json.shards");
    await Deno.mkdir(dir);
    const shard = { index: 1, count: 2 };
    const whole = await evaluateShard(model, { ...t.options, shard });
    // Killed after its first batch, with a checkpoint written.
    const checkpoint = join(dir, "shard-1-of-2.partial.npz");
    let batches = 0;
    await assert.rejects(
      evaluateShard(model, {
        ...t.options,
        shard,
        checkpoint,
        checkpointSeconds: 0,
        onBatch: () => {
          if (++batches === 2) throw new Error("killed");
        },
      }),
      /killed/,
    );
    const resumed = await evaluateShard(model, { ...t.options, shard, checkpoint });
    assert.deepEqual(resumed.columns, whole.columns);
    assert.deepEqual(resumed.fid, whole.fid);
    await writeEvalShard(join(dir, "shard-1-of-2.npz"), resumed);
    await assert.rejects(
      () => mergeEvalShards(dir),
      /^RangeError: Cannot merge .*: shard 0 of 2 is missing: run --shard 0\/2 \(a rerun resumes\)$/,
    );
    // A part of another evaluation (another solver) in its place.
    const foreign = await evaluateShard(model, {
      ...t.options,
      solverName: "heun",
      steps: 3,
      shard: { index: 0, count: 2 },
    });
    await writeEvalShard(join(dir, "shard-0-of-2.npz"), foreign);
    await assert.rejects(() => mergeEvalShards(dir), /belongs to another job \(fingerprint/);
    assert.equal((await readEvalShards(dir)).length, 2);
    await assert.rejects(
      () => evaluateSchedule(model, { ...t.options, shard }),
      /runs a whole evaluation: run a shard with evaluateShard/,
    );
  } finally {
    await model.close();
    await t.cleanup();
  }
});
