/**
 * `deno task export-schedule`: print a grid file's schedule for another tool.
 *
 * ```sh
 * deno task export-schedule logs/<run>/grid.json --format comfyui
 * deno task export-schedule logs/<run>/grid.json --format diffusers-timesteps --config sd.yml
 * ```
 *
 * Formats: `comfyui` (SIGMAS, descending, trailing 0), `diffusers-sigmas` (`sigmas=[…, 0.0]`),
 * `diffusers-timesteps` (`timesteps=[…]`, discrete VP schedules), `k-diffusion` (sigmas with a
 * trailing 0). With `--config` the sigmas are recomputed from the model's schedule, which must
 * be the one the grid was made for. When the grid has decoupled evaluation times (LD3's θ2),
 * a warning on stderr says they are dropped.
 *
 * @module
 */
import { gridOfFile, loadGridFile } from "../lib/io/grid_file.ts";
import { loadModelConfig, scheduleFromConfig } from "../lib/onnx/config.ts";
import { declareOptions } from "../lib/options.ts";
import { EXPORT_OPTIONS, type ExportFormat, exportSchedule } from "../lib/pipelines/grid_export.ts";
import { defineTask, runCli } from "./_cli.ts";

/** The `export-schedule` task. */
export const EXPORT_SCHEDULE = defineTask({
  name: "export-schedule",
  summary: "Print a grid file's schedule for ComfyUI, diffusers or k-diffusion",
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
      help: `print {"format", "values", "warning"} as JSON instead of the text form`,
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
    if (out.warning) console.error(`warning: ${out.warning}`);
    console.log(
      v.json
        ? JSON.stringify({ format: out.format, values: out.values, warning: out.warning ?? null })
        : out.text,
    );
  },
});

if (import.meta.main) await runCli(EXPORT_SCHEDULE);
