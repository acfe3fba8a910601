/**
 * `deno task bench`: the overhead of `generate` over the bare network.
 *
 * For each config (default `configs/gmm-mnist.yml`) it times `generateDataset` per sample
 * (solver, noise, decoder, `.npz` writes; batch 16) and, in the same process, the bare ONNX
 * Runtime forward pass on a batch of 16 (plus the decoder's, when there is one). The overhead
 * is `generate time per batch / (NFE × forward + decoder) − 1`; the target is ≤ 5 %.
 *
 * ```sh
 * deno task bench [--steps 10] [--solver_name uni_pc] [--total_samples 64] [config.yml ...]
 * ```
 *
 * @module
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { loadModelConfig, type ModelConfig } from "../lib/config.ts";
import { ort } from "../lib/deps.ts";
import { loadModel } from "../lib/model.ts";
import { createSession, readOnnxSignature } from "../lib/onnx_session.ts";
import { generateDataset, initialNoise, prepareSampler } from "../lib/sampling.ts";
import { runPlan } from "../lib/solver.ts";
import { intOption, runTask } from "./_data_cli.ts";

const BATCH = 16;
const ELEM_FLOAT = 1;
const ELEM_INT64 = 7;
const ELEM_DOUBLE = 11;

/** A tensor of `shape` filled with small deterministic values of the signature's type. */
function inputTensor(elemType: number, shape: number[], value: number): ort.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  if (elemType === ELEM_INT64) {
    return new ort.Tensor("int64", new BigInt64Array(n).fill(BigInt(Math.round(value))), shape);
  }
  if (elemType === ELEM_DOUBLE) {
    return new ort.Tensor(
      "float64",
      Float64Array.from({ length: n }, (_, i) => value + i * 1e-3),
      shape,
    );
  }
  return new ort.Tensor(
    "float32",
    Float32Array.from({ length: n }, (_, i) => value + i * 1e-3),
    shape,
  );
}

/**
 * Seconds of one `session.run(feeds)`: the mean over `repeats` runs, best of 5 such blocks
 * (after two warm-up runs). Taking the best block filters out other processes on a busy host.
 */
async function timeForward(
  session: ort.InferenceSession,
  feeds: Record<string, ort.Tensor>,
  repeats: number,
): Promise<number> {
  for (let k = 0; k < 2; k++) await session.run(feeds);
  let best = Infinity;
  for (let block = 0; block < 5; block++) {
    const start = performance.now();
    for (let k = 0; k < repeats; k++) await session.run(feeds);
    best = Math.min(best, (performance.now() - start) / 1000 / repeats);
  }
  return best;
}

/** Bare network seconds for one batch: the denoiser's forward and the decoder's. */
async function bareTimes(config: ModelConfig, repeats: number) {
  const bytes = await Deno.readFile(config.model.path);
  const signature = readOnnxSignature(bytes);
  const session = await createSession(bytes, { device: config.device });
  const typeOf = (name: string) =>
    signature.inputs.find((s) => s.name === name)?.elemType ?? ELEM_FLOAT;
  const m = config.model;
  const feeds: Record<string, ort.Tensor> = {
    [m.inputs.x]: inputTensor(typeOf(m.inputs.x), [BATCH, ...config.shape], 0.1),
    [m.inputs.t]: inputTensor(typeOf(m.inputs.t), m.time_shape === "batch" ? [BATCH] : [], 1),
  };
  // Classifier-free guidance evaluates the network on the conditional and unconditional batch.
  let calls = 1;
  if (m.condition) {
    feeds[m.condition.input] = inputTensor(ELEM_FLOAT, [BATCH, ...m.condition.shape], 0);
    if (m.condition.guidance_scale !== 1) calls = 2;
  }
  const forward = calls * await timeForward(session, feeds, repeats);
  await session.release();
  let decoder = 0;
  if (config.decoder) {
    const decBytes = await Deno.readFile(config.decoder.path);
    const decSession = await createSession(decBytes, { device: config.device });
    const decFeeds = {
      [config.decoder.input]: inputTensor(ELEM_FLOAT, [BATCH, ...config.shape], 0.1),
    };
    decoder = await timeForward(decSession, decFeeds, Math.max(2, Math.ceil(repeats / 10)));
    await decSession.release();
  }
  return { forward, decoder };
}

async function benchConfig(
  path: string,
  options: { steps: number; solverName: string; skipType: string; totalSamples: number },
) {
  const config = await loadModelConfig(path);
  const model = await loadModel(config);
  const root = await Deno.makeTempDir({ prefix: "ld3-bench-" });
  try {
    const common = {
      steps: options.steps,
      solverName: options.solverName,
      skipType: options.skipType,
      samplingBatchSize: BATCH,
      progress: false as const,
    };
    // Warm-up run (first-call allocations, JIT), then the best of 3 timed runs; the bare
    // forward is timed in between, in the same process, so both see the same machine.
    await generateDataset(model, { ...common, totalSamples: BATCH, dataDir: join(root, "warm") });
    const { forward, decoder } = await bareTimes(config, 2 * options.steps);
    let seconds = Infinity;
    let nfe = 0;
    for (let r = 0; r < 3; r++) {
      const run = await generateDataset(model, {
        ...common,
        totalSamples: options.totalSamples,
        dataDir: join(root, `timed${r}`),
      });
      seconds = Math.min(seconds, run.seconds);
      nfe = run.manifest.solver.nfe;
    }
    // Breakdown: noise for one batch, and the solve alone (solver + denoiser adapter + ORT).
    const sampler = await prepareSampler(model, common);
    const indices = Array.from({ length: BATCH }, (_, i) => i);
    const noiseOptions = {
      shape: model.sampleShape,
      priorScale: model.denoiser.schedule.priorScale,
    };
    const { xT } = initialNoise(0, indices, noiseOptions);
    let noise = Infinity;
    let solve = Infinity;
    for (let r = 0; r < 5; r++) {
      let t = performance.now();
      initialNoise(r, indices, noiseOptions);
      noise = Math.min(noise, (performance.now() - t) / 1000);
      t = performance.now();
      await runPlan(sampler.plan, model.denoiser, xT);
      solve = Math.min(solve, (performance.now() - t) / 1000);
    }
    const batches = options.totalSamples / BATCH;
    const perBatch = seconds / batches;
    const bare = nfe * forward + decoder;
    return {
      name: config.name,
      nfe,
      generateMsPerSample: (seconds / options.totalSamples) * 1000,
      bareMsPerSample: (bare / BATCH) * 1000,
      noiseMsPerSample: (noise / BATCH) * 1000,
      solveMsPerSample: (solve / BATCH) * 1000,
      overheadPercent: (perBatch / bare - 1) * 100,
    };
  } finally {
    await model.close();
    await Deno.remove(root, { recursive: true });
  }
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    strict: true,
    allowPositionals: true,
    options: {
      steps: { type: "string" },
      solver_name: { type: "string" },
      skip_type: { type: "string" },
      total_samples: { type: "string" },
    },
  });
  const configs = positionals.length > 0 ? positionals : ["configs/gmm-mnist.yml"];
  const totalSamples = intOption("total_samples", values.total_samples) ?? 64;
  if (totalSamples < BATCH || totalSamples % BATCH !== 0) {
    throw new RangeError(
      `--total_samples must be a positive multiple of ${BATCH}: got ${totalSamples}`,
    );
  }
  const options = {
    steps: intOption("steps", values.steps) ?? 10,
    solverName: values.solver_name ?? "uni_pc",
    skipType: values.skip_type ?? "edm",
    totalSamples,
  };
  console.log(
    `generate overhead, batch ${BATCH}, ${options.solverName} ${options.skipType}, ` +
      `${options.steps} steps, ${totalSamples} samples`,
  );
  console.log(
    "| model | NFE | generate ms/sample | bare ORT ms/sample (NFE × fwd + dec) | overhead " +
      "| of which: noise ms/sample | solve ms/sample (solver + adapter + ORT) |",
  );
  console.log("| --- | --- | --- | --- | --- | --- | --- |");
  for (const path of configs) {
    const r = await benchConfig(path, options);
    console.log(
      `| ${r.name} | ${r.nfe} | ${r.generateMsPerSample.toFixed(3)} | ${
        r.bareMsPerSample.toFixed(3)
      } | ${r.overheadPercent.toFixed(1)}% ${
        r.overheadPercent <= 5 ? "(≤ 5% target met)" : "(above 5% target)"
      } | ${r.noiseMsPerSample.toFixed(3)} | ${r.solveMsPerSample.toFixed(3)} |`,
    );
  }
}

if (import.meta.main) await runTask(main);
