/**
 * Bad data and bad networks, and runs that collide: corrupt and truncated sample files, a
 * network whose output is NaN/Inf or misshapen, two evaluations or two identical generates at
 * once. Each case asserts the exit code, one `error:` line naming what is wrong, that nothing
 * was lost or half-written and that no stray file is left.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { encodeNpz } from "../../lib/io/npz.ts";
import { hashTree, makeTinyGmm } from "../_tiny_gmm.ts";
import { linearFeatureModel, reshapingModel } from "../fixtures/tiny_models.ts";
import {
  assertFailed,
  assertNoStrayFiles,
  assertOk,
  datasetDir,
  exists,
  generateArgs,
  listFiles,
  nanModel,
  runTask,
  spawnTask,
  waitFor,
  writeModel,
} from "./_harness.ts";

Deno.test("truncated and corrupted samples are named by readers and made again by generate", async () => {
  const gmm = await makeTinyGmm();
  try {
    const data = join(gmm.dir, "data");
    const args = generateArgs(gmm.config, data, ["--total_samples", "16"]);
    assertOk(await runTask("generate", args));
    const dir = datasetDir(data);
    const before = await hashTree(dir);
    const path = (i: number) => join(dir, "samples", `${String(i).padStart(6, "0")}.npz`);
    const three = await Deno.readFile(path(3));
    await Deno.writeFile(path(3), three.subarray(0, 100)); // truncated
    const nine = await Deno.readFile(path(9));
    // One flipped byte in the teacher output's float data (after the entry's name and its
    // .npy header): only the CRC tells.
    const name = new TextDecoder().decode(nine).indexOf("x.npy");
    nine[name + "x.npy".length + 128 + 10] ^= 0x40;
    await Deno.writeFile(path(9), nine);

    assertFailed(
      await runTask("train", [
        ...["--config", gmm.config, "--data_dir", dir, "--log_path", join(gmm.dir, "logs")],
        ...["--num_train", "6", "--num_valid", "6", "--steps", "3", "--quiet"],
      ]),
      /samples\/000003\.npz: /,
    );
    assert.equal(await exists(join(gmm.dir, "logs")), false);
    const out = join(gmm.dir, "eval", "e.json");
    assertFailed(
      await runTask("eval", [
        "--config",
        gmm.config,
        "--data_dir",
        dir,
        "--steps",
        "3",
        "--out",
        out,
      ]),
      /samples\/000003\.npz: /,
    );
    assert.equal(await exists(join(gmm.dir, "eval")), false);

    const rerun = await runTask("generate", args);
    assertOk(rerun);
    assert.match(rerun.stdout, /2 samples generated, 14 already complete/);
    assert.deepEqual(await hashTree(dir), before);
    await assertNoStrayFiles(gmm.dir);
  } finally {
    await gmm.cleanup();
  }
});

Deno.test("a network with NaN/Inf or misshapen output: sample and eval fail, write nothing", async () => {
  const root = await Deno.makeTempDir({ prefix: "ld3-fault-" });
  try {
    const shape = [1, 4, 4];
    const nan = await writeModel(join(root, "nan"), nanModel(shape), shape);
    const misshapen = await writeModel(
      join(root, "shape"),
      reshapingModel(shape, [1, 2, 8]),
      shape,
    );
    // FID against made-up statistics: a metric any model can be scored on.
    const features = join(root, "features.onnx");
    await Deno.writeFile(features, linearFeatureModel(shape, 2, (i) => (i % 3) - 1));
    const ref = join(root, "ref.npz");
    await Deno.writeFile(
      ref,
      encodeNpz({
        mu: { data: new Float64Array(2), shape: [2] },
        sigma: { data: Float64Array.of(1, 0, 0, 1), shape: [2, 2] },
      }),
    );
    const cases: [string, RegExp][] = [
      [
        nan,
        /^error: Model "fault" produced a non-finite output at solver step 0, t=80: .* holds (-?Infinity|NaN)/,
      ],
      [misshapen, /output "out" has dims \[\d+,1,2,8\], expected \[\d+,1,4,4\]/],
    ];
    for (const [config, error] of cases) {
      const out = join(root, "out");
      assertFailed(
        await runTask("sample", ["--config", config, "--steps", "4", "--out", join(out, "s.png")]),
        error,
      );
      assertFailed(
        await runTask("eval", [
          ...["--config", config, "--steps", "4", "--num_samples", "8"],
          ...["--features", features, "--fid_ref", ref, "--out", join(out, "e.json")],
        ]),
        error,
      );
      assert.equal(await exists(out), false, "an output folder was left");
    }
    await assertNoStrayFiles(root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a second eval into a running one's --out fails at once; the first finishes", async () => {
  const gmm = await makeTinyGmm();
  try {
    const out = join(gmm.dir, "eval", "e.json");
    const args = [
      ...["--config", gmm.config, "--steps", "4", "--exact_gmm", "--num_samples", "3000"],
      ...["--batch_size", "10", "--out", out],
    ];
    const first = spawnTask("eval", args);
    await waitFor(() => exists(join(gmm.dir, "eval", ".e.json.lock")), "the first eval's lock");
    assertFailed(
      await runTask("eval", args),
      new RegExp(`e\\.json is in use by eval, process ${first.pid} `),
    );
    assertOk(await first.done);
    assert.equal(JSON.parse(await Deno.readTextFile(out)).options.num_samples, 3000);
    assert.deepEqual(await listFiles(join(gmm.dir, "eval")), ["e.json"]);
  } finally {
    await gmm.cleanup();
  }
});

Deno.test("two identical generates at once: one works, one fails, the dataset is whole", async () => {
  const gmm = await makeTinyGmm();
  try {
    const args = (dir: string) => generateArgs(gmm.config, dir, ["--total_samples", "600"]);
    assertOk(await runTask("generate", args(join(gmm.dir, "ref"))));
    const data = join(gmm.dir, "data");
    const runs = await Promise.all([0, 1].map(() => spawnTask("generate", args(data)).done));
    const failed = runs.filter((r) => r.code !== 0);
    // Usually they overlap and one is refused; a very late second finds the work done.
    assert.ok(failed.length <= 1, runs.map((r) => r.stderr).join("\n"));
    for (const r of failed) assertFailed(r, /is in use by generate, process \d+/);
    const { "manifest.json": _a, ...got } = await hashTree(datasetDir(data));
    const { "manifest.json": _b, ...want } = await hashTree(datasetDir(join(gmm.dir, "ref")));
    assert.deepEqual(got, want);
    await assertNoStrayFiles(data);
  } finally {
    await gmm.cleanup();
  }
});
