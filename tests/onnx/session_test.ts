import assert from "node:assert/strict";
import { join } from "node:path";
import { findSharedLibrary, VULKAN_LOADER } from "../../lib/onnx/device.ts";
import { ort } from "../../lib/deps.ts";
import {
  createSession,
  defaultThreads,
  DeviceUnavailableError,
  executionProviders,
  sessionOptionsFor,
} from "../../lib/onnx/session.ts";

const MODEL = "models/gmm-mnist/model.onnx";

Deno.test("executionProviders() maps device names to ORT providers", () => {
  assert.deepEqual(executionProviders("cpu"), ["cpu"]);
  assert.deepEqual(executionProviders("cuda"), [{ name: "cuda", deviceId: 0 }]);
  assert.deepEqual(executionProviders("cuda:2"), [{ name: "cuda", deviceId: 2 }]);
  assert.deepEqual(executionProviders("webgpu"), ["webgpu"]);
  assert.throws(() => executionProviders("metal"), { name: "RangeError" });
});

Deno.test("sessionOptionsFor() sets the threads, which sleep between operators when several", () => {
  assert.ok(defaultThreads() >= 1);
  const one = sessionOptionsFor("cpu", 1);
  assert.equal(one.intraOpNumThreads, 1);
  assert.equal(one.extra, undefined);
  const two = sessionOptionsFor("cpu", 2);
  assert.equal(two.intraOpNumThreads, 2);
  assert.deepEqual(two.extra, {
    session: { intra_op: { allow_spinning: "0" }, dynamic_block_base: "4" },
  });
  assert.equal(sessionOptionsFor("cpu").intraOpNumThreads, defaultThreads());
  assert.throws(() => sessionOptionsFor("cpu", 0), /threads must be an integer >= 1: got 0/);
  assert.throws(() => sessionOptionsFor("cpu", 1.5), /threads must be an integer >= 1: got 1.5/);
});

Deno.test("createSession() gives the same outputs with 1 and 2 threads", async () => {
  const bytes = await Deno.readFile(MODEL);
  const x = new ort.Tensor(
    "float32",
    Float32Array.from({ length: 3 * 784 }, (_, i) => Math.sin(i)),
    [3, 1, 28, 28],
  );
  const sigma = new ort.Tensor("float32", Float32Array.of(0.5, 2, 20), [3]);
  const outputs = [];
  for (const threads of [1, 2]) {
    const session = await createSession(bytes, { intraOpNumThreads: threads });
    outputs.push(Array.from((await session.run({ x, sigma })).denoised.data as Float32Array));
    await session.release();
  }
  assert.deepEqual(outputs[1], outputs[0]);
});

Deno.test("createSession() runs on the CPU and refuses gpu-buffer outputs there", async () => {
  const bytes = await Deno.readFile(MODEL);
  const session = await createSession(bytes, { device: "cpu", intraOpNumThreads: 1 });
  try {
    const x = new ort.Tensor("float32", new Float32Array(784).fill(0.25), [1, 1, 28, 28]);
    const sigma = new ort.Tensor("float32", new Float32Array([1]), [1]);
    const out = await session.run({ x, sigma });
    const y = out.denoised.data as Float32Array;
    assert.equal(y.length, 784);
    assert.ok(y.every(Number.isFinite));
  } finally {
    await session.release();
  }
  await assert.rejects(
    () => createSession(bytes, { device: "cpu", preferredOutputLocation: "gpu-buffer" }),
    {
      name: "RangeError",
      message: /preferredOutputLocation "gpu-buffer" needs device webgpu: got "cpu"/,
    },
  );
});

Deno.test("createSession() on cuda without the provider fails with one clear error", async () => {
  const bytes = await Deno.readFile(MODEL);
  let error: unknown;
  try {
    const session = await createSession(bytes, { device: "cuda" });
    await session.release(); // a machine with the CUDA provider and a GPU
    return;
  } catch (e) {
    error = e;
  }
  assert.ok(error instanceof DeviceUnavailableError, String(error));
  assert.match(error.message, /^Device "cuda" is unavailable: .*CUDA provider/);
  assert.match(error.message, /deno install --allow-scripts=npm:onnxruntime-node/);
  assert.ok(!error.message.includes("\n"), "one line");
});

Deno.test("createSession() on webgpu without a usable GPU fails with one clear error", async () => {
  const bytes = await Deno.readFile(MODEL);
  const saved = Deno.env.get("LD_LIBRARY_PATH");
  const dir = await Deno.makeTempDir();
  try {
    if (findSharedLibrary(VULKAN_LOADER) === undefined) {
      // No loader here: the pre-check names it.
      await assert.rejects(() => createSession(bytes, { device: "webgpu" }), {
        name: "DeviceUnavailableError",
        message:
          /^Device "webgpu" is unavailable: the Vulkan loader libvulkan\.so\.1 .*apt-get install libvulkan1/,
      });
      // A file of that name on LD_LIBRARY_PATH passes the pre-check, but the dynamic linker of
      // this process never sees it, so Dawn finds no adapter: ORT's error is wrapped too.
      await Deno.writeFile(join(dir, VULKAN_LOADER), new Uint8Array());
      Deno.env.set("LD_LIBRARY_PATH", dir);
    }
    let error: unknown;
    try {
      const session = await createSession(bytes, { device: "webgpu" });
      await session.release(); // a machine with a Vulkan GPU
      return;
    } catch (e) {
      error = e;
    }
    assert.ok(error instanceof DeviceUnavailableError, String(error));
    assert.match(
      error.message,
      /^Device "webgpu" is unavailable: ONNX Runtime's WebGPU provider found no usable GPU/,
    );
    assert.match(error.message, /Vulkan driver/);
    assert.ok(error.cause instanceof Error);
  } finally {
    if (saved === undefined) Deno.env.delete("LD_LIBRARY_PATH");
    else Deno.env.set("LD_LIBRARY_PATH", saved);
    await Deno.remove(dir, { recursive: true });
  }
  // ORT still serves CPU sessions after a failed GPU provider.
  const session = await createSession(bytes);
  await session.release();
});
