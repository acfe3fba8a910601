import assert from "node:assert/strict";
import { join } from "node:path";
import { loadModelConfig } from "../../lib/onnx/config.ts";
import { loadModel } from "../../lib/onnx/model.ts";
import { checkModel, formatModelCheck } from "../../lib/onnx/model_check.ts";
import { buildModel, ElemType, node, tensor, valueInfo } from "../../lib/onnx/build.ts";
import { runTask } from "../_run_task.ts";

const CONFIG = "configs/gmm-mnist.yml";

Deno.test("checkModel() passes the bundled exact denoiser as configured", async () => {
  const model = await loadModel(CONFIG);
  try {
    const report = await checkModel(model);
    assert.deepEqual(report.checks.map((c) => [c.name, c.ok]), [
      ["batching", true],
      ["low-noise identity", true],
      ["high-noise range", true],
      ["finite", true],
    ]);
    assert.ok(report.ok);
    assert.ok(report.msPerCall > 0 && report.batch === 16);
    assert.match(
      formatModelCheck(report),
      /gmm-mnist: [\d.]+ ms per denoiser call on 16 samples; the config describes the network plausibly$/,
    );
  } finally {
    await model.close();
  }
});

Deno.test("checkModel() flags an x0 network described as ε, naming the field to check", async () => {
  const config = await loadModelConfig(CONFIG);
  const model = await loadModel({ ...config, model: { ...config.model, prediction: "eps" } });
  try {
    const report = await checkModel(model);
    assert.equal(report.ok, false);
    const range = report.checks.find((c) => c.name === "high-noise range")!;
    assert.equal(range.ok, false);
    assert.match(
      range.detail,
      /RMS\(D\(x_t\)\) = [\d.]+ data half-ranges at σ\/α = 10\.0 \(pass ≤ 3\): .*model\.prediction/,
    );
    assert.match(formatModelCheck(report), /^FAIL {2}high-noise range/m);
  } finally {
    await model.close();
  }
});

Deno.test("checkModel() flags a network that mixes the samples of a batch", async () => {
  // out = x − mean over the batch: right for one sample, wrong for several.
  const mixing = buildModel({
    nodes: [
      node("ReduceMean", ["x"], ["m"], { axes: [0], keepdims: 1 }),
      node("Sub", ["x", "m"], ["d0"]),
      node("Unsqueeze", ["t", "axes"], ["t_b"]),
      node("Mul", ["t_b", "zero"], ["t0"]),
      node("Add", ["d0", "t0"], ["out"]),
    ],
    initializers: [tensor("zero", [], [0]), tensor("axes", [2], BigInt64Array.of(1n, 2n))],
    inputs: [
      valueInfo("x", ElemType.float, ["batch", 2, 3]),
      valueInfo("t", ElemType.float, ["batch"]),
    ],
    outputs: [valueInfo("out", ElemType.float, ["batch", 2, 3])],
  });
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(join(dir, "model.onnx"), mixing);
    await Deno.writeTextFile(
      join(dir, "c.yml"),
      "name: mixing\nmodel: { path: model.onnx, inputs: { x: x, t: t }, output: out, " +
        "prediction: x0, time_input: t }\nschedule: { kind: ve }\nshape: [2, 3]\n",
    );
    const model = await loadModel(join(dir, "c.yml"));
    try {
      const batching = (await checkModel(model)).checks[0];
      assert.equal(batching.name, "batching");
      assert.equal(batching.ok, false);
      assert.match(batching.detail, /the network mixes samples of a batch/);
    } finally {
      await model.close();
    }
    // The task prints the report and exits 1.
    const r = await runTask("check_model", ["--config", join(dir, "c.yml")]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, /^FAIL {2}batching/m);
    assert.match(r.stdout, /see the failed checks above$/m);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task check-model passes the bundled UNet", async () => {
  const r = await runTask("check_model", ["--config", "configs/mnist-edm.yml"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^ok {4}low-noise identity/m);
  assert.match(r.stdout, /the config describes the network plausibly$/m);
  // --json: the same report for scripts.
  const j = await runTask("check_model", ["--config", "configs/mnist-edm.yml", "--json"]);
  assert.equal(j.code, 0, j.stderr);
  const report = JSON.parse(j.stdout);
  assert.equal(report.model, "mnist-edm");
  assert.equal(report.ok, true);
  assert.equal(report.checks.length, 4);
});
