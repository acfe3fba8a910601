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
import { checkPictureShape, imageShapeOf } from "../lib/io/image.ts";
import { labelledGridPng } from "../lib/io/labelled_grid.ts";
import { lockOutputs } from "../lib/io/lock.ts";
import { ProgressBar } from "../lib/io/progress.ts";
import { loadModelConfig, type ModelConfig } from "../lib/onnx/config.ts";
import { type LoadedModel, loadModel } from "../lib/onnx/model.ts";
import { readDataset } from "../lib/io/dataset.ts";
import {
  loadPromptedModel,
  PROMPT_OPTIONS,
  type PromptValues,
  teacherGuidance,
} from "../lib/pipelines/prompts.ts";
import type { ConditionInput } from "../lib/pipelines/sampling.ts";
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
import { MODEL_OPTIONS, SCALE_OPTIONS } from "../lib/pipelines/options.ts";
import { prepareSampler } from "../lib/pipelines/sampler.ts";
import { evalShardsDir, evaluateShard, writeEvalShard } from "../lib/pipelines/eval_shards.ts";
import { shardRecordName } from "../lib/io/shard_record.ts";
import { type Shard, SHARD_OPTIONS, shardName } from "../lib/shard.ts";
import { defineTask, FEATURES_OPTIONS, runCli } from "./_cli.ts";
import { announceShard } from "./_shard.ts";

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
    help: "grid PNG of the first 64 samples (enlarged by --scale)",
  },
  ...SCALE_OPTIONS,
  ...SHARD_OPTIONS,
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
    "30 s, so an interrupted run continues where it stopped when rerun. With --shard K/N (or in",
    "a Slurm array / Indexed Job) it scores shard K's batches into <out>.shards/;",
    "`deno task merge <out>` then writes the result one process writes.",
  ],
  options: { ...MODEL_OPTIONS, ...EVAL_OPTIONS, ...QUALITY_OPTIONS, ...PROMPT_OPTIONS },
  taskOptions: EVAL_TASK_OPTIONS,
  async run(v) {
    const shard = announceShard("eval", v);
    if (shard && v.checkpoint !== undefined) {
      throw new TypeError("--checkpoint: each shard keeps its own, in <out>.shards/");
    }
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
    const { model, condition } = await loadEvalModel(config, v);
    const options: EvaluateOptions = {
      ...v,
      condition,
      features: v.features === undefined
        ? undefined
        : { path: v.features, input: v.featuresInput, output: v.featuresOutput },
      lpips: v.lpipsModel,
      configEval: !v.noFid,
      quality: v.quality ? { threshold: v.threshold, logits: v.logits } : false,
      shard: undefined,
    };
    try {
      // The default names need the solver's NFE and the grid kind before the run.
      const sampler = await prepareSampler(model, options);
      const out = v.out ?? `eval_${sampler.solverName}_NFE${sampler.nfe}_${sampler.gridKind}.json`;
      // Everything written at the end is checked now: drawable, its folder made, not shared.
      if (v.savePng !== undefined) checkPictureShape(model.imageShape, "save_png");
      if (shard) {
        await evaluateOneShard(model, options, shard, { out, savePng: v.savePng, scale: v.scale });
        return;
      }
      const checkpoint = v.checkpoint ?? `${out}.partial.npz`;
      await using _outputs = await lockOutputs(
        v.savePng === undefined ? [out] : [out, v.savePng],
        { what: "eval" },
      );
      let bar: ProgressBar | undefined;
      let preview: { images: Float32Array; shape: number[] } | undefined;
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
          preview = { images: images.slice(), shape: [count, ...imageShapeOf([...imageShape])] };
        },
      });
      bar?.finish();
      await writeEvalResult(out, result);
      if (v.savePng !== undefined && preview) {
        const png = await labelledGridPng(preview.images, preview.shape, { scale: v.scale });
        await writeFileAtomic(v.savePng, png);
      }
      console.log(summary(result));
    } finally {
      await model.close();
    }
  },
});

/**
 * The model of an evaluation and the conditions of its seeded samples: the prompts' embeddings
 * (text-conditioned models). Against a teacher dataset, whose samples carry their own prompts,
 * the student shares the teacher's guidance scale and negative prompt unless others are given.
 */
async function loadEvalModel(
  config: ModelConfig,
  v: PromptValues & { device?: string; threads?: number; teacherDir?: string },
): Promise<{ model: LoadedModel; condition?: ConditionInput }> {
  if (v.teacherDir === undefined) {
    const { model, text } = await loadPromptedModel(config, v);
    return text ? { model, condition: text.condition } : { model };
  }
  if (v.prompt !== undefined || v.promptsFile !== undefined) {
    throw new TypeError(
      "--prompt and --prompts are for seeded samples: the samples of a teacher dataset " +
        "(--data_dir) carry their own prompts",
    );
  }
  if (v.negativePrompt !== undefined || v.guidanceScale !== undefined) {
    return { model: (await loadPromptedModel(config, v)).model };
  }
  if (!config.model.condition) {
    return { model: await loadModel(config, { device: v.device, threads: v.threads }) };
  }
  const guidance = await teacherGuidance(config, await readDataset(v.teacherDir), v.device);
  return { model: await loadModel(config, { device: v.device, threads: v.threads, ...guidance }) };
}

/** A progress bar for an evaluation's samples, telling of a resumed checkpoint. */
function progressBar(checkpoint: string) {
  let bar: ProgressBar | undefined;
  return {
    onProgress(done: number, total: number) {
      if (bar === undefined) {
        if (done > 0) console.error(`resuming ${checkpoint}: ${done}/${total} samples done`);
        bar = new ProgressBar(total, { label: "eval", unit: "samples", initial: done });
      }
      bar.update(done);
    },
    finish: () => bar?.finish(),
  };
}

/**
 * `eval --shard K/N`: scores shard K's batches and writes its part to
 * `<out>.shards/shard-K-of-N.npz` (its checkpoint beside it), owned by this run while it works.
 */
async function evaluateOneShard(
  model: Awaited<ReturnType<typeof loadModel>>,
  options: EvaluateOptions,
  shard: Shard,
  outputs: { out: string; savePng?: string; scale?: number },
): Promise<void> {
  const dir = evalShardsDir(outputs.out);
  const part = `${dir}/${shardRecordName(shard, "npz")}`;
  const checkpoint = `${dir}/${shardName(shard)}.partial.npz`;
  const own = await lockOutputs([part], { what: `eval shard ${shard.index}/${shard.count}` });
  try {
    await scoreShard(model, options, shard, { ...outputs, part, checkpoint });
  } finally {
    // The shards' folder stays: the other shards write into it.
    await own.release({ removeCreatedDirs: false });
  }
}

/** {@linkcode evaluateOneShard} once its part is locked. */
async function scoreShard(
  model: Awaited<ReturnType<typeof loadModel>>,
  options: EvaluateOptions,
  shard: Shard,
  outputs: { out: string; savePng?: string; scale?: number; part: string; checkpoint: string },
): Promise<void> {
  const { part, checkpoint } = outputs;
  const bar = progressBar(checkpoint);
  const result = await evaluateShard(model, {
    ...options,
    shard,
    checkpoint,
    previewImages: 64,
    ...(outputs.savePng !== undefined
      ? { pictures: { png: outputs.savePng, scale: outputs.scale } }
      : {}),
    onProgress: bar.onProgress,
  });
  bar.finish();
  await writeEvalShard(part, result);
  const { first, end, total } = result.record.samples;
  console.log(
    `${part}: samples ${first}…${end - 1} of ${total} (${result.record.seconds.toFixed(1)} s); ` +
      `when all shards are done: deno task merge ${outputs.out}`,
  );
}

if (import.meta.main) await runCli(EVAL);
