/**
 * A Stable Diffusion ONNX export folder as a model config: the layout Hugging Face Optimum writes
 * (`optimum-cli export onnx --model <SD 1.x/2.x checkpoint> <dir>`, with or without `--fp16`) and
 * diffusers' older `convert_stable_diffusion_checkpoint_to_onnx.py` writes (the UNet's external
 * data in `weights.pb`, no `config.json` beside the graphs):
 *
 * ```text
 * model_index.json                   marks the folder
 * scheduler/scheduler_config.json    beta_schedule, beta_start, beta_end, num_train_timesteps,
 *                                    prediction_type (epsilon | v_prediction | sample)
 * unet/model.onnx (+ external data)  sample, timestep, encoder_hidden_states → out_sample
 * unet/config.json                   in_channels, sample_size, cross_attention_dim (optional)
 * text_encoder/model.onnx            input_ids → last_hidden_state
 * text_encoder/config.json           max_position_embeddings, hidden_size (optional)
 * tokenizer/                         vocab.json + merges.txt (or tokenizer.json), configs
 * vae_decoder/model.onnx             latent_sample → sample
 * vae_decoder/config.json            scaling_factor (optional; 0.18215 when absent)
 * ```
 *
 * {@linkcode pipelineDocument} turns the folder into the document a YAML config would hold (every
 * path absolute), so it is validated like any config. The schedule, prediction type and the
 * timestep's convention (one value per call or per sample, integer or float) come from the files
 * and the graphs' signatures; a YAML file that names the folder with `pipeline:` overrides any
 * field ({@linkcode mergeConfigDocuments}). Every problem names the file and the field.
 *
 * @module
 */
import { basename, join, resolve } from "node:path";
import type { TensorSignature } from "./session.ts";
import { readOnnxSignatureFile } from "./external.ts";

/** The file whose presence marks an export folder. */
export const PIPELINE_INDEX = "model_index.json";

type Obj = Record<string, unknown>;

/** A problem with a file of an export folder, naming the file and the field. */
export class PipelineFolderError extends Error {
  /** The file. */
  readonly file: string;
  /** The field of the file (`""` for the whole file). */
  readonly field: string;
  constructor(file: string, field: string, detail: string) {
    super(`${file}: ${field ? `field "${field}" ` : ""}${detail}`);
    this.name = "PipelineFolderError";
    this.file = file;
    this.field = field;
  }
}

/** Whether `path` is a local folder holding `model_index.json`. */
export async function isPipelineFolder(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory &&
      (await Deno.stat(join(path, PIPELINE_INDEX))).isFile;
  } catch {
    return false;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** A JSON object file; `optional` ones that are missing read as `{}`. */
async function readJson(path: string, optional = false): Promise<Obj> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (optional && e instanceof Deno.errors.NotFound) return {};
    throw new PipelineFolderError(path, "", `cannot be read: ${(e as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new PipelineFolderError(path, "", `is not JSON: ${(e as Error).message}`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new PipelineFolderError(path, "", "must hold a JSON object");
  }
  return value as Obj;
}

/** Field `key` of a JSON file as a number (or `fallback` when absent), checked by `ok`. */
function numberField(
  file: string,
  obj: Obj,
  key: string,
  fallback: number,
  ok: (v: number) => boolean,
  want: string,
): number {
  const v = obj[key] ?? fallback;
  if (typeof v !== "number" || !Number.isFinite(v) || !ok(v)) {
    throw new PipelineFolderError(file, key, `must be ${want}: got ${JSON.stringify(v)}`);
  }
  return v;
}

/** What diffusers' `prediction_type` names, in ld3's terms. */
const PREDICTIONS: Record<string, string> = {
  epsilon: "eps",
  v_prediction: "v",
  sample: "x0",
};

/** `schedule` and `model.prediction` from `scheduler/scheduler_config.json`. */
async function readScheduler(folder: string): Promise<{ schedule: Obj; prediction: string }> {
  const file = join(folder, "scheduler", "scheduler_config.json");
  const s = await readJson(file);
  const type = s.prediction_type ?? "epsilon";
  const prediction = PREDICTIONS[type as string];
  if (prediction === undefined) {
    throw new PipelineFolderError(
      file,
      "prediction_type",
      `must be one of ${Object.keys(PREDICTIONS).join(", ")}: got ${JSON.stringify(type)}`,
    );
  }
  if (s.trained_betas != null) {
    throw new PipelineFolderError(
      file,
      "trained_betas",
      "is not read by ld3: save the schedule's alphas_cumprod as a .npy and name it in a YAML " +
        "config (schedule.alphas_cumprod) that names this folder with pipeline:",
    );
  }
  const betas = s.beta_schedule ?? "linear";
  if (!["linear", "scaled_linear", "squaredcos_cap_v2"].includes(betas as string)) {
    throw new PipelineFolderError(
      file,
      "beta_schedule",
      `must be linear, scaled_linear or squaredcos_cap_v2: got ${JSON.stringify(betas)}`,
    );
  }
  const steps = numberField(
    file,
    s,
    "num_train_timesteps",
    1000,
    (v) => Number.isInteger(v) && v >= 2,
    "an integer >= 2",
  );
  const schedule: Obj = { kind: "vp_discrete", betas, num_steps: steps };
  if (betas !== "squaredcos_cap_v2") {
    schedule.beta_start = numberField(file, s, "beta_start", 1e-4, (v) => v > 0, "positive");
    schedule.beta_end = numberField(file, s, "beta_end", 0.02, (v) => v > 0 && v < 1, "in (0, 1)");
  }
  return { schedule, prediction };
}

/** The graph `sub/model.onnx` of the folder, required. */
async function graphPath(folder: string, sub: string): Promise<string> {
  const path = join(folder, sub, "model.onnx");
  if (!await exists(path)) {
    throw new PipelineFolderError(
      join(folder, PIPELINE_INDEX),
      sub,
      `names a part whose graph is missing: ${path}`,
    );
  }
  return path;
}

/** The signature of a graph, read without its weights (a float16 UNet of 1.7 GB included). */
function signatureOf(path: string) {
  return readOnnxSignatureFile(path);
}

/** Input or output `name` of a graph, or a problem naming the graph and what it has. */
function tensor(
  path: string,
  list: readonly TensorSignature[],
  name: string,
  what: string,
): TensorSignature {
  const found = list.find((s) => s.name === name);
  if (!found) {
    throw new PipelineFolderError(
      path,
      "",
      `has no ${what} "${name}" (found ${list.map((s) => `"${s.name}"`).join(", ")}): ld3 ` +
        `reads Stable Diffusion 1.x/2.x exports (Optimum or diffusers' ONNX layout)`,
    );
  }
  return found;
}

/** A fixed dimension of a signature, or `fallback` for a symbolic one. */
function dimOr(s: TensorSignature, axis: number, fallback: number): number {
  const d = s.dims[axis];
  return typeof d === "number" ? d : fallback;
}

/** `model` (and `shape`, the condition's shape) from the UNet's graph and config. */
async function readUnet(folder: string) {
  const path = await graphPath(folder, "unet");
  const config = await readJson(join(folder, "unet", "config.json"), true);
  const configFile = join(folder, "unet", "config.json");
  const sig = await signatureOf(path);
  const x = tensor(path, sig.inputs, "sample", "input");
  const t = tensor(path, sig.inputs, "timestep", "input");
  const c = tensor(path, sig.inputs, "encoder_hidden_states", "input");
  tensor(path, sig.outputs, "out_sample", "output");
  const extra = sig.inputs.filter((s) => ![x, t, c].includes(s)).map((s) => `"${s.name}"`);
  if (extra.length > 0) {
    throw new PipelineFolderError(
      path,
      "",
      `takes inputs ld3 cannot feed: ${extra.join(", ")} (an SDXL-style UNet with added ` +
        `conditioning is not supported)`,
    );
  }
  // One timestep per call: a scalar, or [1] beside a batch that is not fixed at 1.
  const scalar = t.dims.length === 0 ||
    (t.dims[0] === 1 && x.dims[0] !== 1);
  const size = numberField(
    configFile,
    config,
    "sample_size",
    64,
    (v) => Number.isInteger(v) && v > 0,
    "a positive integer",
  );
  const channels = numberField(
    configFile,
    config,
    "in_channels",
    dimOr(x, 1, 4),
    (v) => Number.isInteger(v) && v > 0,
    "a positive integer",
  );
  const shape = [channels, dimOr(x, 2, size), dimOr(x, 3, size)];
  return { path, scalar, shape, condition: c, config, configFile };
}

/** `text_encoder` and the condition's shape from the text encoder, its config and tokenizer. */
async function readTextEncoder(folder: string, unetCondition: TensorSignature, unetConfig: Obj) {
  const path = await graphPath(folder, "text_encoder");
  const configFile = join(folder, "text_encoder", "config.json");
  const config = await readJson(configFile, true);
  const tokenizer = join(folder, "tokenizer");
  if (!await exists(tokenizer)) {
    throw new PipelineFolderError(join(folder, PIPELINE_INDEX), "tokenizer", "has no folder");
  }
  const tokenizerConfig = await readJson(join(tokenizer, "tokenizer_config.json"), true);
  const tokens = numberField(
    configFile,
    config,
    "max_position_embeddings",
    77,
    (v) => Number.isInteger(v) && v > 0,
    "a positive integer",
  );
  const limit = tokenizerConfig.model_max_length;
  // Tokenizers without a limit store a huge placeholder: the encoder's positions decide then.
  const maxLength = typeof limit === "number" && Number.isInteger(limit) && limit <= tokens
    ? limit
    : tokens;
  const width = unetConfig.cross_attention_dim ?? config.hidden_size ??
    dimOr(unetCondition, 2, 768);
  const sig = await signatureOf(path);
  tensor(path, sig.inputs, "input_ids", "input");
  tensor(path, sig.outputs, "last_hidden_state", "output");
  return {
    section: {
      path,
      input: "input_ids",
      output: "last_hidden_state",
      tokenizer,
      max_length: maxLength,
    },
    conditionShape: [dimOr(unetCondition, 1, maxLength), width as number],
  };
}

/** `decoder` from the VAE decoder's graph and config; `latent` is the UNet's sample shape. */
async function readDecoder(folder: string, latent: number[]): Promise<Obj> {
  const path = await graphPath(folder, "vae_decoder");
  const configFile = join(folder, "vae_decoder", "config.json");
  const config = await readJson(configFile, true);
  const sig = await signatureOf(path);
  tensor(path, sig.inputs, "latent_sample", "input");
  tensor(path, sig.outputs, "sample", "output");
  const scale = numberField(
    configFile,
    config,
    "scaling_factor",
    0.18215,
    (v) => v > 0,
    "positive",
  );
  // Each up block but the last doubles the resolution: ×8 for SD's four blocks.
  const blocks = Array.isArray(config.block_out_channels) ? config.block_out_channels.length : 4;
  const factor = 2 ** Math.max(0, blocks - 1);
  const channels = numberField(
    configFile,
    config,
    "out_channels",
    3,
    (v) => Number.isInteger(v) && v > 0,
    "a positive integer",
  );
  return {
    path,
    input: "latent_sample",
    output: "sample",
    scale_factor: scale,
    image_shape: [channels, latent[1] * factor, latent[2] * factor],
  };
}

/**
 * The config document of an export folder: what a YAML config for it would hold, every path
 * absolute. Guidance 7.5 against the negative prompt's embedding; batch 2 (one sample and its
 * unconditional twin per network call), which a YAML config may raise.
 *
 * @throws {PipelineFolderError} naming the file and field of the first problem
 */
export async function pipelineDocument(folder: string): Promise<Obj> {
  const dir = resolve(folder);
  await readJson(join(dir, PIPELINE_INDEX));
  const { schedule, prediction } = await readScheduler(dir);
  const unet = await readUnet(dir);
  const text = await readTextEncoder(dir, unet.condition, unet.config);
  return {
    name: basename(dir),
    model: {
      path: unet.path,
      inputs: { x: "sample", t: "timestep" },
      output: "out_sample",
      prediction,
      time_input: "discrete",
      time_shape: unet.scalar ? "scalar" : "batch",
      condition: {
        input: "encoder_hidden_states",
        shape: text.conditionShape,
        guidance_scale: 7.5,
        uncond: "negative_prompt",
      },
    },
    schedule,
    shape: unet.shape,
    decoder: await readDecoder(dir, unet.shape),
    text_encoder: text.section,
    data_range: [-1, 1],
    batch_size: 2,
  };
}

/**
 * `base` with `over` laid on top: mappings merge key by key, anything else in `over` replaces
 * what `base` holds (a list is replaced whole).
 */
export function mergeConfigDocuments(base: Obj, over: Obj): Obj {
  const out: Obj = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const old = out[key];
    const isMap = (v: unknown) => v !== null && typeof v === "object" && !Array.isArray(v);
    out[key] = isMap(old) && isMap(value) ? mergeConfigDocuments(old as Obj, value as Obj) : value;
  }
  return out;
}
