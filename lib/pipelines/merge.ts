/**
 * `deno task merge <path>`: joins the shards of a sharded `generate`, `eval` or
 * `bench:schedules` into the outputs one process writes, after checking that the job is whole
 * (one fingerprint, one split, every shard once: `lib/io/shard_record.ts`).
 *
 * - `generate`: the shards write into the dataset folder (their records in `.shards/`);
 *   `merge <dataset>` writes `manifest.json` and `grid.png`.
 * - `eval`: the shards write `<out>.shards/`; `merge <out>` writes `<out>` and the
 *   `--save_png` grid.
 * - `bench:schedules`: the shards save cells in `<out_dir>/cells/` (their records in
 *   `<out_dir>/.shards/`); `merge <out_dir>` writes the `schedules.*` report.
 *
 * @module
 */
import { basename, join } from "node:path";
import { writeFileAtomic } from "../io/atomic.ts";
import { pathExists } from "../io/fs.ts";
import { labelledGridPng } from "../io/labelled_grid.ts";
import { lockOutputs } from "../io/lock.ts";
import { listShardRecords, SHARDS_DIR } from "../io/shard_record.ts";
import type { FeatureStats } from "../metrics/fid.ts";
import { mergeDatasetShards } from "./dataset_merge.ts";
import { type EvalResult, writeEvalResult } from "./evaluate.ts";
import { evalShardsDir, mergeEvalShards } from "./eval_shards.ts";
import { mergeScheduleBenchShards } from "./grid_bench_shards.ts";

/** What {@linkcode mergeShards} merged. */
export interface MergeSummary {
  /** The sharded task: `generate`, `eval` or `bench`. */
  kind: "generate" | "eval" | "bench";
  /** Shards merged. */
  shards: number;
  /** The files written. */
  wrote: string[];
  /** The merged evaluation's result (`eval` only). */
  result?: EvalResult;
}

/** Options of {@linkcode mergeShards}. */
export interface MergeShardsOptions {
  /** FID reference statistics, for an evaluation whose shards were given them as values. */
  fidRef?: FeatureStats;
}

/** The kind of the first record in `<dir>/.shards/`, or undefined without records. */
async function recordKind(dir: string): Promise<string | undefined> {
  const [first] = await listShardRecords(join(dir, SHARDS_DIR));
  if (first === undefined) return undefined;
  try {
    return JSON.parse(await Deno.readTextFile(first))?.kind;
  } catch {
    return undefined;
  }
}

/** Merges an evaluation's parts and writes its result (and picture grid), then removes them. */
async function mergeEval(dir: string, options: MergeShardsOptions): Promise<MergeSummary> {
  const out = dir.replace(/\.shards\/?$/, "");
  const merged = await mergeEvalShards(dir, options.fidRef);
  const png = merged.pictures?.png;
  await using _outputs = await lockOutputs(png === undefined ? [out] : [out, png], {
    what: "merge",
  });
  await writeEvalResult(out, merged.result);
  const wrote = [out];
  if (png !== undefined && merged.preview.count > 0) {
    const { images, count, shape } = merged.preview;
    const picture = await labelledGridPng(images, [count, ...shape], {
      scale: merged.pictures?.scale ?? undefined,
    });
    await writeFileAtomic(png, picture);
    wrote.push(png);
  }
  await Deno.remove(dir, { recursive: true });
  return { kind: "eval", shards: merged.shards, wrote, result: merged.result };
}

/**
 * Merges the shards at `path` — a dataset folder (sharded `generate`), an evaluation's `--out`
 * or its `<out>.shards` folder (sharded `eval`), or a `--out_dir` (sharded `bench:schedules`)
 * — into the files one process writes, and removes the shards' records.
 *
 * @throws {RangeError} When there is nothing to merge, or shards are missing or foreign (one
 * line naming them).
 */
export async function mergeShards(
  path: string,
  options: MergeShardsOptions = {},
): Promise<MergeSummary> {
  const trimmed = path.replace(/\/+$/, "");
  const kind = await recordKind(trimmed);
  if (kind === "generate") {
    const merged = await mergeDatasetShards(trimmed);
    return { kind, shards: merged.shards, wrote: merged.wrote };
  }
  if (kind === "bench") {
    const merged = await mergeScheduleBenchShards(trimmed);
    return { kind, shards: merged.shards, wrote: merged.files };
  }
  if (kind !== undefined) throw new RangeError(`${path}: shards of an unknown task ("${kind}")`);
  const evalDir = basename(trimmed).endsWith(".shards") ? trimmed : evalShardsDir(trimmed);
  if ((await listShardRecords(evalDir, "npz")).length > 0) return await mergeEval(evalDir, options);
  if (await pathExists(evalDir) || await pathExists(join(trimmed, SHARDS_DIR))) {
    throw new RangeError(`Nothing to merge in ${path}: no shard has finished (no shard records)`);
  }
  throw new RangeError(
    `Nothing to merge at ${path}: give a dataset folder or a bench:schedules --out_dir (with ` +
      `${SHARDS_DIR}/), or an eval --out (with <out>.shards/)`,
  );
}
