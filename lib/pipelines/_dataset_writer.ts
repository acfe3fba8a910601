/**
 * Writing a teacher dataset's samples (`generate`): the writer that commits a new dataset's
 * manifest with its first sample, the batches that make the missing samples, the sampling loop,
 * `grid.png`, and a shard's part of a sharded dataset with the record it leaves for the merge
 * (`dataset_merge.ts`).
 *
 * @module
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { writeFileAtomic, writeJsonAtomic } from "../io/atomic.ts";
import {
  commitManifest,
  datasetFingerprint,
  type DatasetManifest,
  firstDifference,
  isSampleComplete,
  manifestIdentity,
  PNG_DIR,
  readManifest,
  sampleMeta,
  samplePath,
  samplePngPath,
  SAMPLES_DIR,
  writeSample,
} from "../io/dataset.ts";
import { sampleSize } from "../denoiser.ts";
import { canonicalJson } from "../fingerprint.ts";
import { makeDirs, pathExists, removeEmptyDirs, removeIfExists } from "../io/fs.ts";
import { imageShapeOf, imageToPng } from "../io/image.ts";
import { labelledGridPng } from "../io/labelled_grid.ts";
import { lockOutput } from "../io/lock.ts";
import { readNpz } from "../io/npz.ts";
import { ProgressBar, type ProgressBarOptions } from "../io/progress.ts";
import {
  readShardRecords,
  SHARD_RECORD_FORMAT,
  SHARD_RECORD_VERSION,
  type ShardRecordFile,
  type ShardRecordHeader,
  shardRecordName,
  SHARDS_DIR,
} from "../io/shard_record.ts";
import type { LoadedModel } from "../onnx/model.ts";
import { type IndexRange, type Shard, shardLabel, shardSamples } from "../shard.ts";
import { gridRecord, type PreparedSampler, solverRecord } from "./sampler.ts";
import { type ConditionTable, range, runBatch } from "./sampling.ts";

/**
 * The files one run writes into a dataset folder: the folders it creates, and for a new
 * dataset the manifest, written once the first sample is on disk. Until then the run can be
 * taken back whole ({@linkcode DatasetWriter.rollBack}).
 */
export class DatasetWriter {
  /** Whether manifest.json is on disk (it was there, or this run wrote it). */
  committed = false;
  readonly #dir: string;
  readonly #savePng: boolean;
  #created: string[] | undefined;
  /** Files written before the manifest (the first sample and its PNG). */
  readonly #uncommitted: string[] = [];

  constructor(dir: string, savePng: boolean) {
    this.#dir = dir;
    this.#savePng = savePng;
  }

  /** Whether each sample also gets its PNG. */
  get savePng(): boolean {
    return this.#savePng;
  }

  /** Creates the folders the samples go to (once). */
  async #folders(): Promise<void> {
    if (this.#created) return;
    this.#created = await makeDirs(join(this.#dir, SAMPLES_DIR));
    if (this.#savePng) this.#created.push(...await makeDirs(join(this.#dir, PNG_DIR)));
  }

  /** Writes one sample (and its PNG); the first of a new dataset is followed by the manifest. */
  async write(
    sample: Parameters<typeof writeSample>[1],
    manifest: DatasetManifest,
    png?: Uint8Array,
  ) {
    await this.#folders();
    const first = !this.committed;
    const path = samplePath(this.#dir, sample.index);
    if (first) this.#uncommitted.push(path);
    await writeSample(this.#dir, sample, manifest.shapes);
    if (png) {
      const pngPath = samplePngPath(this.#dir, sample.index);
      if (first) this.#uncommitted.push(pngPath);
      await writeFileAtomic(pngPath, png);
    }
    if (first) await this.commit(manifest);
  }

  /** Writes the manifest. */
  async commit(manifest: DatasetManifest): Promise<void> {
    await commitManifest(this.#dir, manifest);
    this.committed = true;
  }

  /** After a failure: when no manifest was written, removes what this run wrote. */
  async rollBack(): Promise<void> {
    if (this.committed) return;
    for (const path of this.#uncommitted) await removeIfExists(path).catch(() => {});
    await removeEmptyDirs(this.#created ?? []);
  }
}

/** The manifest a new dataset of these samples gets. */
export function manifestDraft(
  m: LoadedModel,
  sampler: PreparedSampler,
  seed: number,
  count: number,
  created = new Date(),
  text?: DatasetManifest["text"],
): DatasetManifest {
  const schedule = m.denoiser.schedule;
  const shapes: DatasetManifest["shapes"] = { z: [...m.sampleShape], x: [...m.imageShape] };
  if (m.conditionShape) shapes.c = [...m.conditionShape];
  if (m.config.decoder) shapes.latent = [...m.sampleShape];
  return {
    format: "ld3-dataset",
    version: 1,
    config: JSON.parse(JSON.stringify(m.config)),
    model: { name: m.config.name, sha256: m.modelHash },
    solver: solverRecord(sampler),
    grid: { skip_type: sampler.gridKind, ...gridRecord(sampler, schedule) },
    noise: { generator: "philox4x32-10", seed, prior_scale: schedule.priorScale },
    shapes,
    ...(text ? { text } : {}),
    count,
    created: created.toISOString(),
  };
}

/**
 * Indices of the samples still to make: missing, unreadable, made by another run (see
 * `isSampleComplete`), or without their PNG.
 */
export async function incompleteSamples(
  dir: string,
  manifest: DatasetManifest,
  savePng: boolean,
  range: IndexRange = { first: 0, end: manifest.count },
): Promise<number[]> {
  const fingerprint = datasetFingerprint(manifest);
  const todo: number[] = [];
  for (let i = range.first; i < range.end; i++) {
    const done = await isSampleComplete(dir, i, manifest, fingerprint) &&
      (!savePng || await pathExists(samplePngPath(dir, i)));
    if (!done) todo.push(i);
  }
  return todo;
}

/**
 * The batches that make the samples `todo`: batch k is always samples `k·size … (k+1)·size − 1`
 * (the network's float32 results depend on the batch it runs in), run whole when any of its
 * samples is wanted. So a resumed or repaired dataset is byte for byte the uninterrupted one.
 */
export function batchesOf(
  todo: readonly number[],
  size: number,
  count: number,
): { indices: number[]; wanted: number[] }[] {
  const batches = new Map<number, number[]>();
  for (const i of todo) {
    const k = Math.floor(i / size);
    const wanted = batches.get(k);
    if (wanted) wanted.push(i);
    else batches.set(k, [i]);
  }
  return [...batches].map(([k, wanted]) => ({
    indices: range(k * size, Math.min((k + 1) * size, count)),
    wanted,
  }));
}

/** How {@linkcode sampleAndWrite} samples. */
export interface SamplingRun {
  manifest: DatasetManifest;
  seed: number;
  batchSize: number;
  conditions?: ConditionTable;
  progress?: ProgressBarOptions | false;
}

/**
 * Samples `todo` in batches and writes each sample. The writes of batch k overlap the solve of
 * batch k+1 (at most one batch in flight), so file I/O hides behind network time; a failed
 * write stops the run at the next batch, and a failed solve waits for the writes in flight, so
 * nothing is left half-written when the error leaves.
 */
export async function sampleAndWrite(
  m: LoadedModel,
  sampler: PreparedSampler,
  todo: readonly number[],
  writer: DatasetWriter,
  run: SamplingRun,
): Promise<void> {
  // Nothing left to sample (a finished dataset reused): no "0/0" bar.
  const bar = run.progress === false || todo.length === 0
    ? undefined
    : new ProgressBar(todo.length, { label: "generate", unit: "samples", ...run.progress });
  const { manifest } = run;
  const pngShape = imageShapeOf(manifest.shapes.x);
  const xSize = sampleSize(manifest.shapes.x);
  const zSize = sampleSize(manifest.shapes.z);
  const fingerprint = datasetFingerprint(manifest);
  const writeBatch = async (
    indices: number[],
    wanted: number[],
    batch: Awaited<ReturnType<typeof runBatch>>,
  ) => {
    const writeOne = (index: number) => {
      const b = indices.indexOf(index);
      const x = batch.x.subarray(b * xSize, (b + 1) * xSize);
      const meta = sampleMeta(manifest, index, fingerprint);
      const sample = {
        index,
        z: batch.z[b],
        x,
        c: batch.c?.[b],
        latent: batch.latent?.subarray(b * zSize, (b + 1) * zSize),
        prompt: batch.prompts?.[b],
        meta,
      };
      return writer.write(sample, manifest, writer.savePng ? imageToPng(x, pngShape) : undefined);
    };
    // The first sample of a new dataset goes alone: the manifest follows it.
    const rest = writer.committed ? 0 : 1;
    if (rest === 1) await writeOne(wanted[0]);
    await Promise.all(wanted.slice(rest).map(writeOne));
    bar?.increment(wanted.length);
  };
  let pending: Promise<void> = Promise.resolve();
  let writeError: unknown;
  try {
    for (const { indices, wanted } of batchesOf(todo, run.batchSize, manifest.count)) {
      const batch = await runBatch(m, sampler, indices, {
        seed: run.seed,
        conditions: run.conditions,
      });
      await pending;
      if (writeError !== undefined) throw writeError;
      pending = writeBatch(indices, wanted, batch).catch((e) => {
        writeError = e;
      });
    }
  } finally {
    await pending;
  }
  if (writeError !== undefined) throw writeError;
  bar?.finish();
}

/** `grid.png`: the first `count` teacher outputs, 8 per row, enlarged `scale` times. */
export async function writeGridPng(
  dir: string,
  manifest: DatasetManifest,
  count: number,
  scale: number | undefined,
) {
  const shape = imageShapeOf(manifest.shapes.x);
  const size = sampleSize(shape);
  const images = new Float32Array(count * size);
  for (let i = 0; i < count; i++) {
    const arrays = await readNpz(samplePath(dir, i));
    images.set(arrays.x.data as Float32Array, i * size);
  }
  const png = await labelledGridPng(images, [count, ...shape], { scale });
  await writeFileAtomic(join(dir, "grid.png"), png);
}

//----------------------------------------------------------------------------
// One shard of a sharded dataset

/** What a shard of a dataset records in `<dataset>/.shards/` once its samples are complete. */
export interface DatasetShardRecord extends ShardRecordHeader {
  /** Always `"generate"`: a dataset shard. */
  kind: "generate";
  /** Its samples, `[first, end)`: whole solver batches. */
  samples: IndexRange;
  /** Samples of the whole dataset. */
  count: number;
  /** Samples per solver batch. */
  batch_size: number;
  /** Whether each sample has its PNG, and `grid.png` is drawn at this scale. */
  save_png: boolean;
  /** Enlargement of `grid.png`; null: the default scale, or no PNGs at all. */
  scale: number | null;
  /**
   * The manifest as this shard would write it; its `created` is when the shard started (or
   * `SOURCE_DATE_EPOCH`), and the merge writes the earliest.
   */
  manifest: DatasetManifest;
  /** Samples this run made, and those already complete. */
  generated: number;
  /** Samples that were already complete and were left as they were. */
  skipped: number;
  /** Seconds of the sampling loop. */
  seconds: number;
  /** ISO time the shard finished. */
  finished: string;
}

/**
 * The fingerprint of a sharded dataset job: the dataset's own ({@linkcode datasetFingerprint})
 * and what splits it and what each sample's files are: the sample count, the solver batch (which
 * decides the shards' parts and the float32 results) and the pictures.
 */
export function datasetShardFingerprint(
  manifest: DatasetManifest,
  batchSize: number,
  savePng: boolean,
  scale: number | undefined,
): string {
  const job = {
    dataset: datasetFingerprint(manifest),
    count: manifest.count,
    batch_size: batchSize,
    save_png: savePng,
    scale: savePng ? scale ?? null : null,
  };
  return createHash("sha256").update(canonicalJson(job)).digest("hex");
}

/** Reads the dataset shard records in `<dir>/.shards/` (no folder: none). */
export async function readDatasetShardRecords(
  dir: string,
): Promise<ShardRecordFile<DatasetShardRecord>[]> {
  return await readShardRecords<DatasetShardRecord>(join(dir, SHARDS_DIR), "generate");
}

/**
 * Refuses a shard whose folder holds another dataset: a manifest with other parameters, or
 * records of another job or of another split of this one (their parts would overlap).
 */
async function checkShardFolder(
  dir: string,
  draft: DatasetManifest,
  fingerprint: string,
  shard: Shard,
) {
  const existing = await readManifest(dir).catch((e) => {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  });
  const difference = existing &&
    firstDifference(manifestIdentity(existing), manifestIdentity(draft));
  if (difference) {
    throw new Error(
      `Dataset folder ${dir} holds a dataset made with different parameters (${difference}): ` +
        `use another --data_dir or delete the folder`,
    );
  }
  for (const { path, record } of await readDatasetShardRecords(dir)) {
    if (record.fingerprint !== fingerprint) {
      throw new Error(
        `Dataset folder ${dir} holds a shard of another job (${path}): merge or delete ` +
          `${join(dir, SHARDS_DIR)} first, or use another --data_dir`,
      );
    }
    if (record.shard.count !== shard.count) {
      throw new Error(
        `Dataset folder ${dir} holds finished shards of a ${record.shard.count}-way split ` +
          `(${path}): run that split's missing shards, or delete ${join(dir, SHARDS_DIR)} to ` +
          `start a ${shard.count}-way one`,
      );
    }
  }
}

/** `.<000123.npz>.<pid>.<n>.<random>.tmp`: a temporary file of a sample (or PNG) write. */
const SAMPLE_TEMP = /^\.(\d+)\.(npz|png)\.\d+\.\d+\.[a-z0-9]*\.tmp$/;

/**
 * Removes the temporary files a killed run of this shard left for its own samples, and no
 * others: the other shards' may be live.
 */
async function removeShardTempFiles(dir: string, samples: IndexRange): Promise<void> {
  for (const sub of [SAMPLES_DIR, PNG_DIR]) {
    try {
      for await (const entry of Deno.readDir(join(dir, sub))) {
        const match = entry.isFile ? SAMPLE_TEMP.exec(entry.name) : null;
        const index = match ? Number(match[1]) : -1;
        if (index >= samples.first && index < samples.end) {
          await removeIfExists(join(dir, sub, entry.name));
        }
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
}

/** How {@linkcode generateShard} makes its part. */
export interface ShardGeneration {
  /** The dataset folder. */
  dir: string;
  /** The dataset's manifest (never written by a shard: the merge writes it). */
  draft: DatasetManifest;
  shard: Shard;
  seed: number;
  batchSize: number;
  savePng: boolean;
  scale?: number;
  conditions?: ConditionTable;
  progress?: ProgressBarOptions | false;
}

/** What {@linkcode generateShard} did. */
export interface ShardGenerated {
  samples: IndexRange;
  generated: number;
  skipped: number;
  seconds: number;
}

/**
 * Makes shard `K/N`'s samples of a dataset — whole solver batches, so each sample is the bytes
 * one process writes — and records the part in `<dir>/.shards/shard-K-of-N.json`.
 *
 * The shards of a job share the folder (a shared lock on it, which keeps out a plain `generate`
 * and a merge) and each owns its part (an exclusive lock of its own, so a second shard with the
 * same index fails at once, naming the first). A rerun of a shard resumes it: complete samples
 * are skipped, and the temporary files of its own killed run are removed, nobody else's.
 */
export async function generateShard(
  m: LoadedModel,
  sampler: PreparedSampler,
  g: ShardGeneration,
): Promise<ShardGenerated> {
  const { dir, draft, shard } = g;
  const samples = shardSamples(draft.count, g.batchSize, shard);
  const fingerprint = datasetShardFingerprint(draft, g.batchSize, g.savePng, g.scale);
  await using _folder = await lockOutput(dir, { what: "generate shards", shared: true });
  const recordPath = join(dir, SHARDS_DIR, shardRecordName(shard));
  const own = await lockOutput(recordPath, { what: `generate ${shardLabel(shard)}` });
  try {
    await checkShardFolder(dir, draft, fingerprint, shard);
    await removeShardTempFiles(dir, samples);
    const todo = await incompleteSamples(dir, draft, g.savePng, samples);
    const writer = new DatasetWriter(dir, g.savePng);
    writer.committed = true; // the manifest is the merge's to write
    const started = performance.now();
    await sampleAndWrite(m, sampler, todo, writer, {
      manifest: draft,
      seed: g.seed,
      batchSize: g.batchSize,
      conditions: g.conditions,
      progress: g.progress,
    });
    const seconds = (performance.now() - started) / 1000;
    const skipped = samples.end - samples.first - todo.length;
    const record: DatasetShardRecord = {
      format: SHARD_RECORD_FORMAT,
      version: SHARD_RECORD_VERSION,
      kind: "generate",
      shard: { index: shard.index, count: shard.count },
      fingerprint,
      samples,
      count: draft.count,
      batch_size: g.batchSize,
      save_png: g.savePng,
      scale: g.savePng ? g.scale ?? null : null,
      manifest: draft,
      generated: todo.length,
      skipped,
      seconds,
      finished: new Date().toISOString(),
    };
    await writeJsonAtomic(recordPath, record);
    return { samples, generated: todo.length, skipped, seconds };
  } finally {
    // The folders stay: the other shards write into them.
    await own.release({ removeCreatedDirs: false });
  }
}
