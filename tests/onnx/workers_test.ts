import assert from "node:assert/strict";
import { ort } from "../../lib/deps.ts";
import { loadModel, WORKER_MIN_MODEL_BYTES } from "../../lib/onnx/model.ts";
import { sessionOptionsFor } from "../../lib/onnx/session.ts";
import { SessionWorkers, splitBatch } from "../../lib/onnx/workers.ts";

const GMM = "models/gmm-mnist/model.onnx";

Deno.test("splitBatch() cuts a batch into contiguous, nearly equal parts", () => {
  assert.deepEqual(splitBatch(5, 2), [{ start: 0, count: 3 }, { start: 3, count: 2 }]);
  assert.deepEqual(splitBatch(2, 4), [{ start: 0, count: 1 }, { start: 1, count: 1 }]);
  assert.deepEqual(splitBatch(6, 3).map((p) => p.count), [2, 2, 2]);
  assert.deepEqual(splitBatch(1, 2), [{ start: 0, count: 1 }]);
});

Deno.test("SessionWorkers.run() gives the outputs of one session, in sample order", async () => {
  const bytes = await Deno.readFile(GMM);
  const n = 5;
  const x = new ort.Tensor(
    "float32",
    Float32Array.from({ length: n * 784 }, (_, i) => Math.sin(i / 7)),
    [n, 1, 28, 28],
  );
  const sigma = new ort.Tensor("float32", Float32Array.of(0.3, 1, 2, 5, 40), [n]);
  const session = await ort.InferenceSession.create(bytes, sessionOptionsFor("cpu", 1));
  const expected = (await session.run({ x, sigma })).denoised;
  await session.release();
  const workers = await SessionWorkers.open(bytes, 2, sessionOptionsFor("cpu", 1));
  try {
    assert.equal(workers.count, 2);
    const out = (await workers.run({ x, sigma }, n, ["denoised"])).denoised;
    assert.deepEqual(out.dims, expected.dims);
    const want = expected.data as Float32Array;
    let worst = 0;
    for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(out.data[i] - want[i]));
    assert.ok(worst <= 1e-5, `worst difference ${worst}`);
    // The inputs the caller passed are left as they were.
    assert.equal(x.data.length, n * 784);
  } finally {
    await workers.close();
  }
  await assert.rejects(() => workers.run({ x, sigma }, n, ["denoised"]), /workers are closed/);
});

Deno.test("SessionWorkers.open() fails clearly on bytes that are no model", async () => {
  await assert.rejects(
    () => SessionWorkers.open(new Uint8Array([1, 2, 3]), 2, sessionOptionsFor("cpu", 1)),
    Error,
  );
});

Deno.test("a network over the size bound runs its batches on workers, with the same outputs", async () => {
  const bundled = "configs/mnist-edm.yml";
  assert.ok((await Deno.stat("models/mnist-edm/model.onnx")).size >= WORKER_MIN_MODEL_BYTES);
  const one = await loadModel(bundled, { threads: 1 });
  const two = await loadModel(bundled, { threads: 2 });
  try {
    const x = Float64Array.from({ length: 3 * 784 }, (_, i) => 2 * Math.sin(i / 5));
    const a = await one.denoiser.denoise(x, 1.5);
    const b = await two.denoiser.denoise(x, 1.5);
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
    // A sample's output may change in the last bit with the batch it runs in.
    assert.ok(worst <= 1e-5, `worst difference ${worst}`);
  } finally {
    await one.close();
    await two.close();
  }
});

Deno.test("a process whose model was never closed still exits", async () => {
  const script = `
    import { loadModel } from "${new URL("../../lib/onnx/model.ts", import.meta.url).href}";
    const m = await loadModel("configs/mnist-edm.yml", { threads: 2 });
    await m.denoiser.denoise(new Float64Array(2 * 784), 1);
    console.log("done");
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", script],
    env: { ORT_DISABLE_TELEMETRY: "1" },
    stdout: "piped",
    stderr: "null",
    signal: AbortSignal.timeout(60_000),
  }).output();
  assert.equal(new TextDecoder().decode(out.stdout).trim(), "done");
  assert.equal(out.code, 0);
});
