/**
 * The `generate` and `sample` tasks as a user runs them: subprocesses with real arguments,
 * checking exit codes, the one-line error messages and what is (not) left on disk.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { GIF, Image } from "imagescript";
import { readDataset } from "../../lib/io/dataset.ts";
import { gridFromSigmas, toGrid } from "../../lib/step_grid.ts";
import { makeGridFile, saveGridFile } from "../../lib/io/grid_file.ts";
import { veSchedule } from "../../lib/noise_schedule.ts";
import { makeTinyGmm } from "../_tiny_gmm.ts";
import { affineModel } from "../fixtures/tiny_models.ts";
import { runTask } from "../_run_task.ts";

Deno.test("generate task writes a resumable dataset with PNGs", async () => {
  const gmm = await makeTinyGmm();
  try {
    const dataDir = join(gmm.dir, "data");
    const args = [
      "--config",
      gmm.config,
      "--total_samples",
      "3",
      "--sampling_batch_size",
      "2",
      "--steps",
      "3",
      "--solver_name",
      "heun",
      "--skip_type",
      "edm",
      "--seed",
      "1",
      "--save_png",
      "--data_dir",
      dataDir,
    ];
    const first = await runTask("generate", args);
    assert.equal(first.code, 0, first.stderr);
    // Heun spends 2·3 − 1 = 5 evaluations on 3 steps: the folder is named by NFE.
    const dir = join(dataDir, "heun_NFE5_edm");
    assert.match(first.stdout, /3 samples generated, 0 already complete/);
    assert.match(first.stderr, /3\/3 .* samples\/s/);
    const data = await readDataset(dir);
    assert.equal(data.manifest.solver.steps, 3);
    const grid = await Image.decode(await Deno.readFile(join(dir, "grid.png")));
    // Enlarged 21× by default, so that a 4 px image is 84 px.
    assert.equal(grid.width, (3 * (4 + 2) + 2) * 21);
    const again = await runTask("generate", args);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /0 samples generated, 3 already complete/);
  } finally {
    await gmm.cleanup();
  }
});

Deno.test("sample task writes a PNG grid", async () => {
  const gmm = await makeTinyGmm();
  try {
    const out = join(gmm.dir, "s.png");
    const r = await runTask("sample", [
      "--config",
      gmm.config,
      "--solver_name",
      "ipndm",
      "--steps",
      "4",
      "--skip_type",
      "time_uniform",
      "--num_samples",
      "5",
      "--nrow",
      "2",
      "--out",
      out,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const png = await Image.decode(await Deno.readFile(out));
    // 4×4 tiles with 2 px padding, enlarged 21× by default so that each is at least 84 px.
    assert.equal(png.width, (2 * 6 + 2) * 21);
    assert.equal(png.height, (3 * 6 + 2) * 21);
  } finally {
    await gmm.cleanup();
  }
});

Deno.test("sample task --sigmas samples the same images as --load_from of that grid", async () => {
  const gmm = await makeTinyGmm();
  try {
    const sigmas = [80, 9, 1.5, 0.2, 0.002];
    const grid = makeGridFile(veSchedule(), toGrid(gridFromSigmas(veSchedule(), sigmas)), {
      solver: "dpm_solver++",
      source: "manual",
    });
    await saveGridFile(join(gmm.dir, "grid.json"), grid);
    const common = ["--config", gmm.config, "--solver_name", "dpm_solver++", "--num_samples", "4"];
    const a = await runTask("sample", [
      ...common,
      "--sigmas",
      sigmas.join(","),
      "--out",
      join(gmm.dir, "a.png"),
    ]);
    assert.equal(a.code, 0, a.stderr);
    assert.match(a.stdout, /dpm_solver\+\+ sigmas, NFE 4/);
    const b = await runTask("sample", [
      ...common,
      "--load_from",
      join(gmm.dir, "grid.json"),
      "--out",
      join(gmm.dir, "b.png"),
    ]);
    assert.equal(b.code, 0, b.stderr);
    assert.deepEqual(
      await Deno.readFile(join(gmm.dir, "a.png")),
      await Deno.readFile(join(gmm.dir, "b.png")),
    );
  } finally {
    await gmm.cleanup();
  }
});

Deno.test("sample task --gif writes the trajectory as an animated GIF", async () => {
  const gmm = await makeTinyGmm();
  try {
    const out = join(gmm.dir, "s.png");
    const gifPath = join(gmm.dir, "s.gif");
    const r = await runTask("sample", [
      "--config",
      gmm.config,
      "--solver_name",
      "heun",
      "--steps",
      "3",
      "--num_samples",
      "3",
      "--batch_size",
      "2",
      "--nrow",
      "3",
      "--out",
      out,
      "--gif",
      gifPath,
      "--scale",
      "4",
    ]);
    assert.equal(r.code, 0, r.stderr);
    // Heun on 3 steps: 5 evaluations, so 5 prediction frames and the final sample.
    assert.match(r.stdout, /NFE 5; .*s\.gif: 6 frames/);
    const gif = await GIF.decode(await Deno.readFile(gifPath));
    assert.equal(gif.length, 6);
    const png = await Image.decode(await Deno.readFile(out));
    // --scale 4 for both: 3 × 6 + 2 = 20 px wide, 8 px high, times 4. A 26 px caption strip
    // sits above the GIF's grid; captions may make it wider than the grid.
    assert.deepEqual([png.width, png.height], [80, 32]);
    assert.equal(gif.height, 26 + png.height);
    assert.ok(gif.width >= png.width, `width ${gif.width}`);
    assert.equal(gif[5].duration, 1500);
  } finally {
    await gmm.cleanup();
  }
});

Deno.test("generate task: bad input gives one error line, exit 1 and no dataset", async (t) => {
  const gmm = await makeTinyGmm();
  try {
    await Deno.writeTextFile(join(gmm.dir, "broken.yml"), "name: [unclosed\nmodel: {");
    const wrongType = (await Deno.readTextFile(gmm.config)).replace(
      "shape: [1, 4, 4]",
      'shape: "1x4x4"',
    );
    await Deno.writeTextFile(join(gmm.dir, "wrong_type.yml"), wrongType);
    const wrongInput = (await Deno.readTextFile(gmm.config)).replace("{ x: x,", "{ x: image,");
    await Deno.writeTextFile(join(gmm.dir, "wrong_input.yml"), wrongInput);
    const cases: [string, string[], RegExp][] = [
      ["unknown solver", ["--solver_name", "rk4"], /--solver_name must be one of .*: got "rk4"/],
      [
        "unknown skip type",
        ["--skip_type", "cosine"],
        /--skip_type must be one of .*: got "cosine"/,
      ],
      ["malformed YAML", ["--config", join(gmm.dir, "broken.yml")], /malformed YAML/],
      ["wrong-typed config field", ["--config", join(gmm.dir, "wrong_type.yml")], /"shape"/],
      ["ONNX input mismatch", ["--config", join(gmm.dir, "wrong_input.yml")], /"image"/],
      ["missing config", ["--config", join(gmm.dir, "nope.yml")], /nope\.yml/],
      ["missing grid file", ["--load_from", join(gmm.dir, "grid.json")], /grid\.json/],
      ["non-integer option", ["--steps", "four"], /--steps must be an integer: got "four"/],
      ["unknown option", ["--stpes", "4"], /stpes/],
      [
        "two grids",
        ["--skip_type", "edm", "--sigmas", "80,1,0.002"],
        /Give one of --skip_type, --load_from, --sigmas: got --skip_type and --sigmas/,
      ],
      ["unordered sigma list", ["--sigmas", "1,80,0.002"], /strictly decreasing/],
      [
        "sigma list and steps",
        ["--sigmas", "80,1,0.002", "--steps", "4"],
        /steps 4 does not match/,
      ],
    ];
    for (const [name, extra, message] of cases) {
      await t.step(name, async () => {
        const dataDir = join(gmm.dir, "data");
        const args = ["--config", gmm.config, "--total_samples", "2", "--data_dir", dataDir];
        const r = await runTask("generate", [...args, ...extra]);
        assert.equal(r.code, 1);
        const lines = r.stderr.trim().split("\n");
        assert.equal(lines.length, 1, r.stderr);
        assert.match(lines[0], /^error: /);
        assert.match(lines[0], message);
        assert.doesNotMatch(r.stderr, /^\s+at .*:\d+:\d+\)?$/m); // no stack trace
        await assert.rejects(Deno.stat(dataDir), Deno.errors.NotFound);
      });
    }
  } finally {
    await gmm.cleanup();
  }
});

Deno.test("sample task: missing --config is a one-line error", async () => {
  const r = await runTask("sample", ["--steps", "3"]);
  assert.equal(r.code, 1);
  assert.equal(r.stderr.trim(), "error: --config is required: the model's YAML config");
});

Deno.test("bench task times a fixed-batch export the way the adapter calls it", async () => {
  // A network exported for exactly 2 samples: 16 samples are 8 calls per evaluation.
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(join(dir, "model.onnx"), affineModel({ batch: 2 }));
    await Deno.writeTextFile(
      join(dir, "c.yml"),
      "name: fixed2\nmodel: { path: model.onnx, inputs: { x: x, t: t }, output: out, " +
        "prediction: x0, time_input: t }\nschedule: { kind: ve }\nshape: [2, 3]\n",
    );
    const r = await runTask("bench", [
      join(dir, "c.yml"),
      "--total_samples",
      "16",
      "--repeats",
      "1",
      "--steps",
      "2",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^\| fixed2 \| 2 \| [\d.]+ /m);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
