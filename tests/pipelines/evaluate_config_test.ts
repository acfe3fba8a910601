/**
 * evaluateSchedule() with the model config's `eval` section (FID defaults) and the classifier
 * check (`quality`), on the tiny Gaussian mixture and a tiny two-output feature model.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  classifierQuality,
  type EvalBatch,
  evaluateSchedule,
} from "../../lib/pipelines/evaluate.ts";
import { loadFeatureModel } from "../../lib/metrics/features.ts";
import { featureStats, writeFidRefs } from "../../lib/metrics/fid.ts";
import { buildModel, ElemType, node, tensor, valueInfo } from "../../lib/onnx/build.ts";
import { makeTinyGmm, type TinyGmm } from "../_tiny_gmm.ts";

/** [B,1,4,4] → 3 features (a fixed projection) → 4 class logits. */
function tinyClassifierOnnx(): Uint8Array {
  const w = Float32Array.from({ length: 16 * 3 }, (_, i) => Math.sin(1.3 * i + 0.2));
  const v = Float32Array.from({ length: 3 * 4 }, (_, i) => 4 * Math.cos(0.7 * i + 0.4));
  return buildModel({
    nodes: [
      node("Reshape", ["image", "flat"], ["x"]),
      node("MatMul", ["x", "w"], ["features"]),
      node("MatMul", ["features", "v"], ["logits"]),
    ],
    initializers: [
      tensor("flat", [2], BigInt64Array.of(-1n, 16n)),
      tensor("w", [16, 3], w),
      tensor("v", [3, 4], v),
    ],
    inputs: [valueInfo("image", ElemType.float, ["batch", 1, 4, 4])],
    outputs: [
      valueInfo("features", ElemType.float, ["batch", 3]),
      valueInfo("logits", ElemType.float, ["batch", 4]),
    ],
  });
}

/** The tiny mixture with `eval` in its config; `ref.npz` holds arbitrary 3-d statistics. */
async function setup(evalYaml: string): Promise<TinyGmm> {
  const gmm = await makeTinyGmm(evalYaml);
  await Deno.writeFile(join(gmm.dir, "classifier.onnx"), tinyClassifierOnnx());
  const points = Float64Array.from({ length: 5 * 3 }, (_, i) => Math.cos(2.1 * i));
  await writeFidRefs(join(gmm.dir, "ref.npz"), featureStats(points, 5, 3));
  return gmm;
}

const EVAL_YAML = `eval:
  features: { path: classifier.onnx }
  fid_ref: ref.npz
`;

Deno.test("classifierQuality() counts confident rows and the arg-max histogram", () => {
  // Rows: p = softmax([ln 19, 0]) = (0.95, 0.05); (0.5, 0.5); (1/(1+e^{-1}), …) ≈ (0.73, 0.27).
  const logits = [Math.log(19), 0, 2, 2, 0, 1];
  const q = classifierQuality(logits, 3, 2, 0.9);
  assert.equal(q.confident, 1 / 3);
  assert.deepEqual(q.histogram, [2, 1]);
  const expected = (0.95 + 0.5 + 1 / (1 + Math.exp(-1))) / 3;
  assert.ok(Math.abs(q.mean_top_prob - expected) < 1e-12, `${q.mean_top_prob}`);
  assert.equal(classifierQuality(logits, 3, 2, 0.7).confident, 2 / 3);
  // Large logits do not overflow.
  assert.equal(classifierQuality([1000, 0], 1, 2).mean_top_prob, 1);
  assert.throws(() => classifierQuality(logits, 2, 2), /count × classes = 2 × 2 values: got 6/);
  assert.throws(() => classifierQuality([1], 1, 1), /classes must be an integer >= 2: got 1/);
});

Deno.test("evaluateSchedule() takes FID defaults from the config's eval section", async () => {
  const t = await setup(EVAL_YAML);
  try {
    const common = { solverName: "euler", steps: 4, skipType: "edm", numSamples: 6 } as const;
    const fromConfig = await evaluateSchedule(t.config, common);
    const explicit = await evaluateSchedule(t.config, {
      ...common,
      features: { path: join(t.dir, "classifier.onnx") },
      fidRef: join(t.dir, "ref.npz"),
    });
    assert.ok(fromConfig.metrics.fid! > 0 && Number.isFinite(fromConfig.metrics.fid!));
    assert.equal(fromConfig.metrics.fid, explicit.metrics.fid);
    assert.equal(fromConfig.metrics.fidInfo?.ref, join(t.dir, "ref.npz"));
    assert.equal(fromConfig.metrics.fidInfo?.dim, 3);
    // configEval: false ignores the section, so something else must be measured.
    const noFid = await evaluateSchedule(t.config, {
      ...common,
      configEval: false,
      exactGmm: true,
    });
    assert.equal(noFid.metrics.fid, undefined);
    assert.ok(noFid.metrics.exact!.rms.mean > 0);
    await assert.rejects(
      evaluateSchedule(t.config, { ...common, configEval: false }),
      /Nothing to measure/,
    );
  } finally {
    await t.cleanup();
  }
});

Deno.test("evaluateSchedule() quality: the classifier check of the decoded samples", async () => {
  const t = await setup(EVAL_YAML);
  try {
    const batches: EvalBatch[] = [];
    const result = await evaluateSchedule(t.config, {
      solverName: "heun",
      steps: 3,
      skipType: "edm",
      numSamples: 7,
      batchSize: 3,
      quality: { threshold: 0.6 },
      onBatch: (b) => batches.push(b),
    });
    const q = result.metrics.quality!;
    assert.equal(q.logits, "logits");
    assert.equal(q.histogram.length, 4);
    assert.equal(q.histogram.reduce((a, b) => a + b, 0), 7);
    // The same images through the classifier directly give the same numbers.
    const images = new Float32Array(7 * 16);
    batches.forEach((b) => images.set(b.images, b.indices[0] * 16));
    const model = await loadFeatureModel(join(t.dir, "classifier.onnx"));
    try {
      const { logits } = await model.run(images, 7, ["logits"]);
      assert.deepEqual({ ...q, logits: undefined }, {
        ...classifierQuality(logits.data, 7, 4, 0.6),
        logits: undefined,
      });
    } finally {
      await model.close();
    }
    assert.ok(result.metrics.fid !== undefined, "the config's FID runs alongside");
  } finally {
    await t.cleanup();
  }
});

Deno.test("evaluateSchedule() quality needs a feature model; features alone are no metric", async () => {
  const plain = await makeTinyGmm();
  const featuresOnly = await setup("eval: { features: classifier.onnx }\n");
  try {
    const common = { solverName: "euler", steps: 2, skipType: "edm", numSamples: 3 } as const;
    await assert.rejects(
      evaluateSchedule(plain.config, { ...common, quality: true }),
      /The classifier check needs a feature model with a logits output: got no features/,
    );
    await assert.rejects(evaluateSchedule(featuresOnly.config, common), /Nothing to measure/);
    const q = await evaluateSchedule(featuresOnly.config, { ...common, quality: true });
    assert.equal(q.metrics.fid, undefined);
    assert.equal(q.metrics.quality!.histogram.reduce((a, b) => a + b, 0), 3);
    await assert.rejects(
      evaluateSchedule(featuresOnly.config, { ...common, quality: { threshold: 1.5 } }),
      /threshold must be a number in \(0, 1\]: got 1.5/,
    );
  } finally {
    await plain.cleanup();
    await featuresOnly.cleanup();
  }
});
