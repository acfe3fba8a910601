import assert from "node:assert/strict";
import { join } from "node:path";
import { loadModelConfig } from "../../lib/onnx/config.ts";
import {
  encodePrompts,
  loadPromptedModel,
  PROMPT_EMBEDDINGS_DIR,
  promptList,
  textConditioning,
} from "../../lib/pipelines/prompts.ts";
import { sampleImages } from "../../lib/pipelines/sampling.ts";
import { evaluateSchedule } from "../../lib/pipelines/evaluate.ts";
import { encodeNpy } from "../../lib/io/npy.ts";
import { linearFeatureModel } from "../fixtures/tiny_models.ts";
import { SD_TINY } from "../_sd_tiny.ts";

const CAT = "an oil painting of a cat sitting on a red chair";
const MOON = "a photo of an astronaut riding a horse on the moon";

Deno.test("promptList(): --prompt, or the lines of a prompts file without blank ones", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assert.deepEqual(await promptList({ prompt: CAT }), [CAT]);
    assert.equal(await promptList({}), undefined);
    const file = join(dir, "p.txt");
    await Deno.writeTextFile(file, `${CAT}\r\n\n  ${MOON}  \n`);
    assert.deepEqual(await promptList({ promptsFile: file }), [CAT, MOON]);
    await Deno.writeTextFile(file, "\n\n");
    await assert.rejects(() => promptList({ promptsFile: file }), /holds no prompt/);
    await assert.rejects(() => promptList({ promptsFile: join(dir, "none") }), /cannot be read/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("encodePrompts() encodes each distinct prompt once and caches it in the dataset", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const config = await loadModelConfig(SD_TINY.fp32);
    const a = await encodePrompts(config, [CAT, MOON, CAT], { cacheDir: dir });
    const size = a.data.length / 3;
    assert.deepEqual(a.shape, [3, 77, 32]);
    assert.deepEqual(a.data.subarray(0, size), a.data.subarray(2 * size));
    assert.notDeepEqual(a.data.subarray(0, size), a.data.subarray(size, 2 * size));
    const files = [...Deno.readDirSync(join(dir, PROMPT_EMBEDDINGS_DIR))].map((e) => e.name);
    assert.equal(files.length, 2);
    // Without the cache: the same embeddings.
    assert.deepEqual((await encodePrompts(config, [CAT, MOON, CAT])).data, a.data);
    // With it, the cached embeddings are read, not encoded again (here: altered ones).
    for (const f of files) {
      await Deno.writeFile(
        join(dir, PROMPT_EMBEDDINGS_DIR, f),
        encodeNpy(new Float32Array(size).fill(0.25), [77, 32]),
      );
    }
    const b = await encodePrompts(config, [MOON], { cacheDir: dir });
    assert.ok(b.data.every((v) => v === 0.25));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("textConditioning(): the prompts' rows and the negative prompt's embedding", async () => {
  for (const folder of [SD_TINY.fp32, SD_TINY.fp16]) {
    const config = await loadModelConfig(folder);
    const text = await textConditioning(config, { prompt: MOON, negativePrompt: "blurry" });
    assert.ok(text);
    assert.deepEqual(text.prompts, [MOON]);
    assert.equal(text.negativePrompt, "blurry");
    assert.deepEqual(text.condition.shape, [1, 77, 32]);
    assert.deepEqual(text.uncond, (await encodePrompts(config, ["blurry"])).data);
    // No prompt: the empty one; the export folder's unconditional input is the empty prompt's.
    const empty = await textConditioning(config, {});
    assert.deepEqual(empty?.prompts, [""]);
    assert.deepEqual(empty?.uncond, (await encodePrompts(config, [""])).data);
  }
});

Deno.test("evaluateSchedule() cycles prompts over seeded samples as sampleImages() does", async () => {
  const { model, text } = await loadPromptedModel(SD_TINY.fp32, { guidanceScale: 3 });
  const dir = await Deno.makeTempDir();
  try {
    const prompts = join(dir, "p.txt");
    await Deno.writeTextFile(prompts, `${CAT}\n${MOON}\n`);
    const cond = await textConditioning(model.config, { promptsFile: prompts });
    assert.ok(text && cond);
    const grid = { steps: 3, skipType: "edm" as const, numSamples: 3, seed: 5 };
    const sampled = await sampleImages(model, { ...grid, condition: cond.condition });
    let preview: Float32Array | undefined;
    const dim = 2;
    const imageSize = model.imageShape.reduce((a, b) => a * b, 1);
    await evaluateSchedule(model, {
      ...grid,
      batchSize: 2,
      condition: cond.condition,
      features: { path: await writeFeatures(dir, model.imageShape, dim) },
      fidRef: { mu: new Float64Array(dim), sigma: Float64Array.of(1, 0, 0, 1) },
      previewImages: 3,
      onPreview: (images) => preview = images.slice(),
    });
    assert.ok(preview);
    assert.equal(preview.length, 3 * imageSize);
    for (let i = 0; i < preview.length; i++) {
      assert.ok(Math.abs(preview[i] - sampled.images[i]) < 1e-5, `pixel ${i}`);
    }
    // Sample 2 got prompt 0 again: another seed, another image.
    assert.notDeepEqual(preview.subarray(0, imageSize), preview.subarray(2 * imageSize));
  } finally {
    await model.close();
    await Deno.remove(dir, { recursive: true });
  }
});

async function writeFeatures(dir: string, shape: readonly number[], dim: number) {
  const path = join(dir, "features.onnx");
  await Deno.writeFile(path, linearFeatureModel(shape, dim, (i) => Math.sin(i) / 100));
  return path;
}
