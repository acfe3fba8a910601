import assert from "node:assert/strict";
import { join } from "node:path";
import { readDataset } from "../../lib/io/dataset.ts";
import { loadModel } from "../../lib/onnx/model.ts";
import { conditionTable, sampleImages } from "../../lib/pipelines/sampling.ts";
import { conditionalModel } from "../fixtures/tiny_models.ts";
import { runTask } from "../_run_task.ts";

/** The conditional fixture (x [3], condition y [2]) behind a config, loaded. */
async function withConditional(fn: (config: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(join(dir, "model.onnx"), conditionalModel());
    await Deno.writeTextFile(
      join(dir, "c.yml"),
      "name: cond\nmodel: { path: model.onnx, inputs: { x: x, t: t }, output: out, " +
        "prediction: x0, time_input: t, condition: { input: y, shape: [2] } }\n" +
        "schedule: { kind: ve }\nshape: [3]\n",
    );
    await fn(join(dir, "c.yml"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("class labels become one-hot conditions, the same as the equivalent table", async () => {
  await withConditional(async (config) => {
    const model = await loadModel(config);
    try {
      assert.deepEqual(conditionTable(model, { labels: [1, 0, 1] }), {
        data: Float32Array.of(0, 1, 1, 0, 0, 1),
        rows: 3,
      });
      const common = { solverName: "euler", steps: 3, numSamples: 4 } as const;
      const fromLabels = await sampleImages(model, { ...common, condition: { labels: [1, 0] } });
      const fromTable = await sampleImages(model, {
        ...common,
        condition: { data: [0, 1, 1, 0], shape: [2, 2] },
      });
      assert.deepEqual(fromLabels.images, fromTable.images);
      // No condition: classes 0, 1, 0, 1, … — labels [1, 0] give other images.
      const byDefault = await sampleImages(model, common);
      assert.deepEqual(
        byDefault.images,
        (await sampleImages(model, { ...common, condition: { labels: [0, 1] } })).images,
      );
      assert.notDeepEqual(byDefault.images, fromLabels.images);
      assert.throws(
        () => conditionTable(model, { labels: [2] }),
        /labels must be classes 0…1: got 2/,
      );
      assert.throws(() => conditionTable(model, { labels: [] }), /at least one class/);
    } finally {
      await model.close();
    }
  });
});

Deno.test("generate task --labels stores the given classes; with --condition it is refused", async () => {
  await withConditional(async (config) => {
    const dir = join(config, "..");
    const ok = await runTask("generate", [
      "--config",
      config,
      "--labels",
      "1,0",
      "--total_samples",
      "3",
      "--steps",
      "2",
      "--data_dir",
      join(dir, "data"),
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    const data = await readDataset(join(dir, "data", "uni_pc_NFE2_edm"));
    const labels = [];
    for (let i = 0; i < 3; i++) labels.push(Array.from((await data.read(i)).c!));
    assert.deepEqual(labels, [[0, 1], [1, 0], [0, 1]]);

    const both = await runTask("sample", [
      "--config",
      config,
      "--labels",
      "1",
      "--condition",
      join(dir, "c.npy"),
    ]);
    assert.equal(both.code, 1);
    assert.equal(
      both.stderr.trim(),
      "error: Give one of --condition, --labels: got --condition and --labels",
    );
    const bad = await runTask("sample", ["--config", config, "--labels", "1,x"]);
    assert.match(bad.stderr, /--labels must be a comma-separated list of integers: got "1,x"/);
  });
});
