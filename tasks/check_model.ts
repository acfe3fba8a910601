/**
 * `deno task check-model`: does a config describe its network? Loads the model (which checks the
 * ONNX signature against the config) and runs the checks of `lib/onnx/model_check.ts`: one batched
 * call equals single calls, outputs are finite, D is near the image at the lowest noise and near
 * the data at the highest. Exit code 1 when a check fails, with the usual causes.
 *
 * ```sh
 * deno task check-model --config my-model.yml
 * ```
 *
 * @module
 */
import { loadModel } from "../lib/onnx/model.ts";
import { CHECK_MODEL_OPTIONS, checkModel, formatModelCheck } from "../lib/onnx/model_check.ts";
import { declareOptions } from "../lib/options.ts";
import { MODEL_OPTIONS } from "../lib/pipelines/options.ts";
import { defineTask, runCli } from "./_cli.ts";

/** The `check-model` task. */
export const CHECK_MODEL = defineTask({
  name: "check-model",
  summary: "Check in seconds that a config's prediction, time_input and schedule fit its network",
  details: [
    "Batching, finite outputs, D ≈ x at the lowest noise, D near the data at the highest; a",
    "failure names the fields that usually cause it and exits 1 (docs/your-model.md).",
  ],
  options: { ...MODEL_OPTIONS, ...CHECK_MODEL_OPTIONS },
  taskOptions: declareOptions({
    json: {
      flag: "json",
      kind: "boolean",
      default: false,
      help: "print the report as JSON ({ model, checks, ok, msPerCall, batch })",
    },
  }),
  async run(v) {
    const model = await loadModel(v.config, { device: v.device, threads: v.threads });
    try {
      const report = await checkModel(model, v);
      console.log(v.json ? JSON.stringify(report, null, 2) : formatModelCheck(report));
      if (!report.ok) Deno.exitCode = 1;
    } finally {
      await model.close();
    }
  },
});

if (import.meta.main) await runCli(CHECK_MODEL);
