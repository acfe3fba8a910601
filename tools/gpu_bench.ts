/**
 * The ONNX Runtime side of tools/gpu-check.sh: on one device, time
 *
 * - sampling: `sampleImages` (UniPC, `--nfe` steps, one batch of `--batch` images), after one
 *   warm-up batch, as images per second;
 * - the bare network: `session.run` at batch `--batch`, outputs copied back to JS memory, and
 *   (WebGPU only) with `preferredOutputLocation: "gpu-buffer"`, which leaves them on the GPU —
 *   the difference bounds what I/O binding could save;
 * - forward + VJP with respect to x (the network part of an LD3 step), through the VJP model
 *   that `lib/vjp` builds from the same ONNX file.
 *
 * ```sh
 * deno run -A tools/gpu_bench.ts --config unet.yml --device webgpu --batch 128 --nfe 10 --json out.json
 * ```
 *
 * Writes one JSON object; a stage that fails records its error and the others still run.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { ort } from "../lib/deps.ts";
import { loadModelConfig } from "../lib/onnx/config.ts";
import { loadModel } from "../lib/onnx/model.ts";
import { createSession } from "../lib/onnx/session.ts";
import { sampleImages } from "../lib/pipelines/sampling.ts";
import { buildVjpModel } from "../lib/vjp/mod.ts";

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function stamp(message: string): void {
  console.error(`[${new Date().toISOString().slice(11, 19)}] gpu_bench: ${message}`);
}

function errorText(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).replace(/\s*\n\s*/g, " ").slice(0, 400);
}

/** Median seconds of `repeats` calls after `warmup` calls. */
async function timeRuns(fn: () => Promise<void>, repeats: number, warmup = 2): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const start = performance.now();
    await fn();
    times.push((performance.now() - start) / 1000);
  }
  return median(times);
}

function noise(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    strict: true,
    options: {
      config: { type: "string" },
      device: { type: "string", default: "cpu" },
      batch: { type: "string", default: "128" },
      nfe: { type: "string", default: "10" },
      repeats: { type: "string", default: "10" },
      json: { type: "string" },
      skip: { type: "string", default: "" },
    },
  });
  if (!values.config || !values.json) throw new TypeError("--config and --json are required");
  const device = values.device;
  const batch = Number(values.batch);
  const nfe = Number(values.nfe);
  const repeats = Number(values.repeats);
  const skip = new Set(values.skip.split(",").filter((s) => s));
  const result: Record<string, unknown> = { device, batch, nfe };
  const save = () => Deno.writeTextFile(values.json as string, JSON.stringify(result, null, 2));
  const config = await loadModelConfig(values.config);
  const bytes = await Deno.readFile(config.model.path);
  const x = noise(batch * 3 * 32 * 32, 1);
  const feeds = () => ({
    x: new ort.Tensor("float32", x, [batch, ...config.shape]),
    sigma: new ort.Tensor("float32", new Float32Array(batch).fill(2), [batch]),
  });

  // 1. Sampling through the library (solver in float64 on the CPU, network on the device).
  if (!skip.has("sample")) {
    try {
      stamp(`sampling on ${device}`);
      const start = performance.now();
      const model = await loadModel(config, { device });
      result.session_s = (performance.now() - start) / 1000;
      try {
        const options = {
          solverName: "uni_pc",
          steps: nfe,
          skipType: "edm",
          numSamples: batch,
          batchSize: batch,
        };
        const first = performance.now();
        const warm = await sampleImages(model, options);
        result.first_sample_s = (performance.now() - first) / 1000;
        result.sampler_nfe = warm.sampler.nfe;
        const times: number[] = [];
        for (let i = 0; i < 2; i++) {
          const t0 = performance.now();
          await sampleImages(model, { ...options, seed: i + 1 });
          times.push((performance.now() - t0) / 1000);
        }
        result.sample_s = Math.min(...times);
        result.images_per_s = batch / (result.sample_s as number);
      } finally {
        await model.close();
      }
    } catch (e) {
      result.sample_error = errorText(e);
    }
    await save();
  }

  // 2. The bare network, outputs back in JS memory vs. left on the GPU.
  if (!skip.has("forward")) {
    for (
      const location of device.startsWith("webgpu")
        ? ["cpu", "gpu-buffer"] as const
        : ["cpu"] as const
    ) {
      try {
        stamp(`forward on ${device}, outputs to ${location}`);
        const session = await createSession(bytes, { device, preferredOutputLocation: location });
        try {
          result[`forward_s_${location}`] = await timeRuns(async () => {
            const out = await session.run(feeds());
            for (const t of Object.values(out)) t.dispose();
          }, repeats);
        } finally {
          await session.release();
        }
      } catch (e) {
        result[`forward_error_${location}`] = errorText(e);
      }
      await save();
    }
  }

  // 3. Forward + VJP w.r.t. x: the network part of one LD3 trajectory step.
  if (!skip.has("vjp")) {
    try {
      stamp(`building the VJP model`);
      const t0 = performance.now();
      const vjp = await buildVjpModel(bytes, {
        wrt: ["x"],
        of: "denoised",
        returnOutput: true,
        inputShapes: { x: [batch, ...config.shape], sigma: [batch] },
      });
      result.vjp_build_s = (performance.now() - t0) / 1000;
      stamp(`forward + VJP on ${device}`);
      const session = await createSession(vjp, { device });
      try {
        const cot = noise(batch * 3 * 32 * 32, 2);
        const names = session.inputNames;
        const cotName = names.find((n) => n !== "x" && n !== "sigma") as string;
        result.forward_vjp_s = await timeRuns(
          async () => {
            const out = await session.run({
              ...feeds(),
              [cotName]: new ort.Tensor("float32", cot, [batch, ...config.shape]),
            });
            for (const t of Object.values(out)) t.dispose();
          },
          Math.max(3, Math.floor(repeats / 2)),
          1,
        );
      } finally {
        await session.release();
      }
    } catch (e) {
      result.vjp_error = errorText(e);
    }
    await save();
  }
  console.log(JSON.stringify(result));
}

try {
  await main();
} catch (e) {
  console.error(`error: ${errorText(e)}`);
  Deno.exit(1);
}
