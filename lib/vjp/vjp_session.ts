/**
 * A runnable VJP of an ONNX model that builds (and caches) one specialised VJP model per set
 * of input shapes.
 *
 * @module
 */
import { ort } from "../deps.ts";
import { buildVjpModel, cotangentName, gradientName, type VjpOptions } from "./build_vjp_model.ts";
import { withDerivedFolder } from "../onnx/derived.ts";

/** Options of {@linkcode VjpSession.create}. */
export interface VjpSessionOptions extends Omit<VjpOptions, "inputShapes"> {
  /**
   * ONNX Runtime session options of each specialised VJP model.
   *
   * @default {{}}
   */
  sessionOptions?: ort.InferenceSession.SessionOptions;
}

/** Result of {@linkcode VjpSession.run}. */
export interface VjpResult {
  /** Cotangent of each `wrt` input, by input name. */
  gradients: Record<string, ort.Tensor>;
  /** The forward value of `of`, when `returnOutput` was set. */
  output?: ort.Tensor;
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
    let of = options.of;
    if (of === undefined) {
      const probe = await ort.InferenceSession.create(model);
      of = probe.outputNames[0];
      await probe.release();
    }
    return new VjpSession(model, options, of);
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
    const key = Object.entries(inputs).map(([k, t]) => `${k}:${t.dims.join("x")}`).sort().join(
      ";",
    );
    let session = this.#sessions.get(key);
    if (!session) {
      const inputShapes = Object.fromEntries(
        Object.entries(inputs).map(([k, t]) => [k, [...t.dims]]),
      );
      const folder = this.#options.externalDataFolder;
      const base = this.#options.sessionOptions ?? {};
      session = buildVjpModel(this.#model, { ...this.#options, of: this.#of, inputShapes })
        .then((bytes) =>
          ort.InferenceSession.create(bytes, folder ? withDerivedFolder(base, folder) : base)
        );
      this.#sessions.set(key, session);
    }
    const s = await session;
    const result = await s.run({ ...inputs, [cotangentName(this.#of)]: cotangent });
    const gradients: Record<string, ort.Tensor> = {};
    for (const w of this.#options.wrt) gradients[w] = result[gradientName(w)];
    return this.#options.returnOutput ? { gradients, output: result[this.#of] } : { gradients };
  }

  /** Releases every cached ONNX Runtime session. */
  async release(): Promise<void> {
    for (const s of this.#sessions.values()) await (await s).release();
    this.#sessions.clear();
  }
}
