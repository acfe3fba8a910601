/**
 * The LD3 teacher dataset on disk: layout, manifest, per-sample files, resume checks and the
 * reader the trainer uses. No model code lives here.
 *
 * ```text
 * <data_dir>/<solver>_NFE<nfe>_<skip_type>/
 *   manifest.json          run parameters (written with the first sample), see DatasetManifest
 *   samples/000000.npz     z (float32, standard-normal latent), x (float32, teacher output),
 *   samples/000001.npz     c (float32, condition; conditional models only), meta (what made it),
 *                          latent (float32, the teacher's final latent; latent models only),
 *                          prompt (UTF-8, the sample's prompt; runs with prompts only)
 *   prompt_embeddings/     text-encoder embeddings of the prompts, one .npy each (prompts only)
 *   png/000000.png         with --save_png: one image per sample
 *   grid.png               with --save_png: the first 64 samples
 * ```
 *
 * Every file is written atomically (temporary sibling + rename), so a sample file that exists
 * is complete; an interrupted run is resumed by re-running it with the same parameters.
 *
 * Each sample file records what made it (`meta`: its index, the noise seed and the dataset's
 * {@linkcode datasetFingerprint}), so a sample of another run that landed in the folder is
 * recognised: readers refuse it, and a rerun of `generate` makes it again. Sample files of older
 * datasets have no `meta`; readers accept them, and a rerun checks their noise `z` against the
 * seed instead (exact, since `z` is a function of the seed and the index).
 *
 * @module
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { isTempFileName, writeJsonAtomic } from "./atomic.ts";
import { sameShape, sampleSize } from "../denoiser.ts";
import { canonicalJson } from "../fingerprint.ts";
import { normalNoise } from "../rng.ts";
import type { NpyArray } from "./npy.ts";
import { decodeNpz, encodeNpz, type NpzEntry } from "./npz.ts";
import { writeFileAtomic } from "./atomic.ts";

/** Identifies a manifest. */
export const DATASET_FORMAT = "ld3-dataset";
/** Current manifest version. */
export const DATASET_VERSION = 1;
/** Name of the manifest file in a dataset folder. */
export const MANIFEST_FILE = "manifest.json";
/** Subfolder of the per-sample `.npz` files. */
export const SAMPLES_DIR = "samples";
/** Subfolder of the per-sample PNGs. */
export const PNG_DIR = "png";

/** How result files (dataset manifests, eval results) record a sampler's solver. */
export interface SolverRecord {
  /** Solver name, e.g. `uni_pc`. */
  name: string;
  /** Solver order, where the solver takes one. */
  order?: number;
  /** UniPC's variant (`bh1` or `bh2`). */
  variant?: string;
  /** Number of steps N. */
  steps: number;
  /** Network evaluations per sample. */
  nfe: number;
}

/** How result files record a sampler's grid: its times, their σ/α, and where they came from. */
export interface GridRecord {
  /** EDM ρ (edm skip type only). */
  rho?: number;
  /** Grid file the times came from (load_from only). */
  load_from?: string;
  /** Step grid, N+1 strictly decreasing times. */
  t1: number[];
  /** Evaluation grid, N+1 times (the network's time inputs). */
  t2: number[];
  /** σ/α at each time of t1. */
  sigma1: number[];
  /** σ/α at each time of t2. */
  sigma2: number[];
}

/** Everything that determines a dataset's content, as stored in `manifest.json`. */
export interface DatasetManifest {
  /** Always {@linkcode DATASET_FORMAT}. */
  format: typeof DATASET_FORMAT;
  /** Manifest version. */
  version: number;
  /** The model config (the validated YAML, paths resolved). */
  config: Record<string, unknown>;
  /** SHA-256 (hex) of the model's ONNX file(s). */
  model: { name: string; sha256: string };
  /** The teacher solver. */
  solver: SolverRecord;
  /** The step grid `t1`, evaluation grid `t2` and their σ/α, and how they were chosen. */
  grid: GridRecord & {
    /** Skip type, `gits`, or `file` when loaded with `--load_from`. */
    skip_type: string;
  };
  /** Noise: sample i uses `z_i = normalNoise(seed, i)`, `x_T = prior_scale · z_i`. */
  noise: { generator: "philox4x32-10"; seed: number; prior_scale: number };
  /** Shapes of one sample's arrays, without a batch axis (`latent`: latent models' teacher latent). */
  shapes: { z: number[]; x: number[]; c?: number[]; latent?: number[] };
  /**
   * The prompts of a text-conditioned teacher: sample `i` has prompt `prompts[i mod length]`, and
   * guidance steers away from `negative_prompt` (absent: the config's own unconditional input).
   * Absent without prompts.
   */
  text?: { prompts: string[]; negative_prompt?: string };
  /** Number of samples. */
  count: number;
  /** ISO time the dataset was first created; not part of the run's identity. */
  created: string;
}

/** Identifies a sample file's `meta` record. */
export const SAMPLE_META_FORMAT = "ld3-sample";

/** What made a sample: stored as the `meta` entry (UTF-8 JSON) of its `.npz` file. */
export interface SampleMeta {
  /** Always {@linkcode SAMPLE_META_FORMAT}. */
  format: typeof SAMPLE_META_FORMAT;
  /** The sample's index. */
  index: number;
  /** The noise seed its latent came from. */
  seed: number;
  /** {@linkcode datasetFingerprint} of the manifest it was made for. */
  dataset: string;
}

/** One sample of a dataset. */
export interface DatasetSample {
  /** Sample index. */
  index: number;
  /** What made it (absent in sample files of datasets written before it was recorded). */
  meta?: SampleMeta;
  /** Standard-normal latent, `shapes.z`. */
  z: Float32Array;
  /** Teacher output (decoded image for latent models), `shapes.x`. */
  x: Float32Array;
  /** Condition, `shapes.c` (conditional models only). */
  c?: Float32Array;
  /** The teacher's final latent before decoding, `shapes.latent` (latent models only). */
  latent?: Float32Array;
  /** The prompt the condition is the embedding of (datasets with `text` only). */
  prompt?: string;
}

/** Dataset folder name of the reference tool: `<solver>_NFE<nfe>_<skip_type>`. */
export function datasetDirName(solver: string, nfe: number, skipType: string): string {
  return `${solver}_NFE${nfe}_${skipType}`;
}

/** Path of sample `index`'s `.npz` file in dataset folder `dir`. */
export function samplePath(dir: string, index: number): string {
  return join(dir, SAMPLES_DIR, `${String(index).padStart(6, "0")}.npz`);
}

/** Path of sample `index`'s PNG in dataset folder `dir`. */
export function samplePngPath(dir: string, index: number): string {
  return join(dir, PNG_DIR, `${String(index).padStart(6, "0")}.png`);
}

/**
 * The fingerprint of what a dataset's samples are: the SHA-256 (hex) of the canonical JSON of
 * the manifest's identity ({@linkcode manifestIdentity}) without the sample count. Sample `i` of
 * two manifests with the same fingerprint is the same sample.
 */
export function datasetFingerprint(manifest: DatasetManifest): string {
  const { count: _count, ...identity } = manifestIdentity(manifest);
  return createHash("sha256").update(canonicalJson(identity)).digest("hex");
}

/**
 * The `meta` record of sample `index` of the dataset of `manifest` (pass its fingerprint when
 * known: it costs a hash of the manifest).
 */
export function sampleMeta(
  manifest: DatasetManifest,
  index: number,
  fingerprint: string = datasetFingerprint(manifest),
): SampleMeta {
  return { format: SAMPLE_META_FORMAT, index, seed: manifest.noise.seed, dataset: fingerprint };
}

/** Encodes one sample as `.npz` bytes (arrays stored without a batch axis). */
export function encodeSample(sample: DatasetSample, shapes: DatasetManifest["shapes"]): Uint8Array {
  const record: Record<string, NpzEntry> = {
    z: { data: sample.z, shape: shapes.z },
    x: { data: sample.x, shape: shapes.x },
  };
  if (shapes.c) {
    if (!sample.c) throw new TypeError(`Sample ${sample.index} lacks its condition c`);
    record.c = { data: sample.c, shape: shapes.c };
  }
  if (shapes.latent) {
    if (!sample.latent) throw new TypeError(`Sample ${sample.index} lacks its latent`);
    record.latent = { data: sample.latent, shape: shapes.latent };
  }
  for (
    const [key, text] of [["meta", sample.meta && canonicalJson(sample.meta)], [
      "prompt",
      sample.prompt,
    ]] as const
  ) {
    if (text === undefined) continue;
    const bytes = new TextEncoder().encode(text);
    record[key] = { data: bytes, shape: [bytes.length] };
  }
  return encodeNpz(record);
}

/** Writes sample files atomically. */
export async function writeSample(
  dir: string,
  sample: DatasetSample,
  shapes: DatasetManifest["shapes"],
): Promise<void> {
  await writeFileAtomic(samplePath(dir, sample.index), encodeSample(sample, shapes));
}

function float32Of(array: NpyArray | undefined, name: string, shape: number[], where: string) {
  if (!array) throw new TypeError(`${where}: missing array "${name}"`);
  if (array.dtype !== "float32" || !sameShape(shape, array.shape)) {
    throw new TypeError(
      `${where}: array "${name}" must be float32 [${shape}]: got ${array.dtype} [${array.shape}]`,
    );
  }
  return array.data as Float32Array;
}

function metaOf(array: NpyArray | undefined, where: string): SampleMeta | undefined {
  if (!array) return undefined;
  let meta: SampleMeta | undefined;
  try {
    if (array.data instanceof Uint8Array) meta = JSON.parse(new TextDecoder().decode(array.data));
  } catch { /* reported below */ }
  if (
    meta?.format !== SAMPLE_META_FORMAT || !Number.isSafeInteger(meta.index) ||
    !Number.isSafeInteger(meta.seed) || typeof meta.dataset !== "string"
  ) {
    throw new TypeError(`${where}: array "meta" is not an ld3 sample record`);
  }
  return meta;
}

/**
 * Decodes and checks one sample file against the manifest's shapes.
 *
 * @param source The file the bytes came from, named in errors. @default {`Sample <index>`}
 */
export function decodeSample(
  bytes: Uint8Array,
  index: number,
  shapes: DatasetManifest["shapes"],
  source = `Sample ${index}`,
): DatasetSample {
  const where = source;
  let arrays: Record<string, NpyArray>;
  try {
    arrays = decodeNpz(bytes);
  } catch (e) {
    throw new TypeError(`${where}: ${(e as Error).message}`);
  }
  const sample: DatasetSample = {
    index,
    z: float32Of(arrays.z, "z", shapes.z, where),
    x: float32Of(arrays.x, "x", shapes.x, where),
  };
  if (shapes.c) sample.c = float32Of(arrays.c, "c", shapes.c, where);
  if (shapes.latent) sample.latent = float32Of(arrays.latent, "latent", shapes.latent, where);
  if (arrays.prompt?.data instanceof Uint8Array) {
    sample.prompt = new TextDecoder().decode(arrays.prompt.data);
  }
  const meta = metaOf(arrays.meta, where);
  if (meta) sample.meta = meta;
  return sample;
}

/**
 * Why a decoded sample is not sample `index` of `manifest`'s dataset, or undefined when it is.
 * A sample with a `meta` record must name this index, seed and fingerprint; one without (an
 * older dataset) must hold the noise `z` of this seed and index, bit for bit.
 */
export function foreignSampleReason(
  sample: DatasetSample,
  manifest: DatasetManifest,
  fingerprint: string = datasetFingerprint(manifest),
): string | undefined {
  const { meta, index } = sample;
  const seed = manifest.noise.seed;
  if (meta) {
    if (meta.index !== index) return `it is sample ${meta.index}`;
    if (meta.dataset !== fingerprint || meta.seed !== seed) {
      return `it belongs to another dataset (seed ${meta.seed}, fingerprint ` +
        `${meta.dataset.slice(0, 12)}…; this one: seed ${seed}, ${fingerprint.slice(0, 12)}…)`;
    }
    return undefined;
  }
  const z = normalNoise(seed, index, sampleSize(manifest.shapes.z));
  for (let j = 0; j < z.length; j++) {
    if (Math.fround(z[j]) !== sample.z[j]) return `its noise z is not that of seed ${seed}`;
  }
  return undefined;
}

/** Whether sample `index` exists, decodes with the expected shapes and is this dataset's. */
export async function isSampleComplete(
  dir: string,
  index: number,
  expected: DatasetManifest["shapes"] | DatasetManifest,
  fingerprint?: string,
): Promise<boolean> {
  const manifest = "format" in expected ? expected as DatasetManifest : undefined;
  const shapes = manifest ? manifest.shapes : expected as DatasetManifest["shapes"];
  try {
    const sample = decodeSample(await Deno.readFile(samplePath(dir, index)), index, shapes);
    return !manifest || foreignSampleReason(sample, manifest, fingerprint) === undefined;
  } catch {
    return false;
  }
}

/**
 * Removes temporary files an interrupted run left in `dir/samples` and `dir/png`. Call it only
 * while holding the folder's lock (`lib/io/lock.ts`): another run's temporary files are live.
 */
export async function removeStrayTempFiles(dir: string): Promise<void> {
  for (const sub of [dir, join(dir, SAMPLES_DIR), join(dir, PNG_DIR)]) {
    try {
      for await (const entry of Deno.readDir(sub)) {
        if (entry.isFile && isTempFileName(entry.name)) await Deno.remove(join(sub, entry.name));
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
}

/** Config fields that do not change a dataset's content (locations and execution only). */
const NON_IDENTITY_CONFIG_KEYS = new Set([
  "source",
  "path",
  "device",
  "batch_size",
  "tokenizer",
  "pipeline",
]);

function withoutKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutKeys);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (!NON_IDENTITY_CONFIG_KEYS.has(k)) out[k] = withoutKeys(v);
    }
    return out;
  }
  return value;
}

/**
 * The parts of a manifest that define the dataset's content: everything but the creation
 * time, the grid file's location and the config's file locations and execution settings
 * (model files are identified by their hash, grids by their times).
 */
export function manifestIdentity(manifest: DatasetManifest): Record<string, unknown> {
  const { created: _created, config, grid, ...rest } = manifest;
  const { load_from: _loadFrom, ...gridValues } = grid;
  return { ...rest, grid: gridValues, config: withoutKeys(config) };
}

/** The first differing leaf of two JSON values, as `path: a vs b`; undefined when equal. */
export function firstDifference(a: unknown, b: unknown, path = ""): string | undefined {
  if (
    a !== null && b !== null && typeof a === "object" && typeof b === "object" &&
    Array.isArray(a) === Array.isArray(b)
  ) {
    const ao = a as Record<string, unknown>;
    const bo = b as Record<string, unknown>;
    if (Array.isArray(a) && a.length !== (b as unknown[]).length) {
      return `${path || "value"}: ${a.length} entries vs ${(b as unknown[]).length}`;
    }
    const keys = [...new Set([...Object.keys(ao), ...Object.keys(bo)])];
    for (const k of keys) {
      const d = firstDifference(ao[k], bo[k], path ? `${path}.${k}` : k);
      if (d) return d;
    }
    return undefined;
  }
  return Object.is(a, b)
    ? undefined
    : `${path || "value"}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`;
}

/** Checks a parsed JSON value is a dataset manifest; the message names the bad field. */
export function parseManifest(value: unknown, source = "manifest"): DatasetManifest {
  const fail = (msg: string): never => {
    throw new TypeError(`Invalid ${source}: ${msg}`);
  };
  if (value === null || typeof value !== "object" || Array.isArray(value)) fail("not an object");
  const m = value as Record<string, unknown>;
  if (m.format !== DATASET_FORMAT) {
    fail(`field "format" must be "${DATASET_FORMAT}": got ${JSON.stringify(m.format)}`);
  }
  if (m.version !== DATASET_VERSION) {
    fail(`field "version" must be ${DATASET_VERSION}: got ${JSON.stringify(m.version)}`);
  }
  if (!Number.isInteger(m.count) || (m.count as number) < 0) {
    fail(`field "count" must be a non-negative integer: got ${JSON.stringify(m.count)}`);
  }
  const shapes = m.shapes as Record<string, unknown> | undefined;
  const isShape = (s: unknown) => Array.isArray(s) && s.every((d) => Number.isInteger(d) && d >= 0);
  if (!shapes || !isShape(shapes.z) || !isShape(shapes.x)) {
    fail(`field "shapes" must give integer lists z and x`);
  }
  for (const key of ["c", "latent"]) {
    if (shapes![key] !== undefined && !isShape(shapes![key])) {
      fail(`field "shapes.${key}" must be an integer list`);
    }
  }
  const text = m.text as Record<string, unknown> | undefined;
  if (
    text !== undefined && (!Array.isArray(text?.prompts) ||
      !text.prompts.every((p) => typeof p === "string") ||
      !["string", "undefined"].includes(typeof text.negative_prompt))
  ) {
    fail(`field "text" must give a list of prompts and, if any, a negative_prompt string`);
  }
  for (const key of ["config", "model", "solver", "grid", "noise"]) {
    if (m[key] === null || typeof m[key] !== "object") fail(`field "${key}" must be an object`);
  }
  return m as unknown as DatasetManifest;
}

/** Reads and validates `dir/manifest.json`. */
export async function readManifest(dir: string): Promise<DatasetManifest> {
  const path = join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Deno.errors.NotFound(`Not an ld3 dataset (no ${MANIFEST_FILE}): ${dir}`);
    }
    throw e;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new SyntaxError(`Invalid manifest ${path}: ${(e as Error).message}`);
  }
  return parseManifest(json, `manifest ${path}`);
}

/**
 * The manifest in force for a run with `manifest` in folder `dir`: the one on disk when there is
 * one (its creation time kept), else `manifest`, not yet written (see
 * {@linkcode commitManifest}). Removes the temporary files an interrupted run left, so call it
 * while holding the folder's lock.
 *
 * @throws {Error} When the folder holds a dataset made with different parameters.
 */
export async function resumeDataset(
  dir: string,
  manifest: DatasetManifest,
): Promise<{ manifest: DatasetManifest; committed: boolean }> {
  let existing: DatasetManifest | undefined;
  try {
    existing = await readManifest(dir);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const difference = existing &&
    firstDifference(manifestIdentity(existing), manifestIdentity(manifest));
  if (difference) {
    throw new Error(
      `Dataset folder ${dir} holds a dataset made with different parameters (${difference}): ` +
        `use another --data_dir or delete the folder`,
    );
  }
  await removeStrayTempFiles(dir);
  return existing ? { manifest: existing, committed: true } : { manifest, committed: false };
}

/**
 * Writes `dir/manifest.json`, flushed to disk: the one file whose loss would orphan the samples.
 * `generate` writes it once the first sample is on disk, so a run that fails before any sample
 * leaves no dataset claiming the folder.
 */
export async function commitManifest(dir: string, manifest: DatasetManifest): Promise<void> {
  await writeJsonAtomic(join(dir, MANIFEST_FILE), manifest, { sync: true });
}

/**
 * Opens a dataset folder for a run with `manifest`: creates it and writes the manifest when
 * new; when it exists, refuses a manifest with different parameters and keeps the original
 * creation time. Returns the manifest in force.
 *
 * @deprecated A manifest written before any sample claims the folder even when the run then
 * fails: use {@linkcode resumeDataset}, and {@linkcode commitManifest} after the first sample.
 * @throws {Error} When the folder holds a dataset made with different parameters.
 */
export async function openDatasetForWriting(
  dir: string,
  manifest: DatasetManifest,
): Promise<DatasetManifest> {
  const opened = await resumeDataset(dir, manifest);
  if (opened.committed) return opened.manifest;
  await Deno.mkdir(join(dir, SAMPLES_DIR), { recursive: true });
  await commitManifest(dir, manifest);
  return manifest;
}

/** Options of {@linkcode readDataset}. */
export interface ReadDatasetOptions {
  /** Fail unless every sample file exists. @default {true} */
  requireComplete?: boolean;
}

/** An opened dataset: its manifest and random access to the samples. */
export interface Dataset {
  /** The dataset folder. */
  readonly dir: string;
  /** The validated manifest. */
  readonly manifest: DatasetManifest;
  /** Indices of the samples present, ascending. */
  readonly indices: readonly number[];
  /** Reads and checks sample `index`. */
  read(index: number): Promise<DatasetSample>;
  /** Iterates the present samples in index order. */
  [Symbol.asyncIterator](): AsyncIterator<DatasetSample>;
}

/**
 * Opens a dataset folder written by `deno task generate`.
 *
 * @param dir The dataset folder (the one holding `manifest.json`).
 * @throws {TypeError} For a malformed manifest or, with `requireComplete`, missing samples.
 *
 * @example
 * ```ts ignore
 * const data = await readDataset("train_data/uni_pc_NFE20_edm");
 * for await (const { index, z, x } of data) console.log(index, z.length, x.length);
 * ```
 */
export async function readDataset(dir: string, options: ReadDatasetOptions = {}): Promise<Dataset> {
  const manifest = await readManifest(dir);
  const indices: number[] = [];
  const missing: number[] = [];
  for (let i = 0; i < manifest.count; i++) {
    try {
      await Deno.stat(samplePath(dir, i));
      indices.push(i);
    } catch {
      missing.push(i);
    }
  }
  if ((options.requireComplete ?? true) && missing.length > 0) {
    throw new TypeError(
      `Dataset ${dir} is incomplete: ${missing.length} of ${manifest.count} samples missing ` +
        `(first: ${missing[0]}); re-run generate with the same parameters to finish it`,
    );
  }
  const fingerprint = datasetFingerprint(manifest);
  async function read(index: number): Promise<DatasetSample> {
    if (!Number.isInteger(index) || index < 0 || index >= manifest.count) {
      throw new RangeError(`Sample index out of range [0, ${manifest.count}): got ${index}`);
    }
    const path = samplePath(dir, index);
    const sample = decodeSample(await Deno.readFile(path), index, manifest.shapes, path);
    // Older sample files carry no record: accepted as they are (generate checks their noise).
    const foreign = sample.meta && foreignSampleReason(sample, manifest, fingerprint);
    if (foreign) {
      throw new TypeError(
        `Sample file ${path} is not sample ${index} of dataset ${dir}: ${foreign}; rerun ` +
          `generate with the dataset's parameters to make it again`,
      );
    }
    return sample;
  }
  return {
    dir,
    manifest,
    indices,
    read,
    async *[Symbol.asyncIterator]() {
      for (const i of indices) yield await read(i);
    },
  };
}
