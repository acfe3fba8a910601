/**
 * Prompts to token ids for a text encoder, with the tokenizer files of an export folder and
 * Hugging Face's own JavaScript tokenizer library (`@huggingface/tokenizers`, the tokenizers of
 * Transformers.js).
 *
 * The library reads a `tokenizer.json`. Stable Diffusion exports usually carry CLIP's slow
 * tokenizer files instead (`vocab.json`, `merges.txt`, `tokenizer_config.json`,
 * `special_tokens_map.json`): {@linkcode clipTokenizerJson} then describes the same tokenizer in
 * `tokenizer.json` form (NFC, whitespace runs to one space, lower case; CLIP's word pattern; byte
 * symbols; BPE with `</w>` ending each word; start and end tokens around the text), in memory.
 * Every prompt becomes exactly `maxLength` ids: cut to `maxLength − 1` and closed with the end
 * token when longer, padded with the pad token when shorter, as diffusers' pipelines call the
 * tokenizer (`padding="max_length"`, `truncation=True`).
 *
 * @module
 */
import { join } from "node:path";
import { HfTokenizer } from "../deps.ts";

/** Tokenises prompts into fixed-length id rows. */
export interface PromptTokenizer {
  /** Ids per prompt. */
  readonly maxLength: number;
  /** The ids of `prompt`, exactly {@linkcode maxLength} of them. */
  encode(prompt: string): number[];
}

type Obj = Record<string, unknown>;

async function readJsonFile(path: string): Promise<Obj | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(path)) as Obj;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw new TypeError(`Tokenizer file ${path} cannot be read: ${(e as Error).message}`);
  }
}

/** A special token as the tokenizer configs write it: a string or `{ content: string }`. */
function tokenText(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (value && typeof value === "object" && typeof (value as Obj).content === "string") {
    return (value as Obj).content as string;
  }
  return undefined;
}

/** CLIP's word pattern: contractions, letter runs, single digits, other non-space runs. */
const CLIP_PATTERN = "'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+";

/**
 * The `tokenizer.json` of CLIP's tokenizer from its slow files: `vocab` (token → id, byte-level
 * symbols), `merges` (the lines of `merges.txt` after its `#version` header) and the start and
 * end tokens.
 *
 * @throws {TypeError} when the start or end token is not in the vocabulary
 */
export function clipTokenizerJson(
  vocab: Record<string, number>,
  merges: readonly string[],
  tokens: { bos: string; eos: string; unk: string },
): Obj {
  const bos = vocab[tokens.bos];
  const eos = vocab[tokens.eos];
  if (bos === undefined || eos === undefined) {
    throw new TypeError(
      `Tokenizer vocabulary lacks ${bos === undefined ? tokens.bos : tokens.eos}`,
    );
  }
  const special = (id: number, content: string) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: true,
    special: true,
  });
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [special(bos, tokens.bos), special(eos, tokens.eos)],
    normalizer: {
      type: "Sequence",
      normalizers: [
        { type: "NFC" },
        { type: "Replace", pattern: { Regex: "\\s+" }, content: " " },
        { type: "Lowercase" },
      ],
    },
    pre_tokenizer: {
      type: "Sequence",
      pretokenizers: [
        { type: "Split", pattern: { Regex: CLIP_PATTERN }, behavior: "Removed", invert: true },
        { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: {
      type: "RobertaProcessing",
      sep: [tokens.eos, eos],
      cls: [tokens.bos, bos],
      trim_offsets: false,
      add_prefix_space: false,
    },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: tokens.unk,
      continuing_subword_prefix: "",
      end_of_word_suffix: "</w>",
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges,
    },
  };
}

/** The lines of a `merges.txt`: one merge per line, after an optional `#version` header. */
function mergeLines(text: string): string[] {
  return text.split(/\r?\n/).filter((line, i) => line !== "" && !(i === 0 && line.startsWith("#")));
}

/** The tokenizer description of a folder: its `tokenizer.json`, else one built from CLIP's files. */
async function tokenizerJsonOf(dir: string, config: Obj, specials: Obj): Promise<Obj> {
  const json = await readJsonFile(join(dir, "tokenizer.json"));
  if (json) return json;
  const vocab = await readJsonFile(join(dir, "vocab.json"));
  let merges: string;
  try {
    merges = await Deno.readTextFile(join(dir, "merges.txt"));
  } catch {
    merges = "";
  }
  if (!vocab || merges === "") {
    throw new TypeError(
      `Tokenizer folder ${dir} holds neither tokenizer.json nor CLIP's vocab.json and merges.txt`,
    );
  }
  const pick = (key: string, fallback: string) =>
    tokenText(config[key]) ?? tokenText(specials[key]) ?? fallback;
  return clipTokenizerJson(vocab as Record<string, number>, mergeLines(merges), {
    bos: pick("bos_token", "<|startoftext|>"),
    eos: pick("eos_token", "<|endoftext|>"),
    unk: pick("unk_token", "<|endoftext|>"),
  });
}

/**
 * The tokenizer of a Hugging Face tokenizer folder, producing rows of `maxLength` ids.
 *
 * @example
 * ```ts
 * const tok = await loadTokenizer("tests/fixtures/sd-tiny/fp32/tokenizer", 77);
 * const ids = tok.encode("a photo of an astronaut");
 * console.log(ids.length, ids[0]); // 77 1022
 * ```
 * @throws {TypeError} when the folder holds no tokenizer files ld3 can read
 */
export async function loadTokenizer(dir: string, maxLength: number): Promise<PromptTokenizer> {
  const config = await readJsonFile(join(dir, "tokenizer_config.json")) ?? {};
  const specials = await readJsonFile(join(dir, "special_tokens_map.json")) ?? {};
  const tokenizer = new HfTokenizer(await tokenizerJsonOf(dir, config, specials), config);
  const idOf = (key: string) => {
    const text = tokenText(config[key]) ?? tokenText(specials[key]);
    return text === undefined ? undefined : tokenizer.token_to_id(text);
  };
  const eos = idOf("eos_token");
  const pad = idOf("pad_token") ?? eos;
  if (eos === undefined || pad === undefined) {
    throw new TypeError(`Tokenizer folder ${dir} names no end (eos_token) or pad token`);
  }
  return {
    maxLength,
    encode(prompt: string): number[] {
      const ids = tokenizer.encode(prompt).ids.map(Number);
      if (ids.length > maxLength) return [...ids.slice(0, maxLength - 1), eos];
      return [...ids, ...new Array<number>(maxLength - ids.length).fill(pad)];
    },
  };
}
