/**
 * The overhead of `generate` over the bare network (`deno task bench`): for one config it times,
 * in one process and interleaved repetition by repetition (so that load from other processes
 * hits both alike),
 *
 * - **generate**: `generateDataset` per sample (noise, solver, denoiser adapter, decoder, `.npz`
 *   writes; batch 16), and
 * - **bare**: the same number of bare ONNX Runtime forward calls on batches of 16 (plus the
 *   decoder's), i.e. NFE × forward + decoder per batch,
 *
 * and reports the median over the repetitions of each and their ratio (target ≤ 1.05). A
 * breakdown, also medians per sample, splits the overhead into noise, the solver's own combines
 * (`runPlan` with a denoiser that does no work), the denoiser adapter (`denoise` minus the bare
 * call it wraps), decoding, `.npz` encoding and the atomic file writes.
 *
 * @module
 */
import { join } from "node:path";
import { ort } from "../deps.ts";
import { encodeSample, SAMPLES_DIR, writeSample } from "../io/dataset.ts";
import { loadModelConfig, type ModelConfig } from "../onnx/config.ts";
import { sessionSource } from "../onnx/external.ts";
import { type LoadedModel, loadModel } from "../onnx/model.ts";
import { createSession, fixedBatch, readOnnxSignature } from "../onnx/session.ts";
import { type OptionDeclarations, type OptionValues, resolveOptions } from "../options.ts";
import { runPlan } from "../solvers/plan.ts";
import { generateDataset } from "./generate.ts";
import { MODEL_OPTIONS, SAMPLER_OPTIONS } from "./options.ts";
import { type PreparedSampler, prepareSampler } from "./sampler.ts";
import { initialNoise } from "./sampling.ts";

/** Samples per batch of both sides. */
export const OVERHEAD_BATCH = 16;

/** The options of {@linkcode benchGenerateOverhead} (`deno task bench`). */
export const OVERHEAD_BENCH_OPTIONS = {
  solverName: SAMPLER_OPTIONS.solverName,
  steps: { ...SAMPLER_OPTIONS.steps, default: 10 },
  skipType: SAMPLER_OPTIONS.skipType,
  totalSamples: {
    flag: "total_samples",
    kind: "integer",
    arg: "N",
    min: OVERHEAD_BATCH,
    default: 64,
    help: `samples per repetition, a multiple of ${OVERHEAD_BATCH}`,
  },
  repeats: {
    flag: "repeats",
    kind: "integer",
    arg: "N",
    min: 1,
    default: 5,
    help: "interleaved repetitions; medians are reported",
  },
  device: MODEL_OPTIONS.device,
  threads: MODEL_OPTIONS.threads,
} as const satisfies OptionDeclarations;

/** What {@linkcode benchGenerateOverhead} measured for one config. */
export interface OverheadResult {
  /** The config's name. */
  name: string;
  nfe: number;
  /** Medians in ms per sample: generate, bare, and the breakdown parts. */
  med: Record<string, number>;
  /** Smallest and largest of the generate and bare repetitions. */
  spread: { generate: [number, number]; bare: [number, number] };
  /** `generate / bare`. */
  ratio: number;
}

const ELEM_FLOAT = 1;
const ELEM_INT64 = 7;
const ELEM_DOUBLE = 11;

/** A tensor of `shape` filled with small deterministic values of the signature's type. */
function inputTensor(elemType: number, shape: number[], value: number): ort.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  if (elemType === ELEM_INT64) {
    return new ort.Tensor("int64", new BigInt64Array(n).fill(BigInt(Math.round(value))), shape);
  }
  const data = Float64Array.from({ length: n }, (_, i) => value + i * 1e-3);
  return elemType === ELEM_DOUBLE
    ? new ort.Tensor("float64", data, shape)
    : new ort.Tensor("float32", Float32Array.from(data), shape);
}

function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** A bare ONNX Runtime session of a file, the feeds of one call and the calls of one batch. */
interface BareNetwork {
  session: ort.InferenceSession;
  /** The feeds of one call. */
  feeds: Record<string, ort.Tensor>;
  /** Calls the adapter makes for one batch (more than one for a small or fixed export batch). */
  calls: number;
}

/** Seconds of the calls a network makes for `batches` batches, back to back. */
async function timeBatches(network: BareNetwork, batches: number): Promise<number> {
  const start = performance.now();
  for (let k = 0; k < batches * network.calls; k++) {
    const result = await network.session.run(network.feeds);
    for (const tensor of Object.values(result)) tensor.dispose();
  }
  return (performance.now() - start) / 1000;
}

/**
 * The bare denoiser session, fed like the adapter feeds it for one batch of `batch` samples:
 * with classifier-free guidance `2 × batch` rows, in calls of at most `batch_size` rows, or of
 * exactly the export's fixed batch, as the adapter makes them.
 */
async function bareDenoiser(config: ModelConfig, batch: number): Promise<BareNetwork> {
  const bytes = await Deno.readFile(config.model.path);
  const signature = readOnnxSignature(bytes);
  const source = sessionSource(config.model.path, bytes, signature.externalData);
  const session = await createSession(source, {
    device: config.device,
    intraOpNumThreads: config.threads,
  });
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
  return { session, feeds, calls: Math.ceil(wanted / rows) };
}

/** The bare decoder session of a latent model, fed like the adapter feeds it. */
async function bareDecoder(config: ModelConfig, batch: number): Promise<BareNetwork | undefined> {
  const decoder = config.decoder;
  if (!decoder) return undefined;
  const bytes = await Deno.readFile(decoder.path);
  const signature = readOnnxSignature(bytes);
  const source = sessionSource(decoder.path, bytes, signature.externalData);
  const session = await createSession(source, {
    device: config.device,
    intraOpNumThreads: config.threads,
  });
  const rows = fixedBatch(signature, decoder.input) ?? Math.min(config.batch_size, batch);
  return {
    session,
    feeds: { [decoder.input]: inputTensor(ELEM_FLOAT, [rows, ...config.shape], 0.1) },
    calls: Math.ceil(batch / rows),
  };
}

/** Per-sample milliseconds of each measured part, one entry per repetition. */
class Timings {
  readonly ms: Record<string, number[]> = {};
  record(key: string, seconds: number, samples: number): void {
    (this.ms[key] ??= []).push((seconds / samples) * 1000);
  }
  async clock(key: string, samples: number, fn: () => unknown): Promise<void> {
    const start = performance.now();
    await fn();
    this.record(key, (performance.now() - start) / 1000, samples);
  }
}

/** What one repetition times, prepared once. */
interface OverheadSetup {
  model: LoadedModel;
  sampler: PreparedSampler;
  bare: { denoiser: BareNetwork; decoder?: BareNetwork };
  root: string;
  common: Parameters<typeof generateDataset>[1];
  totalSamples: number;
}

/** One repetition of generate against the bare calls it makes, then the breakdown. */
async function repetition(s: OverheadSetup, r: number, t: Timings): Promise<void> {
  const { model, sampler, bare } = s;
  const nfe = sampler.nfe;
  const batches = s.totalSamples / OVERHEAD_BATCH;
  // The same number of forward calls as one generate run makes, then that run.
  let bareSeconds = await timeBatches(bare.denoiser, nfe * batches);
  if (bare.decoder) bareSeconds += await timeBatches(bare.decoder, batches);
  t.record("bare", bareSeconds, s.totalSamples);
  const dataDir = join(s.root, `timed${r}`);
  const run = await generateDataset(model, { ...s.common, totalSamples: s.totalSamples, dataDir });
  t.record("generate", run.seconds, s.totalSamples);
  await Deno.remove(dataDir, { recursive: true });
  await breakdown(s, r, t);
}

/** The parts of one batch's work, measured apart. */
async function breakdown(s: OverheadSetup, r: number, t: Timings): Promise<void> {
  const { model, sampler, bare } = s;
  const B = OVERHEAD_BATCH;
  const indices = Array.from({ length: B }, (_, i) => i);
  const noise = { shape: model.sampleShape, priorScale: model.denoiser.schedule.priorScale };
  const { z, xT } = initialNoise(0, indices, noise);
  const identity = { denoise: (x: Float64Array) => Promise.resolve(x) };
  await t.clock("noise", B, () => initialNoise(r, indices, noise));
  await t.clock("solve", B, () => runPlan(sampler.plan, model.denoiser, xT));
  await t.clock("combines", B, () => runPlan(sampler.plan, identity, xT));
  const start = performance.now();
  for (let k = 0; k < sampler.nfe; k++) {
    await model.denoiser.denoise(xT, sampler.grid.t2[0], { step: k });
  }
  const adapter = (performance.now() - start) / 1000;
  const forward = await timeBatches(bare.denoiser, sampler.nfe);
  t.record("adapter", adapter - forward, B);
  t.record("forward", forward, B);
  const decoded = await model.decode(xT);
  await t.clock("decode", B, () => model.decode(xT));
  const d = z.length / B;
  const xSize = decoded.length / B;
  const shapes = { z: [...model.sampleShape], x: [...model.imageShape] };
  const sampleOf = (b: number) => ({
    index: b,
    z: z.subarray(b * d, (b + 1) * d),
    x: decoded.subarray(b * xSize, (b + 1) * xSize),
  });
  await t.clock("encode", B, () => indices.forEach((b) => encodeSample(sampleOf(b), shapes)));
  const ioDir = join(s.root, "io");
  await Deno.mkdir(join(ioDir, SAMPLES_DIR), { recursive: true });
  await t.clock(
    "write",
    B,
    () => Promise.all(indices.map((b) => writeSample(ioDir, sampleOf(b), shapes))),
  );
}

/**
 * Measures the overhead of `generate` over the bare network for the config at `path` (see the
 * module doc).
 */
export async function benchGenerateOverhead(
  path: string,
  options: OptionValues<typeof OVERHEAD_BENCH_OPTIONS> = {},
): Promise<OverheadResult> {
  const o = resolveOptions(OVERHEAD_BENCH_OPTIONS, options);
  if (o.totalSamples % OVERHEAD_BATCH !== 0) {
    throw new RangeError(
      `totalSamples must be a positive multiple of ${OVERHEAD_BATCH}: got ${o.totalSamples}`,
    );
  }
  const config = await loadModelConfig(path);
  if (o.device !== undefined) config.device = o.device;
  if (o.threads !== undefined) config.threads = o.threads;
  const model = await loadModel(config);
  const bare = { denoiser: await bareDenoiser(config, OVERHEAD_BATCH) } as OverheadSetup["bare"];
  bare.decoder = await bareDecoder(config, OVERHEAD_BATCH);
  const root = await Deno.makeTempDir({ prefix: "ld3-bench-" });
  try {
    const common = {
      steps: o.steps,
      solverName: o.solverName,
      skipType: o.skipType,
      samplingBatchSize: OVERHEAD_BATCH,
      progress: false as const,
    };
    const sampler = await prepareSampler(model, common);
    const s: OverheadSetup = { model, sampler, bare, root, common, totalSamples: o.totalSamples };
    // Warm-up: first-call allocations and JIT of every measured path.
    await generateDataset(model, {
      ...common,
      totalSamples: OVERHEAD_BATCH,
      dataDir: join(root, "warm"),
    });
    await timeBatches(bare.denoiser, 2 * sampler.nfe);
    const noise = { shape: model.sampleShape, priorScale: model.denoiser.schedule.priorScale };
    const { xT } = initialNoise(0, [0], noise);
    await runPlan(sampler.plan, { denoise: (x) => Promise.resolve(x) }, xT);
    const t = new Timings();
    for (let r = 0; r < o.repeats; r++) await repetition(s, r, t);
    return summarize(config.name, sampler.nfe, t);
  } finally {
    await model.close();
    await bare.denoiser.session.release();
    await bare.decoder?.session.release();
    await Deno.remove(root, { recursive: true });
  }
}

function summarize(name: string, nfe: number, t: Timings): OverheadResult {
  const med: Record<string, number> = {};
  for (const [key, values] of Object.entries(t.ms)) med[key] = median(values);
  const { generate, bare } = t.ms;
  return {
    name,
    nfe,
    med,
    spread: {
      generate: [Math.min(...generate), Math.max(...generate)],
      bare: [Math.min(...bare), Math.max(...bare)],
    },
    ratio: med.generate / med.bare,
  };
}
