/**
 * The schedule matrix in shards: every cell of the merged document carries one process's
 * metrics, the report is written as a single run writes it, and the shards need a finished
 * teacher.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { writeFidRefs } from "../../lib/metrics/fid.ts";
import { loadModel } from "../../lib/onnx/model.ts";
import { generateDataset } from "../../lib/pipelines/generate.ts";
import { runScheduleBench } from "../../lib/pipelines/grid_bench.ts";
import {
  mergeScheduleBenchShards,
  runScheduleBenchShard,
} from "../../lib/pipelines/grid_bench_shards.ts";
import { makeTinyGmm } from "../_tiny_gmm.ts";
import { linearFeatureModel } from "../fixtures/tiny_models.ts";

Deno.test("merged shards of the schedule matrix hold one process's cells; shards need the teacher", async () => {
  const gmm = await makeTinyGmm();
  const model = await loadModel(gmm.config);
  try {
    const features = join(gmm.dir, "f.onnx");
    await Deno.writeFile(features, linearFeatureModel([1, 4, 4], 2, (i) => Math.cos(0.9 * i)));
    const fidRef = join(gmm.dir, "ref.npz");
    await writeFidRefs(fidRef, {
      mu: new Float64Array([0.1, -0.2]),
      sigma: new Float64Array([1, 0.1, 0.1, 2]),
    });
    const base = {
      solvers: ["uni_pc", "ipndm"],
      nfes: [4, 5],
      schedules: ["logSNR", "edm", "gits_table", "ld3"],
      ld3Dir: join(gmm.dir, "none"),
      numSamples: 5,
      batchSize: 2,
      features: { path: features },
      fidRef,
      progress: false as const,
    };
    const outDir = join(gmm.dir, "sharded");
    const teacherRoot = join(outDir, "teacher");
    await assert.rejects(
      () =>
        runScheduleBenchShard(model, outDir, {
          ...base,
          teacherRoot,
          shard: { index: 0, count: 3 },
        }),
      /The shards of bench:schedules share one teacher, .*: make it first \(deno task generate --config .* --solver_name uni_pc --steps 20 --skip_type edm --seed 1000 --total_samples 5 --sampling_batch_size 2 --data_dir .*teacher, sharded or not\) or give --data_dir/,
    );
    const teacher = await generateDataset(model, {
      solverName: "uni_pc",
      steps: 20,
      skipType: "edm",
      seed: 1000,
      totalSamples: 5,
      samplingBatchSize: 2,
      dataDir: teacherRoot,
      progress: false,
    });
    const one = await runScheduleBench(model, {
      ...base,
      dataDir: teacher.dir,
      resumeDir: join(gmm.dir, "one", "cells"),
    });
    const options = { ...base, dataDir: teacher.dir, resumeDir: join(outDir, "cells") };
    const owned: number[] = [];
    for (let index = 0; index < 3; index++) {
      const { record } = await runScheduleBenchShard(model, outDir, {
        ...options,
        shard: { index, count: 3 },
        command: "deno task bench:schedules --nfes 4,5",
      });
      owned.push(record.cells.length);
    }
    // 2 solvers × 2 NFEs × (logSNR, edm) planned, the GITS tables and LD3 n/a: 8 cells dealt 3,
    // 3, 2.
    assert.deepEqual(owned, [3, 3, 2]);
    const merged = await mergeScheduleBenchShards(outDir);
    assert.equal(merged.shards, 3);
    const strip = (cells: typeof one.cells) => cells.map(({ seconds: _, ...c }) => c);
    assert.deepEqual(strip(merged.document.cells), strip(one.cells));
    assert.ok(merged.document.cells.some((c) => c.metrics?.fid !== undefined));
    assert.deepEqual(
      merged.files.map((f) => f.slice(outDir.length + 1)).sort(),
      [
        "schedules.html",
        "schedules.json",
        "schedules.md",
        "schedules.png",
        "schedules.svg",
        "schedules_lambda.png",
        "schedules_lambda.svg",
      ],
    );
    assert.match(merged.markdown, /deno task bench:schedules --nfes 4,5/);
    await assert.rejects(() => mergeScheduleBenchShards(outDir), /Nothing to merge in .*sharded/);
  } finally {
    await model.close();
    await gmm.cleanup();
  }
});
