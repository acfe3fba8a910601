import assert from "node:assert/strict";
import { join } from "node:path";
import { ort } from "../../lib/deps.ts";
import { ElemType } from "../../lib/onnx/build.ts";
import { openOnnxFile, readOnnxFile } from "../../lib/onnx/external.ts";
import { loadModel } from "../../lib/onnx/model.ts";
import { affineModel } from "../fixtures/tiny_models.ts";
import { SD_TINY } from "../_sd_tiny.ts";

Deno.test("readOnnxFile() presents float16 inputs and outputs as float32 and names them", async () => {
  const file = await readOnnxFile(join(SD_TINY.fp16, "unet/model.onnx"));
  assert.deepEqual([...file.halfPrecision].sort(), [
    "encoder_hidden_states",
    "out_sample",
    "sample",
    "timestep",
  ]);
  assert.ok(file.signature.inputs.every((s) => s.elemType === ElemType.float));
});

Deno.test("openOnnxFile() runs a float16 UNet through casts, close to its float32 twin", async () => {
  const feeds = {
    sample: new ort.Tensor(
      "float32",
      Float32Array.from({ length: 2 * 256 }, (_, i) => Math.sin(i)),
      [2, 4, 8, 8],
    ),
    timestep: new ort.Tensor("float32", new Float32Array([500]), []),
    encoder_hidden_states: new ort.Tensor(
      "float32",
      Float32Array.from({ length: 2 * 77 * 32 }, (_, i) => Math.cos(i) / 2),
      [2, 77, 32],
    ),
  };
  const out: Float32Array[] = [];
  for (const dir of [SD_TINY.fp32, SD_TINY.fp16]) {
    const session = await openOnnxFile(await readOnnxFile(join(dir, "unet/model.onnx")), "cpu");
    try {
      out.push((await session.run(feeds)).out_sample.data as Float32Array);
    } finally {
      await session.release();
    }
  }
  let scale = 0;
  let err = 0;
  for (let i = 0; i < out[0].length; i++) {
    scale = Math.max(scale, Math.abs(out[0][i]));
    err = Math.max(err, Math.abs(out[0][i] - out[1][i]));
  }
  assert.ok(scale > 0 && err < 0.05 * scale, `float16 vs float32: ${err} of ${scale}`);
});

Deno.test("loadModel() feeds a float16 time input as float32 through a cast", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(join(dir, "model.onnx"), affineModel({ timeType: ElemType.float16 }));
    await Deno.writeTextFile(
      join(dir, "c.yml"),
      "name: half\nmodel: { path: model.onnx, inputs: { x: x, t: t }, output: out, prediction: x0, time_input: t }\nschedule: { kind: flow }\nshape: [2, 3]\n",
    );
    const model = await loadModel(join(dir, "c.yml"));
    try {
      const d = await model.denoiser.denoise(new Float64Array(6).fill(1), 0.5);
      // out = x/2 + t/4 with t rounded to float16 (0.5 is exact).
      assert.ok(d.every((v) => Math.abs(v - 0.625) < 1e-6), String(d));
    } finally {
      await model.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
