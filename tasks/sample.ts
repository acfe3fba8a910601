/**
 * `deno task sample`: images from any solver and grid (a skip type or a learned grid file),
 * saved as one PNG grid (each image enlarged to at least 84 px unless `--scale` says otherwise),
 * and optionally as a GIF of the sampling trajectory (`--gif`): the
 * x0-prediction after each network evaluation, then the final samples.
 *
 * ```sh
 * deno task sample --config configs/gmm-mnist.yml --solver_name dpm_solver++ --steps 6 \
 *   --skip_type logSNR --num_samples 16 --seed 0 --out samples.png
 * deno task sample --config configs/gmm-mnist.yml --solver_name uni_pc --load_from grid.json
 * deno task sample --config configs/gmm-mnist.yml --steps 6 --gif trajectory.gif
 * ```
 *
 * @module
 */
import { writeFileAtomic } from "../lib/io/atomic.ts";
import { imagesGif } from "../lib/io/animation.ts";
import { checkPictureShape } from "../lib/io/image.ts";
import { labelledGridPng } from "../lib/io/labelled_grid.ts";
import { lockOutputs } from "../lib/io/lock.ts";
import { declareOptions } from "../lib/options.ts";
import { MODEL_OPTIONS, SCALE_OPTIONS } from "../lib/pipelines/options.ts";
import { validateSamplerOptions } from "../lib/pipelines/sampler.ts";
import {
  SAMPLE_IMAGES_OPTIONS,
  sampleImages,
  trajectoryFrames,
} from "../lib/pipelines/sampling.ts";
import { loadPromptedModel, PROMPT_OPTIONS } from "../lib/pipelines/prompts.ts";
import { CONDITION_OPTIONS, conditionOf, defineTask, runCli, textOrCondition } from "./_cli.ts";

/** What `sample` writes. */
const PICTURE_OPTIONS = declareOptions({
  nrow: { flag: "nrow", kind: "integer", arg: "N", min: 1, default: 8, help: "images per row" },
  out: {
    flag: "out",
    kind: "string",
    arg: "FILE",
    default: "samples.png",
    help: "output PNG grid",
  },
  gif: {
    flag: "gif",
    kind: "string",
    arg: "FILE",
    help: "also an animated GIF of the trajectory: the x0-prediction after each network " +
      "evaluation, then the final samples",
  },
});

/** The `sample` task. */
export const SAMPLE = defineTask({
  name: "sample",
  summary: "Sample images with any solver and grid (a skip type, σ list or learned grid file)",
  options: { ...MODEL_OPTIONS, ...SAMPLE_IMAGES_OPTIONS, ...PROMPT_OPTIONS },
  taskOptions: { ...CONDITION_OPTIONS, ...PICTURE_OPTIONS, ...SCALE_OPTIONS },
  async run(v) {
    if (v.gif === "") throw new TypeError("--gif needs a file name");
    validateSamplerOptions(v); // bad options fail before the model loads
    const given = await conditionOf(v);
    const { model, text } = await loadPromptedModel(v.config, v);
    const condition = textOrCondition(text, given);
    try {
      // What could not be drawn or written is refused before the first network call.
      checkPictureShape(model.imageShape, "out");
      await using _outputs = await lockOutputs(v.gif === undefined ? [v.out] : [v.out, v.gif], {
        what: "sample",
      });
      const sampled = await sampleImages(model, {
        ...v,
        condition,
        trajectory: v.gif !== undefined,
      });
      const { images, shape, sampler } = sampled;
      const grid = { nrow: v.nrow, scale: v.scale };
      await writeFileAtomic(v.out, await labelledGridPng(images, shape, grid));
      let gifNote = "";
      if (v.gif !== undefined) {
        const frames = trajectoryFrames(sampled);
        await writeFileAtomic(v.gif, await imagesGif(frames, shape, grid));
        gifNote = `; ${v.gif}: ${frames.length} frames`;
      }
      console.log(
        `${v.out}: ${shape[0]} samples, ${sampler.solverName} ${sampler.gridKind}, ` +
          `NFE ${sampler.nfe}${gifNote}`,
      );
    } finally {
      await model.close();
    }
  },
});

if (import.meta.main) await runCli(SAMPLE);
