/**
 * The Stable Diffusion user's path on the reduced twins (tests/fixtures/sd-tiny, Optimum's folder
 * layout): generate → train → sample → export-schedule → eval, with a prompts file, a negative
 * prompt and guidance, the export folder itself as --config (no YAML), float32 and float16.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { readDataset } from "../../lib/io/dataset.ts";
import { ROOT, runTask, type TaskOutput } from "../_run_task.ts";
import { copyFolder, SD_TINY } from "../_sd_tiny.ts";

function ok(out: TaskOutput, what: string): string {
  assert.equal(out.code, 0, `${what} failed:\n${out.stderr}\n${out.stdout}`);
  return out.stdout;
}

const PROMPTS = [
  "a photo of an astronaut riding a horse on the moon",
  "an oil painting of a cat sitting on a red chair",
];

/** generate with the prompts file; returns the dataset folder. */
async function generate(dir: string, folder: string, env: Record<string, string>) {
  await Deno.writeTextFile(join(dir, "prompts.txt"), PROMPTS.join("\n") + "\n\n");
  const args = [
    ...["--config", folder, "--prompts", join(dir, "prompts.txt")],
    ...["--negative_prompt", "blurry, low quality", "--guidance_scale", "3"],
    ...["--total_samples", "3", "--sampling_batch_size", "3", "--steps", "5"],
    ...["--data_dir", join(dir, "data")],
  ];
  ok(await runTask("generate", args, dir, env), "generate");
  const data = join(dir, "data", "uni_pc_NFE5_edm");
  const manifest = JSON.parse(await Deno.readTextFile(join(data, "manifest.json")));
  assert.deepEqual(manifest.text, { prompts: PROMPTS, negative_prompt: "blurry, low quality" });
  assert.equal(manifest.config.model.condition.guidance_scale, 3);
  // Each sample keeps its prompt, cycled through the file's lines.
  const dataset = await readDataset(data);
  const samples = await Promise.all([0, 1, 2].map((i) => dataset.read(i)));
  assert.deepEqual(samples.map((s) => s.prompt), [PROMPTS[0], PROMPTS[1], PROMPTS[0]]);
  assert.deepEqual(samples[0].c, samples[2].c);
  assert.notDeepEqual(samples[0].c, samples[1].c);
  // Each distinct prompt (and the negative one) encoded once, into the dataset's cache.
  const cached = [...Deno.readDirSync(join(data, "prompt_embeddings"))].length;
  assert.equal(cached, 3);
  // A rerun resumes: nothing generated, no prompt encoded again.
  const again = ok(await runTask("generate", args, dir, env), "generate again");
  assert.match(again, /0 samples generated, 3 already complete/);
  return data;
}

/** train on the dataset; returns the learned grid file. */
async function train(dir: string, folder: string, data: string, extra: string[], env = {}) {
  await Deno.mkdir(dir, { recursive: true });
  const out = ok(
    await runTask(
      "train",
      [
        ...["--config", folder, "--data_dir", data, "--steps", "3"],
        ...["--num_train", "2", "--num_valid", "1"],
        ...["--training_rounds_v1", "1", "--training_rounds_v2", "1"],
        ...["--log_path", join(dir, "logs"), ...extra],
      ],
      dir,
      env,
    ),
    "train",
  );
  const run = [...Deno.readDirSync(join(dir, "logs"))].find((e) => e.isDirectory)!.name;
  const summary = JSON.parse(await Deno.readTextFile(join(dir, "logs", run, "summary.json")));
  assert.ok(Number.isFinite(summary.bestValidLoss), out);
  return join(dir, "logs", run, "grid.json");
}

async function sampleAndExport(dir: string, folder: string, grid: string, env = {}) {
  const png = join(dir, "ld3.png");
  const sampled = ok(
    await runTask(
      "sample",
      [
        ...["--config", folder, "--prompt", PROMPTS[1], "--guidance_scale", "3"],
        ...["--load_from", grid, "--num_samples", "2", "--out", png],
      ],
      dir,
      env,
    ),
    "sample",
  );
  assert.match(sampled, /2 samples, uni_pc file, NFE 3/);
  assert.ok((await Deno.stat(png)).size > 0);
  const comfy = ok(
    await runTask("export_schedule", [grid, "--format", "comfyui", "--config", folder], dir, env),
    "export-schedule",
  );
  // ComfyUI's ManualSigmas: the N + 1 decreasing sigmas of a 3-step grid, then 0.
  const sigmas = comfy.trim().split("\n").at(-1)!.split(",").map(Number);
  assert.equal(sigmas.length, 5); // the grid's 4 sigmas, then 0
  assert.equal(sigmas[4], 0);
  assert.ok(sigmas.every((s, i) => i === 0 || s < sigmas[i - 1]), comfy);
}

for (const precision of ["fp32", "fp16"] as const) {
  Deno.test(`the SD path on the ${precision} twin: generate → train → sample → export → eval`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "ld3-sdpath-" });
    // A copy: runs leave nothing beside the committed fixture.
    const folder = await copyFolder(SD_TINY[precision]);
    const env = { LD3_CACHE_DIR: join(dir, "cache") };
    try {
      const data = await generate(dir, folder, env);
      // The decoder in the loss: L1 on the float32 twin's decoded images, LPIPS on the float16
      // one's (L2, the default, in bench/sd15/run.sh at full size).
      const lpips = join(ROOT, "models/lpips-tiny/lpips-tiny.onnx");
      const loss = precision === "fp32"
        ? ["--loss_type", "L1"]
        : ["--loss_type", "LPIPS", "--lpips_model", lpips];
      const grid = await train(dir, folder, data, loss, env);
      if (precision === "fp32") {
        // --latent_loss skips the decoder: the loss compares the teacher's final latents.
        const latent = await train(join(dir, "latent"), folder, data, ["--latent_loss"], env);
        const run = await Deno.readTextFile(join(latent, "..", "config.yml"));
        assert.match(run, /latentLoss: true/);
        const refused = await runTask(
          "train",
          [
            ...["--config", folder, "--data_dir", data, "--latent_loss", "--loss_type", "LPIPS"],
            ...["--lpips_model", lpips, "--log_path", join(dir, "refused")],
          ],
          dir,
          env,
        );
        assert.match(refused.stderr, /latent_loss measures L2 or L1 on latents/);
      }
      await sampleAndExport(dir, folder, grid, env);
      // eval against the teacher shares its guidance and negative prompt; prompts there are refused.
      const evaluated = ok(
        await runTask(
          "eval",
          [
            ...["--config", folder, "--load_from", grid, "--data_dir", data],
            ...["--num_samples", "3", "--out", join(dir, "eval.json")],
          ],
          dir,
          env,
        ),
        "eval",
      );
      assert.match(evaluated, /L2 to teacher/);
      const refused = await runTask(
        "eval",
        [
          ...["--config", folder, "--load_from", grid, "--data_dir", data, "--prompt", "a cat"],
        ],
        dir,
        env,
      );
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /--prompt and --prompts are for seeded samples/);
    } finally {
      await Deno.remove(dir, { recursive: true });
      await Deno.remove(folder, { recursive: true });
    }
  });
}
