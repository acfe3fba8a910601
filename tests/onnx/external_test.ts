import assert from "node:assert/strict";
import { join } from "node:path";
import { ort } from "../../lib/deps.ts";
import {
  externalDataFiles,
  inlineExternalData,
  onnxModelHash,
  sessionSource,
} from "../../lib/onnx/external.ts";
import { createSession, sha256Hex } from "../../lib/onnx/session.ts";
import { externalWeight, externalWeightsModel } from "../fixtures/tiny_models.ts";

const MODEL = "models/gmm-mnist/model.onnx";

Deno.test("externalDataFiles() and sessionSource(): a graph with external weights opens from its path", async () => {
  const inline = await Deno.readFile(MODEL);
  assert.deepEqual(externalDataFiles(inline), []);
  assert.equal(sessionSource(MODEL, inline), inline);
  assert.equal(await onnxModelHash(MODEL, inline), await sha256Hex(inline));

  const bytes = externalWeightsModel("weights.bin");
  assert.deepEqual(externalDataFiles(bytes), ["weights.bin"]);
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "m.onnx");
    await Deno.writeFile(path, bytes);
    await Deno.writeFile(join(dir, "weights.bin"), externalWeight(2));
    assert.equal(sessionSource(path, bytes), path);
    // ONNX Runtime refuses external data from bytes; from the path it reads them.
    await assert.rejects(() => createSession(bytes));
    const session = await createSession(sessionSource(path, bytes));
    try {
      const x = new ort.Tensor("float32", Float32Array.of(1, 2, 3, 4, 5, 6), [1, 2, 3]);
      const t = new ort.Tensor("float32", Float32Array.of(0.5), [1]);
      const out = await session.run({ x, t });
      assert.deepEqual(Array.from(out.out.data as Float32Array), [2, 4, 6, 8, 10, 12]);
    } finally {
      await session.release();
    }
    // Read back in, the graph opens from bytes and holds the weight itself.
    const inlined = await inlineExternalData(path, bytes);
    assert.deepEqual(externalDataFiles(inlined), []);
    const fromBytes = await createSession(inlined);
    try {
      const x = new ort.Tensor("float32", Float32Array.of(1, 1, 1, 1, 1, 1), [1, 2, 3]);
      const t = new ort.Tensor("float32", Float32Array.of(0), [1]);
      assert.equal((await fromBytes.run({ x, t })).out.data[0], 2);
    } finally {
      await fromBytes.release();
    }
    assert.equal(await inlineExternalData(MODEL, inline), inline);
    // A data file shorter than the weight it should hold is named.
    await Deno.writeFile(join(dir, "weights.bin"), new Uint8Array(2));
    await assert.rejects(
      () => inlineExternalData(path, bytes),
      /weights\.bin ends before weight "w"/,
    );
    await Deno.writeFile(join(dir, "weights.bin"), externalWeight(2));
    // Weights past protobuf's 2 GiB cannot be read back into one graph: said before reading.
    await assert.rejects(
      () => inlineExternalData(path, externalWeightsModel("weights.bin", 3e9)),
      /has 2\.8 GiB of weights: one graph holds at most 2 GiB, so they cannot be read into it/,
    );
    // The hash covers the weights: another data file, another hash.
    const before = await onnxModelHash(path, bytes);
    await Deno.writeFile(join(dir, "weights.bin"), externalWeight(3));
    assert.notEqual(await onnxModelHash(path, bytes), before);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("external data outside the model's folder is refused before anything is read", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const location of ["../weights.bin", "/etc/hostname", "sub/../../weights.bin"]) {
      const bytes = externalWeightsModel(location);
      const path = join(dir, "m.onnx");
      await assert.rejects(
        () => onnxModelHash(path, bytes),
        /names external data outside its folder/,
        location,
      );
      await assert.rejects(() => inlineExternalData(path, bytes), /outside its folder/, location);
    }
    // A subfolder of the model's folder is fine.
    await Deno.mkdir(join(dir, "data"));
    await Deno.writeFile(join(dir, "data", "w.bin"), externalWeight(1));
    const bytes = externalWeightsModel("data/w.bin");
    assert.match(await onnxModelHash(join(dir, "m.onnx"), bytes), /^[0-9a-f]{64}$/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
