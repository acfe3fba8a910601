/**
 * `deno task bench`: the overhead of `generate` over the bare network.
 *
 * For each config (default `configs/gmm-mnist.yml`) it times, in one process and interleaved
 * repetition by repetition (so that load from other processes hits both alike):
 *
 * - **generate**: `generateDataset` per sample (noise, solver, denoiser adapter, decoder,
 *   `.npz` writes; batch 16), and
 * - **bare**: the same number of bare ONNX Runtime forward calls on batches of 16 (plus the
 *   decoder's), i.e. NFE × forward + decoder per batch,
 *
 * and reports the median over the repetitions of each, their ratio and the overhead
 * `generate / bare − 1` (target ≤ 5 %). A breakdown, also medians per sample, splits the
 * overhead into noise, the solver's own combines (`runPlan` with a denoiser that does no
 * work), the denoiser adapter (`denoise` minus the bare call it wraps), decoding, `.npz`
 * encoding and the atomic file writes.
 *
 * ```sh
 * deno task bench [--steps 10] [--solver_name uni_pc] [--skip_type edm] [--total_samples 64]
 *                 [--repeats 5] [config.yml ...]
 * ```
 *
 * @module
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { loadModelConfig, type ModelConfig } from "../lib/onnx/config.ts";
import { encodeSample, SAMPLES_DIR, writeSample } from "../lib/io/dataset.ts";
import { ort } from "../lib/deps.ts";
import { loadModel } from "../lib/onnx/model.ts";
import { sessionSource } from "../lib/onnx/external.ts";
import { createSession, fixedBatch, readOnnxSignature } from "../lib/onnx/session.ts";
import { generateDataset, initialNoise, prepareSampler } from "../lib/pipelines/sampling.ts";
import { runPlan } from "../lib/solvers/plan.ts";
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

function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Seconds of `calls` back-to-back `session.run(feeds)`. */
async function timeRuns(
  session: ort.InferenceSession,
  feeds: Record<string, ort.Tensor>,
  calls: number,
): Promise<number> {
  const start = performance.now();
  for (let k = 0; k < calls; k++) {
    const result = await session.run(feeds);
    for (const tensor of Object.values(result)) tensor.dispose();
  }
  return (performance.now() - start) / 1000;
}

/** A bare ONNX Runtime session of a file, the feeds of one call and the calls of one batch. */
interface BareNetwork {
  session: ort.InferenceSession;
  /** The feeds of one call. */
  feeds: Record<string, ort.Tensor>;
  /** Calls the adapter makes for one batch (more than one for a small or fixed export batch). */
  calls: number;
}

/** Times the calls a network makes for `batches` batches. */
function timeBatches(network: BareNetwork, batches: number): Promise<number> {
  return timeRuns(network.session, network.feeds, batches * network.calls);
}

/**
 * Bare sessions of the denoiser and the decoder, fed like the adapter feeds them for one batch
 * of `batch` samples: with classifier-free guidance `2 × batch` rows (unconditional and
 * conditional halves), in calls of at most `batch_size` rows, or of exactly the export's fixed
 * batch, as the adapter makes them.
 */
async function bareNetworks(config: ModelConfig, batch: number) {
  const bytes = await Deno.readFile(config.model.path);
  const signature = readOnnxSignature(bytes);
  const session = await createSession(
    sessionSource(config.model.path, bytes, signature.externalData),
    {
      device: config.device,
    },
  );
  const typeOf = (name: string) =>
    signature.inputs.find((s) => s.name === name)?.elemType ?? ELEM_FLOAT;
  const m = config.model;
  const wanted = m.condition && m.condition.guidance_scale !== 1 ? 2 * batch : batch;
  const rows = fixedBatch(signature, m.inputs.x) ?? Math.min(config.batch_size, wanted);
  const feeds: Record<string, ort.Tensor> = {
    [m.inputs.x]: inputTensor(typeOf(m.inputs.x), [rows, ...config.shape], 0.1),
    [m.inputs.t]: inputTensor(typeOf(m.inputs.t), m.time_shape === "batch" ? [rows] : [], 1),
  };
  if (m.condition) {
    feeds[m.condition.input] = inputTensor(ELEM_FLOAT, [rows, ...m.condition.shape], 0);
  }
  const denoiser: BareNetwork = { session, feeds, calls: Math.ceil(wanted / rows) };
  let decoder: BareNetwork | undefined;
  if (config.decoder) {
    const decBytes = await Deno.readFile(config.decoder.path);
    const decSignature = readOnnxSignature(decBytes);
    const decSession = await createSession(
      sessionSource(config.decoder.path, decBytes, decSignature.externalData),
      { device: config.device },
    );
    const decRows = fixedBatch(decSignature, config.decoder.input) ??
      Math.min(config.batch_size, batch);
    decoder = {
      session: decSession,
      feeds: { [config.decoder.input]: inputTensor(ELEM_FLOAT, [decRows, ...config.shape], 0.1) },
      calls: Math.ceil(batch / decRows),
    };
  }
  return { denoiser, decoder };
}

/** Per-sample milliseconds of each measured part, one entry per repetition. */
type Samples = Record<string, number[]>;

async function benchConfig(
  path: string,
  options: {
    steps: number;
    solverName: string;
    skipType: string;
    totalSamples: number;
    repeats: number;
  },
) {
  const config = await loadModelConfig(path);
  const model = await loadModel(config);
  const bare = await bareNetworks(config, BATCH);
  const root = await Deno.makeTempDir({ prefix: "ld3-bench-" });
  try {
    const common = {
      steps: options.steps,
      solverName: options.solverName,
      skipType: options.skipType,
      samplingBatchSize: BATCH,
      progress: false as const,
    };
    const sampler = await prepareSampler(model, common);
    const nfe = sampler.nfe;
    const batches = options.totalSamples / BATCH;
    const indices = Array.from({ length: BATCH }, (_, i) => i);
    const noiseOptions = {
      shape: model.sampleShape,
      priorScale: model.denoiser.schedule.priorScale,
    };
    const { z, xT } = initialNoise(0, indices, noiseOptions);
    const identity = { denoise: (x: Float64Array) => Promise.resolve(x) };
    const d = z.length / BATCH;
    const xSize = model.imageShape.reduce((a, b) => a * b, 1);
    const shapes = { z: [...model.sampleShape], x: [...model.imageShape] };
    const ioDir = join(root, "io");
    await Deno.mkdir(join(ioDir, SAMPLES_DIR), { recursive: true });
    const decoded = await model.decode(xT);
    const sampleOf = (b: number) => ({
      index: b,
      z: z.subarray(b * d, (b + 1) * d),
      x: decoded.subarray(b * xSize, (b + 1) * xSize),
    });

    const ms: Samples = {};
    const record = (key: string, seconds: number, samples: number) =>
      (ms[key] ??= []).push((seconds / samples) * 1000);
    const clock = async (fn: () => unknown) => {
      const start = performance.now();
      await fn();
      return (performance.now() - start) / 1000;
    };
    // Warm-up: first-call allocations and JIT of every measured path.
    await generateDataset(model, { ...common, totalSamples: BATCH, dataDir: join(root, "warm") });
    await timeBatches(bare.denoiser, 2 * nfe);
    await runPlan(sampler.plan, identity, xT);

    for (let r = 0; r < options.repeats; r++) {
      // The same number of forward calls as one generate run makes, then that run.
      let bareSeconds = await timeBatches(bare.denoiser, nfe * batches);
      if (bare.decoder) {
        bareSeconds += await timeBatches(bare.decoder, batches);
      }
      record("bare", bareSeconds, options.totalSamples);
      const run = await generateDataset(model, {
        ...common,
        totalSamples: options.totalSamples,
        dataDir: join(root, `timed${r}`),
      });
      record("generate", run.seconds, options.totalSamples);
      await Deno.remove(join(root, `timed${r}`), { recursive: true });

      // Breakdown, one batch each.
      record("noise", await clock(() => initialNoise(r, indices, noiseOptions)), BATCH);
      record("solve", await clock(() => runPlan(sampler.plan, model.denoiser, xT)), BATCH);
      record("combines", await clock(() => runPlan(sampler.plan, identity, xT)), BATCH);
      const t = sampler.grid.t2[0];
      const adapter = await clock(async () => {
        for (let k = 0; k < nfe; k++) await model.denoiser.denoise(xT, t, { step: k });
      });
      const forward = await timeBatches(bare.denoiser, nfe);
      record("adapter", adapter - forward, BATCH);
      record("forward", forward, BATCH);
      record("decode", await clock(() => model.decode(xT)), BATCH);
      record(
        "encode",
        await clock(() => {
          for (let b = 0; b < BATCH; b++) encodeSample(sampleOf(b), shapes);
        }),
        BATCH,
      );
      record(
        "write",
        await clock(() => Promise.all(indices.map((b) => writeSample(ioDir, sampleOf(b), shapes)))),
        BATCH,
      );
    }
    const med: Record<string, number> = {};
    for (const [key, values] of Object.entries(ms)) med[key] = median(values);
    return {
      name: config.name,
      nfe,
      med,
      spread: {
        generate: [Math.min(...ms.generate), Math.max(...ms.generate)],
        bare: [Math.min(...ms.bare), Math.max(...ms.bare)],
      },
      ratio: med.generate / med.bare,
    };
  } finally {
    await model.close();
    await bare.denoiser.session.release();
    await bare.decoder?.session.release();
    await Deno.remove(root, { recursive: true });
  }
}
const USAGE = `Usage: deno task bench [options] [config.yml ...]
  Times generate against the bare ONNX Runtime forward calls it makes, interleaved, per config
  (default configs/gmm-mnist.yml), and prints the overhead and its breakdown (target <= 5 %).
  --steps N           solver steps (default 10)
  --solver_name NAME  solver (default uni_pc)
  --skip_type TYPE    grid (default edm)
  --total_samples N   samples per repetition, a multiple of ${BATCH} (default 64)
  --repeats N         interleaved repetitions; medians are reported (default 5)`;

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
      repeats: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const configs = positionals.length > 0 ? positionals : ["configs/gmm-mnist.yml"];
  const totalSamples = intOption("total_samples", values.total_samples) ?? 64;
  if (totalSamples < BATCH || totalSamples % BATCH !== 0) {
    throw new RangeError(
      `--total_samples must be a positive multiple of ${BATCH}: got ${totalSamples}`,
    );
  }
  const repeats = intOption("repeats", values.repeats) ?? 5;
  if (repeats < 1) throw new RangeError(`--repeats must be at least 1: got ${repeats}`);
  const options = {
    steps: intOption("steps", values.steps) ?? 10,
    solverName: values.solver_name ?? "uni_pc",
    skipType: values.skip_type ?? "edm",
    totalSamples,
    repeats,
  };
  console.log(
    `generate overhead, batch ${BATCH}, ${options.solverName} ${options.skipType}, ` +
      `${options.steps} steps, ${totalSamples} samples, median of ${repeats} interleaved runs ` +
      `(min–max in brackets)`,
  );
  const f = (v: number) => v.toFixed(3);
  const results = [];
  for (const path of configs) results.push(await benchConfig(path, options));
  console.log(
    "\n| model | NFE | generate ms/sample | bare ORT ms/sample (NFE × fwd + dec) | " +
      "generate / bare | overhead |",
  );
  console.log("| --- | --- | --- | --- | --- | --- |");
  for (const r of results) {
    const overhead = (r.ratio - 1) * 100;
    console.log(
      `| ${r.name} | ${r.nfe} | ${f(r.med.generate)} [${r.spread.generate.map(f).join("–")}] | ` +
        `${f(r.med.bare)} [${r.spread.bare.map(f).join("–")}] | ${r.ratio.toFixed(2)} | ` +
        `${overhead.toFixed(1)}% ${overhead <= 5 ? "(≤ 5% target met)" : "(above 5% target)"} |`,
    );
  }
  console.log(
    "\nBreakdown, ms/sample (medians, measured apart; they overlap inside generate, where the " +
      "file writes of one batch run beside the next batch's solve):\n",
  );
  console.log(
    "| model | noise | solve (solver + adapter + ORT) | of which combines | of which adapter | " +
      "decode | .npz encode | atomic write | solve / (NFE × bare fwd) |",
  );
  console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const r of results) {
    const m = r.med;
    console.log(
      `| ${r.name} | ${f(m.noise)} | ${f(m.solve)} | ${f(m.combines)} | ${f(m.adapter)} | ` +
        `${f(m.decode)} | ${f(m.encode)} | ${f(m.write)} | ${(m.solve / m.forward).toFixed(2)} |`,
    );
  }
}

if (import.meta.main) await runTask(main);
