/**
 * `deno task bench:schedules`: every schedule against every solver and NFE on one model.
 *
 * Solvers {ipndm, uni_pc, dpm_solver++} × NFE {4, 6, 8, 10} × schedules {time_uniform,
 * time_quadratic, logSNR, edm, gits, ld3}, each scored by the distance to a teacher dataset
 * (uni_pc, 20 steps, EDM grid — the LD3 default teacher), by FID when a feature model and
 * reference statistics are available, and by the exact-solution error on a Gaussian-mixture
 * model (FID defaults to the config's `eval` section: the bundled classifier and MNIST test
 * statistics for `configs/mnist-edm.yml`). Writes `<out_dir>/schedules.md` (tables), `<out_dir>/schedules.json` (every cell),
 * `<out_dir>/schedules.png` (metric vs NFE, one panel per solver) and
 * `<out_dir>/schedules_lambda.png` (λ of each grid point vs step index).
 *
 * ```sh
 * deno task bench:schedules [--config configs/gmm-mnist.yml] [--num_samples 200] \
 *   [--solvers ipndm,uni_pc,dpm_solver++] [--nfes 4,6,8,10] [--ld3_dir ld3_grids] \
 *   [--features models/mnist-features/model.onnx --fid_ref ref.npz] [--out_dir bench]
 * ```
 *
 * LD3 cells read `<ld3_dir>/<solver>-NFE<nfe>.json` (a grid file, `lib/grid_file.ts`); its
 * `solverOptions.order` is used, and `meta.train_seconds` (when present) fills the LD3
 * training-time table. A missing file shows "—". GITS cells exist where `GITS_SIGMAS` has a
 * table. The teacher uses seed 1000 by default so that its noise is disjoint from the seed-0
 * data LD3 grids are usually trained on.
 *
 * @module
 */
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { writeFileAtomic, writeJsonAtomic, writeTextFileAtomic } from "../lib/atomic.ts";
import {
  type EvalMetrics,
  evaluateSchedule,
  type FeatureModelSpec,
  featureSpecFromConfig,
  gmmFromOnnx,
  type ReferenceSolver,
} from "../lib/evaluate.ts";
import { type FeatureModel, loadFeatureModel } from "../lib/features.ts";
import { type FeatureStats, readFidRefs } from "../lib/fid.ts";
import { gmmReferenceSolve } from "../lib/gmm.ts";
import { GITS_SIGMAS, gridLambdas, SKIP_TYPES } from "../lib/grid.ts";
import { type GridFile, loadGridFile } from "../lib/grid_file.ts";
import { type LoadedModel, loadModel } from "../lib/model.ts";
import { combineScenes, lambdaPlot, linePlot, plotToPng, sceneToSvg } from "../lib/plot.ts";
import { formatDuration, ProgressBar } from "../lib/progress.ts";
import { generateDataset, initialNoise, prepareSampler } from "../lib/sampling.ts";
import { isSolverName, type SolverName, solverSteps } from "../lib/solvers/mod.ts";
import { intOption, optionHelp, RUN_OPTIONS, runTask } from "./_data_cli.ts";

const ROOT = resolve(new URL("..", import.meta.url).pathname);
const REAL_CONFIG = join(ROOT, "configs/mnist-edm.yml");
const GMM_CONFIG = join(ROOT, "configs/gmm-mnist.yml");

/** The schedule columns, in table order. */
const SCHEDULES = [...SKIP_TYPES, "gits", "ld3"] as const;
type ScheduleName = typeof SCHEDULES[number];

const TEACHER = { solverName: "uni_pc", steps: 20, skipType: "edm" } as const;

const USAGE = `Usage: deno task bench:schedules [options]
  --config FILE       model config (default configs/mnist-edm.yml when present, else configs/gmm-mnist.yml)
  --solvers LIST      comma-separated (default ipndm,uni_pc,dpm_solver++)
  --nfes LIST         comma-separated NFEs (default 4,6,8,10)
  --schedules LIST    subset of ${SCHEDULES.join(",")} (default all)
  --num_samples N     samples per cell (default 200)
  --batch_size N      samples per solver batch (default: the config's batch_size)
  --seed N            teacher noise seed (default 1000)
  --data_dir DIR      an existing teacher dataset folder (default: generated in <out_dir>/teacher)
  --ld3_dir DIR       learned grids <solver>-NFE<nfe>.json (default ld3_grids)
  --features FILE     feature ONNX for FID (default: the config's eval.features)
  --fid_ref FILE      reference statistics .npz for FID (default: the config's eval.fid_ref)
  --exact             exact-solution error: auto (GMM graphs), on, off (default auto)
  --out_dir DIR       output folder (default bench)
${optionHelp("device", 20)}`;

/** One cell of the matrix. */
interface Cell {
  solver: string;
  nfe: number;
  schedule: ScheduleName;
  /** `ok`, `n/a` (no GITS table / no LD3 file) or `error`. */
  status: "ok" | "n/a" | "error";
  metrics?: EvalMetrics;
  error?: string;
  seconds?: number;
  lambda1?: number[];
  load_from?: string;
  ld3_train_seconds?: number;
  /** The NFE the cell's grid really spends, when it differs from the column's (GITS tables). */
  actual_nfe?: number;
}

function listOption(name: string, value: string | undefined, fallback: string[]): string[] {
  if (value === undefined) return fallback;
  const items = value.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (items.length === 0) throw new TypeError(`--${name} must be a non-empty list: got "${value}"`);
  return items;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Seconds per sample of one network evaluation, measured on one batch after a warm-up. */
async function timeEval(model: LoadedModel, batch: number): Promise<number> {
  const indices = Array.from({ length: batch }, (_, i) => i);
  const { xT } = initialNoise(0, indices, {
    shape: model.sampleShape,
    priorScale: model.denoiser.schedule.priorScale,
  });
  const t = model.denoiser.schedule.tMax / 2;
  await model.denoiser.denoise(xT, t);
  const start = performance.now();
  await model.denoiser.denoise(xT, t);
  return (performance.now() - start) / 1000 / batch;
}

const fmt = {
  fid: (v: number) => v.toFixed(2),
  small: (v: number) => v === 0 ? "0" : v.toPrecision(3),
};

/** One Markdown table: rows solver × NFE, columns schedules, best value in bold. */
function table(
  cells: Cell[],
  solvers: string[],
  nfes: number[],
  schedules: ScheduleName[],
  value: (c: Cell) => number | undefined,
  format: (v: number) => string,
  bestIsMin = true,
): string {
  const lines = [
    `| solver | NFE | ${schedules.join(" | ")} |`,
    `| --- | ---: | ${schedules.map(() => "---:").join(" | ")} |`,
  ];
  for (const solver of solvers) {
    for (const nfe of nfes) {
      const row = schedules.map((s) =>
        cells.find((c) => c.solver === solver && c.nfe === nfe && c.schedule === s)
      );
      const values = row.map((c) => c?.status === "ok" ? value(c) : undefined);
      const finite = values.filter((v): v is number => v !== undefined && Number.isFinite(v));
      const best = finite.length > 1
        ? (bestIsMin ? Math.min(...finite) : Math.max(...finite))
        : undefined;
      const texts = row.map((c, k) => {
        if (c?.status === "error") return "error";
        const v = values[k];
        if (v === undefined) return "—";
        const text = v === best ? `**${format(v)}**` : format(v);
        return c?.actual_nfe !== undefined ? `${text} (NFE ${c.actual_nfe})` : text;
      });
      lines.push(`| ${solver} | ${nfe} | ${texts.join(" | ")} |`);
    }
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    strict: true,
    allowPositionals: false,
    options: {
      config: { type: "string" },
      solvers: { type: "string" },
      nfes: { type: "string" },
      schedules: { type: "string" },
      num_samples: { type: "string" },
      batch_size: { type: "string" },
      data_dir: { type: "string" },
      ld3_dir: { type: "string" },
      features: { type: "string" },
      fid_ref: { type: "string" },
      exact: { type: "string" },
      out_dir: { type: "string" },
      ...RUN_OPTIONS,
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const configPath = values.config ?? (await exists(REAL_CONFIG) ? REAL_CONFIG : GMM_CONFIG);
  const solvers = listOption("solvers", values.solvers, ["ipndm", "uni_pc", "dpm_solver++"]);
  for (const s of solvers) {
    if (!isSolverName(s)) throw new RangeError(`Unknown solver in --solvers: "${s}"`);
  }
  const nfes = listOption("nfes", values.nfes, ["4", "6", "8", "10"]).map((v) => {
    const n = intOption("nfes", v)!;
    if (n < 1) throw new RangeError(`--nfes must hold positive integers: got ${n}`);
    return n;
  });
  const schedules = listOption("schedules", values.schedules, [...SCHEDULES]) as ScheduleName[];
  for (const s of schedules) {
    if (!(SCHEDULES as readonly string[]).includes(s)) {
      throw new RangeError(`Unknown schedule in --schedules: "${s}" (expected ${SCHEDULES})`);
    }
  }
  const numSamples = intOption("num_samples", values.num_samples) ?? 200;
  if (numSamples < 2) throw new RangeError(`--num_samples must be >= 2: got ${numSamples}`);
  const seed = intOption("seed", values.seed) ?? 1000;
  const outDir = values.out_dir ?? "bench";
  const ld3Dir = values.ld3_dir ?? "ld3_grids";
  const exactMode = values.exact ?? "auto";
  if (!["auto", "on", "off"].includes(exactMode)) {
    throw new RangeError(`--exact must be auto, on or off: got "${exactMode}"`);
  }

  const model = await loadModel(configPath, values.device ? { device: values.device } : {});
  let featureModel: FeatureModel | undefined;
  try {
    const batchSize = intOption("batch_size", values.batch_size) ?? model.config.batch_size;
    // FID: explicit files, else the config's eval section (the bundled classifier and the
    // MNIST test statistics for the bundled model). Loaded once for every cell.
    const spec: FeatureModelSpec | undefined = values.features !== undefined
      ? { path: values.features }
      : featureSpecFromConfig(model.config);
    const fidRefPath = values.fid_ref ?? model.config.eval?.fid_ref;
    if ((spec === undefined) !== (fidRefPath === undefined)) {
      throw new TypeError(
        `FID needs both --features and --fid_ref (or the config's eval section): got ${
          spec === undefined ? "no features" : "no fid_ref"
        }`,
      );
    }
    let fidRef: FeatureStats | undefined;
    if (spec !== undefined && fidRefPath !== undefined) {
      fidRef = await readFidRefs(fidRefPath);
      featureModel = await loadFeatureModel(spec.path, {
        inputName: spec.input,
        outputName: spec.output,
        inputRange: spec.inputRange,
        sampleShape: model.imageShape,
      });
    }

    // Exact reference, cached per sample index: every cell starts from the same teacher z.
    let reference: ReferenceSolver | undefined;
    let referenceSecondsPerSample = 0;
    if (exactMode !== "off") {
      try {
        const gmm = gmmFromOnnx(await Deno.readFile(model.config.model.path));
        const schedule = model.denoiser.schedule;
        const cache = new Map<number, Float64Array>();
        const d = gmm.dim;
        reference = (xT, indices) => {
          const out = new Float64Array(xT.length);
          const todo = indices.map((i, b) => [i, b]).filter(([i]) => !cache.has(i));
          if (todo.length > 0) {
            const x = new Float64Array(todo.length * d);
            todo.forEach(([, b], k) => x.set(xT.subarray(b * d, (b + 1) * d), k * d));
            const solved = gmmReferenceSolve(gmm, x, schedule.tMax, schedule.tMin, {
              schedule,
              steps: 200,
            });
            todo.forEach(([i], k) => cache.set(i, solved.slice(k * d, (k + 1) * d)));
          }
          indices.forEach((i, b) => out.set(cache.get(i)!, b * d));
          return out;
        };
        const probe = initialNoise(0, [0], {
          shape: model.sampleShape,
          priorScale: schedule.priorScale,
        });
        const start = performance.now();
        gmmReferenceSolve(gmm, probe.xT, schedule.tMax, schedule.tMin, { schedule, steps: 200 });
        referenceSecondsPerSample = (performance.now() - start) / 1000;
      } catch (e) {
        if (exactMode === "on") throw e;
      }
    }

    // The cells and what they cost.
    const cells: Cell[] = [];
    const plan: { cell: Cell; loadFrom?: string; order?: number }[] = [];
    for (const solver of solvers as SolverName[]) {
      for (const nfe of nfes) {
        for (const schedule of schedules) {
          const cell: Cell = { solver, nfe, schedule, status: "ok" };
          cells.push(cell);
          if (schedule === "gits" && !GITS_SIGMAS[solver]?.[nfe]) {
            cell.status = "n/a";
            continue;
          }
          if (schedule === "ld3") {
            const path = join(ld3Dir, `${solver}-NFE${nfe}.json`);
            if (!await exists(path)) {
              cell.status = "n/a";
              continue;
            }
            const file: GridFile = await loadGridFile(path);
            const order = file.solverOptions?.order;
            const train = file.meta?.train_seconds;
            if (typeof train === "number") cell.ld3_train_seconds = train;
            cell.load_from = resolve(path);
            plan.push({
              cell,
              loadFrom: path,
              order: typeof order === "number" ? order : undefined,
            });
            continue;
          }
          try {
            solverSteps(solver, nfe);
          } catch (e) {
            cell.status = "error";
            cell.error = (e as Error).message;
            continue;
          }
          plan.push({ cell });
        }
      }
    }

    // Teacher dataset: given, or generated (resumable) under the output folder.
    const teacherNfe = TEACHER.steps;
    const teacherDir = values.data_dir ??
      join(outDir, "teacher", `${TEACHER.solverName}_NFE${teacherNfe}_${TEACHER.skipType}`);
    const needTeacher = !(await exists(join(teacherDir, "manifest.json")));
    if (values.data_dir !== undefined && needTeacher) {
      throw new RangeError(`Not an ld3 dataset (no manifest.json): ${values.data_dir}`);
    }

    const perEval = await timeEval(model, Math.min(batchSize, numSamples));
    const evals = plan.reduce((n, p) => n + p.cell.nfe, 0) * numSamples +
      (needTeacher ? teacherNfe * numSamples : 0);
    const estimate = evals * perEval + (reference ? referenceSecondsPerSample * numSamples : 0);
    console.log(
      `bench:schedules on ${model.config.name}: ${plan.length} cells × ${numSamples} samples, ` +
        `${evals} sample-evaluations at ${(perEval * 1000).toFixed(2)} ms` +
        (reference ? ` + exact solutions` : "") +
        ` — estimated ${formatDuration(estimate)}`,
    );

    if (needTeacher) {
      await generateDataset(model, {
        ...TEACHER,
        dataDir: join(outDir, "teacher"),
        totalSamples: numSamples,
        samplingBatchSize: batchSize,
        seed,
        progress: { label: "teacher", unit: "samples" },
      });
    }

    const started = performance.now();
    const bar = new ProgressBar(plan.length, { label: "cells", unit: "cells" });
    for (const { cell, loadFrom, order } of plan) {
      try {
        const result = await evaluateSchedule(model, {
          solverName: cell.solver,
          ...(loadFrom !== undefined
            ? { loadFrom, order }
            : cell.schedule === "gits"
            ? { skipType: "gits", steps: solverSteps(cell.solver as SolverName, cell.nfe) }
            : { skipType: cell.schedule, steps: solverSteps(cell.solver as SolverName, cell.nfe) }),
          numSamples,
          batchSize,
          teacherDir,
          ...(featureModel && fidRef ? { features: featureModel, fidRef } : { configEval: false }),
          ...(reference ? { reference } : {}),
        });
        cell.metrics = result.metrics;
        cell.seconds = result.seconds;
        cell.lambda1 = result.grid.lambda1;
        if (result.nfe !== cell.nfe) cell.actual_nfe = result.nfe;
      } catch (e) {
        cell.status = "error";
        cell.error = (e as Error).message;
      }
      bar.increment();
    }
    bar.finish();
    const totalSeconds = (performance.now() - started) / 1000;

    await Deno.mkdir(outDir, { recursive: true });
    const teacherInfo = `${TEACHER.solverName}, ${TEACHER.steps} steps, ${TEACHER.skipType} grid`;
    const cmd = ["deno task bench:schedules", ...Deno.args].join(" ");
    const hasFid = cells.some((c) => c.metrics?.fid !== undefined);
    const hasExact = cells.some((c) => c.metrics?.exact !== undefined);
    const hasTrain = cells.some((c) => c.ld3_train_seconds !== undefined);
    const md: string[] = [
      `# Schedule benchmark: ${model.config.name}`,
      "",
      `Command: \`${cmd}\``,
      "",
      `${numSamples} samples per cell (teacher seed ${seed}), teacher ${teacherInfo}` +
      ` (\`${teacherDir}\`); ${plan.length} cells in ${formatDuration(totalSeconds)}. ` +
      `"—": no GITS table / no LD3 grid file for that cell. Best value per row in bold; ` +
      `"(NFE n)" marks a grid that spends another NFE than its row (the GITS tables).`,
    ];
    if (hasFid) {
      md.push("", "## FID (lower is better)", "");
      md.push(table(cells, solvers, nfes, schedules, (c) => c.metrics?.fid, fmt.fid));
    }
    md.push(
      "",
      "## Distance to the teacher: L2 (mean squared difference per pixel, lower is better)",
      "",
    );
    md.push(
      table(cells, solvers, nfes, schedules, (c) => c.metrics?.teacher?.l2.mean, fmt.small),
    );
    if (hasExact) {
      md.push(
        "",
        "## Exact-solution error: RMS per sample (Gaussian mixture, lower is better)",
        "",
      );
      md.push(
        table(cells, solvers, nfes, schedules, (c) => c.metrics?.exact?.rms.mean, fmt.small),
      );
    }
    if (hasTrain) {
      md.push("", "## LD3 training wall-clock (seconds)", "");
      md.push(
        table(cells, solvers, nfes, ["ld3"], (c) => c.ld3_train_seconds, (v) => v.toFixed(0)),
      );
    }
    const errors = cells.filter((c) => c.status === "error");
    if (errors.length > 0) {
      md.push("", "## Errors", "");
      for (const c of errors) md.push(`- ${c.solver} NFE ${c.nfe} ${c.schedule}: ${c.error}`);
    }
    await writeTextFileAtomic(join(outDir, "schedules.md"), md.join("\n") + "\n");
    await writeJsonAtomic(join(outDir, "schedules.json"), {
      format: "ld3-bench-schedules",
      version: 1,
      config: { name: model.config.name, source: model.config.source },
      model: { name: model.config.name, sha256: model.modelHash },
      num_samples: numSamples,
      seed,
      teacher: { ...TEACHER, dir: resolve(teacherDir) },
      solvers,
      nfes,
      schedules,
      cells,
      seconds: totalSeconds,
      created: new Date().toISOString(),
    });

    // Metric vs NFE, one panel per solver.
    const metricName = hasFid ? "FID" : "L2 to teacher";
    const metric = (c: Cell) =>
      (hasFid ? c.metrics?.fid : c.metrics?.teacher?.l2.mean) ?? Number.NaN;
    const panels = solvers.map((solver) =>
      linePlot(
        schedules.map((schedule) => ({
          name: schedule,
          x: nfes,
          y: nfes.map((nfe) => {
            const c = cells.find((c) =>
              c.solver === solver && c.nfe === nfe && c.schedule === schedule
            );
            return c?.status === "ok" ? metric(c) : Number.NaN;
          }),
        })),
        {
          title: `${solver}: ${metricName} vs NFE`,
          xLabel: "NFE",
          yLabel: metricName,
          logY: true,
          xTicksAtData: true,
        },
      )
    );
    const metricScene = combineScenes(panels);
    await writeFileAtomic(join(outDir, "schedules.png"), plotToPng(metricScene));
    await writeTextFileAtomic(join(outDir, "schedules.svg"), sceneToSvg(metricScene));

    // λ grids at the largest NFE, one panel per solver.
    const plotNfe = Math.max(...nfes);
    const lambdaPanels = [];
    for (const solver of solvers) {
      const grids = [];
      for (const schedule of schedules) {
        const c = cells.find((c) =>
          c.solver === solver && c.nfe === plotNfe && c.schedule === schedule
        );
        if (c?.lambda1) grids.push({ name: schedule, lambdas: c.lambda1 });
        else if (c?.status !== "n/a" && schedule !== "gits" && schedule !== "ld3") {
          // Cells that failed still have a well-defined hand-made grid to show.
          const s = await prepareSampler(model, {
            solverName: solver,
            skipType: schedule,
            steps: solverSteps(solver as SolverName, plotNfe),
          });
          grids.push({ name: schedule, lambdas: gridLambdas(model.denoiser.schedule, s.grid.t1) });
        }
      }
      lambdaPanels.push(lambdaPlot(grids, { title: `${solver}: λ grids at NFE ${plotNfe}` }));
    }
    const lambdaScene = combineScenes(lambdaPanels);
    await writeFileAtomic(join(outDir, "schedules_lambda.png"), plotToPng(lambdaScene));
    await writeTextFileAtomic(join(outDir, "schedules_lambda.svg"), sceneToSvg(lambdaScene));
    console.log(md.join("\n"));
    console.log(
      `\nwrote ${join(outDir, "schedules.md")}, schedules.json, schedules.png, ` +
        `schedules_lambda.png (${formatDuration(totalSeconds)})`,
    );
  } finally {
    await featureModel?.close();
    await model.close();
  }
}

if (import.meta.main) await runTask(main);
