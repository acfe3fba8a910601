/**
 * The schedule matrix in shards: shard `K/N` of `bench:schedules` evaluates every `N`-th
 * planned cell from `K` (`runScheduleBench` with `shard`), saves each finished cell as a
 * single run does (`<out_dir>/cells/`, so a rerun of the shard resumes), and records its cells
 * in `<out_dir>/.shards/shard-K-of-N.json`; the merge puts the cells of all shards into one
 * document and writes the report one process writes (`writeScheduleBench`).
 *
 * Each cell is one evaluation on the same teacher samples with the same batches, so a merged
 * cell's metrics are the single run's, bit for bit; `seconds` (the shards' total) and `created`
 * differ as between any two runs. The shards share one teacher dataset: it is made before them
 * (a `generate`, itself sharded or not), never by them.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { join, resolve } from "node:path";
import { writeJsonAtomic } from "../io/atomic.ts";
import { lockOutput } from "../io/lock.ts";
import {
  checkShardSet,
  readShardRecords,
  SHARD_RECORD_FORMAT,
  SHARD_RECORD_VERSION,
  type ShardRecordFile,
  type ShardRecordHeader,
  shardRecordName,
  SHARDS_DIR,
} from "../io/shard_record.ts";
import { loadModelConfig, scheduleFromConfig } from "../onnx/config.ts";
import type { LoadedModel } from "../onnx/model.ts";
import { canonicalJson } from "../fingerprint.ts";
import { type Shard, shardLabel, shardOwns } from "../shard.ts";
import { isFeatureModel } from "./evaluate.ts";
import {
  planScheduleBench,
  runScheduleBench,
  type ScheduleBenchCell,
  type ScheduleBenchDocument,
  type ScheduleBenchOptions,
  type ScheduleBenchResult,
} from "./grid_bench.ts";
import { scheduleBenchDocument, writeScheduleBench } from "./grid_bench_report.ts";

/** What a shard of the schedule matrix records. */
export interface BenchShardRecord extends ShardRecordHeader {
  /** Always `"bench"`: a schedule-matrix shard. */
  kind: "bench";
  /** The cells this shard owns, by their place in `document.cells`. */
  cells: { at: number; cell: ScheduleBenchCell }[];
  /** The `schedules.json` document as this shard saw it (other shards' cells unfilled). */
  document: ScheduleBenchDocument;
  /** Cells planned in the whole matrix, and the teacher folder as given. */
  evaluated: number;
  /** The teacher dataset folder, as given. */
  teacher_dir: string;
  /** The command line the report shows. */
  command: string | null;
  /** The model config (absolute path or URL), whose schedule the report's λ plot needs. */
  config: string;
}

/** The place in `cells` of a cell of solver, NFE and schedule. */
function cellIndex(cells: readonly ScheduleBenchCell[], cell: ScheduleBenchCell): number {
  return cells.findIndex((c) =>
    c.solver === cell.solver && c.nfe === cell.nfe && c.schedule === cell.schedule
  );
}

/** The fingerprint of a sharded matrix: what every cell's metrics depend on, and the plan. */
function benchFingerprint(
  result: ScheduleBenchResult,
  planned: readonly ScheduleBenchCell[],
  options: ScheduleBenchOptions,
): string {
  const { cells: _cells, seconds: _seconds, created: _created, ...identity } =
    scheduleBenchDocument(result);
  const features = options.features === undefined
    ? null
    : isFeatureModel(options.features)
    ? "(loaded)"
    : resolve(options.features.path);
  const job = {
    ...identity,
    planned: planned.map((c) => [c.solver, c.nfe, c.schedule, c.load_from ?? null]),
    settings: {
      batch_size: options.batchSize ?? null,
      features,
      fid_ref: typeof options.fidRef === "string"
        ? resolve(options.fidRef)
        : options.fidRef
        ? "(given)"
        : null,
      exact: options.exact ?? null,
      exact_steps: options.exactSteps ?? null,
    },
  };
  return createHash("sha256").update(canonicalJson(job)).digest("hex");
}

/** Options of {@linkcode runScheduleBenchShard}. */
export interface ScheduleBenchShardOptions extends ScheduleBenchOptions {
  /** The shard to run. */
  shard: Shard;
  /** The command line the merged report shows. */
  command?: string;
}

/**
 * Runs shard `K/N` of the schedule matrix (`runScheduleBench` with `shard`) and records its
 * cells in `<outDir>/.shards/shard-K-of-N.json`. The record is this shard's while it runs: a
 * second run of the same shard fails at once, naming the first.
 */
export async function runScheduleBenchShard(
  model: LoadedModel,
  outDir: string,
  options: ScheduleBenchShardOptions,
): Promise<{ record: BenchShardRecord; path: string; result: ScheduleBenchResult }> {
  const { shard } = options;
  const path = join(outDir, SHARDS_DIR, shardRecordName(shard));
  const own = await lockOutput(path, { what: `bench:schedules ${shardLabel(shard)}` });
  try {
    return await runOwnedShard(model, path, options);
  } finally {
    // The records' folder stays: the other shards write into it.
    await own.release({ removeCreatedDirs: false });
  }
}

/** {@linkcode runScheduleBenchShard} once its record is locked. */
async function runOwnedShard(
  model: LoadedModel,
  path: string,
  options: ScheduleBenchShardOptions,
): Promise<{ record: BenchShardRecord; path: string; result: ScheduleBenchResult }> {
  const { shard } = options;
  const plan = await planScheduleBench(options);
  const result = await runScheduleBench(model, options);
  const planned = plan.planned.map((p) => p.cell);
  const cells = planned
    .filter((_, i) => shardOwns(i, shard))
    .map((c) => {
      const at = cellIndex(result.cells, c);
      return { at, cell: result.cells[at] };
    });
  const record: BenchShardRecord = {
    format: SHARD_RECORD_FORMAT,
    version: SHARD_RECORD_VERSION,
    kind: "bench",
    shard: { index: shard.index, count: shard.count },
    fingerprint: benchFingerprint(result, planned, options),
    cells,
    document: scheduleBenchDocument(result),
    evaluated: result.evaluated,
    teacher_dir: result.teacherDir,
    command: options.command ?? null,
    config: /^[a-z][a-z0-9+.-]*:\/\//i.test(model.config.source)
      ? model.config.source
      : resolve(model.config.source),
  };
  await writeJsonAtomic(path, record);
  return { record, path, result };
}

/** Reads the bench shard records in `<outDir>/.shards/`. */
export async function readBenchShardRecords(
  outDir: string,
): Promise<ShardRecordFile<BenchShardRecord>[]> {
  return await readShardRecords<BenchShardRecord>(join(outDir, SHARDS_DIR), "bench");
}

/** What {@linkcode mergeScheduleBenchShards} wrote. */
export interface MergedScheduleBench {
  /** The merged document. */
  document: ScheduleBenchDocument;
  /** Shards merged. */
  shards: number;
  /** The report's files. */
  files: string[];
  /** The `schedules.md` text. */
  markdown: string;
}

/**
 * Merges the shards of a sharded schedule matrix in `outDir`: checks they are one job, one
 * split, every shard once (`checkShardSet`), puts each shard's cells into one document and
 * writes the report one process writes (`writeScheduleBench`), then removes the records.
 *
 * @throws {RangeError} For missing or foreign shards, in one line naming the shards to rerun.
 */
export async function mergeScheduleBenchShards(outDir: string): Promise<MergedScheduleBench> {
  const set = checkShardSet(await readBenchShardRecords(outDir), outDir);
  const first = set.records[0].record;
  const document: ScheduleBenchDocument = structuredClone(first.document);
  for (const { path, record } of set.records) {
    for (const { at, cell } of record.cells) {
      const target = document.cells[at];
      if (!target || cellIndex(document.cells, cell) !== at) {
        throw new RangeError(`Cannot merge ${outDir}: ${path} records a cell not in the matrix`);
      }
      document.cells[at] = cell;
    }
  }
  document.seconds = set.records.reduce((s, r) => s + r.record.document.seconds, 0);
  document.created = set.records.map((r) => r.record.document.created).sort().at(-1)!;
  const config = await loadModelConfig(first.config);
  const written = await writeScheduleBench(
    outDir,
    { ...document, evaluated: first.evaluated, teacherDir: first.teacher_dir },
    { command: first.command ?? undefined, schedule: await scheduleFromConfig(config) },
  );
  await Deno.remove(join(outDir, SHARDS_DIR), { recursive: true });
  return { document, shards: set.count, ...written };
}
