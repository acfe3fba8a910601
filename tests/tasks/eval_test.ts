/**
 * `deno task eval` and `deno task bench:schedules` as a user runs them: subprocesses with real
 * arguments, checking the summary line, the files written and the one-line errors.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { Image } from "imagescript";
import { evaluateSchedule } from "../../lib/pipelines/evaluate.ts";
import { writeFidRefs } from "../../lib/metrics/fid.ts";
import { edmGrid, toGrid } from "../../lib/step_grid.ts";
import { makeGridFile, saveGridFile } from "../../lib/io/grid_file.ts";
import { generateDataset } from "../../lib/pipelines/generate.ts";
import { veSchedule } from "../../lib/noise_schedule.ts";
import { makeTinyGmm } from "../_tiny_gmm.ts";
import { linearFeatureModel } from "../fixtures/tiny_models.ts";
import { ROOT, runTask } from "../_run_task.ts";

const featureOnnx = () => linearFeatureModel([1, 4, 4], 2, (i) => Math.cos(0.9 * i));

Deno.test("eval task prints one summary line and writes the JSON and PNG", async () => {
  const gmm = await makeTinyGmm();
  try {
    const teacher = await generateDataset(gmm.config, {
      dataDir: join(gmm.dir, "data"),
      totalSamples: 6,
      samplingBatchSize: 6,
      steps: 8,
      solverName: "uni_pc",
      skipType: "edm",
      progress: false,
    });
    const features = join(gmm.dir, "f.onnx");
    await Deno.writeFile(features, featureOnnx());
    const ref = join(gmm.dir, "ref.npz");
    await writeFidRefs(ref, {
      mu: new Float64Array([0.1, -0.2]),
      sigma: new Float64Array([1, 0.1, 0.1, 2]),
    });
    const out = join(gmm.dir, "result.json");
    const png = join(gmm.dir, "grid.png");
    const r = await runTask("eval", [
      "--config",
      gmm.config,
      "--solver_name",
      "ipndm",
      "--steps",
      "4",
      "--skip_type",
      "logSNR",
      "--data_dir",
      teacher.dir,
      "--features",
      features,
      "--fid_ref",
      ref,
      "--exact_gmm",
      "--exact_steps",
      "50",
      "--lpips_model",
      join(ROOT, "models/lpips-tiny/lpips-tiny.onnx"),
      "--out",
      out,
      "--save_png",
      png,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    assert.equal(lines.length, 1);
    assert.match(
      lines[0],
      /^ipndm NFE 4 logSNR: FID \d+\.\d\d, L2 to teacher [\d.e-]+ ± [\d.e-]+, L1 [\d.e-]+, LPIPS [\d.e-]+, exact RMS error [\d.e-]+ ± [\d.e-]+ \(6 samples, [\d.]+ s\)$/,
    );
    assert.match(r.stderr, /eval 6\/6/);
    const result = JSON.parse(await Deno.readTextFile(out));
    assert.equal(result.nfe, 4);
    assert.equal(result.options.num_samples, 6);
    assert.equal(result.grid.sigma1.length, 5);
    assert.ok(result.metrics.fid > 0);
    assert.ok(result.metrics.teacher.lpips.mean > 0);
    await assert.rejects(() => Deno.stat(`${out}.partial.npz`), Deno.errors.NotFound);
    const image = await Image.decode(await Deno.readFile(png));
    // Enlarged 21× by default, so that a 4 px image is 84 px.
    assert.equal(image.width, (6 * (4 + 2) + 2) * 21);

    // The teacher's own grid through --sigmas: distance ≈ 0.
    const sigmas = (await JSON.parse(
      await Deno.readTextFile(join(teacher.dir, "manifest.json")),
    )).grid.sigma1 as number[];
    const own = await runTask("eval", [
      "--config",
      gmm.config,
      "--sigmas",
      sigmas.map((s) => s.toPrecision(17)).join(","),
      "--data_dir",
      teacher.dir,
      "--out",
      join(gmm.dir, "own.json"),
    ]);
    assert.equal(own.code, 0, own.stderr);
    const ownResult = JSON.parse(await Deno.readTextFile(join(gmm.dir, "own.json")));
    assert.ok(ownResult.metrics.teacher.l2.mean < 1e-10);
    assert.ok(ownResult.metrics.teacher.l2.mean < result.metrics.teacher.l2.mean);
  } finally {
    await gmm.cleanup();
  }
});

Deno.test("eval task resumes an interrupted run from <out>.partial.npz and removes it", async () => {
  const gmm = await makeTinyGmm();
  try {
    const out = join(gmm.dir, "r.json");
    const checkpoint = `${out}.partial.npz`;
    const options = {
      solverName: "ipndm",
      steps: 4,
      skipType: "logSNR",
      numSamples: 6,
      batchSize: 2,
      exactGmm: true,
      exactSteps: 50,
      previewImages: 64,
    } as const;
    const full = await evaluateSchedule(gmm.config, options);
    // A run killed after its second batch leaves 4 samples in the task's default checkpoint.
    let batches = 0;
    await assert.rejects(() =>
      evaluateSchedule(gmm.config, {
        ...options,
        checkpoint,
        checkpointSeconds: 0,
        onBatch: () => {
          if (++batches === 3) throw new Error("killed");
        },
      })
    );
    const args = ["--config", gmm.config, "--solver_name", "ipndm", "--steps", "4"];
    const rest = ["--num_samples", "6", "--batch_size", "2", "--exact_gmm", "--exact_steps", "50"];
    // Another grid must not take the checkpoint over.
    const other = await runTask("eval", [...args, "--skip_type", "edm", ...rest, "--out", out]);
    assert.equal(other.code, 1);
    assert.match(
      other.stderr,
      /^error: Checkpoint .* belongs to another evaluation \(differs in: grid\)/,
    );
    const r = await runTask("eval", [...args, "--skip_type", "logSNR", ...rest, "--out", out]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /resuming .*r\.json\.partial\.npz: 4\/6 samples done/);
    const result = JSON.parse(await Deno.readTextFile(out));
    assert.deepEqual(result.metrics, JSON.parse(JSON.stringify(full.metrics)));
    await assert.rejects(() => Deno.stat(checkpoint), Deno.errors.NotFound);
  } finally {
    await gmm.cleanup();
  }
});

Deno.test("eval task: bad input gives one error line and exit 1", async () => {
  const gmm = await makeTinyGmm();
  try {
    const features = join(gmm.dir, "f.onnx");
    await Deno.writeFile(features, featureOnnx());
    const ref3 = join(gmm.dir, "ref3.npz");
    await writeFidRefs(ref3, { mu: new Float64Array(3), sigma: new Float64Array(9) });
    const base = ["--config", gmm.config, "--num_samples", "4", "--exact_gmm"];
    const cases: [string[], RegExp][] = [
      [[...base, "--solver_name", "rk4"], /^error: --solver_name must be one of .*: got "rk4"/],
      [[...base, "--load_from", join(gmm.dir, "missing.json")], /^error: Cannot read grid file/],
      [
        [...base, "--features", features, "--fid_ref", ref3],
        /^error: Reference statistics have dimension 3 but the feature model outputs 2/,
      ],
      [[...base, "--sigmas", "80,x,1"], /^error: --sigmas must be a comma-separated list/],
      [
        [...base, "--skip_type", "edm", "--sigmas", "80,1,0.002"],
        /^error: Give one of --skip_type, --load_from, --sigmas/,
      ],
      [["--config", gmm.config], /^error: Nothing to measure/],
      [[...base, "--bogus"], /^error: Unknown option '--bogus'/],
    ];
    for (const [args, pattern] of cases) {
      const r = await runTask("eval", args);
      assert.equal(r.code, 1, `${args.join(" ")}: ${r.stdout}`);
      const lines = r.stderr.trim().split("\n");
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], pattern);
    }
  } finally {
    await gmm.cleanup();
  }
});

Deno.test("bench:schedules task writes the table, JSON and plots, with an LD3 grid file", async () => {
  const gmm = await makeTinyGmm();
  try {
    const ld3Dir = join(gmm.dir, "ld3");
    await Deno.mkdir(ld3Dir);
    // A stand-in learned grid (EDM ρ = 3) in the LD3 naming convention.
    const schedule = veSchedule();
    await saveGridFile(
      join(ld3Dir, "uni_pc-NFE4.json"),
      makeGridFile(schedule, toGrid(edmGrid(schedule, 4, { rho: 3 })), {
        solver: "uni_pc",
        solverOptions: { order: 2 },
        source: "ld3",
        meta: { train_seconds: 12.5 },
      }),
    );
    const outDir = join(gmm.dir, "bench");
    const args = [
      "--config",
      gmm.config,
      "--solvers",
      "uni_pc,ipndm",
      "--nfes",
      "4,10",
      "--schedules",
      "logSNR,edm,gits,ays,ld3",
      "--num_samples",
      "4",
      "--ld3_dir",
      ld3Dir,
      "--out_dir",
      outDir,
    ];
    const r = await runTask("bench_schedules", args);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^bench:schedules on tiny-gmm: 13 cells × 4 samples, .* estimated/);
    const md = await Deno.readTextFile(join(outDir, "schedules.md"));
    assert.match(md, /\| solver \| NFE \| logSNR \| edm \| gits \| ays \| ld3 \|/);
    assert.match(md, /## Exact-solution error/);
    assert.match(md, /## LD3 training wall-clock/);
    // The GITS search runs on the model at every NFE; AYS has no table for a VE σ 80 model;
    // ipndm has no LD3 file.
    assert.match(md, /\| uni_pc \| 4 \| [^|]+ \| [^|]+ \| [^—|]+ \| — \| [^—|]+ \|/);
    assert.match(md, /\| ipndm \| 4 \| [^|]+ \| [^|]+ \| [^—|]+ \| — \| — \|/);
    const gitsCache = [...Deno.readDirSync(join(outDir, "gits"))].map((e) => e.name);
    assert.equal(gitsCache.length, 1);
    const searched = [...Deno.readDirSync(join(outDir, "gits", gitsCache[0]))].map((e) => e.name);
    assert.deepEqual(searched.sort(), [
      "cost.json",
      "grid-N10-coeff1.15.json",
      "grid-N4-coeff1.15.json",
    ]);
    const json = JSON.parse(await Deno.readTextFile(join(outDir, "schedules.json")));
    assert.equal(json.cells.length, 2 * 2 * 5);
    const ld3 = json.cells.find((c: { schedule: string; solver: string; nfe: number }) =>
      c.schedule === "ld3" && c.solver === "uni_pc" && c.nfe === 4
    );
    assert.equal(ld3.status, "ok");
    assert.equal(ld3.ld3_train_seconds, 12.5);
    assert.ok(ld3.metrics.teacher.l2.mean > 0);
    for (const name of ["schedules.png", "schedules_lambda.png"]) {
      const image = await Image.decode(await Deno.readFile(join(outDir, name)));
      // Two 600 px panels at 2 pixels per chart pixel.
      assert.equal(image.width, 2 * 2 * 600);
    }
    // The same command again reuses every finished cell from <out_dir>/cells.
    const again = await runTask("bench_schedules", args);
    assert.equal(again.code, 0, again.stderr);
    assert.match(
      again.stdout,
      /^bench:schedules on tiny-gmm: 0 cells × 4 samples, .*; 13 finished cells reused/,
    );
    const rerun = JSON.parse(await Deno.readTextFile(join(outDir, "schedules.json")));
    assert.deepEqual(rerun.cells, json.cells);
  } finally {
    await gmm.cleanup();
  }
});

Deno.test("bench:schedules --train_ld3 trains the LD3 column first, then benchmarks it", async () => {
  const gmm = await makeTinyGmm();
  try {
    const outDir = join(gmm.dir, "bench");
    const ld3Dir = join(gmm.dir, "grids");
    const base = ["--config", gmm.config, "--solvers", "uni_pc", "--nfes", "3"];
    const rest = ["--num_samples", "4", "--ld3_dir", ld3Dir, "--out_dir", outDir];
    const r = await runTask("bench_schedules", [
      ...base,
      "--schedules",
      "edm,ld3",
      "--train_ld3",
      "--ld3_samples",
      "4",
      ...rest,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ld3 grid uni_pc NFE 3: trained in \d+:\d\d \(.*uni_pc-NFE3\.json\)$/m);
    const json = JSON.parse(await Deno.readTextFile(join(outDir, "schedules.json")));
    const ld3 = json.cells.find((c: { schedule: string }) => c.schedule === "ld3");
    assert.equal(ld3.status, "ok");
    assert.ok(ld3.ld3_train_seconds > 0);
    assert.match(
      await Deno.readTextFile(join(outDir, "schedules.md")),
      /## LD3 training wall-clock/,
    );

    const bad = await runTask("bench_schedules", [
      ...base,
      "--schedules",
      "edm",
      "--train_ld3",
      ...rest,
    ]);
    assert.equal(bad.code, 1);
    assert.match(
      bad.stderr,
      /^error: --train_ld3 trains the ld3 column: --schedules leaves it out/,
    );
  } finally {
    await gmm.cleanup();
  }
});
