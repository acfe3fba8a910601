/**
 * Runnable VJPs of an ONNX model that build (and cache) one specialised VJP model per set of
 * input shapes: {@linkcode VjpSession} runs forward and backward in one call,
 * {@linkcode SplitVjpSession} runs a forward call that keeps what the backward call needs, and
 * the backward call later, without repeating the forward.
 *
 * @module
 */
import { join } from "node:path";
import { ort, type OrtSessionOptions, type OrtTensor } from "../deps.ts";
import {
  buildSplitVjpModels,
  buildVjpModel,
  cotangentName,
  gradientName,
  type VjpOptions,
  type VjpResidual,
} from "./build_vjp_model.ts";
import { type CachedBuild, cachedBuild } from "./cache.ts";
import {
  joinRows,
  type SessionWorkers,
  sliceRows,
  splitBatch,
  type WorkerOutput,
} from "../onnx/workers.ts";
import { withDerivedFolder } from "../onnx/derived.ts";
import { ELEMENT_BYTES } from "../onnx/build.ts";

/** Options of {@linkcode VjpSession.create}. */
export interface VjpSessionOptions extends Omit<VjpOptions, "inputShapes"> {
  /**
   * ONNX Runtime session options of each specialised VJP model.
   *
   * @default {{}}
   */
  sessionOptions?: OrtSessionOptions;
  /**
   * Keep built models in the disk cache of `cache.ts` (and read them from it).
   *
   * @default {false}
   */
  cache?: boolean;
}

/** Result of {@linkcode VjpSession.run}. */
export interface VjpResult {
  /** Cotangent of each `wrt` input, by input name. */
  gradients: Record<string, OrtTensor>;
  /** The forward value of `of`, when `returnOutput` was set. */
  output?: OrtTensor;
}

/** `name:dims` of every input, sorted: the specialisation key. */
function shapeKey(inputs: Record<string, ort.Tensor>): string {
  return Object.entries(inputs).map(([k, t]) => `${k}:${t.dims.join("x")}`).sort().join(";");
}

function shapesOf(inputs: Record<string, ort.Tensor>): Record<string, number[]> {
  return Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, [...t.dims]]));
}

/**
 * `options` for a graph whose weights stay in external data in `folder` (the model's own files:
 * `lib/onnx/derived.ts`); `options` itself without a folder.
 */
function withWeightsFolder(
  options: ort.InferenceSession.SessionOptions,
  folder: string | undefined,
): ort.InferenceSession.SessionOptions {
  return folder === undefined ? options : withDerivedFolder(options, folder);
}

/** The output `of` names, probing the model when it is not given. */
async function resolveOf(model: Uint8Array, of: string | undefined): Promise<string> {
  if (of !== undefined) return of;
  const probe = await ort.InferenceSession.create(model);
  try {
    return probe.outputNames[0];
  } finally {
    await probe.release();
  }
}

/** Runs vector–Jacobian products of a model, specialising per input shapes. */
export class VjpSession {
  readonly #model: Uint8Array;
  readonly #options: VjpSessionOptions;
  readonly #sessions = new Map<string, Promise<ort.InferenceSession>>();
  readonly #of: string;

  private constructor(model: Uint8Array, options: VjpSessionOptions, of: string) {
    this.#model = model;
    this.#options = options;
    this.#of = of;
  }

  /**
   * Prepares a VJP session. Nothing is built until the first {@linkcode VjpSession.run}.
   *
   * @param model Forward model bytes.
   * @param options What to differentiate.
   */
  static async create(model: Uint8Array, options: VjpSessionOptions): Promise<VjpSession> {
    return new VjpSession(model, options, await resolveOf(model, options.of));
  }

  /** The output whose cotangent is fed. */
  get of(): string {
    return this.#of;
  }

  /** Number of specialised VJP models built so far. */
  get cachedShapes(): number {
    return this.#sessions.size;
  }

  /**
   * Computes `cotangentᵀ ∂of/∂x` for each `wrt` input `x` at `inputs`.
   *
   * @param inputs Every model input, by name.
   * @param cotangent Cotangent of `of`, shaped like it.
   */
  async run(inputs: Record<string, OrtTensor>, cotangent: OrtTensor): Promise<VjpResult> {
    const key = shapeKey(inputs);
    let session = this.#sessions.get(key);
    if (!session) {
      session = this.#open(shapesOf(inputs));
      this.#sessions.set(key, session);
    }
    const s = await session;
    const result = await s.run({ ...inputs, [cotangentName(this.#of)]: cotangent });
    const gradients: Record<string, ort.Tensor> = {};
    for (const w of this.#options.wrt) gradients[w] = result[gradientName(w)];
    return this.#options.returnOutput ? { gradients, output: result[this.#of] } : { gradients };
  }

  async #open(inputShapes: Record<string, number[]>): Promise<ort.InferenceSession> {
    const { sessionOptions, cache, ...build } = this.#options;
    const options = { ...build, of: this.#of, inputShapes };
    const make = async () => ({
      files: { "vjp.onnx": await buildVjpModel(this.#model, options) },
      meta: null,
    });
    const { files } = cache
      ? await cachedBuild(this.#model, { kind: "vjp", ...options }, make)
      : await make();
    return await ort.InferenceSession.create(
      files["vjp.onnx"],
      withWeightsFolder(sessionOptions ?? {}, build.externalDataFolder),
    );
  }

  /** Releases every cached ONNX Runtime session. */
  async release(): Promise<void> {
    for (const s of this.#sessions.values()) await (await s).release();
    this.#sessions.clear();
  }
}

/** What {@linkcode SplitVjpSession.forward} kept for the backward call: opaque to callers. */
export interface VjpSaved {
  /** The size of the residuals in bytes (what holding this costs). */
  readonly bytes: number;
  /** Frees the residuals without a backward call (a backward call frees them itself). */
  release(): void;
}

/** Residuals of one part of a batch (the whole batch without workers). */
interface SavedPart {
  /** The specialisation that ran the part. */
  readonly key: string;
  /** First sample and sample count of the part. */
  readonly start: number;
  readonly count: number;
  /** Its residual tensors, by name, when they are in this thread. */
  readonly tensors?: Record<string, ort.Tensor>;
  /** Otherwise the worker that ran the part and keeps them, and their handle there. */
  readonly worker?: number;
  readonly handle?: number;
}

/** Frees what parts left in workers: on release, and when a saved set is collected unused. */
function dropParts(workers: SessionWorkers | undefined, parts: readonly SavedPart[]): void {
  for (const p of parts) {
    if (p.handle !== undefined) workers?.drop(p.worker!, [p.handle]);
  }
}

/** Residuals in workers are freed when their saved set is collected without a backward call. */
const unusedResiduals = new FinalizationRegistry<
  { workers: SessionWorkers | undefined; parts: readonly SavedPart[] }
>(({ workers, parts }) => dropParts(workers, parts));

/** The {@linkcode VjpSaved} of this module. */
class SavedResiduals implements VjpSaved {
  #used = false;
  constructor(
    readonly parts: readonly SavedPart[],
    readonly bytes: number,
    readonly workers: SessionWorkers | undefined,
  ) {
    if (workers) unusedResiduals.register(this, { workers, parts }, this);
  }
  /** Marks the residuals used by a backward call (which frees them). */
  take(): void {
    if (this.#used) {
      throw new RangeError("backward: these residuals served a backward call already");
    }
    this.#used = true;
    unusedResiduals.unregister(this);
  }
  release(): void {
    if (this.#used) return;
    this.#used = true;
    unusedResiduals.unregister(this);
    dropParts(this.workers, this.parts);
  }
}

/** Options of {@linkcode SplitVjpSession.create}. */
export interface SplitVjpSessionOptions extends Omit<VjpSessionOptions, "returnOutput"> {
  /**
   * Run calls of several samples on these workers instead of in this thread: the batch is cut
   * into one contiguous part per worker, each part keeps its residuals, and the backward call
   * sends each part's residuals back to a worker (`lib/onnx/workers.ts`). The workers' session
   * options are `workerSessionOptions`.
   */
  workers?: SessionWorkers;
  /** ONNX Runtime options of the sessions opened on `workers`. @default {sessionOptions} */
  workerSessionOptions?: OrtSessionOptions;
}

/** One specialisation: its models, residuals and (without workers) its two sessions. */
interface SplitPair {
  residuals: readonly VjpResidual[];
  /** The forward part, in this thread (without workers); one for every shape. */
  forward?: ort.InferenceSession;
  /** The backward part of these shapes, in this thread (without workers). */
  backward?: ort.InferenceSession;
}

/**
 * Runs VJPs in two calls (`buildSplitVjpModels`): {@linkcode SplitVjpSession.forward} computes
 * the model's output exactly as the model does and keeps the residuals the backward pass reads;
 * {@linkcode SplitVjpSession.backward} turns them and a cotangent into the gradients. A caller
 * that runs the forward anyway (a solver trajectory to differentiate later) so pays for no
 * second forward. Specialised per input shapes, like {@linkcode VjpSession}. What a forward call
 * saved serves one backward call.
 */
export class SplitVjpSession {
  readonly #model: Uint8Array;
  readonly #options: SplitVjpSessionOptions;
  readonly #pairs = new Map<string, Promise<SplitPair>>();
  /** The forward part's session: its graph does not depend on the input shapes. */
  #forward: Promise<ort.InferenceSession | undefined> | undefined;
  readonly #of: string;
  /** Names of this session's models on the workers (shared by sessions of the same VJP). */
  readonly #name: string;

  private constructor(model: Uint8Array, options: SplitVjpSessionOptions, of: string) {
    this.#model = model;
    this.#options = options;
    this.#of = of;
    this.#name = `vjp ${options.wrt.join(",")} of ${of}`;
  }

  /**
   * Prepares the sessions; nothing is built until the first {@linkcode SplitVjpSession.forward}.
   *
   * @param model Forward model bytes.
   * @param options What to differentiate.
   */
  static async create(
    model: Uint8Array,
    options: SplitVjpSessionOptions,
  ): Promise<SplitVjpSession> {
    return new SplitVjpSession(model, options, await resolveOf(model, options.of));
  }

  /** The output whose cotangent is fed. */
  get of(): string {
    return this.#of;
  }

  /**
   * The bytes of the residuals one forward call at `inputs`' shapes keeps (builds the
   * specialisations if needed).
   */
  async residualBytes(inputs: Record<string, OrtTensor>): Promise<number> {
    let total = 0;
    for (const part of this.#parts(inputs)) {
      const pair = await this.#pair(part.inputs);
      total += pair.residuals.reduce((a, r) => a + bytesOf(r), 0);
    }
    return total;
  }

  /**
   * The model's output at `inputs` (computed by the model's own nodes, so equal to a plain run
   * of the same samples) and what the backward call needs.
   */
  async forward(
    inputs: Record<string, OrtTensor>,
  ): Promise<{ output: OrtTensor; saved: VjpSaved }> {
    const parts = this.#parts(inputs);
    const outputs = await Promise.all(parts.map(async (part, k) => {
      const key = shapeKey(part.inputs);
      const pair = await this.#pair(part.inputs);
      const bytes = pair.residuals.reduce((a, r) => a + bytesOf(r), 0);
      const residuals = pair.residuals.map((r) => r.name);
      const { start, count } = part;
      if (pair.forward) {
        const result = await pair.forward.run(part.inputs);
        const tensors = Object.fromEntries(residuals.map((n) => [n, result[n]]));
        return { saved: { key, start, count, tensors }, bytes, out: toWire(result, [this.#of]) };
      }
      // The residuals stay in the worker until the backward call there.
      const { outputs: out, handle } = await this.#options.workers!.runOn(
        k,
        `${this.#name} forward`,
        wireFeeds(part.inputs),
        [this.#of],
        { keep: residuals },
      );
      return { saved: { key, start, count, worker: k, handle }, bytes, out };
    }));
    const out = joinRows(outputs.map((o) => o.out), [this.#of])[this.#of];
    const bytes = outputs.reduce((a, o) => a + o.bytes, 0);
    const saved = outputs.map((o) => o.saved);
    return {
      output: new ort.Tensor(out.type, out.data, [...out.dims]),
      saved: new SavedResiduals(saved, bytes, this.#options.workers),
    };
  }

  /**
   * `cotangentᵀ ∂of/∂x` for each `wrt` input, at the inputs of the forward call that gave
   * `saved` (which this consumes).
   *
   * @throws {RangeError} for a `saved` of another session, or one already used
   */
  async backward(saved: VjpSaved, cotangent: OrtTensor): Promise<Record<string, OrtTensor>> {
    if (!(saved instanceof SavedResiduals)) {
      throw new RangeError("backward: saved is not what this session's forward call kept");
    }
    saved.take();
    const seed = cotangentName(this.#of);
    const wrt = this.#options.wrt.map(gradientName);
    const results = await Promise.all(saved.parts.map(async (part) => {
      const pair = await this.#pairs.get(part.key)!;
      const cot = saved.parts.length === 1
        ? cotangent
        : toTensor(sliceRows(cotangent, part.start, part.count));
      if (pair.backward) {
        return toWire(await pair.backward.run({ ...part.tensors, [seed]: cot }), wrt);
      }
      // The worker that ran the part's forward holds its residuals.
      const { outputs } = await this.#options.workers!.runOn(
        part.worker!,
        `${this.#name} backward ${part.key}`,
        wireFeeds({ [seed]: cot }),
        wrt,
        { use: part.handle },
      );
      return outputs;
    }));
    const gradients: Record<string, ort.Tensor> = {};
    for (const w of this.#options.wrt) {
      const g = joinGradient(results.map((r) => r[gradientName(w)]), saved.parts);
      gradients[w] = toTensor(g);
    }
    return gradients;
  }

  /** The parts of a call: one per worker (at most one per sample), or the whole batch. */
  #parts(inputs: Record<string, ort.Tensor>) {
    const workers = this.#options.workers;
    const batch = inputs[this.#options.wrt[0]]?.dims[0] ?? 1;
    if (!workers || batch < 2) return [{ start: 0, count: batch, inputs }];
    return splitBatch(batch, workers.count).map(({ start, count }) => {
      const part: Record<string, ort.Tensor> = {};
      for (const [name, t] of Object.entries(inputs)) {
        if (t.dims.length > 0 && t.dims[0] === batch) {
          const rows = sliceRows(t, start, count);
          part[name] = new ort.Tensor(rows.type, rows.data, [...rows.dims]);
        } else part[name] = t;
      }
      return { start, count, inputs: part };
    });
  }

  #pair(inputs: Record<string, ort.Tensor>): Promise<SplitPair> {
    const key = shapeKey(inputs);
    let pair = this.#pairs.get(key);
    if (!pair) {
      pair = this.#open(key, shapesOf(inputs));
      this.#pairs.set(key, pair);
    }
    return pair;
  }

  async #open(key: string, inputShapes: Record<string, number[]>): Promise<SplitPair> {
    const { sessionOptions, cache, workers, workerSessionOptions, ...build } = this.#options;
    const options = { ...build, of: this.#of, inputShapes };
    const make = async () => {
      const m = await buildSplitVjpModels(this.#model, options);
      return {
        files: { "forward.onnx": m.forward, "backward.onnx": m.backward },
        meta: m.residuals,
      };
    };
    const built: CachedBuild<readonly VjpResidual[]> = cache
      ? await cachedBuild(this.#model, { kind: "split", ...options }, make)
      : await make();
    const { files, meta, dir } = built;
    const folder = build.externalDataFolder;
    // Workers open the cache's files when there are some: sending each worker the bytes costs
    // more than the worker reading them. Graphs whose weights stay in the model's files are
    // sent as bytes, and told that folder.
    const source = (name: string) => dir && !folder ? join(dir, name) : files[name];
    const here = withWeightsFolder(sessionOptions ?? {}, folder);
    const there = withWeightsFolder(workerSessionOptions ?? sessionOptions ?? {}, folder);
    this.#forward ??= workers
      ? workers.openSession(`${this.#name} forward`, source("forward.onnx"), there)
        .then(() => undefined)
      : ort.InferenceSession.create(files["forward.onnx"], here);
    if (workers) {
      await Promise.all([
        this.#forward,
        workers.openSession(`${this.#name} backward ${key}`, source("backward.onnx"), there),
      ]);
      return { residuals: meta };
    }
    return {
      residuals: meta,
      forward: await this.#forward,
      backward: await ort.InferenceSession.create(files["backward.onnx"], here),
    };
  }

  /** Releases the sessions of this thread (the workers belong to their owner). */
  async release(): Promise<void> {
    for (const p of this.#pairs.values()) {
      const pair = await p.catch(() => undefined);
      await pair?.backward?.release();
    }
    this.#pairs.clear();
    const forward = await this.#forward?.catch(() => undefined);
    await forward?.release();
    this.#forward = undefined;
  }
}

/** Copies of tensors, for handing to a worker (which takes their buffers). */
function wireFeeds(feeds: Record<string, ort.Tensor>): Record<string, WorkerOutput> {
  const out: Record<string, WorkerOutput> = {};
  for (const [name, t] of Object.entries(feeds)) {
    out[name] = { type: t.type, dims: [...t.dims], data: (t.data as Float32Array).slice() };
  }
  return out;
}

function toTensor(t: WorkerOutput): ort.Tensor {
  return new ort.Tensor(t.type, t.data, [...t.dims]);
}

/** The outputs `names` of a run, as plain tensors. */
function toWire(
  result: Record<string, ort.Tensor | WorkerOutput>,
  names: readonly string[],
): Record<string, WorkerOutput> {
  const out: Record<string, WorkerOutput> = {};
  for (const name of names) {
    const t = result[name];
    out[name] = { type: t.type, dims: [...t.dims], data: t.data as Float32Array };
  }
  return out;
}

/**
 * One input's gradient from the parts of a batch: joined along the batch axis when it has one
 * row per sample, summed when the input was shared by the whole batch (a scalar time).
 */
function joinGradient(
  pieces: readonly WorkerOutput[],
  parts: readonly SavedPart[],
): WorkerOutput {
  if (pieces.length === 1) return pieces[0];
  if (pieces.every((p, k) => p.dims.length > 0 && p.dims[0] === parts[k].count)) {
    return joinRows(pieces.map((p) => ({ g: p })), ["g"]).g;
  }
  const data = pieces[0].data.slice();
  for (const p of pieces.slice(1)) for (let i = 0; i < data.length; i++) data[i] += p.data[i];
  return { type: pieces[0].type, dims: pieces[0].dims, data };
}

function bytesOf(r: VjpResidual): number {
  return r.shape.reduce((a, b) => a * b, 1) * (ELEMENT_BYTES[r.dtype] ?? 4);
}
