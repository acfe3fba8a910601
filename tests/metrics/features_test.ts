import assert from "node:assert/strict";
import { loadFeatureModel } from "../../lib/metrics/features.ts";
import { buildModel, ElemType, node, tensor, valueInfo } from "../../lib/onnx/build.ts";
import { normalNoise } from "../../lib/rng.ts";

// A tiny "classifier": image [B,1,2,2] → flatten → features = relu(x W + c) [B,3] →
// logits = features V [B,2]. Weights are float32-exact so the float64 reference is exact
// up to float32 rounding of the activations.
const W = [0.5, -1, 0.25, 1, 0.5, -0.5, -0.25, 2, 1, 0.75, -1.5, 0.125]; // [4, 3]
const C = [0.1, -0.2, 0.3];
const V = [1, -1, 0.5, 2, -0.25, 0.75]; // [3, 2]

function classifierBytes(inputType: number = ElemType.float): Uint8Array {
  const nodes = [];
  let image = "image";
  if (inputType === ElemType.uint8) {
    // uint8 models (Inception-style) see [0, 255]; map back to [-1, 1] inside the graph.
    nodes.push(node("Cast", ["image"], ["image_f"], { to: ElemType.float }));
    nodes.push(node("Mul", ["image_f", "inv127_5"], ["image_s"]));
    nodes.push(node("Sub", ["image_s", "one"], ["image_c"]));
    image = "image_c";
  }
  nodes.push(
    node("Flatten", [image], ["flat"], { axis: 1 }),
    node("MatMul", ["flat", "W"], ["pre"]),
    node("Add", ["pre", "C"], ["pre_c"]),
    node("Relu", ["pre_c"], ["features"]),
    node("MatMul", ["features", "V"], ["logits"]),
  );
  return buildModel({
    nodes,
    inputs: [valueInfo("image", inputType, ["batch", 1, 2, 2])],
    outputs: [
      valueInfo("features", ElemType.float, ["batch", 3]),
      valueInfo("logits", ElemType.float, ["batch", 2]),
    ],
    initializers: [
      tensor("W", [4, 3], W),
      tensor("C", [3], C),
      tensor("V", [3, 2], V),
      tensor("inv127_5", [], [1 / 127.5]),
      tensor("one", [], [1]),
    ],
  });
}

/** Float64 reference of the classifier on one flat image. */
function reference(x: ArrayLike<number>): { features: number[]; logits: number[] } {
  const features = [0, 1, 2].map((j) => {
    let s = Math.fround(C[j]);
    for (let i = 0; i < 4; i++) s += x[i] * W[i * 3 + j];
    return Math.max(0, s);
  });
  const logits = [0, 1].map((k) => features.reduce((s, f, j) => s + f * V[j * 2 + k], 0));
  return { features, logits };
}

function images(count: number, seed: number): Float32Array {
  return Float32Array.from(normalNoise(seed, 0, count * 4), (v) => Math.tanh(v));
}

Deno.test("loadFeatureModel() runs a feature model in batches and returns float64 features", async () => {
  const count = 7;
  const x = images(count, 1);
  const seen: [number, number][] = [];
  const model = await loadFeatureModel(classifierBytes(), {
    batchSize: 3,
    onBatch: (done, total) => seen.push([done, total]),
  });
  try {
    assert.deepEqual(model.sampleShape, [1, 2, 2]);
    const f = await model.features(x, count);
    assert.ok(f instanceof Float64Array);
    assert.equal(f.length, count * 3);
    for (let s = 0; s < count; s++) {
      const ref = reference(x.subarray(s * 4, s * 4 + 4)).features;
      for (let j = 0; j < 3; j++) {
        assert.ok(Math.abs(f[s * 3 + j] - ref[j]) < 1e-6, `sample ${s} feature ${j}`);
      }
    }
    assert.ok(f.some((v) => v > 0) && f.some((v) => v === 0), "Relu is active and inactive");
    assert.deepEqual(seen, [[3, 7], [6, 7], [7, 7]]);
  } finally {
    await model.close();
  }
  // One big batch gives the same numbers.
  const single = await loadFeatureModel(classifierBytes());
  try {
    const f1 = await single.features(x, count);
    const f3 = await (async () => {
      const m = await loadFeatureModel(classifierBytes(), { batchSize: 2 });
      try {
        return await m.features(x, count);
      } finally {
        await m.close();
      }
    })();
    assert.deepEqual(f1, f3);
  } finally {
    await single.close();
  }
});

Deno.test("FeatureModel.run() returns several outputs with their widths", async () => {
  const count = 5;
  const x = images(count, 2);
  const model = await loadFeatureModel(classifierBytes(), { batchSize: 2 });
  try {
    const out = await model.run(x, count, ["features", "logits"]);
    assert.equal(out.features.dim, 3);
    assert.equal(out.logits.dim, 2);
    for (let s = 0; s < count; s++) {
      const ref = reference(x.subarray(s * 4, s * 4 + 4)).logits;
      for (let k = 0; k < 2; k++) assert.ok(Math.abs(out.logits.data[s * 2 + k] - ref[k]) < 1e-5);
    }
    await assert.rejects(() => model.run(x, count, ["nope"]), TypeError);
    await assert.rejects(() => model.features(x, count + 1), RangeError);
  } finally {
    await model.close();
  }
});

Deno.test("loadFeatureModel() maps [-1, 1] images to the model's range and input type", async () => {
  const count = 4;
  const x = images(count, 3);
  // A float model trained on [0, 1] sees (x + 1) / 2.
  const unit = await loadFeatureModel(classifierBytes(), { inputRange: "[0,1]" });
  try {
    const f = await unit.features(x, count);
    for (let s = 0; s < count; s++) {
      const ref = reference(Array.from(x.subarray(s * 4, s * 4 + 4), (v) => (v + 1) / 2));
      for (let j = 0; j < 3; j++) assert.ok(Math.abs(f[s * 3 + j] - ref.features[j]) < 1e-6);
    }
  } finally {
    await unit.close();
  }
  // A uint8 model gets round((x + 1)·127.5); its graph maps back, so features match up to
  // the 1/255 quantisation.
  const u8 = await loadFeatureModel(classifierBytes(ElemType.uint8));
  try {
    const f = await u8.features(x, count);
    for (let s = 0; s < count; s++) {
      const q = Array.from(
        x.subarray(s * 4, s * 4 + 4),
        (v) => Math.round((v + 1) * 127.5) / 127.5 - 1,
      );
      const ref = reference(q).features;
      for (let j = 0; j < 3; j++) assert.ok(Math.abs(f[s * 3 + j] - ref[j]) < 1e-5);
    }
  } finally {
    await u8.close();
  }
});

Deno.test("loadFeatureModel() rejects unknown names and bad options", async () => {
  const bytes = classifierBytes();
  await assert.rejects(() => loadFeatureModel(bytes, { inputName: "x" }), /inputName/);
  await assert.rejects(() => loadFeatureModel(bytes, { outputName: "pool3" }), /outputName/);
  await assert.rejects(() => loadFeatureModel(bytes, { batchSize: 0 }), RangeError);
  await assert.rejects(() => loadFeatureModel(bytes, { sampleShape: [0, 2] }), RangeError);
});
