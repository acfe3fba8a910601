/**
 * Loading and network calls of a Stable Diffusion export folder, for bench/sd15/run.sh:
 *
 *   deno run -A bench/sd15/calls.ts ort <folder>   ONNX Runtime's own session creation of the
 *                                                  files ld3 opens (text encoder, UNet, VAE decoder)
 *   deno run -A bench/sd15/calls.ts ld3 <folder>   ld3's load of the folder to its first network
 *                                                  call, then seconds per call at batch 1 with CFG
 *
 * Prints one JSON line. Each mode runs in its own process, so neither inherits the other's
 * sessions; the files are read once before timing, so both find them in the page cache.
 */
import { join } from "node:path";
import { ort } from "../../lib/deps.ts";
import { sessionOptionsFor } from "../../lib/onnx/session.ts";
import { loadModelConfig } from "../../lib/onnx/config.ts";
import { loadModel } from "../../lib/onnx/model.ts";
import { encodePrompts } from "../../lib/pipelines/prompts.ts";

const [mode, folder] = Deno.args;
if (!folder || !["ort", "ld3"].includes(mode)) {
  throw new TypeError("usage: calls.ts ort|ld3 <export folder>");
}
const PARTS = ["text_encoder/model.onnx", "unet/model.onnx", "vae_decoder/model.onnx"];

/** Reads every file of the parts once (page cache), outside the timings. */
async function warm(): Promise<void> {
  for (const part of PARTS) {
    const dir = join(folder, part, "..");
    for await (const e of Deno.readDir(dir)) {
      const f = await Deno.open(join(dir, e.name));
      const buf = new Uint8Array(1 << 24);
      while (await f.read(buf) !== null) { /* read */ }
      f.close();
    }
  }
}

const seconds = (t0: number) => (performance.now() - t0) / 1000;

await warm();
if (mode === "ort") {
  const out: Record<string, number> = {};
  let total = 0;
  for (const part of PARTS) {
    const t0 = performance.now();
    const s = await ort.InferenceSession.create(join(folder, part), sessionOptionsFor("cpu"));
    out[part] = seconds(t0);
    total += out[part];
    await s.release();
  }
  console.log(JSON.stringify({ mode, sessions: out, total }));
} else {
  const config = await loadModelConfig(folder);
  const t0 = performance.now();
  // What `sample --prompt` does: the prompt and the negative prompt encoded, the model loaded.
  const cond = await encodePrompts(config, ["a photo of an astronaut riding a horse on the moon"]);
  const model = await loadModel(config, { guidanceScale: 7.5 });
  const loaded = seconds(t0);
  const d = model.sampleShape.reduce((a, b) => a * b, 1);
  const x = Float64Array.from({ length: d }, (_, i) => Math.sin(i) * 14);
  const t1 = performance.now();
  await model.denoiser.denoise(x, 14.6, { condition: cond.data });
  const firstCall = seconds(t1);
  const calls: number[] = [];
  for (let k = 0; k < 2; k++) {
    const t = performance.now();
    await model.denoiser.denoise(x, 5 - 2 * k, { condition: cond.data });
    calls.push(seconds(t));
  }
  const t2 = performance.now();
  await model.decode(x.map((v) => v / 14));
  const decode = seconds(t2);
  await model.close();
  console.log(JSON.stringify({
    mode,
    loadToFirstCall: loaded,
    firstCall,
    callsCfgBatch1: calls,
    decodeBatch1: decode,
    rssGiB: Deno.memoryUsage().rss / 2 ** 30,
  }));
}
