/**
 * What the sharded tasks share on the command line: which shard this run is (`--shard K/N`,
 * else the scheduler's environment), said in the first line of output, and the command line a
 * merged report shows.
 *
 * @module
 */
import { resolveShard, type Shard, shardLabel } from "../lib/shard.ts";

/**
 * The shard this run is (`lib/shard.ts`: `--shard`, `SLURM_ARRAY_TASK_ID`,
 * `JOB_COMPLETION_INDEX`), printed as the first line of output; undefined for the whole job.
 */
export function announceShard(
  task: string,
  values: { shard?: string; shards?: number },
): Shard | undefined {
  const shard = resolveShard(values, Deno.env.toObject());
  if (shard) console.log(`${task}: ${shardLabel(shard)}`);
  return shard;
}

/** `deno task <name> <args>` without `--shard`/`--shards` (and their values). */
export function commandWithoutShard(name: string, args: readonly string[]): string {
  const kept: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const flag = args[i].replace(/=.*$/, "");
    if (flag === "--shard" || flag === "--shards") {
      if (!args[i].includes("=")) i++;
      continue;
    }
    kept.push(args[i]);
  }
  return [`deno task ${name}`, ...kept].join(" ");
}
