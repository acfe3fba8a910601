/**
 * Sharded tasks and `deno task merge` as a scheduler runs them: processes that find their shard
 * in the environment (Slurm's `SLURM_ARRAY_TASK_*`, Kubernetes' `JOB_COMPLETION_INDEX`) and say
 * it in their first line, and a merge whose output is one process's; failures are one
 * `error:` line and exit code 1.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { lockOutput } from "../../lib/io/lock.ts";
import { writeFidRefs } from "../../lib/metrics/fid.ts";
import { hashTree, makeTinyGmm } from "../_tiny_gmm.ts";
import { linearFeatureModel } from "../fixtures/tiny_models.ts";
import { runTask } from "../_run_task.ts";

const EPOCH = { SOURCE_DATE_EPOCH: "1767225600" };

/** The one error line of a failed task. */
function errorLine(r: { code: number; stderr: string }): string {
  assert.equal(r.code, 1, r.stderr);
  const lines = r.stderr.trim().split("\n").filter((l) => l.startsWith("error:"));
  assert.equal(lines.length, 1, r.stderr);
  return lines[0];
}

Deno.test("generate in a Slurm array: shards from the environment, merged to one process's bytes", async () => {
  const t = await makeTinyGmm();
  try {
    const args = (dataDir: string) => [
      ...["--config", t.config, "--total_samples", "7", "--sampling_batch_size", "2"],
      ...["--steps", "5", "--solver_name", "euler", "--skip_type", "logSNR", "--save_png"],
      ...["--data_dir", dataDir],
    ];
    const one = await runTask("generate", args(join(t.dir, "one")), undefined, EPOCH);
    assert.equal(one.code, 0, one.stderr);
    const dataDir = join(t.dir, "sharded");
    const dir = join(dataDir, "euler_NFE5_logSNR");
    // Array tasks 1…3 (--array=1-3): shards 0/3 … 2/3, all at once.
    const shards = await Promise.all(
      [1, 2, 3].map((id) =>
        runTask("generate", args(dataDir), undefined, {
          ...EPOCH,
          SLURM_ARRAY_TASK_ID: String(id),
          SLURM_ARRAY_TASK_MIN: "1",
          SLURM_ARRAY_TASK_MAX: "3",
          SLURM_ARRAY_TASK_COUNT: "3",
        })
      ),
    );
    shards.forEach((r, k) => {
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.trim().split("\n");
      assert.equal(
        lines[0],
        `generate: shard ${k}/3 (SLURM_ARRAY_TASK_ID=${k + 1}, SLURM_ARRAY_TASK_MIN=1, ` +
          `SLURM_ARRAY_TASK_COUNT=3)`,
      );
      assert.match(
        lines[1],
        /: samples \d…\d: \d samples generated, 0 already complete .*deno task merge/,
      );
    });
    // A shard still running holds its part: a second one with its index fails at once.
    const running = await lockOutput(join(dir, ".shards", "shard-1-of-3.json"), {
      what: "generate shard 1/3",
    });
    const twice = await runTask("generate", [...args(dataDir), "--shard", "1/3"]);
    await running.release();
    assert.match(errorLine(twice), /shard-1-of-3\.json is in use by generate shard 1\/3, process/);
    const merged = await runTask("merge", [dir]);
    assert.equal(merged.code, 0, merged.stderr);
    assert.match(merged.stdout, /^merged 3 generate shards into .*manifest\.json, .*grid\.png\n$/);
    assert.deepEqual(await hashTree(dir), await hashTree(join(t.dir, "one", "euler_NFE5_logSNR")));
    assert.match(errorLine(await runTask("merge", [dir])), /Nothing to merge at /);
  } finally {
    await t.cleanup();
  }
});

Deno.test("eval in an Indexed Job: JOB_COMPLETION_INDEX of --shards, merged to one process's result", async () => {
  const t = await makeTinyGmm();
  try {
    const features = join(t.dir, "f.onnx");
    await Deno.writeFile(features, linearFeatureModel([1, 4, 4], 2, (i) => Math.cos(0.9 * i)));
    const ref = join(t.dir, "ref.npz");
    await writeFidRefs(ref, {
      mu: new Float64Array([0.1, -0.2]),
      sigma: new Float64Array([1, 0.1, 0.1, 2]),
    });
    const args = (out: string) => [
      ...["--config", t.config, "--solver_name", "euler", "--steps", "3", "--skip_type", "edm"],
      ...["--num_samples", "9", "--batch_size", "2", "--features", features, "--fid_ref", ref],
      ...["--out", out, "--save_png", `${out}.png`],
    ];
    const single = join(t.dir, "one.json");
    assert.equal((await runTask("eval", args(single))).code, 0);
    const out = join(t.dir, "sharded.json");
    for (const index of [1, 0]) {
      const r = await runTask("eval", [...args(out), "--shards", "2"], undefined, {
        JOB_COMPLETION_INDEX: String(index),
      });
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.trim().split("\n");
      assert.equal(
        lines[0],
        `eval: shard ${index}/2 (JOB_COMPLETION_INDEX=${index} of --shards 2)`,
      );
      assert.match(lines[1], /shard-\d-of-2\.npz: samples \d…\d of 9 .*deno task merge /);
      if (index === 1) {
        // Shard 0 has not run yet: the merge names it.
        assert.equal(
          errorLine(await runTask("merge", [out])),
          `error: Cannot merge ${out}.shards: shard 0 of 2 is missing: run --shard 0/2 (a rerun resumes)`,
        );
      }
    }
    const merged = await runTask("merge", [out]);
    assert.equal(merged.code, 0, merged.stderr);
    assert.match(
      merged.stdout,
      /^merged 2 eval shards into .*sharded\.json, .*sharded\.json\.png: FID /,
    );
    const read = async (path: string) => JSON.parse(await Deno.readTextFile(path));
    const [a, b] = [await read(out), await read(single)];
    assert.deepEqual(a.metrics, b.metrics);
    assert.deepEqual(await Deno.readFile(`${out}.png`), await Deno.readFile(`${single}.png`));
    await assert.rejects(() => Deno.stat(`${out}.shards`), Deno.errors.NotFound);
  } finally {
    await t.cleanup();
  }
});

Deno.test("sharded tasks refuse what names no shard, in one line", async () => {
  const t = await makeTinyGmm();
  try {
    const base = ["--config", t.config, "--steps", "3", "--data_dir", join(t.dir, "d")];
    assert.match(
      errorLine(await runTask("generate", [...base, "--shard", "4/4"])),
      /^error: --shard 4\/4: the shard index counts from 0, so it must be an integer in 0…3: got 4$/,
    );
    assert.match(
      errorLine(await runTask("generate", base, undefined, { JOB_COMPLETION_INDEX: "2" })),
      /^error: JOB_COMPLETION_INDEX=2 needs --shards N \(the Job's completions\), or give --shard K\/N$/,
    );
    assert.match(
      errorLine(await runTask("generate", [...base, "--shards", "3"])),
      /--shards 3 needs the shard index/,
    );
    assert.match(
      errorLine(
        await runTask("eval", [
          ...["--config", t.config, "--exact_gmm", "--shard", "0/2", "--checkpoint", "c.npz"],
        ]),
      ),
      /^error: --checkpoint: each shard keeps its own, in <out>\.shards\/$/,
    );
    assert.match(
      errorLine(await runTask("merge", [join(t.dir, "nothing")])),
      /Nothing to merge at /,
    );
  } finally {
    await t.cleanup();
  }
});

Deno.test("bench:schedules in shards on a finished teacher, merged into the one-process report", async () => {
  const t = await makeTinyGmm();
  try {
    const teacherArgs = [
      ...["--config", t.config, "--solver_name", "uni_pc", "--steps", "20", "--skip_type", "edm"],
      ...["--total_samples", "4", "--sampling_batch_size", "2", "--data_dir", join(t.dir, "t")],
    ];
    assert.equal((await runTask("generate", teacherArgs)).code, 0);
    const args = (outDir: string) => [
      ...["--config", t.config, "--data_dir", join(t.dir, "t", "uni_pc_NFE20_edm")],
      ...["--num_samples", "4", "--batch_size", "2", "--solvers", "euler,uni_pc", "--nfes", "3"],
      ...["--schedules", "edm,logSNR", "--out_dir", outDir],
    ];
    const one = await runTask("bench_schedules", args(join(t.dir, "one")));
    assert.equal(one.code, 0, one.stderr);
    const outDir = join(t.dir, "sharded");
    for (const shard of ["0/2", "1/2"]) {
      const r = await runTask("bench_schedules", [...args(outDir), "--shard", shard]);
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.trim().split("\n");
      assert.equal(lines[0], `bench:schedules: shard ${shard}`);
      assert.match(
        lines.at(-1)!,
        /shard-\d-of-2\.json: 2 cells; when all shards are done: deno task merge /,
      );
    }
    const merged = await runTask("merge", [outDir]);
    assert.equal(merged.code, 0, merged.stderr);
    const read = async (dir: string) =>
      JSON.parse(await Deno.readTextFile(join(dir, "schedules.json"))).cells.map(
        // deno-lint-ignore no-explicit-any
        ({ seconds: _, ...c }: any) => c,
      );
    assert.deepEqual(await read(outDir), await read(join(t.dir, "one")));
    assert.match(
      errorLine(
        await runTask("bench_schedules", [...args(outDir), "--shard", "0/2", "--train_ld3"]),
      ),
      /^error: --train_ld3 with --shard: train the LD3 grids once, then run the shards$/,
    );
  } finally {
    await t.cleanup();
  }
});
