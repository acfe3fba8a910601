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
import {
  GENERATE_OPTIONS,
  generateDataset,
  generateDatasetDir,
} from "../lib/pipelines/generate.ts";
import { MODEL_OPTIONS } from "../lib/pipelines/options.ts";
import { loadPromptedModel, PROMPT_OPTIONS } from "../lib/pipelines/prompts.ts";
import { SHARD_OPTIONS, sourceDateEpoch } from "../lib/shard.ts";
import { CONDITION_OPTIONS, conditionOf, defineTask, runCli, textOrCondition } from "./_cli.ts";
import { announceShard } from "./_shard.ts";

/** The `generate` task. */
export const GENERATE = defineTask({
  name: "generate",
  summary: "Write an LD3 teacher dataset: seeded latents and the teacher's samples, resumable",
  details: [
    "The dataset goes to <data_dir>/<solver>_NFE<nfe>_<grid kind>/; sample i always gets the",
    "same noise whatever the batch size, so a rerun skips complete samples and refuses changed",
    "parameters. With --shard K/N (or in a Slurm array / Indexed Job) it makes shard K's",
    "batches only, beside the other shards; `deno task merge <dataset>` then writes the manifest.",
    "The manifest's created time is SOURCE_DATE_EPOCH when set. With prompts (a Stable",
    "Diffusion export folder as --config), each sample records its prompt, and each prompt is",
    "encoded once into the dataset's prompt_embeddings/.",
  ],
  options: { ...MODEL_OPTIONS, ...GENERATE_OPTIONS, ...PROMPT_OPTIONS },
  taskOptions: { ...CONDITION_OPTIONS, ...SHARD_OPTIONS },
  async run(v) {
    const shard = announceShard("generate", v);
    const given = await conditionOf(v);
    const { model, text } = await loadPromptedModel(v.config, {
      ...v,
      cacheDir: (config) => generateDatasetDir(config, { ...v, shard: undefined }),
    });
    let result;
    try {
      result = await generateDataset(model, {
        ...v,
        condition: textOrCondition(text, given),
        negativePrompt: text?.negativePrompt,
        shard,
        created: sourceDateEpoch(Deno.env.toObject()),
      });
    } finally {
      await model.close();
    }
    const perSample = result.generated > 0
      ? ` (${(result.seconds / result.generated * 1000).toFixed(1)} ms/sample)`
      : "";
    const range = result.samples;
    const part = range === undefined
      ? ""
      : range.end > range.first
      ? ` samples ${range.first}…${range.end - 1}:`
      : " no batch of its own (more shards than batches):";
    console.log(
      `${result.dir}:${part} ${result.generated} samples generated, ${result.skipped} already ` +
        `complete${perSample}` +
        (shard ? `; when all shards are done: deno task merge ${result.dir}` : ""),
    );
  },
});

if (import.meta.main) await runCli(GENERATE);
