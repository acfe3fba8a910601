import assert from "node:assert/strict";
import { join } from "node:path";
import {
  checkDevice,
  CUDA_PROVIDER_LIBRARIES,
  DeviceUnavailableError,
  explainProviderError,
  findSharedLibrary,
  missingCudaLibraries,
  ortLibraryDir,
  parseDevice,
} from "../../lib/onnx/device.ts";
import { ort } from "../../lib/deps.ts";

Deno.test("parseDevice() accepts cpu, cuda, webgpu with an optional index", () => {
  assert.deepEqual(parseDevice("cpu"), { kind: "cpu", index: 0 });
  assert.deepEqual(parseDevice("cuda"), { kind: "cuda", index: 0 });
  assert.deepEqual(parseDevice("cuda:3"), { kind: "cuda", index: 3 });
  assert.deepEqual(parseDevice("webgpu:0"), { kind: "webgpu", index: 0 });
  for (const bad of ["gpu", "CUDA", "cuda:", "cuda:-1", "cuda:1.5", " cpu", "cuda:x"]) {
    assert.throws(() => parseDevice(bad), {
      name: "RangeError",
      message: new RegExp(`Unsupported device: "${bad.replace(/[.]/g, "\\.")}"`),
    });
  }
  assert.throws(() => parseDevice("webgpu:1"), /only cuda takes a device index/);
  assert.throws(() => parseDevice("cpu:2"), /only cuda takes a device index/);
});

Deno.test("ortLibraryDir() finds the loaded ONNX Runtime core library", () => {
  // deps.ts imported onnxruntime-node above, which loads its native binding at import time.
  assert.equal(typeof ort.InferenceSession.create, "function");
  const dir = ortLibraryDir();
  assert.ok(dir, "libonnxruntime.so not in /proc/self/maps");
  assert.ok(
    Deno.statSync(join(dir, "libonnxruntime.so.1")).isFile,
    `${dir} lacks libonnxruntime.so.1`,
  );
  assert.equal(ortLibraryDir("/nonexistent/maps"), undefined);
});

Deno.test("checkDevice() names the missing CUDA provider libraries and the install command", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assert.deepEqual(missingCudaLibraries(dir), [...CUDA_PROVIDER_LIBRARIES]);
    const error = assert.throws(() => checkDevice("cuda:1", { ortDir: dir }), (e: unknown) => {
      assert.ok(e instanceof DeviceUnavailableError);
      assert.equal(e.device, "cuda:1");
      assert.match(e.message, /^Device "cuda:1" is unavailable: /);
      assert.match(
        e.message,
        /libonnxruntime_providers_shared\.so, libonnxruntime_providers_cuda\.so/,
      );
      assert.ok(e.message.includes(dir));
      assert.match(e.message, /deno install --allow-scripts=npm:onnxruntime-node/);
      return true;
    });
    assert.equal(error, undefined);
    // With both files present the check passes (it does not load them).
    await Deno.writeFile(join(dir, CUDA_PROVIDER_LIBRARIES[0]), new Uint8Array());
    assert.deepEqual(missingCudaLibraries(dir), [CUDA_PROVIDER_LIBRARIES[1]]);
    await Deno.writeFile(join(dir, CUDA_PROVIDER_LIBRARIES[1]), new Uint8Array());
    assert.deepEqual(checkDevice("cuda", { ortDir: dir }), { kind: "cuda", index: 0 });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("findSharedLibrary() searches LD_LIBRARY_PATH, the ld.so cache, then standard folders", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const empty = { libraryPath: "", cacheFile: "/nonexistent", dirs: [] };
    assert.equal(findSharedLibrary("libfake.so.1", empty), undefined);
    await Deno.writeFile(join(dir, "libfake.so.1"), new Uint8Array());
    assert.equal(
      findSharedLibrary("libfake.so.1", { ...empty, libraryPath: `/nonexistent:${dir}` }),
      join(dir, "libfake.so.1"),
    );
    assert.equal(
      findSharedLibrary("libfake.so.1", { ...empty, dirs: [dir] }),
      join(dir, "libfake.so.1"),
    );
    // A cache lists NUL-terminated paths; only entries that exist count.
    const cache = join(dir, "ld.so.cache");
    await Deno.writeTextFile(cache, `junk\0/gone/libfake.so.1\0${dir}/libfake.so.1\0`);
    assert.equal(
      findSharedLibrary("libfake.so.1", { ...empty, cacheFile: cache }),
      `${dir}/libfake.so.1`,
    );
    await Deno.writeTextFile(cache, "junk\0/gone/libfake.so.1\0");
    assert.equal(findSharedLibrary("libfake.so.1", { ...empty, cacheFile: cache }), undefined);
    // The real cache knows libc.
    assert.ok(findSharedLibrary("libc.so.6"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkDevice() names a missing Vulkan loader for webgpu", () => {
  const nowhere = { libraryPath: "", cacheFile: "/nonexistent", dirs: [] };
  assert.throws(() => checkDevice("webgpu", { librarySearch: nowhere }), (e: unknown) => {
    assert.ok(e instanceof DeviceUnavailableError);
    assert.match(e.message, /^Device "webgpu" is unavailable: the Vulkan loader libvulkan\.so\.1/);
    assert.match(e.message, /apt-get install libvulkan1/);
    return true;
  });
  assert.deepEqual(checkDevice("cpu", { librarySearch: nowhere }), { kind: "cpu", index: 0 });
});

Deno.test("explainProviderError() wraps ONNX Runtime's own CUDA failure, and only provider failures", async () => {
  const model = await Deno.readFile("models/gmm-mnist/model.onnx");
  const dir = ortLibraryDir() as string;
  if (missingCudaLibraries(dir).length === 0) return; // a machine with the CUDA provider
  // ORT itself, asked for CUDA without the provider libraries (it logs one native line).
  let native: unknown;
  try {
    const session = await ort.InferenceSession.create(model, {
      executionProviders: [{ name: "cuda", deviceId: 0 }],
    });
    await session.release();
  } catch (e) {
    native = e;
  }
  assert.ok(native instanceof Error, "ORT created a CUDA session without the provider");
  const wrapped = explainProviderError("cuda", native);
  assert.ok(wrapped instanceof DeviceUnavailableError, String(wrapped));
  assert.match(wrapped.message, /could not start its CUDA provider \(.*Failed to load/);
  assert.equal(wrapped.cause, native);
  // Not a provider failure, or the CPU: passed through untouched.
  const other = new TypeError("Not an ONNX model: bad wire type");
  assert.equal(explainProviderError("cuda", other), other);
  assert.equal(explainProviderError("cpu", native), native);
  assert.equal(explainProviderError("cuda", "text"), "text");
});

Deno.test("model configs accept device names with an index and refuse others", async () => {
  const { parseModelConfig } = await import("../../lib/onnx/config.ts");
  const yaml = (device: string) =>
    [
      "name: m",
      "model: { path: m.onnx, inputs: { x: x, t: t }, output: y, prediction: x0, time_input: sigma }",
      "schedule: { kind: ve }",
      "shape: [2]",
      `device: ${device}`,
    ].join("\n");
  assert.equal(parseModelConfig(yaml("cuda:1"), "c.yml").device, "cuda:1");
  assert.equal(parseModelConfig(yaml("webgpu"), "c.yml").device, "webgpu");
  assert.throws(() => parseModelConfig(yaml("gpu"), "c.yml"), {
    name: "ConfigError",
    message:
      /Invalid config c\.yml: field "device" must be cpu, cuda, cuda:<index> or webgpu: got "gpu"/,
  });
});
