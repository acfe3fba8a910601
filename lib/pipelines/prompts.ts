/**
 * Prompts for text-conditioned models (Stable Diffusion): `--prompt`, a prompts file, the
 * negative prompt and the guidance scale, turned into the conditions sampling cycles through and
 * the unconditional input of classifier-free guidance.
 *
 * Each distinct prompt is encoded once by the model's text encoder (`lib/onnx/text_encoder.ts`).
 * A teacher dataset keeps the embeddings it used in `<dataset>/prompt_embeddings/` (one `.npy`
 * per prompt, named by the SHA-256 of the prompt and the text encoder), so a resumed or sharded
 * `generate` and the `train` run on it never encode a prompt twice and use exactly the teacher's
 * unconditional embedding.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { writeFileAtomic } from "../io/atomic.ts";
import type { Dataset } from "../io/dataset.ts";
import { encodeNpy, readNpy } from "../io/npy.ts";
import { loadModelConfig, type ModelConfig } from "../onnx/config.ts";
import { type LoadedModel, loadModel } from "../onnx/model.ts";
import { onnxModelHash, readOnnxFile } from "../onnx/external.ts";
import { loadTextEncoder } from "../onnx/text_encoder.ts";
import type { OptionDeclarations } from "../options.ts";
import type { ConditionInput } from "./sampling.ts";

/** `--prompt`, `--prompts`, `--negative_prompt`, `--guidance_scale`. */
export const PROMPT_OPTIONS = {
  prompt: {
    flag: "prompt",
    kind: "string",
    arg: "TEXT",
    exclusive: "prompt",
    help: "the prompt of every sample (text-conditioned models, e.g. a Stable Diffusion folder)",
  },
  promptsFile: {
    flag: "prompts",
    kind: "string",
    arg: "FILE",
    exclusive: "prompt",
    help: "prompts, one per line: sample i gets line i mod lines",
  },
  negativePrompt: {
    flag: "negative_prompt",
    kind: "string",
    arg: "TEXT",
    defaultText: "the empty prompt",
    help: "what guidance steers away from: its embedding is the unconditional input",
  },
  guidanceScale: {
    flag: "guidance_scale",
    kind: "number",
    arg: "W",
    defaultText: "the config's (7.5 for an export folder)",
    help: "classifier-free guidance scale w, out = u + w·(c − u); 1 turns guidance off",
  },
} as const satisfies OptionDeclarations;

/** The prompt options as given. */
export interface PromptValues {
  prompt?: string;
  promptsFile?: string;
  negativePrompt?: string;
  guidanceScale?: number;
}

/** Folder of a dataset's prompt embeddings. */
export const PROMPT_EMBEDDINGS_DIR = "prompt_embeddings";

/** What a run conditions on: the prompts, their embeddings and the unconditional input. */
export interface TextConditioning {
  /** The prompt of each condition row, in order: sample `i` gets row `i mod rows`. */
  prompts: string[];
  /**
   * The negative prompt (`""` for the empty one); absent when the config's own unconditional
   * input is used (no `--negative_prompt`, and `uncond` is `zeros` or a `.npy`).
   */
  negativePrompt?: string;
  /** The rows, for sampling and `generate`. */
  condition: ConditionInput & { data: Float32Array; shape: number[] };
  /**
   * The negative prompt's embedding, the unconditional input of guidance; absent when no negative
   * prompt is given and the config names its own unconditional input (`zeros` or a `.npy`).
   */
  uncond?: Float32Array;
}

/** The prompt list of the options: `--prompt`, the lines of `--prompts`, or none. */
export async function promptList(values: PromptValues): Promise<string[] | undefined> {
  if (values.prompt !== undefined) return [values.prompt];
  if (values.promptsFile === undefined) return undefined;
  let text: string;
  try {
    text = await Deno.readTextFile(values.promptsFile);
  } catch (e) {
    throw new TypeError(`--prompts ${values.promptsFile} cannot be read: ${(e as Error).message}`);
  }
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== "");
  if (lines.length === 0) throw new RangeError(`--prompts ${values.promptsFile} holds no prompt`);
  return lines;
}

/** SHA-256 identifying a text encoder's graph and weights, for the embedding cache. */
async function encoderHash(config: ModelConfig): Promise<string> {
  const file = await readOnnxFile(config.text_encoder!.path);
  return await onnxModelHash(file.path, file.bytes, file.signature.externalData);
}

/** The cache file of `prompt`'s embedding by the encoder `encoder` in `dir`. */
export function promptEmbeddingPath(dir: string, encoder: string, prompt: string): string {
  const key = createHash("sha256").update(`${encoder}\n${prompt}`).digest("hex");
  return join(dir, PROMPT_EMBEDDINGS_DIR, `${key}.npy`);
}

/** Options of {@linkcode encodePrompts}. */
export interface EncodePromptsOptions {
  /** Execution device of the text encoder. @default {config.device} */
  device?: string;
  /** A dataset folder whose embedding cache to read and fill. */
  cacheDir?: string;
}

/**
 * The embeddings of `prompts` (each distinct one encoded once), one after the other, and their
 * shape: read from a dataset's cache where present, the rest encoded in one session of the text
 * encoder (released at once) and written to the cache.
 *
 * @throws {TypeError} when the config has no text encoder
 */
export async function encodePrompts(
  config: ModelConfig,
  prompts: readonly string[],
  options: EncodePromptsOptions = {},
): Promise<{ data: Float32Array; shape: number[] }> {
  if (!config.text_encoder) {
    throw new TypeError(
      `Model "${config.name}" has no text encoder: prompts need a text-conditioned model ` +
        `(an export folder, or a config with a text_encoder section)`,
    );
  }
  const distinct = [...new Set(prompts)];
  const found = new Map<string, Float32Array>();
  const hash = options.cacheDir === undefined ? "" : await encoderHash(config);
  let shape: number[] | undefined;
  if (options.cacheDir !== undefined) {
    for (const p of distinct) {
      const cached = await readNpy(promptEmbeddingPath(options.cacheDir, hash, p)).catch(() => {});
      if (cached?.data instanceof Float32Array) {
        found.set(p, cached.data);
        shape = cached.shape;
      }
    }
  }
  const missing = distinct.filter((p) => !found.has(p));
  if (missing.length > 0) {
    const encoder = await loadTextEncoder(config, options.device);
    if (options.cacheDir !== undefined) {
      await Deno.mkdir(join(options.cacheDir, PROMPT_EMBEDDINGS_DIR), { recursive: true });
    }
    try {
      const data = await encoder.encode(missing);
      shape = [...encoder.shape];
      for (let k = 0; k < missing.length; k++) {
        const row = data.slice(k * encoder.size, (k + 1) * encoder.size);
        found.set(missing[k], row);
        if (options.cacheDir !== undefined) {
          const path = promptEmbeddingPath(options.cacheDir, hash, missing[k]);
          await writeFileAtomic(path, encodeNpy(row, shape));
        }
      }
    } finally {
      await encoder.close();
    }
  }
  const size = found.get(distinct[0])!.length;
  const out = new Float32Array(prompts.length * size);
  prompts.forEach((p, k) => out.set(found.get(p)!, k * size));
  return { data: out, shape: [prompts.length, ...shape!] };
}

/**
 * The text conditioning of the prompt options for a model config: its rows and the negative
 * prompt's embedding (encoded in one text encoder session), or undefined when no prompt is given.
 * A text-conditioned model given no prompt samples with the empty prompt.
 *
 * @throws {TypeError} when prompts are given to a model without a text encoder
 */
export async function textConditioning(
  config: ModelConfig,
  values: PromptValues,
  options: EncodePromptsOptions = {},
): Promise<TextConditioning | undefined> {
  let prompts = await promptList(values);
  if (prompts === undefined && values.negativePrompt !== undefined && !config.text_encoder) {
    throw new TypeError(
      `--negative_prompt needs a text-conditioned model: "${config.name}" has none`,
    );
  }
  if (prompts === undefined) {
    if (!config.text_encoder) return undefined;
    prompts = [""];
  }
  const negativePrompt = values.negativePrompt ?? "";
  const ownUncond = values.negativePrompt === undefined &&
    config.model.condition?.uncond !== "negative_prompt";
  const texts = ownUncond ? prompts : [...prompts, negativePrompt];
  const encoded = await encodePrompts(config, texts, options);
  const size = encoded.data.length / texts.length;
  return {
    prompts,
    ...(ownUncond ? {} : { negativePrompt }),
    condition: {
      data: encoded.data.slice(0, prompts.length * size),
      shape: [prompts.length, ...encoded.shape.slice(1)],
      prompts,
    },
    ...(ownUncond ? {} : { uncond: encoded.data.slice(prompts.length * size) }),
  };
}

/** A model loaded for prompts, and the conditioning of the prompt options. */
export interface PromptedModel {
  model: LoadedModel;
  /** Absent when the model takes no text (and no prompt was given). */
  text?: TextConditioning;
}

/** Options of {@linkcode loadPromptedModel}. */
export interface LoadPromptedModelOptions extends PromptValues {
  /** Execution device. @default {config.device} */
  device?: string;
  /** CPU threads of each ONNX Runtime session. @default {config.threads ?? defaultThreads()} */
  threads?: number;
  /**
   * The dataset folder whose embedding cache to use, found from the config (e.g. the folder
   * `generate` writes to).
   */
  cacheDir?: (config: ModelConfig) => Promise<string | undefined>;
}

/**
 * Loads a model for sampling with prompts: the prompts and the negative prompt encoded first (the
 * text encoder released before the UNet loads), then the model with the negative prompt's
 * embedding as its unconditional input and `guidanceScale` recorded in its config.
 *
 * @throws {TypeError} when prompts or a negative prompt are given to a model without a text
 * encoder, or a guidance scale to an unconditional one
 */
export async function loadPromptedModel(
  configOrPath: ModelConfig | string | URL,
  options: LoadPromptedModelOptions = {},
): Promise<PromptedModel> {
  const config = typeof configOrPath === "string" || configOrPath instanceof URL
    ? await loadModelConfig(configOrPath)
    : configOrPath;
  const cacheDir = options.cacheDir ? await options.cacheDir(config) : undefined;
  const text = await textConditioning(config, options, { device: options.device, cacheDir });
  const model = await loadModel(config, {
    ...(options.device ? { device: options.device } : {}),
    ...(options.threads !== undefined ? { threads: options.threads } : {}),
    ...(text?.uncond ? { uncond: text.uncond } : {}),
    ...(options.guidanceScale !== undefined ? { guidanceScale: options.guidanceScale } : {}),
  });
  return text ? { model, text } : { model };
}

/**
 * The teacher's guidance, which a student sampled against a teacher dataset must share: the scale
 * recorded in the dataset, and for a dataset made with prompts, the embedding of its negative
 * prompt (from the dataset's cache, or encoded again). Ready to spread into `loadModel`'s options.
 */
export async function teacherGuidance(
  config: ModelConfig,
  dataset: Dataset,
  device?: string,
): Promise<{ guidanceScale?: number; uncond?: Float32Array }> {
  const recorded = (dataset.manifest.config as { model?: ModelConfig["model"] }).model?.condition;
  const out: { guidanceScale?: number; uncond?: Float32Array } = {};
  if (config.model.condition && recorded && typeof recorded.guidance_scale === "number") {
    out.guidanceScale = recorded.guidance_scale;
  }
  const negative = dataset.manifest.text?.negative_prompt;
  if (negative !== undefined && config.text_encoder) {
    const encoded = await encodePrompts(config, [negative], { device, cacheDir: dataset.dir });
    out.uncond = encoded.data;
  }
  return out;
}
