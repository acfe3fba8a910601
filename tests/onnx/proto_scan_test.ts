import assert from "node:assert/strict";
import { join } from "node:path";
import { onnx } from "../../lib/deps.ts";
import { scanOnnxFile } from "../../lib/onnx/proto_scan.ts";
import { readOnnxSignatureFile } from "../../lib/onnx/external.ts";
import { readOnnxSignature } from "../../lib/onnx/session.ts";
import { SD_TINY } from "../_sd_tiny.ts";

Deno.test("scanOnnxFile() leaves large weights on disk as references to their own bytes", async () => {
  const path = join(SD_TINY.fp16, "unet/model.onnx"); // weights inside the file
  const bytes = await Deno.readFile(path);
  const whole = onnx.ModelProto.decode(bytes);
  const scanned = await scanOnnxFile(path, 4096);
  assert.equal(scanned.graph!.node!.length, whole.graph!.node!.length);
  let referenced = 0;
  whole.graph!.initializer!.forEach((t, k) => {
    const s = scanned.graph!.initializer![k];
    assert.equal(s.name, t.name);
    if (t.rawData!.length < 4096) {
      assert.deepEqual(s.rawData, t.rawData);
      return;
    }
    referenced++;
    const entry = (key: string) => s.externalData!.find((e) => e.key === key)!.value;
    assert.equal(entry("location"), "model.onnx");
    const offset = Number(entry("offset"));
    assert.deepEqual(bytes.subarray(offset, offset + Number(entry("length"))), t.rawData);
  });
  assert.ok(referenced > 10, `${referenced} weights referenced`);
});

Deno.test("readOnnxSignatureFile() equals the signature of the whole file's bytes", async () => {
  for (
    const path of [join(SD_TINY.fp16, "unet/model.onnx"), join(SD_TINY.fp32, "unet/model.onnx")]
  ) {
    assert.deepEqual(
      await readOnnxSignatureFile(path),
      readOnnxSignature(await Deno.readFile(path), path),
    );
  }
});
