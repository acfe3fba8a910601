/**
 * `deno task eval`: evaluate one schedule with one solver on seeded samples.
 *
 * ```sh
 * deno task eval --config configs/gmm-mnist.yml --solver_name uni_pc --steps 6 \
 *   --skip_type logSNR --num_samples 1000 --seed 0 \
 *   [--data_dir train_data/uni_pc_NFE20_edm] [--features model.onnx --fid_ref ref.npz] \
 *   [--quality] [--exact_gmm] [--out result.json] [--save_png grid.png]
 * ```
 *
 * Without `--features` / `--fid_ref` the config's `eval` section supplies them, so
 * `deno task eval --config configs/mnist-edm.yml --skip_type edm` reports the FID against the
 * bundled MNIST test statistics (`--no_fid` turns that off).
 *
 * The grid is one of `--skip_type`, `--load_from grid.json` or `--sigmas 80,10,1,0.002`.
 * Prints one summary line and writes the JSON result (`lib/pipelines/evaluate.ts`, {@linkcode EvalResult}).
 * Partial results are saved to `<out>.partial.npz` every 30 s: an interrupted run continues
 * where it stopped when the same command is run again (`lib/pipelines/eval_checkpoint.ts`).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { loadModelConfig } from "../lib/onnx/config.ts";
import { writeFileAtomic } from "../lib/io/atomic.ts";
import {
  type EvalResult,
  type EvaluateOptions,
  evaluateSchedule,
  formatMetrics,
  writeEvalResult,
} from "../lib/pipelines/evaluate.ts";
import { loadModel } from "../lib/onnx/model.ts";
import { prepareSampler } from "../lib/pipelines/sampling.ts";
import { imageShapeOf, imagesToPngGrid } from "../lib/io/image.ts";
import { ProgressBar } from "../lib/io/progress.ts";
import {
  GRID_OPTIONS,
  intOption,
  numberOption,
  optionHelp,
  RUN_OPTIONS,
  runTask,
  samplerOptions,
  SOLVER_OPTIONS,
} from "./_data_cli.ts";

const USAGE = `Usage: deno task eval --config <model.yml> [options]
${optionHelp("solver_name", 21)}
  --steps N            solver steps (default 20; fixed by --load_from / --sigmas)
  --order N            solver order
  --unipc_variant V    bh1 | bh2 (default bh1)
${optionHelp("skip_type", 21)}
${optionHelp("rho", 21)}
  --load_from FILE     grid JSON file (e.g. learned by LD3)
  --sigmas LIST        explicit σ list, largest first, e.g. 80,10,1,0.002
  --num_samples N      samples (default 1000, or the teacher dataset's size)
  --seed N             noise seed (default 0, or the teacher dataset's)
  --batch_size N       samples per solver batch (default: the config's batch_size)
  --data_dir DIR       teacher dataset folder (from generate): L2/L1 to teacher
  --features FILE      feature ONNX model for FID (with --fid_ref)
  --features_input S   its image input name (default image)
  --features_output S  its feature output name (default features)
  --fid_ref FILE       reference statistics .npz (mu, sigma)
                       (features and fid_ref default to the config's eval section)
  --lpips_model FILE   LPIPS ONNX model (lib/metrics/lpips.ts): LPIPS distance to the teacher of
                       --data_dir as well (default: the config's eval.lpips)
  --no_fid             ignore the config's eval section (no FID or LPIPS unless given above)
  --quality            classifier check: share of samples with top-class probability >=
                       --threshold and the class histogram (the feature model's logits output)
  --threshold P        probability threshold of --quality (default 0.9)
  --exact_gmm          exact-solution error (Gaussian-mixture models built by buildGmmOnnx)
  --exact_steps N      RK4 steps of the exact solution (default 200)
  --out FILE           result JSON (default eval_<solver>_NFE<nfe>_<grid>.json)
  --save_png FILE      grid PNG of the first 64 samples
  --checkpoint FILE    resumable partial results, saved every 30 s and removed at the end;
                       rerun the same command to continue (default <out>.partial.npz)
${optionHelp("device", 21)}`;

function summary(result: EvalResult): string {
  const grid = result.grid.kind === "file" ? `file ${result.grid.load_from}` : result.grid.kind;
  const quality = result.metrics.quality;
  const classes = quality ? `, classes [${quality.histogram.join(", ")}]` : "";
  return `${result.solver.name} NFE ${result.nfe} ${grid}: ${formatMetrics(result.metrics)}` +
    `${classes} (${result.options.num_samples} samples, ${result.seconds.toFixed(1)} s)`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    strict: true,
    allowPositionals: false,
    options: {
      config: { type: "string" },
      ...SOLVER_OPTIONS,
      ...GRID_OPTIONS,
      ...RUN_OPTIONS,
      num_samples: { type: "string" },
      batch_size: { type: "string" },
      data_dir: { type: "string" },
      features: { type: "string" },
      features_input: { type: "string" },
      features_output: { type: "string" },
      fid_ref: { type: "string" },
      no_fid: { type: "boolean" },
      lpips_model: { type: "string" },
      quality: { type: "boolean" },
      threshold: { type: "string" },
      exact_gmm: { type: "boolean" },
      exact_steps: { type: "string" },
      out: { type: "string" },
      save_png: { type: "string" },
      checkpoint: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (!values.config) throw new TypeError("--config is required (a model YAML file)");
  const config = await loadModelConfig(values.config);
  const configEval = !values.no_fid;
  const fidFromConfig = configEval && config.eval?.features !== undefined &&
    config.eval?.fid_ref !== undefined;
  if (
    values.data_dir === undefined && values.features === undefined &&
    values.fid_ref === undefined && !values.exact_gmm && !values.quality && !fidFromConfig
  ) {
    throw new TypeError(
      "Nothing to measure: give --data_dir (teacher dataset), --features with --fid_ref " +
        "(or an eval section in the config), --quality, or --exact_gmm",
    );
  }
  const threshold = numberOption("threshold", values.threshold);
  if (threshold !== undefined && !values.quality) {
    throw new TypeError("--threshold needs --quality");
  }
  const numSamples = intOption("num_samples", values.num_samples);
  const evalOptions: EvaluateOptions = {
    ...samplerOptions(values),
    numSamples,
    seed: intOption("seed", values.seed),
    batchSize: intOption("batch_size", values.batch_size),
    teacherDir: values.data_dir,
    features: values.features === undefined ? undefined : {
      path: values.features,
      input: values.features_input,
      output: values.features_output,
    },
    fidRef: values.fid_ref,
    lpips: values.lpips_model,
    configEval,
    quality: values.quality ? { threshold } : false,
    exactGmm: values.exact_gmm ?? false,
    exactSteps: intOption("exact_steps", values.exact_steps),
  };
  const model = await loadModel(config, values.device ? { device: values.device } : {});
  try {
    // The default names need the solver's NFE and the grid kind before the run.
    const sampler = await prepareSampler(model, evalOptions);
    const out = values.out ??
      `eval_${sampler.solverName}_NFE${sampler.nfe}_${sampler.gridKind}.json`;
    const checkpoint = values.checkpoint ?? `${out}.partial.npz`;
    let bar: ProgressBar | undefined;
    let png: Uint8Array | undefined;
    const result = await evaluateSchedule(model, {
      ...evalOptions,
      checkpoint,
      // Always kept, so that a resume with or without --save_png matches the checkpoint.
      previewImages: 64,
      onProgress(done, total) {
        if (bar === undefined) {
          if (done > 0) console.error(`resuming ${checkpoint}: ${done}/${total} samples done`);
          bar = new ProgressBar(total, { label: "eval", unit: "samples", initial: done });
        }
        bar.update(done);
      },
      onPreview(images, count, imageShape) {
        if (values.save_png === undefined) return;
        png = imagesToPngGrid(images, [count, ...imageShapeOf([...imageShape])]);
      },
    });
    bar?.finish();
    await writeEvalResult(out, result);
    if (values.save_png !== undefined && png) await writeFileAtomic(values.save_png, png);
    console.log(summary(result));
  } finally {
    await model.close();
  }
}

if (import.meta.main) await runTask(main);
