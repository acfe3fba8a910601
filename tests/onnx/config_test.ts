import assert from "node:assert/strict";
import { join, resolve } from "node:path";
import {
  ConfigError,
  loadModelConfig,
  parseModelConfig,
  scheduleFromConfig,
} from "../../lib/onnx/config.ts";
import { encodeNpy } from "../../lib/io/npy.ts";

const BASE = `
name: tiny
model:
  path: model.onnx
  inputs: { x: x, t: t }
  output: out
  prediction: eps
  time_input: t
schedule: { kind: vp_linear }
shape: [2, 3]
`;

/** Parse `BASE` with one line replaced (or removed when `to` is empty). */
function variant(from: string, to: string): string {
  assert.ok(BASE.includes(from), `fixture lacks ${from}`);
  return BASE.replace(from, to);
}

function assertConfigError(text: string, field: string, message: RegExp): void {
  assert.throws(
    () => parseModelConfig(text, "configs/x.yml"),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e}`);
      assert.equal(e.field, field);
      assert.match(e.message, message);
      return true;
    },
  );
}

Deno.test("loadModelConfig() reads the bundled gmm-mnist config with paths resolved", async () => {
  const config = await loadModelConfig("configs/gmm-mnist.yml");
  assert.equal(config.name, "gmm-mnist");
  assert.equal(config.model.path, resolve("models/gmm-mnist/model.onnx"));
  assert.deepEqual(config.model.inputs, { x: "x", t: "sigma" });
  assert.equal(config.model.prediction, "x0");
  assert.equal(config.model.time_input, "sigma");
  assert.deepEqual(config.schedule, { kind: "ve", sigma_max: 80, sigma_min: 0.002 });
  assert.deepEqual(config.shape, [1, 28, 28]);
  assert.equal(config.model.condition, undefined);
  const schedule = await scheduleFromConfig(config);
  assert.equal(schedule.kind, "ve");
  assert.equal(schedule.tMax, 80);
});

Deno.test("parseModelConfig() fills defaults", () => {
  const config = parseModelConfig(BASE, "/a/b/c.yml");
  assert.equal(config.model.path, "/a/b/model.onnx");
  assert.equal(config.model.time_shape, "batch");
  assert.deepEqual(config.schedule, {
    kind: "vp_linear",
    beta0: 0.1,
    beta1: 20,
    t_max: 1,
    t_min: 1e-3,
  });
  assert.deepEqual(config.data_range, [-1, 1]);
  assert.equal(config.device, "cpu");
  assert.equal(config.batch_size, 16);
  assert.equal(config.threads, undefined);
  assert.equal(parseModelConfig(`${BASE}threads: 3\n`, "c.yml").threads, 3);
});

Deno.test("parseModelConfig() names the field and value of an unknown enum value", () => {
  assert.throws(
    () => parseModelConfig(variant("prediction: eps", "prediction: foo"), "configs/x.yml"),
    {
      name: "ConfigError",
      message:
        'Invalid config configs/x.yml: field "model.prediction" must be one of eps, x0, v, flow: got "foo"',
    },
  );
  assertConfigError(
    variant("time_input: t", "time_input: seconds"),
    "model.time_input",
    /must be one of sigma, t, discrete, lambda, log_sigma_quarter: got "seconds"/,
  );
  assertConfigError(
    variant("{ kind: vp_linear }", "{ kind: vp_quadratic }"),
    "schedule.kind",
    /must be one of ve, vp_linear, vp_discrete, vp_cosine, flow: got "vp_quadratic"/,
  );
});

Deno.test("parseModelConfig() reports malformed YAML", () => {
  assertConfigError(
    "name: [unclosed\nmodel: {",
    "",
    /Invalid config configs\/x.yml: malformed YAML/,
  );
  assertConfigError("- just\n- a list\n", "", /must be a mapping: got \["just","a list"\]/);
});

Deno.test("parseModelConfig() reports a missing field by its path", () => {
  assertConfigError(
    variant("  prediction: eps\n", ""),
    "model.prediction",
    /field "model.prediction" is required/,
  );
  assertConfigError(variant("name: tiny\n", ""), "name", /field "name" is required/);
  assertConfigError(variant("shape: [2, 3]\n", ""), "shape", /field "shape" is required/);
  assertConfigError(
    variant("schedule: { kind: vp_linear }\n", ""),
    "schedule",
    /"schedule" is required/,
  );
  assertConfigError(variant("{ x: x, t: t }", "{ x: x }"), "model.inputs.t", /is required/);
});

Deno.test("parseModelConfig() reports a wrong type with the value", () => {
  assertConfigError(
    variant("shape: [2, 3]", 'shape: "2x3"'),
    "shape",
    /non-empty list of positive integers: got "2x3"/,
  );
  assertConfigError(variant("shape: [2, 3]", "shape: [2, 0]"), "shape", /got \[2,0\]/);
  assertConfigError(
    `${BASE}batch_size: 2.5\n`,
    "batch_size",
    /must be a positive integer: got 2.5/,
  );
  assertConfigError(`${BASE}threads: 0\n`, "threads", /must be a positive integer: got 0/);
  assertConfigError(
    variant("{ kind: vp_linear }", "{ kind: ve, sigma_max: eighty }"),
    "schedule.sigma_max",
    /must be a finite number: got "eighty"/,
  );
  assertConfigError(
    variant("{ kind: vp_linear }", "{ kind: ve, sigma_max: 1, sigma_min: 2 }"),
    "schedule.sigma_max",
    /must exceed sigma_min 2: got 1/,
  );
  assertConfigError(`${BASE}data_range: [1, 0]\n`, "data_range", /lo < hi: got \[1,0\]/);
  assertConfigError(variant("output: out", "output: 3"), "model.output", /non-empty string: got 3/);
  assertConfigError(
    variant("  inputs: { x: x, t: t }", "  inputs: x"),
    "model.inputs",
    /must be a mapping: got "x"/,
  );
});

Deno.test("parseModelConfig() rejects unknown fields and inconsistent choices", () => {
  assertConfigError(`${BASE}bach_size: 4\n`, "bach_size", /is not a known field/);
  assertConfigError(
    variant("prediction: eps", "prediction: eps\n  predicton: x0"),
    "model.predicton",
    /is not a known field \(expected one of path, inputs/,
  );
  assertConfigError(
    variant("{ kind: vp_linear }", "{ kind: ve, t_max: 3 }"),
    "schedule.t_max",
    /is not a known field/,
  );
  assertConfigError(
    variant("time_input: t", "time_input: discrete"),
    "model.time_input",
    /needs schedule.kind vp_discrete: got "vp_linear"/,
  );
  assertConfigError(variant("{ x: x, t: t }", "{ x: x, t: x }"), "model.inputs.t", /must differ/);
  assertConfigError(
    variant("{ kind: vp_linear }", "{ kind: flow, t_max: 1 }"),
    "schedule.t_max",
    /must be below 1: got 1/,
  );
});

Deno.test("loadModelConfig() reports a model path that does not exist", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "c.yml");
    await Deno.writeTextFile(path, BASE);
    await assert.rejects(() => loadModelConfig(path), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.equal(e.field, "model.path");
      assert.ok(
        e.message.includes(`names a file that does not exist: ${join(dir, "model.onnx")}`),
        e.message,
      );
      return true;
    });
    await assert.rejects(
      () => loadModelConfig(join(dir, "nope.yml")),
      /Invalid config .*nope.yml: cannot be read/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("scheduleFromConfig() reads vp_discrete alphas_cumprod from a .npy next to the config", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(join(dir, "model.onnx"), new Uint8Array([0]));
    const cumprod = Float64Array.from({ length: 10 }, (_, n) => 0.99 - 0.09 * n);
    await Deno.writeFile(join(dir, "ac.npy"), encodeNpy(cumprod, [10]));
    const text = variant("{ kind: vp_linear }", "{ kind: vp_discrete, alphas_cumprod: ac.npy }");
    await Deno.writeTextFile(join(dir, "c.yml"), text);
    const config = await loadModelConfig(join(dir, "c.yml"));
    const schedule = await scheduleFromConfig(config);
    assert.equal(schedule.kind, "vp_discrete");
    assert.equal(schedule.tMin, 0.1);
    // At knot t_n = n/Nd, α² = ᾱ_n.
    assert.ok(Math.abs(schedule.alpha(0.3) ** 2 - cumprod[2]) < 1e-12);

    await Deno.writeFile(join(dir, "ac.npy"), encodeNpy(cumprod, [2, 5]));
    await assert.rejects(() => loadModelConfig(join(dir, "c.yml")), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.equal(e.field, "schedule.alphas_cumprod");
      assert.match(e.message, /1-D float array: got float64 \[2,5\]/);
      return true;
    });

    const preset = parseModelConfig(
      variant("{ kind: vp_linear }", "{ kind: vp_discrete, betas: linear, num_steps: 100 }"),
      join(dir, "c.yml"),
    );
    assert.equal((await scheduleFromConfig(preset)).tMin, 0.01);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("parseModelConfig() reads the eval section with defaults and paths resolved", () => {
  assert.equal(parseModelConfig(BASE, "/a/b/c.yml").eval, undefined);
  const full = parseModelConfig(
    BASE + `eval:
  features: { path: ../f/model.onnx, input: img, output: feat, input_range: "[0,255]" }
  fid_ref: refs/test.npz
  lpips: ../lpips/vgg.onnx
`,
    "/a/b/c.yml",
  );
  assert.deepEqual(full.eval, {
    features: { path: "/a/f/model.onnx", input: "img", output: "feat", input_range: "[0,255]" },
    fid_ref: "/a/b/refs/test.npz",
    lpips: "/a/lpips/vgg.onnx",
  });
  const defaults = parseModelConfig(BASE + "eval: { features: { path: f.onnx } }\n", "/a/c.yml");
  assert.deepEqual(defaults.eval, {
    features: { path: "/a/f.onnx", input: "image", output: "features", input_range: "[-1,1]" },
  });
  // A plain string is short for { path }.
  const short = parseModelConfig(BASE + "eval: { features: f.onnx, fid_ref: r.npz }\n", "/a/c.yml");
  assert.equal(short.eval?.features?.path, "/a/f.onnx");
  assert.equal(short.eval?.features?.output, "features");
  assert.equal(short.eval?.fid_ref, "/a/r.npz");
});

Deno.test("parseModelConfig() names the bad field of an eval section", () => {
  assertConfigError(
    BASE + "eval: { features: f.onnx, fid: r.npz }\n",
    "eval.fid",
    /is not a known field \(expected one of features, fid_ref, lpips\)/,
  );
  assertConfigError(
    BASE + "eval: { features: { path: f.onnx, range: x } }\n",
    "eval.features.range",
    /is not a known field \(expected one of path, input, output, input_range\)/,
  );
  assertConfigError(
    BASE + 'eval: { features: { path: f.onnx, input_range: "[0,2]" } }\n',
    "eval.features.input_range",
    /must be one of \[-1,1\], \[0,1\], \[0,255\]: got "\[0,2\]"/,
  );
  assertConfigError(
    BASE + "eval: { features: { input: image } }\n",
    "eval.features.path",
    /is required/,
  );
  assertConfigError(BASE + "eval: { fid_ref: 3 }\n", "eval.fid_ref", /non-empty string: got 3/);
  assertConfigError(BASE + "eval: [a]\n", "eval", /must be a mapping: got \["a"\]/);
});

Deno.test("loadModelConfig() checks the files of the eval section", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(join(dir, "model.onnx"), new Uint8Array([0]));
    await Deno.writeFile(join(dir, "f.onnx"), new Uint8Array([0]));
    const path = join(dir, "c.yml");
    await Deno.writeTextFile(path, BASE + "eval: { features: f.onnx, fid_ref: ref.npz }\n");
    await assert.rejects(() => loadModelConfig(path), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.equal(e.field, "eval.fid_ref");
      assert.ok(e.message.includes(`does not exist: ${join(dir, "ref.npz")}`), e.message);
      return true;
    });
    await Deno.writeFile(join(dir, "ref.npz"), new Uint8Array([0]));
    assert.equal((await loadModelConfig(path)).eval?.fid_ref, join(dir, "ref.npz"));
    await Deno.writeTextFile(path, BASE + "eval: { lpips: lpips.onnx }\n");
    await assert.rejects(
      () => loadModelConfig(path),
      (e: unknown) => e instanceof ConfigError && e.field === "eval.lpips",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadModelConfig() reads the bundled mnist-edm config's eval section", async () => {
  const config = await loadModelConfig("configs/mnist-edm.yml");
  assert.deepEqual(config.eval, {
    features: {
      path: resolve("models/mnist-features/model.onnx"),
      input: "image",
      output: "features",
      input_range: "[-1,1]",
    },
    fid_ref: resolve("models/mnist-features/mnist_test_stats.npz"),
  });
});
