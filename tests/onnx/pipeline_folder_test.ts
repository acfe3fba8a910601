import assert from "node:assert/strict";
import { join } from "node:path";
import { ConfigError, loadModelConfig } from "../../lib/onnx/config.ts";
import { loadModel } from "../../lib/onnx/model.ts";
import { mergeConfigDocuments } from "../../lib/onnx/pipeline_folder.ts";
import { onnx } from "../../lib/deps.ts";
import { copyFolder, SD_TINY } from "../_sd_tiny.ts";

Deno.test("loadModelConfig() reads an Optimum export folder: schedule, prediction, shapes, parts", async () => {
  const c = await loadModelConfig(SD_TINY.fp32);
  assert.equal(c.name, "fp32");
  assert.equal(c.pipeline, SD_TINY.fp32);
  assert.deepEqual(c.schedule, {
    kind: "vp_discrete",
    betas: "scaled_linear",
    num_steps: 1000,
    beta_start: 0.00085,
    beta_end: 0.012,
  });
  assert.equal(c.model.prediction, "eps");
  assert.equal(c.model.time_input, "discrete");
  // Optimum exports the timestep as a scalar: one time per call.
  assert.equal(c.model.time_shape, "scalar");
  assert.deepEqual(c.shape, [4, 8, 8]);
  assert.deepEqual(c.model.condition, {
    input: "encoder_hidden_states",
    shape: [77, 32],
    guidance_scale: 7.5,
    uncond: "negative_prompt",
  });
  assert.deepEqual(c.decoder?.image_shape, [3, 64, 64]);
  assert.equal(c.decoder?.scale_factor, 0.18215);
  assert.equal(c.text_encoder?.tokenizer, join(SD_TINY.fp32, "tokenizer"));
  assert.equal(c.text_encoder?.max_length, 77);
  assert.equal(c.batch_size, 2);
});

Deno.test("loadModelConfig() reads the scheduler's prediction type and β range, naming the file on errors", async () => {
  const dir = await copyFolder(SD_TINY.fp32);
  const file = join(dir, "scheduler/scheduler_config.json");
  const original = JSON.parse(await Deno.readTextFile(file));
  try {
    await Deno.writeTextFile(
      file,
      JSON.stringify({
        ...original,
        prediction_type: "v_prediction",
        beta_schedule: "linear",
        beta_start: 0.0001,
        beta_end: 0.02,
      }),
    );
    const c = await loadModelConfig(dir);
    assert.equal(c.model.prediction, "v");
    assert.deepEqual(c.schedule, {
      kind: "vp_discrete",
      betas: "linear",
      num_steps: 1000,
      beta_start: 0.0001,
      beta_end: 0.02,
    });
    for (
      const [change, pattern] of [
        [
          { prediction_type: "flow" },
          /scheduler_config\.json: field "prediction_type" must be one of epsilon, v_prediction, sample: got "flow"/,
        ],
        [
          { beta_schedule: "sigmoid" },
          /field "beta_schedule" must be linear, scaled_linear or squaredcos_cap_v2/,
        ],
        [{ trained_betas: [0.1, 0.2] }, /field "trained_betas" is not read by ld3/],
        [{ num_train_timesteps: 0 }, /field "num_train_timesteps" must be an integer >= 2: got 0/],
      ] as const
    ) {
      await Deno.writeTextFile(file, JSON.stringify({ ...original, ...change }));
      await assert.rejects(() => loadModelConfig(dir), (e: unknown) => {
        assert.ok(e instanceof ConfigError, String(e));
        assert.ok(e.message.includes(file), e.message);
        assert.match(e.message, pattern);
        return true;
      });
    }
    await Deno.writeTextFile(file, JSON.stringify(original));
    await Deno.remove(join(dir, "unet/model.onnx"));
    await assert.rejects(
      () => loadModelConfig(dir),
      /model_index\.json: field "unet" names a part whose graph is missing/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadModelConfig() lays a YAML config that names the folder over the folder's fields", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const yml = join(dir, "sd.yml");
    await Deno.writeTextFile(
      yml,
      `pipeline: ${SD_TINY.fp32}\nname: mine\nbatch_size: 4\nmodel:\n  condition:\n    guidance_scale: 5\nschedule: { num_steps: 500 }\n`,
    );
    const c = await loadModelConfig(yml);
    assert.equal(c.name, "mine");
    assert.equal(c.batch_size, 4);
    assert.equal(c.model.condition?.guidance_scale, 5);
    assert.equal(c.model.condition?.input, "encoder_hidden_states");
    assert.equal((c.schedule as { num_steps: number }).num_steps, 500);
    assert.equal(c.pipeline, SD_TINY.fp32);
    await Deno.writeTextFile(yml, `pipeline: ${dir}\n`);
    await assert.rejects(
      () => loadModelConfig(yml),
      /field "pipeline" is not an export folder with model_index\.json/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("mergeConfigDocuments() merges mappings and replaces lists and values", () => {
  assert.deepEqual(
    mergeConfigDocuments({ a: { b: 1, c: [1, 2] }, d: 1 }, { a: { c: [3] }, e: 2 }),
    { a: { b: 1, c: [3] }, d: 1, e: 2 },
  );
});

/**
 * diffusers' older converter: the UNet's weights in weights.pb, a float time per sample, no
 * config.json beside the graphs.
 */
async function diffusersLayout(): Promise<string> {
  const dir = await copyFolder(SD_TINY.fp32);
  const unet = join(dir, "unet/model.onnx");
  const model = onnx.ModelProto.decode(await Deno.readFile(unet));
  for (const t of model.graph!.initializer!) {
    for (const e of t.externalData ?? []) if (e.key === "location") e.value = "weights.pb";
  }
  const t = model.graph!.input!.find((i) => i.name === "timestep")!;
  t.type!.tensorType!.shape = { dim: [{ dimParam: "batch" }] };
  await Deno.writeFile(unet, onnx.ModelProto.encode(model).finish());
  await Deno.rename(join(dir, "unet/model.onnx_data"), join(dir, "unet/weights.pb"));
  for (const sub of ["unet", "vae_decoder", "vae_encoder", "text_encoder"]) {
    await Deno.remove(join(dir, sub, "config.json"));
  }
  return dir;
}

Deno.test("loadModel() runs diffusers' older layout: weights.pb, a time per sample, no config.json", async () => {
  const dir = await diffusersLayout();
  try {
    const c = await loadModelConfig(dir);
    assert.equal(c.model.time_shape, "batch");
    // Without config.json the latent size is SD's 64 unless a YAML config says otherwise.
    assert.deepEqual(c.shape, [4, 64, 64]);
    const yml = join(dir, "sd.yml");
    await Deno.writeTextFile(
      yml,
      "pipeline: .\nshape: [4, 8, 8]\ndecoder: { image_shape: [3, 64, 64] }\n",
    );
    const model = await loadModel(yml);
    try {
      const x = new Float64Array(2 * 4 * 8 * 8).fill(0.1);
      const d = await model.denoiser.denoise(x, 0.5);
      assert.equal(d.length, x.length);
      assert.ok(d.every(Number.isFinite));
    } finally {
      await model.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
