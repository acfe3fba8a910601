/**
 * The shards on a real scheduler: a single-node Slurm cluster (Debian's `slurm-wlm` and
 * `munge`, started in the test without systemd, `_slurm.ts`) runs `examples/slurm/pipeline.sh`
 * as shipped — a 4-task array that generates a teacher dataset, its merge, a 4-task array that
 * evaluates a schedule on it (FID and teacher distance), and that merge — and the results are
 * compared with one process's: the dataset byte for byte, the evaluation to the last bit.
 *
 * Skipped with one line where the daemons cannot be started (not root, no packages).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { writeFidRefs } from "../../lib/metrics/fid.ts";
import { hashTree, makeTinyGmm } from "../_tiny_gmm.ts";
import { linearFeatureModel } from "../fixtures/tiny_models.ts";
import { ROOT } from "../_run_task.ts";
import { type SlurmCluster, slurmUnavailable, startSlurm, waitForJobs } from "./_slurm.ts";

const unavailable = slurmUnavailable();
if (unavailable) console.log(`Slurm test skipped: ${unavailable}`);

/** Runs `tasks/<task>.ts` as one process with `env` added; fails on a non-zero exit. */
async function runOne(task: string, args: string[], env: Record<string, string>): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", join(ROOT, "tasks", `${task}.ts`), ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  assert.equal(out.code, 0, `${task}: ${text(out.stderr)}`);
  return text(out.stdout);
}

/** The first line each array task printed on stdout, by array index. */
async function firstLines(logs: string, job: string): Promise<string[]> {
  const lines: string[] = [];
  for (let k = 0; k < 4; k++) {
    const name = (await Array.fromAsync(Deno.readDir(logs)))
      .map((e) => e.name)
      .find((n) => n.endsWith(`-${job}_${k}.out`));
    lines.push(name ? (await Deno.readTextFile(join(logs, name))).split("\n")[0] : "(no log)");
  }
  return lines;
}

/** What differs between any two runs of one evaluation: its time, and where its teacher is. */
function comparable(result: Record<string, unknown>) {
  const { seconds: _s, created: _c, metrics, ...rest } = result as {
    seconds: number;
    created: string;
    metrics: { teacher: Record<string, unknown> };
  };
  const { dir: _dir, ...teacher } = metrics.teacher;
  return { ...rest, metrics: { ...metrics, teacher } };
}

async function logsOf(cluster: SlurmCluster, logs: string): Promise<string> {
  const parts: string[] = [];
  for await (const e of Deno.readDir(logs)) {
    parts.push(`--- ${e.name}\n${await Deno.readTextFile(join(logs, e.name))}`);
  }
  const ctld = await Deno.readTextFile(join(cluster.dir, "log", "slurmctld.log")).catch(() => "");
  return [...parts, `--- slurmctld.log (tail)\n${ctld.split("\n").slice(-20).join("\n")}`]
    .join("\n");
}

Deno.test({
  name: "a 4-task Slurm job array generates and evaluates; merged, it is the one-process run",
  ignore: unavailable !== undefined,
  async fn() {
    const cluster = await startSlurm();
    if (typeof cluster === "string") {
      console.log(`Slurm test skipped: ${cluster}`);
      return;
    }
    const t = await makeTinyGmm();
    try {
      const features = join(t.dir, "features.onnx");
      await Deno.writeFile(features, linearFeatureModel([1, 4, 4], 4, (i) => Math.sin(0.7 * i)));
      const ref = join(t.dir, "ref.npz");
      await writeFidRefs(ref, {
        mu: new Float64Array([0.1, -0.2, 0.3, 0]),
        sigma: Float64Array.from({ length: 16 }, (_, i) => (i % 5 === 0 ? 0.5 : 0.05)),
      });
      const epoch = { SOURCE_DATE_EPOCH: "1767225600" };
      const evalFlags = `--features ${features} --fid_ref ${ref} --batch_size 3`;
      const logs = join(t.dir, "logs");
      const sharded = join(t.dir, "sharded");
      const env = {
        ...epoch,
        SHARDS: "4",
        LOGS: logs,
        CONFIG: t.config,
        TOTAL: "22",
        BATCH: "3",
        DATA_DIR: sharded,
        SOLVER: "euler",
        STEPS: "4",
        SKIP_TYPE: "logSNR",
        OUT: join(sharded, "eval.json"),
        EVAL_ARGS: evalFlags,
      };
      const ids = (await cluster.run("bash", [join(ROOT, "examples/slurm/pipeline.sh")], {
        cwd: ROOT,
        env,
      })).trim().split(/\s+/);
      assert.equal(ids.length, 4, ids.join(" "));
      const states = await waitForJobs(cluster, ids, 100).catch(async (e) => {
        throw new Error(`${(e as Error).message}\n${await logsOf(cluster, logs)}`);
      });
      for (const [job, s] of Object.entries(states)) {
        assert.ok(
          s.every((x) => x === "COMPLETED"),
          `job ${job}: ${s}\n${await logsOf(cluster, logs)}`,
        );
      }
      // Each array task said first which shard it is.
      assert.deepEqual(
        await firstLines(logs, ids[0]),
        [0, 1, 2, 3].map((k) =>
          `generate: shard ${k}/4 (SLURM_ARRAY_TASK_ID=${k}, SLURM_ARRAY_TASK_COUNT=4)`
        ),
      );
      assert.deepEqual(
        await firstLines(logs, ids[2]),
        [0, 1, 2, 3].map((k) =>
          `eval: shard ${k}/4 (SLURM_ARRAY_TASK_ID=${k}, SLURM_ARRAY_TASK_COUNT=4)`
        ),
      );

      // One process, the same commands.
      const single = join(t.dir, "single");
      await runOne("generate", [
        ...["--config", t.config, "--total_samples", "22", "--sampling_batch_size", "3"],
        ...["--solver_name", "uni_pc", "--steps", "20", "--skip_type", "edm", "--data_dir", single],
      ], epoch);
      const teacher = (root: string) => join(root, "uni_pc_NFE20_edm");
      assert.deepEqual(await hashTree(teacher(sharded)), await hashTree(teacher(single)));

      await runOne("eval", [
        ...["--config", t.config, "--solver_name", "euler", "--steps", "4"],
        ...["--skip_type", "logSNR", "--data_dir", teacher(single)],
        ...["--out", join(single, "eval.json"), ...evalFlags.split(" ")],
      ], {});
      const read = async (root: string) =>
        JSON.parse(await Deno.readTextFile(join(root, "eval.json")));
      const [merged, one] = [await read(sharded), await read(single)];
      assert.equal(merged.metrics.fid, one.metrics.fid); // to the last bit
      assert.deepEqual(comparable(merged), comparable(one));
      // Nothing of the shards is left behind.
      assert.deepEqual(
        (await Array.fromAsync(Deno.readDir(sharded))).map((e) => e.name).sort(),
        ["eval.json", "uni_pc_NFE20_edm"],
      );
    } finally {
      await cluster.stop();
      await t.cleanup();
    }
  },
});
