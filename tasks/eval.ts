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
 * Prints one summary line and writes the JSON result (`lib/pipelines/evaluate.ts`). Partial
 * results are saved to `<out>.partial.npz` every 30 s: an interrupted run continues where it
 * stopped when the same command is run again (`lib/pipelines/eval_checkpoint.ts`).
 *
 * @module
 */
import { writeFileAtomic } from "../lib/io/atomic.ts";
import { imageShapeOf, imagesToPngGrid } from "../lib/io/image.ts";
import { ProgressBar } from "../lib/io/progress.ts";
import { loadModelConfig } from "../lib/onnx/config.ts";
import { loadModel } from "../lib/onnx/model.ts";
import { declareOptions } from "../lib/options.ts";
import {
  EVAL_OPTIONS,
  type EvalResult,
  type EvaluateOptions,
  evaluateSchedule,
  formatMetrics,
  QUALITY_OPTIONS,
  writeEvalResult,
} from "../lib/pipelines/evaluate.ts";
import { MODEL_OPTIONS } from "../lib/pipelines/options.ts";
import { prepareSampler } from "../lib/pipelines/sampler.ts";
import { defineTask, FEATURES_OPTIONS, runCli } from "./_cli.ts";

/** What `eval` measures beyond the library's options, and where it writes. */
const EVAL_TASK_OPTIONS = declareOptions({
  features: {
    ...FEATURES_OPTIONS.features,
    help: "feature ONNX model for FID (with --fid_ref) and the classifier check",
  },
  featuresInput: {
    flag: "features_input",
    kind: "string",
    arg: "NAME",
    default: "image",
    help: "its image input",
  },
  featuresOutput: {
    flag: "features_output",
    kind: "string",
    arg: "NAME",
    default: "features",
    help: "its feature output",
  },
  lpipsModel: {
    flag: "lpips_model",
    kind: "string",
    arg: "FILE",
    defaultText: "the config's eval.lpips",
    help: "LPIPS ONNX model: the LPIPS distance to the teacher of --data_dir as well",
  },
  noFid: {
    flag: "no_fid",
    kind: "boolean",
    default: false,
    help: "ignore the config's eval section (no FID or LPIPS unless given)",
  },
  quality: {
    flag: "quality",
    kind: "boolean",
    default: false,
    help: "classifier check: share of samples with top-class probability >= --threshold, and " +
      "the class histogram (the feature model's logits output)",
  },
  out: {
    flag: "out",
    kind: "string",
    arg: "FILE",
    defaultText: "eval_<solver>_NFE<nfe>_<grid>.json",
    help: "result JSON",
  },
  savePng: {
    flag: "save_png",
    kind: "string",
    arg: "FILE",
    help: "grid PNG of the first 64 samples",
  },
});

/** The `eval` result in one line. */
function summary(result: EvalResult): string {
  const grid = result.grid.kind === "file" ? `file ${result.grid.load_from}` : result.grid.kind;
  const quality = result.metrics.quality;
  const classes = quality ? `, classes [${quality.histogram.join(", ")}]` : "";
  return `${result.solver.name} NFE ${result.nfe} ${grid}: ${formatMetrics(result.metrics)}` +
    `${classes} (${result.options.num_samples} samples, ${result.seconds.toFixed(1)} s)`;
}

/** The `eval` task. */
export const EVAL = defineTask({
  name: "eval",
  summary: "Score one schedule × solver × NFE: FID, distance to a teacher, exact-solution " +
    "error, classifier check; resumable",
  details: [
    "FID defaults to the config's eval section. Partial results go to <out>.partial.npz every",
    "30 s, so an interrupted run continues where it stopped when rerun.",
  ],
  options: { ...MODEL_OPTIONS, ...EVAL_OPTIONS, ...QUALITY_OPTIONS },
  taskOptions: EVAL_TASK_OPTIONS,
  async run(v) {
    const config = await loadModelConfig(v.config);
    const fidFromConfig = !v.noFid && config.eval?.features !== undefined &&
      config.eval?.fid_ref !== undefined;
    if (
      v.teacherDir === undefined && v.features === undefined && v.fidRef === undefined &&
      !v.exactGmm && !v.quality && !fidFromConfig
    ) {
      throw new TypeError(
        "Nothing to measure: give --data_dir (teacher dataset), --features with --fid_ref " +
          "(or an eval section in the config), --quality, or --exact_gmm",
      );
    }
    if ((v.threshold !== undefined || v.logits !== undefined) && !v.quality) {
      throw new TypeError("--threshold and --logits need --quality");
    }
    const options: EvaluateOptions = {
      ...v,
      features: v.features === undefined
        ? undefined
        : { path: v.features, input: v.featuresInput, output: v.featuresOutput },
      lpips: v.lpipsModel,
      configEval: !v.noFid,
      quality: v.quality ? { threshold: v.threshold, logits: v.logits } : false,
    };
    const model = await loadModel(config, { device: v.device, threads: v.threads });
    try {
      // The default names need the solver's NFE and the grid kind before the run.
      const sampler = await prepareSampler(model, options);
      const out = v.out ?? `eval_${sampler.solverName}_NFE${sampler.nfe}_${sampler.gridKind}.json`;
      const checkpoint = v.checkpoint ?? `${out}.partial.npz`;
      let bar: ProgressBar | undefined;
      let png: Uint8Array | undefined;
      const result = await evaluateSchedule(model, {
        ...options,
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
          if (v.savePng === undefined) return;
          png = imagesToPngGrid(images, [count, ...imageShapeOf([...imageShape])]);
        },
      });
      bar?.finish();
      await writeEvalResult(out, result);
      if (v.savePng !== undefined && png) await writeFileAtomic(v.savePng, png);
      console.log(summary(result));
    } finally {
      await model.close();
    }
  },
});

if (import.meta.main) await runCli(EVAL);
