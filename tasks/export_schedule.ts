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
import { parseArgs } from "node:util";
import { loadModelConfig, scheduleFromConfig } from "../lib/onnx/config.ts";
import { gridOfFile, loadGridFile } from "../lib/io/grid_file.ts";
import { EXPORT_FORMATS, type ExportFormat, exportSchedule } from "../lib/pipelines/grid_export.ts";
import { runTask } from "./_data_cli.ts";

const USAGE = `Usage: deno task export-schedule <grid.json> --format <format> [--config <model.yml>]
  --format F      ${EXPORT_FORMATS.join(" | ")}
  --config FILE   model config: recompute sigmas from its schedule (and check the grid fits it)
  --json          print {"format", "values", "warning"} as JSON instead of the text form`;

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    strict: true,
    allowPositionals: true,
    options: {
      format: { type: "string" },
      config: { type: "string" },
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (positionals.length !== 1) {
    throw new TypeError(`Expected one grid file argument: got ${positionals.length}`);
  }
  const format = values.format;
  if (!format || !(EXPORT_FORMATS as readonly string[]).includes(format)) {
    throw new RangeError(
      `--format must be one of ${EXPORT_FORMATS.join(", ")}: got ${JSON.stringify(format ?? null)}`,
    );
  }
  const file = await loadGridFile(positionals[0]);
  let schedule;
  if (values.config) {
    schedule = await scheduleFromConfig(await loadModelConfig(values.config));
    gridOfFile(file, schedule);
  }
  const out = exportSchedule(file, format as ExportFormat, { schedule });
  if (out.warning) console.error(`warning: ${out.warning}`);
  console.log(
    values.json
      ? JSON.stringify({ format: out.format, values: out.values, warning: out.warning ?? null })
      : out.text,
  );
}

if (import.meta.main) await runTask(main);
