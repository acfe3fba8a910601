/**
 * `deno task export-schedule`: print (or write) a grid file's schedule for another tool.
 *
 * ```sh
 * deno task export-schedule logs/<run>/grid.json --format comfyui
 * deno task export-schedule logs/<run>/grid.json --format diffusers-euler --config sd.yml
 * deno task export-schedule logs/<run>/grid.json --format diffusers-flow-euler --out sigmas.txt
 * ```
 *
 * Each format is named after its consumer (docs/export.md): `comfyui`, `k-diffusion`,
 * `diffusers-euler`, `diffusers-flow-euler`, `diffusers-flow-unipc`, `diffusers-edm-euler`,
 * `diffusers-dpmsolver`. The line to paste goes to stdout (or `--out FILE`, written atomically);
 * the consumer, its conventions, a usage snippet and any warning go to stderr. With `--config`
 * the numbers are recomputed from the model's schedule, which must be the one the grid was made
 * for. A schedule kind the consumer cannot run is one `error:` line naming the format that can.
 *
 * @module
 */
import { writeTextFileAtomic } from "../lib/io/atomic.ts";
import { gridOfFile, loadGridFile } from "../lib/io/grid_file.ts";
import { loadModelConfig, scheduleFromConfig } from "../lib/onnx/config.ts";
import { declareOptions } from "../lib/options.ts";
import {
  EXPORT_OPTIONS,
  type ExportFormat,
  exportSchedule,
  type ScheduleExport,
} from "../lib/pipelines/grid_export.ts";
import { defineTask, runCli } from "./_cli.ts";

/** The lines that tell a reader where the numbers go (stderr, after the warnings). */
function describe(out: ScheduleExport): string[] {
  return [
    `for: ${out.consumer}`,
    ...out.conventions.map((c) => `  ${c}`),
    "usage:",
    ...out.usage.map((u) => `  ${u}`),
  ];
}

/** The `export-schedule` task. */
export const EXPORT_SCHEDULE = defineTask({
  name: "export-schedule",
  summary: "Print a grid file's schedule for ComfyUI, diffusers or k-diffusion",
  details: [
    "Formats are named after their consumer (docs/export.md); the line to paste goes to stdout " +
    "or --out, the consumer, its conventions, a usage snippet and warnings to stderr.",
  ],
  positionals: { usage: "<grid.json>", min: 1, max: 1 },
  options: EXPORT_OPTIONS,
  taskOptions: declareOptions({
    config: {
      flag: "config",
      kind: "string",
      arg: "FILE",
      help: "model config: recompute σ from its schedule (and check the grid fits it)",
    },
    json: {
      flag: "json",
      kind: "boolean",
      default: false,
      help: `print {"format", "consumer", "conventions", "values", "text", "usage", ` +
        `"warnings"} as JSON instead of the text form`,
    },
    out: {
      flag: "out",
      kind: "string",
      arg: "FILE",
      help: "write the text form (or the JSON) to FILE, atomically, instead of stdout",
    },
  }),
  async run(v, [gridPath]) {
    const file = await loadGridFile(gridPath);
    let schedule;
    if (v.config !== undefined) {
      schedule = await scheduleFromConfig(await loadModelConfig(v.config));
      gridOfFile(file, schedule);
    }
    const out = exportSchedule(file, v.format as ExportFormat, { schedule });
    for (const warning of out.warnings) console.error(`warning: ${warning}`);
    if (!v.json) console.error(describe(out).join("\n"));
    const { format, consumer, conventions, values, text, usage, warnings } = out;
    // "warning" is the previous release's single string, kept for one release.
    const warning = out.warning ?? null;
    const body = v.json
      ? JSON.stringify({ format, consumer, conventions, values, text, usage, warnings, warning })
      : text;
    if (v.out === undefined) console.log(body);
    else {
      await writeTextFileAtomic(v.out, body + "\n");
      console.error(`wrote ${v.out}`);
    }
  },
});

if (import.meta.main) await runCli(EXPORT_SCHEDULE);
