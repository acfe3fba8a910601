/**
 * `deno task sample`: images from any solver and grid (a skip type or a learned grid file),
 * saved as one PNG grid, and optionally as a GIF of the sampling trajectory (`--gif`): the
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
import { parseArgs } from "node:util";
import { writeFileAtomic } from "../lib/io/atomic.ts";
import { imagesGif } from "../lib/io/animation.ts";
import { imagesToPngGrid } from "../lib/io/image.ts";
import { sampleImages, trajectoryFrames } from "../lib/pipelines/sampling.ts";
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

const USAGE = `Usage: deno task sample --config <model.yml> [options]
${optionHelp("solver_name", 21)}
  --steps N            solver steps (default 20; fixed by --load_from / --sigmas)
  --order N            solver order
  --unipc_variant V    bh1 | bh2
${optionHelp("skip_type", 21)}
${optionHelp("rho", 21)}
  --load_from FILE     grid JSON file (e.g. learned by LD3) instead of --skip_type
${optionHelp("sigmas", 21)}
  --num_samples N      images (default 16)
  --batch_size N       samples per solver batch (default: the config's batch_size)
  --seed N             noise seed (default 0)
  --condition FILE     .npy of conditions, cycled over samples (conditional models)
  --labels LIST        class labels, e.g. 3,1,4 (class-conditional models; default 0, 1, …)
  --nrow N             images per grid row (default 8)
  --out FILE           output PNG (default samples.png)
  --gif FILE           also write an animated GIF of the trajectory: the x0-prediction
                       after each network evaluation, then the final samples
${optionHelp("device", 21)}`;

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
      condition: { type: "string" },
      labels: { type: "string" },
      nrow: { type: "string" },
      out: { type: "string" },
      gif: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (!values.config) throw new TypeError("--config is required (a model YAML file)");
  const nrow = intOption("nrow", values.nrow) ?? 8;
  if (nrow < 1) throw new RangeError(`--nrow must be >= 1: got ${nrow}`);
  if (values.gif === "") throw new TypeError("--gif needs a file name");
  const sampled = await sampleImages(values.config, {
    ...samplerOptions(values),
    numSamples: intOption("num_samples", values.num_samples),
    batchSize: intOption("batch_size", values.batch_size),
    seed: intOption("seed", values.seed),
    condition: await conditionOption(values.condition, values.labels),
    device: values.device,
    trajectory: values.gif !== undefined,
  });
  const { images, shape, sampler } = sampled;
  const out = values.out ?? "samples.png";
  await writeFileAtomic(out, imagesToPngGrid(images, shape, { nrow }));
  let gifNote = "";
  if (values.gif !== undefined) {
    const frames = trajectoryFrames(sampled);
    await writeFileAtomic(values.gif, await imagesGif(frames, shape, { nrow }));
    gifNote = `; ${values.gif}: ${frames.length} frames`;
  }
  console.log(
    `${out}: ${shape[0]} samples, ${sampler.solverName} ${sampler.gridKind}, NFE ${sampler.nfe}` +
      gifNote,
  );
}

if (import.meta.main) await runTask(main);
