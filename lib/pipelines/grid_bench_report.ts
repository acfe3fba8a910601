/**
 * The schedule benchmark's report: Markdown tables (best value per row in bold), the metric-vs-NFE
 * and λ-grid plots, and the files `deno task bench:schedules` writes, all from a
 * {@linkcode runScheduleBench} result or a `schedules.json` document read back. Pure functions
 * except {@linkcode writeScheduleBench}.
 *
 * ```text
 * <out_dir>/schedules.md                    tables, best value per row in bold
 * <out_dir>/schedules.json                  every cell (format "ld3-bench-schedules", version 1)
 * <out_dir>/schedules.png, .svg             metric vs NFE, one panel per solver
 * <out_dir>/schedules_lambda.png, .svg      λ of each grid point vs step index, at the largest NFE
 * <out_dir>/schedules.html                  all of it in one self-contained page
 * ```
 *
 * @module
 */
import { join } from "node:path";
import { writeFileAtomic, writeJsonAtomic, writeTextFileAtomic } from "../io/atomic.ts";
import { gridLambdas, SKIP_TYPES, skipGrid, type SkipType } from "../step_grid.ts";
import {
  type Chart,
  chartSvg,
  combineCharts,
  type LambdaGrid,
  lambdaPlot,
  linePlot,
  MARKERS,
  PALETTE,
} from "../io/plot.ts";
import { svgToPng } from "../io/svg.ts";
import { formatDuration } from "../io/progress.ts";
import {
  type HtmlCell,
  htmlPage,
  type HtmlSection,
  htmlTable,
  optionsTable,
  svgFigure,
} from "../io/html.ts";
import type { NoiseSchedule } from "../noise_schedule.ts";
import type {
  ScheduleBenchCell,
  ScheduleBenchDocument,
  ScheduleBenchResult,
} from "./grid_bench.ts";
import { type SolverName, solverSteps } from "../solvers/mod.ts";

/** A schedule's colour and marker, the same in every panel and picture; LD3's line is bold. */
function scheduleStyle(result: ScheduleBenchDocument, schedule: string) {
  const k = Math.max(0, (result.schedules as readonly string[]).indexOf(schedule));
  return {
    color: PALETTE[k % PALETTE.length],
    marker: MARKERS[k % MARKERS.length],
    width: schedule === "ld3" ? 2.8 : 1.8,
    zorder: schedule === "ld3" ? 1 : 0,
  };
}

/** Size of one solver's panel in the pictures. */
const PANEL_SIZE = { width: 600, height: 380 };

/** Options of {@linkcode scheduleBenchTable}. */
export interface ScheduleBenchTableOptions {
  /** Row solvers, in order. @default {the cells' solvers, in order of appearance} */
  solvers?: readonly string[];
  /** Row NFEs, in order. @default {the cells' NFEs, in order of appearance} */
  nfes?: readonly number[];
  /** Columns, in order. @default {the cells' schedules, in order of appearance} */
  schedules?: readonly string[];
  /** How a value is shown. @default {3 significant digits} */
  format?: (value: number) => string;
  /** Which value of a row is bold. @default {"min"} */
  best?: "min" | "max";
}

function unique<T>(values: T[]): T[] {
  return [...new Set(values)];
}

const FORMAT = {
  fid: (v: number) => v.toFixed(2),
  small: (v: number) => v === 0 ? "0" : v.toPrecision(3),
  seconds: (v: number) => v.toFixed(0),
};

/**
 * One Markdown table: rows solver × NFE, columns schedules, the best value of each row in bold
 * (when the row has at least two finite values). `—` marks a cell without a value (`n/a`, not
 * run, or no such metric), `error` a failed cell, and `(NFE n)` a grid that spends another NFE
 * than its row.
 *
 * @param cells The cells (those of other rows or columns are ignored).
 * @param value The number shown for an `ok` cell.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 *
 * const cells = [
 *   { solver: "ipndm", nfe: 4, schedule: "edm", status: "ok", seconds: 2 },
 *   { solver: "ipndm", nfe: 4, schedule: "logSNR", status: "ok", seconds: 1 },
 * ] as const;
 * const md = scheduleBenchTable([...cells], (c) => c.seconds);
 * assert.equal(md.split("\n")[2], "| ipndm | 4 | 2.00 | **1.00** |");
 * ```
 */
export function scheduleBenchTable(
  cells: readonly ScheduleBenchCell[],
  value: (cell: ScheduleBenchCell) => number | undefined,
  options: ScheduleBenchTableOptions = {},
): string {
  const { headers, rows } = scheduleBenchTableData(cells, value, options);
  const lines = [
    `| ${headers.join(" | ")} |`,
    `| --- | ---: | ${headers.slice(2).map(() => "---:").join(" | ")} |`,
  ];
  for (const row of rows) {
    const texts = row.map((c) => (c.bold ? `**${c.text}**` : c.text) + (c.note ?? ""));
    lines.push(`| ${texts.join(" | ")} |`);
  }
  return lines.join("\n");
}

/** {@linkcode scheduleBenchTable} as an HTML table (the best value per row in bold). */
export function scheduleBenchHtmlTable(
  cells: readonly ScheduleBenchCell[],
  value: (cell: ScheduleBenchCell) => number | undefined,
  options: ScheduleBenchTableOptions = {},
): string {
  const { headers, rows } = scheduleBenchTableData(cells, value, options);
  return htmlTable(
    headers,
    rows.map((row) =>
      row.map((c): HtmlCell => c.bold ? { bold: c.text + (c.note ?? "") } : c.text + (c.note ?? ""))
    ),
  );
}

/** One cell of a schedule table: its text, whether it is the row's best, a note after it. */
interface TableCell {
  text: string;
  bold?: boolean;
  note?: string;
}

/** The header and cells of a schedule table: solver, NFE, then one text per schedule. */
function scheduleBenchTableData(
  cells: readonly ScheduleBenchCell[],
  value: (cell: ScheduleBenchCell) => number | undefined,
  options: ScheduleBenchTableOptions,
): { headers: string[]; rows: TableCell[][] } {
  const solvers = options.solvers ?? unique(cells.map((c) => c.solver));
  const nfes = options.nfes ?? unique(cells.map((c) => c.nfe));
  const schedules = options.schedules ?? unique(cells.map((c) => c.schedule));
  const format = options.format ?? FORMAT.small;
  const bestIsMin = (options.best ?? "min") === "min";
  const rows: TableCell[][] = [];
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
      const texts = row.map((c, k): TableCell => {
        if (c?.status === "error") return { text: "error" };
        const v = values[k];
        if (v === undefined) return { text: "—" };
        const note = c?.actual_nfe !== undefined ? ` (NFE ${c.actual_nfe})` : undefined;
        return { text: format(v), bold: v === best, note };
      });
      rows.push([{ text: solver }, { text: String(nfe) }, ...texts]);
    }
  }
  return { headers: ["solver", "NFE", ...schedules], rows };
}

/** Options of {@linkcode scheduleBenchMarkdown}. */
export interface ScheduleBenchReportOptions {
  /** The command line shown under the title. @default {none shown} */
  command?: string;
}

/**
 * What the report functions read: a {@linkcode runScheduleBench} result, or a `schedules.json`
 * document read back (then the cell count and the teacher folder come from the document).
 */
export type ScheduleBenchReportInput =
  & ScheduleBenchDocument
  & Partial<Pick<ScheduleBenchResult, "evaluated" | "teacherDir">>;

/**
 * `schedules.md`: FID (when any cell has it), distance to the teacher, exact-solution error
 * (when any cell has it) and LD3 training time (when any grid file records it), one table each
 * ({@linkcode scheduleBenchTable}), then the failed cells.
 *
 * @param result A {@linkcode runScheduleBench} result or a `schedules.json` document.
 */
export function scheduleBenchMarkdown(
  result: ScheduleBenchReportInput,
  options: ScheduleBenchReportOptions = {},
): string {
  const md: string[] = [`# Schedule benchmark: ${result.config.name}`, ""];
  if (options.command !== undefined) md.push(`Command: \`${options.command}\``, "");
  md.push(scheduleBenchIntro(result, "`"));
  for (const table of metricTables(result)) {
    md.push("", `## ${table.title}`, "");
    md.push(scheduleBenchTable(result.cells, table.value, table.options));
  }
  const errors = result.cells.filter((c) => c.status === "error");
  if (errors.length > 0) {
    md.push("", "## Errors", "");
    for (const c of errors) md.push(`- ${c.solver} NFE ${c.nfe} ${c.schedule}: ${c.error}`);
  }
  return md.join("\n") + "\n";
}

/** The paragraph under the title: samples, teacher, cells, time, how to read the tables. */
function scheduleBenchIntro(result: ScheduleBenchReportInput, quote: string): string {
  const { cells, teacher } = result;
  const teacherInfo = `${teacher.solverName}, ${teacher.steps} steps, ${teacher.skipType} grid`;
  const evaluated = result.evaluated ?? cells.filter((c) => c.status !== "n/a").length;
  return `${result.num_samples} samples per cell (teacher seed ${result.seed}), teacher ${teacherInfo}` +
    ` (${quote}${result.teacherDir ?? teacher.dir}${quote}); ${evaluated} cells in ${
      formatDuration(result.seconds)
    }. ` +
    `"—": no LD3 grid file, no AYS table for the model or no published GITS table for that ` +
    `cell. Best value per row in bold; ` +
    `"(NFE n)" marks a grid that spends another NFE than its row (the GITS tables).`;
}

/** The report's tables: FID, L2 to the teacher, exact error and LD3 training time, as present. */
function metricTables(result: ScheduleBenchDocument) {
  const { cells, solvers, nfes, schedules } = result;
  const rows = { solvers, nfes, schedules };
  const tables: {
    title: string;
    value: (c: ScheduleBenchCell) => number | undefined;
    options: ScheduleBenchTableOptions;
  }[] = [];
  if (cells.some((c) => c.metrics?.fid !== undefined)) {
    tables.push({
      title: "FID (lower is better)",
      value: (c) => c.metrics?.fid,
      options: { ...rows, format: FORMAT.fid },
    });
  }
  tables.push({
    title: "Distance to the teacher: L2 (mean squared difference per pixel, lower is better)",
    value: (c) => c.metrics?.teacher?.l2.mean,
    options: rows,
  });
  if (cells.some((c) => c.metrics?.exact !== undefined)) {
    tables.push({
      title: "Exact-solution error: RMS per sample (Gaussian mixture, lower is better)",
      value: (c) => c.metrics?.exact?.rms.mean,
      options: rows,
    });
  }
  if (cells.some((c) => c.ld3_train_seconds !== undefined)) {
    tables.push({
      title: "LD3 training wall-clock (seconds)",
      value: (c) => c.ld3_train_seconds,
      options: { ...rows, schedules: ["ld3"], format: FORMAT.seconds },
    });
  }
  return tables;
}

/**
 * `schedules.html`: the report in one self-contained page — both charts inline (metric vs NFE,
 * λ grids), the tables of {@linkcode scheduleBenchMarkdown}, the failed cells and the run's
 * settings.
 *
 * @param result A {@linkcode runScheduleBench} result or a `schedules.json` document.
 */
export async function scheduleBenchHtml(
  result: ScheduleBenchReportInput,
  options: WriteScheduleBenchOptions = {},
): Promise<string> {
  const metricSvg = await chartSvg(scheduleBenchMetricScene(result));
  const lambdaSvg = await chartSvg(scheduleBenchLambdaScene(result, options));
  const sections: HtmlSection[] = [{
    title: "Charts",
    body: svgFigure(
      metricSvg,
      "The metric against the NFE, one panel per solver and one line per schedule (log scale; " +
        "a missing cell leaves a gap).",
    ) +
      svgFigure(
        lambdaSvg,
        "Half-log-SNR λ of every grid point against the step index at the largest NFE: where " +
          "each schedule spends its steps.",
      ),
  }];
  for (const table of metricTables(result)) {
    sections.push({
      title: table.title,
      body: scheduleBenchHtmlTable(result.cells, table.value, table.options),
    });
  }
  const errors = result.cells.filter((c) => c.status === "error");
  if (errors.length > 0) {
    sections.push({
      title: "Errors",
      body: htmlTable(
        ["solver", "NFE", "schedule", "error"],
        errors.map((c) => [c.solver, c.nfe, c.schedule, c.error ?? ""]),
        { numericFrom: 4 },
      ),
    });
  }
  sections.push({ title: "Settings", body: optionsTable(benchSettings(result, options)) });
  return htmlPage(`Schedule benchmark: ${result.config.name}`, sections, {
    subtitle: scheduleBenchIntro(result, ""),
  });
}

/** What the settings table of the HTML report lists. */
function benchSettings(
  result: ScheduleBenchReportInput,
  options: ScheduleBenchReportOptions,
): Record<string, unknown> {
  return {
    ...(options.command !== undefined ? { command: options.command } : {}),
    config: result.config,
    model: result.model,
    teacher: result.teacher,
    num_samples: result.num_samples,
    seed: result.seed,
    solvers: result.solvers,
    nfes: result.nfes,
    schedules: result.schedules,
    seconds: result.seconds,
    created: result.created,
  };
}

/**
 * Metric vs NFE, one panel per solver and one line per schedule (log y): FID when any cell has
 * it, else the L2 distance to the teacher. Cells without a value leave gaps.
 *
 * @param result A {@linkcode runScheduleBench} result or a `schedules.json` document.
 */
export function scheduleBenchMetricScene(result: ScheduleBenchDocument): Chart {
  const { cells, nfes, schedules } = result;
  const hasFid = cells.some((c) => c.metrics?.fid !== undefined);
  const metricName = hasFid ? "FID" : "L2 to teacher";
  const metricLabel = hasFid
    ? "FID (lower is better)"
    : "L2 to teacher (mean squared diff. per pixel)";
  const metric = (c: ScheduleBenchCell) =>
    (hasFid ? c.metrics?.fid : c.metrics?.teacher?.l2.mean) ?? Number.NaN;
  const panels = result.solvers.map((solver) =>
    linePlot(
      schedules.map((schedule) => ({
        ...scheduleStyle(result, schedule),
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
        xLabel: "NFE (network evaluations)",
        yLabel: metricLabel,
        logY: true,
        xTicksAtData: true,
        ...PANEL_SIZE,
      },
    )
  );
  return combineCharts(panels);
}

/** Options of {@linkcode scheduleBenchLambdaScene}. */
export interface ScheduleBenchLambdaOptions {
  /**
   * The model's schedule: draws the hand-made grid of a failed hand-made cell too (it is well
   * defined even though the cell could not be evaluated). @default {undefined (left out)}
   */
  schedule?: NoiseSchedule;
}

/**
 * λ of each grid point against the step index at the largest NFE, one panel per solver and one
 * line per schedule that has a grid there.
 *
 * @param result A {@linkcode runScheduleBench} result or a `schedules.json` document.
 */
export function scheduleBenchLambdaScene(
  result: ScheduleBenchDocument,
  options: ScheduleBenchLambdaOptions = {},
): Chart {
  const nfe = Math.max(...result.nfes);
  const panels = result.solvers.map((solver) => {
    const grids: LambdaGrid[] = [];
    for (const schedule of result.schedules) {
      const c = result.cells.find((c) =>
        c.solver === solver && c.nfe === nfe && c.schedule === schedule
      );
      const style = scheduleStyle(result, schedule);
      if (c?.lambda1) {
        grids.push({ name: schedule, lambdas: c.lambda1, style });
      } else if (
        options.schedule !== undefined && c?.status === "error" &&
        (SKIP_TYPES as readonly string[]).includes(schedule)
      ) {
        const lambdas = handMadeLambdas(options.schedule, solver, schedule as SkipType, nfe);
        if (lambdas) grids.push({ name: schedule, lambdas, style });
      }
    }
    return lambdaPlot(grids, { title: `${solver}: λ grids at NFE ${nfe}`, ...PANEL_SIZE });
  });
  return combineCharts(panels);
}

/** λ of a hand-made grid (EDM with the samplers' ρ = 7), or undefined for an NFE it cannot hit. */
function handMadeLambdas(
  schedule: NoiseSchedule,
  solver: string,
  skipType: SkipType,
  nfe: number,
): number[] | undefined {
  let steps: number;
  try {
    steps = solverSteps(solver as SolverName, nfe);
  } catch {
    return undefined;
  }
  const times = skipGrid(skipType, schedule, steps, skipType === "edm" ? { rho: 7 } : {});
  return Array.from(gridLambdas(schedule, times));
}

/** Options of {@linkcode writeScheduleBench}. */
export interface WriteScheduleBenchOptions
  extends ScheduleBenchReportOptions, ScheduleBenchLambdaOptions {}

/** What {@linkcode writeScheduleBench} wrote. */
export interface WrittenScheduleBench {
  /** The `schedules.md` text. */
  markdown: string;
  /** The files written, in order. */
  files: string[];
}

/** The `schedules.json` fields of a result (its run facts left out). */
export function scheduleBenchDocument(result: ScheduleBenchDocument): ScheduleBenchDocument {
  return {
    format: result.format,
    version: result.version,
    config: result.config,
    model: result.model,
    num_samples: result.num_samples,
    seed: result.seed,
    teacher: result.teacher,
    solvers: result.solvers,
    nfes: result.nfes,
    schedules: result.schedules,
    cells: result.cells,
    seconds: result.seconds,
    created: result.created,
  };
}

/**
 * Writes `schedules.md`, `schedules.json`, `schedules.png`/`.svg` (metric vs NFE),
 * `schedules_lambda.png`/`.svg` (λ grids) and `schedules.html` (all of it in one page) into
 * `outDir` (created if needed), each atomically.
 *
 * @param outDir The output folder.
 * @param result A {@linkcode runScheduleBench} result or a `schedules.json` document.
 */
export async function writeScheduleBench(
  outDir: string,
  result: ScheduleBenchReportInput,
  options: WriteScheduleBenchOptions = {},
): Promise<WrittenScheduleBench> {
  await Deno.mkdir(outDir, { recursive: true });
  const markdown = scheduleBenchMarkdown(result, options);
  const files: string[] = [];
  async function write(name: string, data: string | Uint8Array): Promise<void> {
    const path = join(outDir, name);
    if (typeof data === "string") await writeTextFileAtomic(path, data);
    else await writeFileAtomic(path, data);
    files.push(path);
  }
  await write("schedules.md", markdown);
  const json = join(outDir, "schedules.json");
  await writeJsonAtomic(json, scheduleBenchDocument(result));
  files.push(json);
  const metricSvg = await chartSvg(scheduleBenchMetricScene(result));
  await write("schedules.png", await svgToPng(metricSvg, { scale: 2 }));
  await write("schedules.svg", metricSvg);
  const lambdaSvg = await chartSvg(scheduleBenchLambdaScene(result, options));
  await write("schedules_lambda.png", await svgToPng(lambdaSvg, { scale: 2 }));
  await write("schedules_lambda.svg", lambdaSvg);
  await write("schedules.html", await scheduleBenchHtml(result, options));
  return { markdown, files };
}
