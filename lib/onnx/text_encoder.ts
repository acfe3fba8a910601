/**
 * Prompts to the condition of a text-conditioned model: the tokenizer (`tokenizer.ts`) and the
 * text encoder of a config's `text_encoder` section (a CLIP text tower in Stable Diffusion
 * exports), whose `last_hidden_state` is the UNet's `encoder_hidden_states`.
 *
 * @module
 */
import { ort } from "../deps.ts";
import { ElemType } from "./build.ts";
import type { ModelConfig } from "./config.ts";
import { openOnnxFile, readOnnxFile } from "./external.ts";
import { withOutputs } from "./session.ts";
import { loadTokenizer, type PromptTokenizer } from "./tokenizer.ts";

/** A loaded text encoder. */
export interface TextEncoder {
  /** Values of one prompt's embedding (`max_length × width`). */
  readonly size: number;
  /** The embedding's shape, `[max_length, width]`. */
  readonly shape: readonly number[];
  /** The tokenizer in front of it. */
  readonly tokenizer: PromptTokenizer;
  /** The embeddings of `prompts`, one after the other (float32). */
  encode(prompts: readonly string[]): Promise<Float32Array>;
  /** Releases the ONNX Runtime session. */
  close(): Promise<void>;
}

/** Prompts per text encoder call. */
const PROMPTS_PER_CALL = 8;

/** The token id tensor of some prompts, in the element type the graph declares. */
function idTensor(
  tokenizer: PromptTokenizer,
  prompts: readonly string[],
  elemType: number,
): ort.Tensor {
  const ids = prompts.flatMap((p) => tokenizer.encode(p));
  const dims = [prompts.length, tokenizer.maxLength];
  return elemType === ElemType.int64
    ? new ort.Tensor("int64", BigInt64Array.from(ids, (v) => BigInt(v)), dims)
    : new ort.Tensor("int32", Int32Array.from(ids), dims);
}

/**
 * Loads the text encoder of a config (`text_encoder` section) on `device`.
 *
 * @example
 * ```ts ignore
 * const encoder = await loadTextEncoder(config);
 * const c = await encoder.encode(["a photo of a cat", ""]); // 2 × 77 × 768 values for SD 1.x
 * await encoder.close();
 * ```
 * @throws {TypeError} when the config has no text encoder, its graph lacks the configured input
 * or output, the input is not integer token ids, or the tokenizer files cannot be read
 */
export async function loadTextEncoder(
  config: ModelConfig,
  device: string = config.device,
): Promise<TextEncoder> {
  const t = config.text_encoder;
  if (!t) throw new TypeError(`Model "${config.name}" has no text encoder (text_encoder)`);
  const file = await readOnnxFile(t.path);
  const input = file.signature.inputs.find((s) => s.name === t.input);
  if (!input || ![ElemType.int32, ElemType.int64].includes(input.elemType as 6 | 7)) {
    throw new TypeError(
      `ONNX text encoder ${t.path}: input "${t.input}" (text_encoder.input) must be int32 or ` +
        `int64 token ids: found ${input ? input.elemTypeName : "no such input"}`,
    );
  }
  if (!file.signature.outputs.some((s) => s.name === t.output)) {
    throw new TypeError(
      `ONNX text encoder ${t.path} has no output "${t.output}" (text_encoder.output)`,
    );
  }
  const tokenizer = await loadTokenizer(t.tokenizer, t.max_length);
  const session = await openOnnxFile(file, device, config.threads);
  let shape: number[] | undefined;
  const encodeChunk = (prompts: readonly string[]) =>
    withOutputs(session, { [t.input]: idTensor(tokenizer, prompts, input.elemType) }, (out) => {
      const y = out[t.output];
      shape = y.dims.slice(1) as number[];
      return Float32Array.from(y.data as Float32Array);
    });
  // One call learns the width: the condition's shape without trusting config files.
  const probe = await encodeChunk([""]);
  return {
    size: probe.length,
    shape: shape!,
    tokenizer,
    async encode(prompts) {
      const out = new Float32Array(prompts.length * probe.length);
      for (let start = 0; start < prompts.length; start += PROMPTS_PER_CALL) {
        const part = await encodeChunk(prompts.slice(start, start + PROMPTS_PER_CALL));
        out.set(part, start * probe.length);
      }
      return out;
    },
    close: () => session.release(),
  };
}
