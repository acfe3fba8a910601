/**
 * Runnable VJPs of an ONNX model that build (and cache) one specialised VJP model per set of
 * input shapes: {@linkcode VjpSession} runs forward and backward in one call,
 * {@linkcode SplitVjpSession} runs a forward call that keeps what the backward call needs, and
 * the backward call later, without repeating the forward.
 *
 * @module
 */
import { ort } from "../deps.ts";
import {
  buildSplitVjpModels,
  buildVjpModel,
  cotangentName,
  gradientName,
  type VjpOptions,
  type VjpResidual,
} from "./build_vjp_model.ts";
import { cachedBuild } from "./cache.ts";

/** Options of {@linkcode VjpSession.create}. */
export interface VjpSessionOptions extends Omit<VjpOptions, "inputShapes"> {
  /**
   * ONNX Runtime session options of each specialised VJP model.
   *
   * @default {{}}
   */
  sessionOptions?: ort.InferenceSession.SessionOptions;
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
  gradients: Record<string, ort.Tensor>;
  /** The forward value of `of`, when `returnOutput` was set. */
  output?: ort.Tensor;
}

/** `name:dims` of every input, sorted: the specialisation key. */
function shapeKey(inputs: Record<string, ort.Tensor>): string {
  return Object.entries(inputs).map(([k, t]) => `${k}:${t.dims.join("x")}`).sort().join(";");
}

function shapesOf(inputs: Record<string, ort.Tensor>): Record<string, number[]> {
  return Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, [...t.dims]]));
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
  async run(inputs: Record<string, ort.Tensor>, cotangent: ort.Tensor): Promise<VjpResult> {
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
    return await ort.InferenceSession.create(files["vjp.onnx"], sessionOptions ?? {});
  }

  /** Releases every cached ONNX Runtime session. */
  async release(): Promise<void> {
    for (const s of this.#sessions.values()) await (await s).release();
    this.#sessions.clear();
  }
}

/** What {@linkcode SplitVjpSession.forward} kept for the backward call: opaque to callers. */
export interface VjpSaved {
  /** The specialisation the forward call ran. */
  readonly key: string;
  /** The residual tensors, by name. */
  readonly tensors: Record<string, ort.Tensor>;
  /** Their size in bytes (what holding this costs). */
  readonly bytes: number;
}

/** Options of {@linkcode SplitVjpSession.create}. */
export type SplitVjpSessionOptions = Omit<VjpSessionOptions, "returnOutput">;

/** The sessions of one specialisation: the forward part, the backward part, the residuals. */
interface SplitPair {
  forward: ort.InferenceSession;
  backward: ort.InferenceSession;
  residuals: readonly VjpResidual[];
}

/**
 * Runs VJPs in two calls (`buildSplitVjpModels`): {@linkcode SplitVjpSession.forward} computes
 * the model's output exactly as the model does and keeps the residuals the backward pass reads;
 * {@linkcode SplitVjpSession.backward} turns them and a cotangent into the gradients. A caller
 * that runs the forward anyway (a solver trajectory to differentiate later) so pays for no
 * second forward. Specialised per input shapes, like {@linkcode VjpSession}.
 */
export class SplitVjpSession {
  readonly #model: Uint8Array;
  readonly #options: SplitVjpSessionOptions;
  readonly #pairs = new Map<string, Promise<SplitPair>>();
  readonly #of: string;

  private constructor(model: Uint8Array, options: SplitVjpSessionOptions, of: string) {
    this.#model = model;
    this.#options = options;
    this.#of = of;
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
   * The residuals one forward call at `inputs`' shapes keeps, and their bytes (builds the
   * specialisation if needed).
   */
  async residualBytes(inputs: Record<string, ort.Tensor>): Promise<number> {
    const pair = await this.#pair(inputs);
    return pair.residuals.reduce((a, r) => a + bytesOf(r), 0);
  }

  /**
   * The model's output at `inputs` (computed by the model's own nodes, so equal to a plain run)
   * and what the backward call needs.
   */
  async forward(
    inputs: Record<string, ort.Tensor>,
  ): Promise<{ output: ort.Tensor; saved: VjpSaved }> {
    const key = shapeKey(inputs);
    const pair = await this.#pair(inputs);
    const result = await pair.forward.run(inputs);
    const tensors: Record<string, ort.Tensor> = {};
    let bytes = 0;
    for (const r of pair.residuals) {
      tensors[r.name] = result[r.name];
      bytes += bytesOf(r);
    }
    return { output: result[this.#of], saved: { key, tensors, bytes } };
  }

  /**
   * `cotangentᵀ ∂of/∂x` for each `wrt` input, at the inputs of the forward call that gave
   * `saved`.
   */
  async backward(saved: VjpSaved, cotangent: ort.Tensor): Promise<Record<string, ort.Tensor>> {
    const pair = this.#pairs.get(saved.key);
    if (!pair) throw new RangeError(`No forward call of these shapes ran: ${saved.key}`);
    const { backward } = await pair;
    const result = await backward.run({ ...saved.tensors, [cotangentName(this.#of)]: cotangent });
    const gradients: Record<string, ort.Tensor> = {};
    for (const w of this.#options.wrt) gradients[w] = result[gradientName(w)];
    return gradients;
  }

  #pair(inputs: Record<string, ort.Tensor>): Promise<SplitPair> {
    const key = shapeKey(inputs);
    let pair = this.#pairs.get(key);
    if (!pair) {
      pair = this.#open(shapesOf(inputs));
      this.#pairs.set(key, pair);
    }
    return pair;
  }

  async #open(inputShapes: Record<string, number[]>): Promise<SplitPair> {
    const { sessionOptions, cache, ...build } = this.#options;
    const options = { ...build, of: this.#of, inputShapes };
    const make = async () => {
      const m = await buildSplitVjpModels(this.#model, options);
      return {
        files: { "forward.onnx": m.forward, "backward.onnx": m.backward },
        meta: m.residuals,
      };
    };
    const { files, meta } = cache
      ? await cachedBuild(this.#model, { kind: "split", ...options }, make)
      : await make();
    const forward = await ort.InferenceSession.create(files["forward.onnx"], sessionOptions ?? {});
    const backward = await ort.InferenceSession.create(
      files["backward.onnx"],
      sessionOptions ?? {},
    );
    return { forward, backward, residuals: meta };
  }

  /** Releases every ONNX Runtime session. */
  async release(): Promise<void> {
    for (const p of this.#pairs.values()) {
      const { forward, backward } = await p;
      await forward.release();
      await backward.release();
    }
    this.#pairs.clear();
  }
}

/** Bytes per element of the ONNX element types (float, uint8, int8, …, double, uint32, uint64). */
const ELEMENT_BYTES: Record<number, number> = {
  1: 4,
  2: 1,
  3: 1,
  4: 2,
  5: 2,
  6: 4,
  7: 8,
  9: 1,
  10: 2,
  11: 8,
  12: 4,
  13: 8,
  16: 2,
};

function bytesOf(r: VjpResidual): number {
  return r.shape.reduce((a, b) => a * b, 1) * (ELEMENT_BYTES[r.dtype] ?? 4);
}
