/**
 * A sharded evaluation: shard `K/N` of an `eval` scores its batches of the samples and keeps
 * what the metrics need, and a merge computes from all shards the result one process computes.
 *
 * A shard's part is one `.npz` file, `<out>.shards/shard-K-of-N.npz`:
 *
 * - per-sample values of its samples: `l2`, `l1`, `lpips`, `exact` and `logits` (empty when
 *   not measured) and the decoded images among the evaluation's first 64 (`preview`);
 * - FID's sufficient statistics: the feature moments (count, `Σ (x − c)`, `Σ (x − c)(x − c)ᵀ`
 *   about the reference mean `c`) of the nodes of the batch tree that tile its batches
 *   (`lib/metrics/fid_moments.ts`), `fid_<level>_<index>_sum` and `…_outer`, and `fid_shift`;
 * - a `meta` entry: the shard record (`lib/io/shard_record.ts`) with the job's fingerprint,
 *   the shard's samples, the metrics' names and sizes, and the result document without metrics.
 *
 * One process sums its batches over the same tree and takes the mean and standard deviation of
 * the same per-sample columns in the same order, so the merged metrics are the single run's,
 * bit for bit; only `seconds` (the shards' total) and `created` (the last shard's) differ, as
 * they do between any two runs.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { resolve } from "node:path";
import { writeFileAtomic } from "../io/atomic.ts";
import type { NpyArray } from "../io/npy.ts";
import { decodeNpz, encodeNpz, type NpzEntry } from "../io/npz.ts";
import {
  checkShardHeader,
  checkShardSet,
  listShardRecords,
  SHARD_RECORD_FORMAT,
  SHARD_RECORD_VERSION,
  type ShardRecordFile,
  type ShardRecordHeader,
} from "../io/shard_record.ts";
import { canonicalJson } from "../fingerprint.ts";
import { type FeatureStats, readFidRefs } from "../metrics/fid.ts";
import {
  blockTreeNodes,
  featureMoments,
  type MomentNode,
  reduceBlockTree,
} from "../metrics/fid_moments.ts";
import { type Shard, shardSamples } from "../shard.ts";
import {
  type EvalFidInput,
  type EvalMetricColumns,
  type EvalMetricsInfo,
  type EvalResult,
  type EvaluateOptions,
  evaluateRun,
  metricsFromColumns,
} from "./evaluate.ts";

/** The per-sample columns of a part, in file order. */
const COLUMNS = ["l2", "l1", "lpips", "exact", "logits"] as const;

/** The folder of an evaluation's shards: `<out>.shards`. */
export function evalShardsDir(out: string): string {
  return `${out}.shards`;
}

/** What a shard of an evaluation records (the `meta` entry of its part). */
export interface EvalShardRecord extends ShardRecordHeader {
  /** Always `"eval"`: an evaluation shard. */
  kind: "eval";
  /** Its samples `[first, end)` of `total`: whole batches. */
  samples: { first: number; end: number; total: number };
  /** Samples per batch (one block of the FID moments). */
  batch_size: number;
  /** What the metrics are named and sized by. */
  info: EvalMetricsInfo;
  /** The result document, `metrics` empty. */
  result: EvalResult;
  /** FID: the blocks, the nodes kept (with their counts) and the reference statistics. */
  fid: {
    blocks: number;
    nodes: { level: number; index: number; count: number }[];
    ref: { path?: string; sha256: string };
  } | null;
  /** Row sizes: classes per logits row. */
  classes: number;
  /** Preview images kept, and the shape of one. */
  preview: { count: number; shape: number[] };
  /** Pictures the merge draws besides the result: `png` (absolute), enlarged `scale` times. */
  pictures: { png: string; scale: number | null } | null;
  /** Seconds of the shard's run, and when it finished. */
  seconds: number;
  /** ISO time the shard finished. */
  created: string;
}

/** A shard's part: its record and arrays. */
export interface EvalShardPart {
  /** What the shard records of itself. */
  record: EvalShardRecord;
  /** Per-sample metric values of the shard's samples. */
  columns: EvalMetricColumns;
  /** The preview images the shard kept, concatenated (`record.preview` gives count and shape). */
  preview: Float32Array;
  /** The FID moments' shift and nodes (FID runs only). */
  fid?: { shift: Float64Array; nodes: MomentNode[] };
}

/** SHA-256 of reference statistics (their float64 values). */
function statsDigest(stats: FeatureStats): string {
  const hash = createHash("sha256");
  hash.update(new Uint8Array(Float64Array.from(stats.mu).buffer));
  hash.update(new Uint8Array(Float64Array.from(stats.sigma).buffer));
  return hash.digest("hex");
}

/** Options of {@linkcode evaluateShard}. */
export interface EvaluateShardOptions extends EvaluateOptions {
  /** The shard to evaluate. */
  shard: Shard;
  /** A picture grid of the first 64 samples for the merge to draw. */
  pictures?: { png: string; scale?: number };
}

/**
 * Evaluates shard `K/N` of an evaluation (`evaluateRun` with `shard`: its batches, resumable
 * from its `checkpoint`) and returns its part for {@linkcode writeEvalShard}.
 */
export async function evaluateShard(
  model: Parameters<typeof evaluateRun>[0],
  options: EvaluateShardOptions,
): Promise<EvalShardPart> {
  const run = await evaluateRun(model, { ...options, previewImages: options.previewImages ?? 64 });
  const { first, count, total } = run.samples;
  const b = run.batchSize;
  let fid: EvalShardPart["fid"];
  let fidRecord: EvalShardRecord["fid"] = null;
  if (run.fidRef && run.info.fid) {
    const shift = Float64Array.from(run.fidRef.mu);
    const block = (k: number) =>
      featureMoments(run.columns.features, k * b - first, Math.min(b, total - k * b), shift);
    const nodes = blockTreeNodes(block, first / b, Math.ceil((first + count) / b));
    fid = { shift, nodes };
    const ref = run.info.fid.ref;
    fidRecord = {
      blocks: Math.ceil(total / b),
      nodes: nodes.map(({ level, index, moments }) => ({ level, index, count: moments.count })),
      ref: {
        ...(ref !== "(given)" ? { path: resolve(ref) } : {}),
        sha256: statsDigest(run.fidRef),
      },
    };
  }
  const job = { ...run.fingerprint, fid_ref: fidRecord?.ref.sha256 ?? null };
  const record: EvalShardRecord = {
    format: SHARD_RECORD_FORMAT,
    version: SHARD_RECORD_VERSION,
    kind: "eval",
    shard: { index: options.shard.index, count: options.shard.count },
    fingerprint: createHash("sha256").update(canonicalJson(job)).digest("hex"),
    samples: { first, end: first + count, total },
    batch_size: b,
    info: run.info,
    result: run.result,
    fid: fidRecord,
    classes: run.info.quality?.classes ?? 0,
    preview: { count: run.preview.count, shape: run.imageShape },
    pictures: options.pictures
      ? { png: resolve(options.pictures.png), scale: options.pictures.scale ?? null }
      : null,
    seconds: run.result.seconds,
    created: run.result.created,
  };
  const { l2, l1, lpips, exact, logits } = run.columns;
  return { record, columns: { l2, l1, lpips, exact, logits }, preview: run.preview.images, fid };
}

/** Encodes a part as `.npz` bytes: the record as `meta`, the columns, the FID nodes. */
export function encodeEvalShard(part: EvalShardPart): Uint8Array {
  const meta = new TextEncoder().encode(JSON.stringify(part.record));
  const entries: Record<string, NpzEntry> = { meta: { data: meta, shape: [meta.length] } };
  for (const name of COLUMNS) {
    entries[name] = { data: part.columns[name], shape: [part.columns[name].length] };
  }
  entries.preview = { data: part.preview, shape: [part.preview.length] };
  if (part.fid) {
    entries.fid_shift = { data: part.fid.shift, shape: [part.fid.shift.length] };
    for (const { level, index, moments } of part.fid.nodes) {
      entries[`fid_${level}_${index}_sum`] = { data: moments.sum, shape: [moments.sum.length] };
      entries[`fid_${level}_${index}_outer`] = {
        data: moments.outer,
        shape: [moments.outer.length],
      };
    }
  }
  return encodeNpz(entries);
}

function floatArray<T extends Float32Array | Float64Array>(
  arrays: Record<string, NpyArray>,
  name: string,
  type: new (n: number) => T,
  path: string,
): T {
  const data = arrays[name]?.data;
  if (!(data instanceof type)) throw new TypeError(`${path}: array "${name}" is missing`);
  return data as T;
}

/**
 * Decodes a part written by {@linkcode encodeEvalShard}.
 *
 * @throws {TypeError} When the bytes are no shard part of an evaluation, naming `path`.
 */
export function decodeEvalShard(bytes: Uint8Array, path: string): EvalShardPart {
  let arrays: Record<string, NpyArray>;
  let value: unknown;
  try {
    arrays = decodeNpz(bytes);
    value = JSON.parse(new TextDecoder().decode(arrays.meta?.data as Uint8Array));
  } catch (e) {
    throw new TypeError(`${path} is not an ld3 shard record: ${(e as Error).message}`);
  }
  const record = checkShardHeader<EvalShardRecord>(value, path, "eval");
  const columns = Object.fromEntries(
    COLUMNS.map((name) => [name, floatArray(arrays, name, Float64Array, path)]),
  ) as unknown as EvalMetricColumns;
  const preview = floatArray(arrays, "preview", Float32Array, path);
  if (!record.fid) return { record, columns, preview };
  const nodes = record.fid.nodes.map(({ level, index, count }) => ({
    level,
    index,
    moments: {
      count,
      sum: floatArray(arrays, `fid_${level}_${index}_sum`, Float64Array, path),
      outer: floatArray(arrays, `fid_${level}_${index}_outer`, Float64Array, path),
    },
  }));
  return {
    record,
    columns,
    preview,
    fid: { shift: floatArray(arrays, "fid_shift", Float64Array, path), nodes },
  };
}

/** Writes a part atomically. */
export async function writeEvalShard(path: string, part: EvalShardPart): Promise<void> {
  await writeFileAtomic(path, encodeEvalShard(part));
}

/** A part read back: its file, record and arrays. */
export interface EvalShardFile extends ShardRecordFile<EvalShardRecord> {
  /** The part's record and arrays. */
  part: EvalShardPart;
}

/** Reads every part in an evaluation's shard folder. */
export async function readEvalShards(dir: string): Promise<EvalShardFile[]> {
  const out: EvalShardFile[] = [];
  for (const path of await listShardRecords(dir, "npz")) {
    const part = decodeEvalShard(await Deno.readFile(path), path);
    out.push({ path, record: part.record, part });
  }
  return out;
}

/** What {@linkcode mergeEvalShards} computed. */
export interface MergedEval {
  /** The result document, as one process writes it. */
  result: EvalResult;
  /** The first decoded images of the evaluation (up to 64), and the shape of one. */
  preview: { images: Float32Array; count: number; shape: number[] };
  /** The picture grid the shards asked for. */
  pictures: EvalShardRecord["pictures"];
  /** Shards merged. */
  shards: number;
}

/** Concatenates arrays of one type in order. */
function concat<T extends Float32Array | Float64Array>(arrays: T[], type: new (n: number) => T): T {
  const out = new type(arrays.reduce((n, a) => n + a.length, 0));
  let offset = 0;
  for (const a of arrays) {
    out.set(a, offset);
    offset += a.length;
  }
  return out;
}

/** Checks that each part's samples are its shard's, and its columns that long. */
function checkEvalParts(parts: readonly EvalShardPart[], paths: readonly string[], dir: string) {
  parts.forEach(({ record, columns }, k) => {
    const { first, end, total } = record.samples;
    const expected = shardSamples(total, record.batch_size, record.shard);
    const n = end - first;
    const short = COLUMNS.find((name) => {
      const length = columns[name].length;
      return length !== 0 && length !== n * (name === "logits" ? record.classes : 1);
    });
    if (expected.first !== first || expected.end !== end || short) {
      throw new RangeError(
        `Cannot merge ${dir}: ${paths[k]} does not hold its shard's samples ` +
          `${expected.first}…${expected.end - 1}` + (short ? ` (array "${short}")` : ""),
      );
    }
  });
}

/** FID's inputs from the parts: their nodes reduced over the whole batch tree. */
async function mergedFid(
  parts: readonly EvalShardPart[],
  fidRef: FeatureStats | undefined,
  dir: string,
): Promise<EvalFidInput | undefined> {
  const fid = parts[0].record.fid;
  if (!fid) return undefined;
  const ref = fidRef ?? (fid.ref.path !== undefined ? await readFidRefs(fid.ref.path) : undefined);
  if (!ref) {
    throw new TypeError(
      `Cannot merge ${dir}: the FID reference statistics were given, not a file: pass fidRef`,
    );
  }
  if (statsDigest(ref) !== fid.ref.sha256) {
    throw new RangeError(
      `Cannot merge ${dir}: the FID reference statistics ${fid.ref.path ?? "given"} changed ` +
        `since the shards ran (sha256 ${fid.ref.sha256.slice(0, 12)}…)`,
    );
  }
  const nodes = parts.flatMap((p) => p.fid!.nodes);
  return { moments: reduceBlockTree(nodes, fid.blocks), shift: parts[0].fid!.shift, ref };
}

/**
 * Merges the parts in an evaluation's shard folder (`<out>.shards`) into the result one process
 * computes: checks the parts are one job, one split, every shard once (`checkShardSet`) and
 * each holds its shard's samples, concatenates the per-sample columns, reduces the FID moments
 * and computes the metrics with `metricsFromColumns`, as `evaluateSchedule` does.
 *
 * @param fidRef The FID reference statistics, when the shards were given them as values.
 * @throws {RangeError} For missing, foreign or overlapping shards, in one line.
 */
export async function mergeEvalShards(
  dir: string,
  fidRef?: FeatureStats,
): Promise<MergedEval> {
  const files = await readEvalShards(dir);
  const set = checkShardSet(files, dir);
  const parts = set.records.map((r) => files.find((f) => f.path === r.path)!.part);
  checkEvalParts(parts, set.records.map((r) => r.path), dir);
  const first = parts[0].record;
  const columns = Object.fromEntries(
    COLUMNS.map((name) => [name, concat(parts.map((p) => p.columns[name]), Float64Array)]),
  ) as unknown as EvalMetricColumns;
  const fid = await mergedFid(parts, fidRef, dir);
  const result: EvalResult = {
    ...first.result,
    metrics: metricsFromColumns(first.info, columns, first.samples.total, fid),
    seconds: parts.reduce((s, p) => s + p.record.seconds, 0),
    created: parts.map((p) => p.record.created).sort().at(-1)!,
  };
  const preview = {
    images: concat(parts.map((p) => p.preview), Float32Array),
    count: parts.reduce((n, p) => n + p.record.preview.count, 0),
    shape: first.preview.shape,
  };
  return { result, preview, pictures: first.pictures, shards: set.count };
}
