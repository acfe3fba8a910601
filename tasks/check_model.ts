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
import { parseArgs } from "node:util";
import { loadModel } from "../lib/onnx/model.ts";
import { checkModel, formatModelCheck } from "../lib/onnx/model_check.ts";
import { intOption, optionHelp, runTask } from "./_data_cli.ts";

const USAGE = `Usage: deno task check-model --config <model.yml> [options]
  Checks in seconds that the config's prediction, time_input and schedule fit the network:
  batching, finite outputs, D ≈ x at the lowest noise, D near the data at the highest.
  --seed N             noise seed (default 0)
  --json               print the report as JSON ({ model, checks, ok, msPerCall, batch })
${optionHelp("device", 21)}`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    strict: true,
    allowPositionals: false,
    options: {
      config: { type: "string" },
      seed: { type: "string" },
      device: { type: "string" },
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (!values.config) throw new TypeError("--config is required (a model YAML file)");
  const model = await loadModel(values.config, values.device ? { device: values.device } : {});
  try {
    const report = await checkModel(model, { seed: intOption("seed", values.seed) });
    console.log(values.json ? JSON.stringify(report, null, 2) : formatModelCheck(report));
    if (!report.ok) Deno.exitCode = 1;
  } finally {
    await model.close();
  }
}

await runTask(main);
