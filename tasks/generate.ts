/**
 * `deno task generate`: write the LD3 teacher dataset (the reference tool's `gen_data.py`).
 *
 * ```sh
 * deno task generate --config configs/gmm-mnist.yml --total_samples 100 \
 *   --sampling_batch_size 10 --steps 20 --solver_name uni_pc --skip_type edm \
 *   --save_png --data_dir train_data
 * ```
 *
 * The dataset goes to `<data_dir>/<solver>_NFE<nfe>_<skip_type>/` (layout in
 * docs/dataset-format.md). Re-running the same command resumes an interrupted run.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { generateDataset } from "../lib/pipelines/sampling.ts";
import {
  conditionOption,
  GRID_OPTIONS,
  intOption,
  optionHelp,
  RUN_OPTIONS,
  runTask,
  samplerOptions,
  SOLVER_OPTIONS,
} from "./_data_cli.ts";

const USAGE = `Usage: deno task generate --config <model.yml> [options]
  --total_samples N         samples to generate (default 100)
  --sampling_batch_size N   samples per solver batch (default 10)
  --steps N                 solver steps (default 20)
${optionHelp("solver_name", 26)}
  --order N                 solver order (dpm_solver, dpm_solver++, uni_pc, ipndm)
  --unipc_variant V         bh1 | bh2 (default bh1)
${optionHelp("skip_type", 26)}
${optionHelp("rho", 26)}
  --load_from FILE          grid JSON file instead of --skip_type (dataset folder *_file)
${optionHelp("sigmas", 26)}
                            (dataset folder *_sigmas)
  --seed N                  noise seed (default 0)
  --condition FILE          .npy of conditions, cycled over samples (conditional models)
  --labels LIST             class labels, e.g. 3,1,4 (class-conditional models; default 0, 1, …)
  --save_png                also write png/<i>.png and grid.png
  --data_dir DIR            root folder (default train_data)
${optionHelp("device", 26)}`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    strict: true,
    allowPositionals: false,
    options: {
      config: { type: "string" },
      total_samples: { type: "string" },
      sampling_batch_size: { type: "string" },
      ...SOLVER_OPTIONS,
      ...GRID_OPTIONS,
      ...RUN_OPTIONS,
      condition: { type: "string" },
      labels: { type: "string" },
      save_png: { type: "boolean" },
      data_dir: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (!values.config) throw new TypeError("--config is required (a model YAML file)");
  const result = await generateDataset(values.config, {
    totalSamples: intOption("total_samples", values.total_samples),
    samplingBatchSize: intOption("sampling_batch_size", values.sampling_batch_size),
    ...samplerOptions(values),
    seed: intOption("seed", values.seed),
    condition: await conditionOption(values.condition, values.labels),
    savePng: values.save_png ?? false,
    dataDir: values.data_dir,
    device: values.device,
  });
  console.log(
    `${result.dir}: ${result.generated} samples generated, ${result.skipped} already complete` +
      (result.generated > 0
        ? ` (${(result.seconds / result.generated * 1000).toFixed(1)} ms/sample)`
        : ""),
  );
}

if (import.meta.main) await runTask(main);
