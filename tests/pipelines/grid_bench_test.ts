import assert from "node:assert/strict";
import { join, resolve } from "node:path";
import { Image } from "imagescript";
import { samplePath } from "../../lib/io/dataset.ts";
import { writeFidRefs } from "../../lib/metrics/fid.ts";
import { createGmm, gmmReferenceSolve } from "../../lib/gmm.ts";
import { edmGrid, toGrid } from "../../lib/step_grid.ts";
import { makeGridFile, saveGridFile } from "../../lib/io/grid_file.ts";
import { loadModel } from "../../lib/onnx/model.ts";
import { type Chart, chartSize } from "../../lib/io/plot.ts";
import { findChromium, openPage, PAGE_FACTS, type PageFacts } from "../_chromium.ts";
import { normalNoise } from "../../lib/rng.ts";
import { discreteBetas, veSchedule, vpDiscreteSchedule } from "../../lib/noise_schedule.ts";
import {
  cachedGmmReference,
  cacheReference,
  planScheduleBench,
  runScheduleBench,
  type ScheduleBenchCell,
  type ScheduleBenchDocument,
  type ScheduleBenchEstimate,
} from "../../lib/pipelines/grid_bench.ts";
import {
  scheduleBenchLambdaScene,
  scheduleBenchMarkdown,
  scheduleBenchTable,
  writeScheduleBench,
} from "../../lib/pipelines/grid_bench_report.ts";
import { makeTinyGmm } from "../_tiny_gmm.ts";
import { linearFeatureModel } from "../fixtures/tiny_models.ts";
import { pathExists } from "../../lib/io/fs.ts";

/** A stand-in learned grid (EDM ρ = 3) in the LD3 naming convention `<solver>-NFE<nfe>.json`. */
async function writeLd3Grid(dir: string, solver: string, nfe: number, order?: number) {
  const schedule = veSchedule();
  await saveGridFile(
    join(dir, `${solver}-NFE${nfe}.json`),
    makeGridFile(schedule, toGrid(edmGrid(schedule, nfe, { rho: 3 })), {
      solver,
      ...(order !== undefined ? { solverOptions: { order } } : {}),
      source: "ld3",
      meta: { train_seconds: 12.5 },
    }),
  );
}

/** A feature model over the tiny GMM's 1×4×4 images: flatten and project to 2 features. */
const featureOnnx = () => linearFeatureModel([1, 4, 4], 2, (i) => Math.cos(0.9 * i));

function cell(
  solver: string,
  nfe: number,
  schedule: ScheduleBenchCell["schedule"],
  l2?: number,
  extra: Partial<ScheduleBenchCell> = {},
): ScheduleBenchCell {
  return {
    solver,
    nfe,
    schedule,
    status: "ok",
    ...(l2 !== undefined
      ? {
        metrics: {
          teacher: {
            l2: { mean: l2, std: 0 },
            l1: { mean: l2, std: 0 },
            dir: "t",
            solver: "uni_pc",
            nfe: 20,
          },
        },
      }
      : {}),
    ...extra,
  };
}

const CHROMIUM = findChromium();
if (!CHROMIUM) console.log("schedules.html browser check skipped: no chromium installed");

/** schedules.html in headless Chromium: no console errors, both charts drawn, the tables. */
async function assertBenchPageRenders(path: string): Promise<void> {
  const html = await Deno.readTextFile(path);
  assert.ok(html.startsWith("<!doctype html>") && !/<script|src="(?!data:)/.test(html));
  if (!CHROMIUM) return;
  const page = await openPage<PageFacts>(CHROMIUM, path, PAGE_FACTS);
  assert.deepEqual(page.consoleErrors, []);
  assert.deepEqual(page.exceptions, []);
  assert.equal(page.value.charts, 2);
  assert.equal(page.value.drawnCharts, 2);
  assert.ok(page.value.chartTexts.every((n) => n > 20), `${page.value.chartTexts}`);
  assert.ok(page.value.tables >= 4, `${page.value.tables} tables`);
  assert.ok(page.value.headings.includes("Charts"));
  assert.ok(page.value.headings.includes("FID (lower is better)"));
}

/** Panel titles and legend names of a chart. */
function texts(chart: Chart): string[] {
  const panels = chart.kind === "figure" ? chart.panels : [chart];
  return panels.flatMap((p) => [p.title, ...p.series.map((s) => s.name)]);
}

Deno.test("planScheduleBench() marks GITS tables, AYS and LD3 n/a and refuses NFEs a solver cannot spend", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ld3-bench-plan-" });
  try {
    await writeLd3Grid(dir, "uni_pc", 4, 2);
    await writeLd3Grid(dir, "ipndm", 10);
    const plan = await planScheduleBench({
      solvers: ["uni_pc", "ipndm", "heun"],
      nfes: [4, 10],
      schedules: ["edm", "gits_table", "ld3"],
      ld3Dir: dir,
    });
    assert.equal(plan.cells.length, 3 * 2 * 3);
    const status = (solver: string, nfe: number, schedule: string) =>
      plan.cells.find((c) => c.solver === solver && c.nfe === nfe && c.schedule === schedule)!
        .status;
    // GITS tables exist for ipndm and dpm_solver++ at NFE 10 only.
    assert.equal(status("ipndm", 10, "gits_table"), "ok");
    assert.equal(status("ipndm", 4, "gits_table"), "n/a");
    assert.equal(status("uni_pc", 10, "gits_table"), "n/a");
    // LD3 cells exist where a grid file does.
    assert.equal(status("uni_pc", 4, "ld3"), "ok");
    assert.equal(status("uni_pc", 10, "ld3"), "n/a");
    assert.equal(status("ipndm", 10, "ld3"), "ok");
    assert.equal(status("ipndm", 4, "ld3"), "n/a");
    // Heun spends 2·steps − 1 evaluations: no even NFE.
    const heun = plan.cells.find((c) =>
      c.solver === "heun" && c.nfe === 4 && c.schedule === "edm"
    )!;
    assert.equal(heun.status, "error");
    assert.match(heun.error!, /odd NFE/);

    const ld3 = plan.planned.find((p) => p.cell.solver === "uni_pc" && p.cell.schedule === "ld3")!;
    assert.equal(ld3.loadFrom, join(dir, "uni_pc-NFE4.json"));
    assert.equal(ld3.order, 2);
    assert.equal(ld3.cell.load_from, resolve(dir, "uni_pc-NFE4.json"));
    assert.equal(ld3.cell.ld3_train_seconds, 12.5);
    const ipndmLd3 = plan.planned.find((p) =>
      p.cell.solver === "ipndm" && p.cell.schedule === "ld3"
    )!;
    assert.equal(ipndmLd3.order, undefined);
    // Planned: every cell that is neither n/a nor refused, sharing the cells' objects.
    assert.deepEqual(
      plan.planned.map((p) => p.cell),
      plan.cells.filter((c) => c.status === "ok"),
    );
    assert.equal(plan.planned.length, 2 + 1 + 2 + 1 + 1);

    // The searched baselines exist at every NFE; AYS only for a schedule that has a table.
    const columns = await planScheduleBench(
      { solvers: ["uni_pc"], nfes: [4], schedules: ["gits", "dmn", "ays"], ld3Dir: dir },
      veSchedule(),
    );
    assert.deepEqual(columns.cells.map((c) => [c.schedule, c.status, c.note]), [
      ["gits", "ok", undefined],
      ["dmn", "ok", undefined],
      ["ays", "n/a", "no AYS table for the ve schedule"],
    ]);
    const sd = vpDiscreteSchedule({ betas: discreteBetas("scaled_linear") });
    const withAys = await planScheduleBench(
      { solvers: ["uni_pc"], nfes: [4], schedules: ["ays"] },
      sd,
    );
    assert.equal(withAys.cells[0].status, "ok");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("planScheduleBench() rejects unknown solvers and schedules, bad NFEs and empty lists", async () => {
  await assert.rejects(() => planScheduleBench({ solvers: ["rk45"] }), RangeError);
  await assert.rejects(
    () => planScheduleBench({ schedules: ["karras"] }),
    /schedules must be one of .*: got "karras"/,
  );
  await assert.rejects(() => planScheduleBench({ nfes: [4, 0] }), /nfes .*: got 0/);
  await assert.rejects(() => planScheduleBench({ nfes: [2.5] }), /got 2.5/);
  await assert.rejects(() => planScheduleBench({ solvers: [] }), /solvers must not be empty/);
});

Deno.test("cachedGmmReference() equals gmmReferenceSolve and cacheReference() solves each index once", async () => {
  const gmm = createGmm([[0.5, -0.2, 0.1], [-0.4, 0.3, 0.6]], [0.02, 0.05]);
  const schedule = veSchedule();
  const xT = normalNoise(3, 0, 4 * 3).map((z) => z * schedule.priorScale);
  const direct = gmmReferenceSolve(gmm, xT, schedule.tMax, schedule.tMin, {
    schedule,
    steps: 50,
  });
  const cached = cachedGmmReference(gmm, schedule, { steps: 50 });
  assert.deepEqual(await cached(xT, [0, 1, 2, 3]), direct);

  const solvedIndices: number[][] = [];
  const reference = cacheReference((x, indices) => {
    solvedIndices.push([...indices]);
    return gmmReferenceSolve(gmm, x, schedule.tMax, schedule.tMin, { schedule, steps: 50 });
  });
  const first = await reference(xT.subarray(0, 6), [0, 1]);
  assert.deepEqual(first, direct.subarray(0, 6));
  // Indices 1 and 3 in another order and batch: only 3 is new.
  const second = await reference(
    Float64Array.of(...xT.subarray(9, 12), ...xT.subarray(3, 6)),
    [3, 1],
  );
  assert.deepEqual(second, Float64Array.of(...direct.subarray(9, 12), ...direct.subarray(3, 6)));
  // A cached index keeps its first solution, whatever noise comes with it later.
  assert.deepEqual(await reference(new Float64Array(3), [0]), direct.subarray(0, 3));
  assert.deepEqual(solvedIndices, [[0, 1], [3]]);
  await assert.rejects(async () => await reference(new Float64Array(5), [0, 1]), RangeError);
});

Deno.test("scheduleBenchTable() bolds the best value per row and marks missing and failed cells", () => {
  const cells = [
    cell("ipndm", 4, "logSNR", 0.5),
    cell("ipndm", 4, "edm", 0.25),
    cell("ipndm", 4, "gits", undefined, { status: "n/a" }),
    cell("ipndm", 10, "logSNR", 0.125),
    cell("ipndm", 10, "edm", Number.NaN),
    cell("ipndm", 10, "gits", 0.0625, { actual_nfe: 11 }),
    cell("uni_pc", 4, "logSNR", 0.75),
    cell("uni_pc", 4, "edm", undefined, { status: "error", error: "boom" }),
  ];
  const l2 = (c: ScheduleBenchCell) => c.metrics?.teacher?.l2.mean;
  const md = scheduleBenchTable(cells, l2, { schedules: ["logSNR", "edm", "gits"] }).split("\n");
  assert.deepEqual(md, [
    "| solver | NFE | logSNR | edm | gits |",
    "| --- | ---: | ---: | ---: | ---: |",
    "| ipndm | 4 | 0.500 | **0.250** | — |",
    "| ipndm | 10 | 0.125 | NaN | **0.0625** (NFE 11) |",
    // One finite value is no contest: nothing bold.
    "| uni_pc | 4 | 0.750 | error | — |",
    "| uni_pc | 10 | — | — | — |",
  ]);
  const max = scheduleBenchTable(cells, l2, {
    solvers: ["ipndm"],
    nfes: [4],
    best: "max",
    format: (v) => v.toFixed(1),
  });
  assert.equal(max.split("\n")[2], "| ipndm | 4 | **0.5** | 0.3 | — |");
});

Deno.test("scheduleBenchMarkdown() shows only the tables of the metrics present", () => {
  const doc: ScheduleBenchDocument = {
    format: "ld3-bench-schedules",
    version: 1,
    config: { name: "toy", source: "toy.yml" },
    model: { name: "toy", sha256: "0".repeat(64) },
    num_samples: 8,
    seed: 1000,
    teacher: { solverName: "uni_pc", steps: 20, skipType: "edm", dir: "/abs/teacher" },
    solvers: ["ipndm"],
    nfes: [4],
    schedules: ["edm", "ld3"],
    cells: [
      cell("ipndm", 4, "edm", 0.5),
      cell("ipndm", 4, "ld3", 0.25, { ld3_train_seconds: 42 }),
    ],
    seconds: 65,
    created: "2026-01-01T00:00:00.000Z",
  };
  const md = scheduleBenchMarkdown(doc, { command: "deno task bench:schedules --nfes 4" });
  assert.match(md, /^# Schedule benchmark: toy\n\nCommand: `deno task bench:schedules --nfes 4`/);
  assert.match(md, /8 samples per cell \(teacher seed 1000\), teacher uni_pc, 20 steps, edm grid/);
  assert.match(md, /\(`\/abs\/teacher`\); 2 cells in 1:05\./);
  assert.match(md, /\| ipndm \| 4 \| 0\.500 \| \*\*0\.250\*\* \|/);
  assert.match(md, /## LD3 training wall-clock \(seconds\)\n\n\| solver \| NFE \| ld3 \|/);
  assert.match(md, /\| ipndm \| 4 \| 42 \|/);
  assert.doesNotMatch(md, /## FID|## Exact|## Errors|Command: .*\n.*Command/);
  const failed = scheduleBenchMarkdown({
    ...doc,
    cells: [cell("ipndm", 4, "edm", undefined, { status: "error", error: "boom" })],
    teacherDir: "bench/teacher",
  });
  assert.doesNotMatch(failed, /Command:|## LD3/);
  assert.match(failed, /\(`bench\/teacher`\)/);
  assert.match(failed, /## Errors\n\n- ipndm NFE 4 edm: boom\n$/);
});

Deno.test("scheduleBenchLambdaScene() draws a failed hand-made cell's grid only given the schedule", () => {
  const doc = {
    format: "ld3-bench-schedules",
    version: 1,
    config: { name: "toy", source: "toy.yml" },
    model: { name: "toy", sha256: "" },
    num_samples: 2,
    seed: 0,
    teacher: { solverName: "uni_pc", steps: 20, skipType: "edm", dir: "" },
    solvers: ["ipndm", "heun"],
    nfes: [4],
    schedules: ["logSNR", "edm"],
    cells: [
      cell("ipndm", 4, "logSNR", 0.5, { lambda1: [-4.4, -1, 2, 4, 6.2] }),
      cell("ipndm", 4, "edm", undefined, { status: "error", error: "boom" }),
      cell("heun", 4, "logSNR", undefined, { status: "error", error: "odd NFE" }),
      cell("heun", 4, "edm", undefined, { status: "error", error: "odd NFE" }),
    ],
    seconds: 1,
    created: "",
  } satisfies ScheduleBenchDocument;
  const without = texts(scheduleBenchLambdaScene(doc));
  assert.deepEqual(without.filter((t) => t === "logSNR" || t === "edm"), ["logSNR"]);
  const scene = scheduleBenchLambdaScene(doc, { schedule: veSchedule() });
  // The ipndm panel gains EDM; Heun cannot spend NFE 4, so its panel stays empty.
  assert.deepEqual(texts(scene).filter((t) => t === "logSNR" || t === "edm"), ["logSNR", "edm"]);
  assert.ok(texts(scene).includes("heun: λ grids at NFE 4"));
  assert.equal(chartSize(scene).width, 2 * 600);
});

Deno.test("runScheduleBench() on a tiny GMM: finite metrics, LD3 from a grid file, files written", async () => {
  const gmm = await makeTinyGmm();
  const model = await loadModel(gmm.config);
  try {
    const ld3Dir = join(gmm.dir, "ld3");
    await Deno.mkdir(ld3Dir);
    await writeLd3Grid(ld3Dir, "uni_pc", 4, 2);
    const features = join(gmm.dir, "f.onnx");
    await Deno.writeFile(features, featureOnnx());
    const fidRef = join(gmm.dir, "ref.npz");
    await writeFidRefs(fidRef, {
      mu: new Float64Array([0.1, -0.2]),
      sigma: new Float64Array([1, 0.1, 0.1, 2]),
    });
    const estimates: ScheduleBenchEstimate[] = [];
    const seen: string[] = [];
    const options = {
      solvers: ["uni_pc", "ipndm"],
      nfes: [4],
      schedules: ["logSNR", "edm", "dmn", "ld3"],
      ld3Dir,
      numSamples: 4,
      batchSize: 4,
      teacherRoot: join(gmm.dir, "teacher"),
      features: { path: features },
      fidRef,
      progress: false as const,
      onEstimate: (e: ScheduleBenchEstimate) => estimates.push(e),
      onCell: (c: ScheduleBenchCell, done: number, total: number) =>
        seen.push(`${c.solver}/${c.schedule} ${done}/${total}`),
    };
    const result = await runScheduleBench(model, options);

    assert.equal(estimates.length, 1);
    const [estimate] = estimates;
    // 7 cells of NFE 4 plus the 20-step teacher, 4 samples each.
    assert.equal(estimate.cells, 7);
    assert.equal(estimate.evaluations, (7 * 4 + 20) * 4);
    assert.equal(estimate.teacher, true);
    assert.equal(estimate.exact, true);
    assert.ok(estimate.secondsPerEvaluation > 0 && estimate.seconds > 0);
    assert.deepEqual(seen, [
      "uni_pc/logSNR 1/7",
      "uni_pc/edm 2/7",
      "uni_pc/dmn 3/7",
      "uni_pc/ld3 4/7",
      "ipndm/logSNR 5/7",
      "ipndm/edm 6/7",
      "ipndm/dmn 7/7",
    ]);

    assert.equal(result.format, "ld3-bench-schedules");
    assert.equal(result.version, 1);
    assert.equal(result.model.sha256, model.modelHash);
    assert.equal(result.num_samples, 4);
    assert.equal(result.seed, 1000);
    assert.equal(result.evaluated, 7);
    assert.equal(result.teacherDir, join(gmm.dir, "teacher", "uni_pc_NFE20_edm"));
    assert.equal(result.teacher.dir, resolve(result.teacherDir));
    assert.equal(result.cells.length, 2 * 4);
    for (const c of result.cells) {
      const planned = !(c.solver === "ipndm" && c.schedule === "ld3");
      assert.equal(c.status, planned ? "ok" : "n/a", `${c.solver} ${c.schedule}`);
      if (!planned) continue;
      const m = c.metrics!;
      for (const v of [m.teacher!.l2.mean, m.teacher!.l1.mean, m.exact!.rms.mean, m.fid!]) {
        assert.ok(Number.isFinite(v) && v > 0, `${c.solver} ${c.schedule}: ${v}`);
      }
      assert.equal(c.lambda1!.length, 5);
    }
    const ld3 = result.cells.find((c) => c.schedule === "ld3" && c.solver === "uni_pc")!;
    assert.equal(ld3.ld3_train_seconds, 12.5);
    // The cell runs the file's grid (EDM ρ = 3), not a hand-made one.
    const edm = result.cells.find((c) => c.schedule === "edm" && c.solver === "uni_pc")!;
    const schedule = model.denoiser.schedule;
    const rho3 = edmGrid(schedule, 4, { rho: 3 });
    ld3.lambda1!.forEach((l, i) => assert.ok(Math.abs(l - schedule.lambda(rho3[i])) < 1e-6));
    assert.notDeepEqual(ld3.lambda1, edm.lambda1);

    const out = join(gmm.dir, "bench");
    const written = await writeScheduleBench(out, result, { command: "bench", schedule });
    assert.deepEqual(
      written.files.map((f) => f.slice(out.length + 1)),
      [
        "schedules.md",
        "schedules.json",
        "schedules.png",
        "schedules.svg",
        "schedules_lambda.png",
        "schedules_lambda.svg",
        "schedules.html",
      ],
    );
    await assertBenchPageRenders(join(out, "schedules.html"));
    assert.equal(await Deno.readTextFile(join(out, "schedules.md")), written.markdown);
    assert.match(written.markdown, /## FID \(lower is better\)/);
    assert.match(written.markdown, /## Exact-solution error/);
    const json = JSON.parse(await Deno.readTextFile(join(out, "schedules.json")));
    assert.deepEqual(Object.keys(json), [
      "format",
      "version",
      "config",
      "model",
      "num_samples",
      "seed",
      "teacher",
      "solvers",
      "nfes",
      "schedules",
      "cells",
      "seconds",
      "created",
    ]);
    assert.deepEqual(json.cells, JSON.parse(JSON.stringify(result.cells)));
    const png = await Image.decode(await Deno.readFile(join(out, "schedules_lambda.png")));
    // Two 600 px panels, drawn at 2 pixels per chart pixel.
    assert.equal(png.width, 2 * 2 * 600);

    // A second run reuses the teacher: no teacher evaluations in the estimate.
    estimates.length = 0;
    const again = await runScheduleBench(model, {
      ...options,
      solvers: ["ipndm"],
      schedules: ["edm"],
      exact: "off",
      onCell: undefined,
    });
    assert.equal(estimates[0].teacher, false);
    assert.equal(estimates[0].exact, false);
    assert.equal(estimates[0].evaluations, 4 * 4);
    const ipndmEdm = result.cells.find((c) => c.solver === "ipndm" && c.schedule === "edm")!;
    assert.deepEqual(again.cells[0].metrics!.teacher, ipndmEdm.metrics!.teacher);
    assert.equal(again.cells[0].metrics!.exact, undefined);

    // An interrupted teacher (manifest written, a sample missing) is completed, not trusted.
    await Deno.remove(samplePath(result.teacherDir, 2));
    estimates.length = 0;
    const healed = await runScheduleBench(model, {
      ...options,
      solvers: ["ipndm"],
      schedules: ["edm"],
      exact: "off",
      onCell: undefined,
    });
    assert.equal(estimates[0].teacher, true);
    assert.equal(estimates[0].evaluations, 4 * 4 + 1 * 20);
    // The regenerated sample ran in a batch of 1 instead of 4: float32 rounding only.
    const healedL2 = healed.cells[0].metrics!.teacher!.l2.mean;
    const firstL2 = ipndmEdm.metrics!.teacher!.l2.mean;
    assert.ok(Math.abs(healedL2 - firstL2) < 1e-6 * firstL2, `${healedL2} vs ${firstL2}`);
  } finally {
    await model.close();
    await gmm.cleanup();
  }
});

Deno.test("runScheduleBench() with resumeDir reuses finished cells and redoes changed ones", async () => {
  const gmm = await makeTinyGmm();
  const model = await loadModel(gmm.config);
  try {
    const resumeDir = join(gmm.dir, "cells");
    const estimates: ScheduleBenchEstimate[] = [];
    const options = {
      solvers: ["uni_pc"],
      nfes: [4],
      schedules: ["logSNR", "edm"],
      numSamples: 4,
      batchSize: 2,
      teacherRoot: join(gmm.dir, "teacher"),
      resumeDir,
      exact: "on" as const,
      progress: false as const,
      onEstimate: (e: ScheduleBenchEstimate) => estimates.push(e),
    };
    // A run killed after its first cell: that cell is saved, the second is not.
    await assert.rejects(
      () =>
        runScheduleBench(model, {
          ...options,
          onCell: () => {
            throw new Error("killed");
          },
        }),
      /killed/,
    );
    assert.ok(await pathExists(join(resumeDir, "uni_pc-NFE4-logSNR.json")));
    assert.equal(await pathExists(join(resumeDir, "uni_pc-NFE4-edm.json")), false);
    // A stale evaluation checkpoint of the unfinished cell is cleared, not trusted.
    const stale = join(resumeDir, "uni_pc-NFE4-edm.0123456789ab.partial.npz");
    await Deno.writeTextFile(stale, "stale");

    estimates.length = 0;
    const resumed = await runScheduleBench(model, options);
    assert.equal(estimates[0].reused, 1);
    assert.equal(estimates[0].cells, 1);
    assert.equal(estimates[0].evaluations, 4 * 4);
    assert.equal(await pathExists(stale), false);
    const [logSnr, edm] = resumed.cells;
    assert.ok(logSnr.metrics!.exact!.rms.mean > 0 && edm.metrics!.exact!.rms.mean > 0);

    // Everything finished: a rerun evaluates nothing and reports the same cells.
    estimates.length = 0;
    const again = await runScheduleBench(model, options);
    assert.equal(estimates[0].reused, 2);
    assert.equal(estimates[0].cells, 0);
    assert.deepEqual(again.cells, resumed.cells);

    // Other metrics are another evaluation: the saved cells are not reused.
    estimates.length = 0;
    const without = await runScheduleBench(model, { ...options, exact: "off" });
    assert.equal(estimates[0].reused, 0);
    assert.equal(estimates[0].cells, 2);
    assert.equal(without.cells[0].metrics!.exact, undefined);
    assert.deepEqual(without.cells[0].metrics!.teacher, logSnr.metrics!.teacher);
  } finally {
    await model.close();
    await gmm.cleanup();
  }
});

Deno.test("runScheduleBench() checks its options before any work", async () => {
  const gmm = await makeTinyGmm();
  const model = await loadModel(gmm.config);
  try {
    await assert.rejects(
      () => runScheduleBench(model, { numSamples: 1 }),
      /numSamples must be an integer >= 2: got 1/,
    );
    await assert.rejects(
      () => runScheduleBench(model, { features: { path: "f.onnx" } }),
      /FID needs both features and fidRef: got no fidRef/,
    );
    await assert.rejects(
      () => runScheduleBench(model, { dataDir: gmm.dir }),
      /Not an ld3 dataset \(no manifest.json\)/,
    );
    await assert.rejects(
      () => runScheduleBench(model, { exact: "maybe" as "on" }),
      /exact must be one of auto, on, off: got "maybe"/,
    );
  } finally {
    await model.close();
    await gmm.cleanup();
  }
});
