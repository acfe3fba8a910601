import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { createGmm, gmmDenoiseVe } from "../../lib/gmm.ts";
import { loadModelConfig, parseModelConfig } from "../../lib/onnx/config.ts";
import { ort } from "../../lib/deps.ts";
import { type LoadedModel, loadModel, NonFiniteError, onnxDenoiser } from "../../lib/onnx/model.ts";
import { encodeNpy } from "../../lib/io/npy.ts";
import { ElemType } from "../../lib/onnx/build.ts";
import { defaultThreads } from "../../lib/onnx/session.ts";
import { normalNoise } from "../../lib/rng.ts";
import {
  discreteBetas,
  flowSchedule,
  type NoiseSchedule,
  veSchedule,
  vpCosineSchedule,
  vpDiscreteSchedule,
  vpLinearSchedule,
} from "../../lib/noise_schedule.ts";
import { buildGmmMnist, COMPONENT_STD, gmmMnistMeans } from "../../models/gmm-mnist/build.ts";
import {
  affineModel,
  COND_W,
  conditionalModel,
  doublingDecoder,
  externalWeight,
  externalWeightsModel,
  nonFiniteModel,
  reshapingModel,
} from "../fixtures/tiny_models.ts";

/** Write `files` into a fresh temp dir and return its path. */
async function tempFiles(files: Record<string, Uint8Array | string>): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "ld3_model_test_" });
  for (const [name, content] of Object.entries(files)) {
    if (typeof content === "string") await Deno.writeTextFile(join(dir, name), content);
    else await Deno.writeFile(join(dir, name), content);
  }
  return dir;
}

function configYaml(fields: {
  prediction?: string;
  timeInput?: string;
  schedule?: string;
  shape?: string;
  extra?: string;
  modelExtra?: string;
}): string {
  return [
    "name: tiny",
    "model:",
    "  path: model.onnx",
    "  inputs: { x: x, t: t }",
    "  output: out",
    `  prediction: ${fields.prediction ?? "x0"}`,
    `  time_input: ${fields.timeInput ?? "t"}`,
    ...(fields.modelExtra ? [fields.modelExtra] : []),
    `schedule: ${fields.schedule ?? "{ kind: ve }"}`,
    `shape: ${fields.shape ?? "[2, 3]"}`,
    ...(fields.extra ? [fields.extra] : []),
    "",
  ].join("\n");
}

/** Load a model from ONNX bytes + config text in a temp dir, run `fn`, clean up. */
async function withModel(
  onnx: Uint8Array,
  yaml: string,
  fn: (model: LoadedModel, dir: string) => Promise<void>,
  extraFiles: Record<string, Uint8Array | string> = {},
): Promise<void> {
  const dir = await tempFiles({ "model.onnx": onnx, "c.yml": yaml, ...extraFiles });
  try {
    const model = await loadModel(join(dir, "c.yml"));
    try {
      await fn(model, dir);
    } finally {
      await model.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function assertClose(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  tol: number,
  what = "",
): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    assert.ok(
      err <= tol * (1 + Math.abs(want[i])),
      `${what}[${i}]: got ${got[i]}, want ${want[i]}`,
    );
  }
}

const X = Float64Array.from(normalNoise(11, 0, 18)); // batch 3 of shape [2, 3]

/** Raw output of `affineModel` in float64 from the float32 inputs the network sees. */
function affineRaw(x: Float64Array, tInput: number): Float64Array {
  return x.map((v) => 0.5 * Math.fround(v) + 0.25 * Math.fround(tInput));
}

Deno.test("loadModel() converts eps, v, flow and x0 outputs to data predictions", async () => {
  const cases: {
    prediction: string;
    timeInput: string;
    scheduleYaml: string;
    schedule: NoiseSchedule;
    t: number;
    tInput: (s: NoiseSchedule, t: number) => number;
    data: (x: number, raw: number, s: NoiseSchedule, t: number) => number;
    timeType?: number;
    timeRank?: 0 | 1;
    timeShape?: string;
  }[] = [
    {
      prediction: "eps",
      timeInput: "t",
      scheduleYaml: "{ kind: vp_linear }",
      schedule: vpLinearSchedule(),
      t: 0.4,
      tInput: (_, t) => t,
      data: (x, e, s, t) => (x - s.sigma(t) * e) / s.alpha(t),
    },
    {
      prediction: "v",
      timeInput: "lambda",
      scheduleYaml: "{ kind: vp_cosine }",
      schedule: vpCosineSchedule(),
      t: 0.3,
      tInput: (s, t) => s.lambda(t),
      data: (x, v, s, t) => s.alpha(t) * x - s.sigma(t) * v,
    },
    {
      prediction: "flow",
      timeInput: "t",
      scheduleYaml: "{ kind: flow }",
      schedule: flowSchedule(),
      t: 0.6,
      tInput: (_, t) => t,
      data: (x, v, _, t) => x - t * v,
    },
    {
      prediction: "x0",
      timeInput: "log_sigma_quarter",
      scheduleYaml: "{ kind: ve }",
      schedule: veSchedule(),
      t: 2.5,
      tInput: (_, t) => 0.25 * Math.log(t),
      data: (_, raw) => raw,
    },
    {
      prediction: "eps",
      timeInput: "sigma",
      scheduleYaml: "{ kind: vp_linear }",
      schedule: vpLinearSchedule(),
      t: 0.7,
      tInput: (s, t) => s.sigma(t) / s.alpha(t),
      data: (x, e, s, t) => (x - s.sigma(t) * e) / s.alpha(t),
    },
    {
      // DDPM-style: int64 step index (t − 1/Nd)·Nd = 499 for t = 0.5, Nd = 1000.
      prediction: "eps",
      timeInput: "discrete",
      scheduleYaml: "{ kind: vp_discrete, betas: scaled_linear }",
      schedule: vpDiscreteSchedule({ betas: discreteBetas("scaled_linear") }),
      t: 0.5,
      tInput: () => 499,
      data: (x, e, s, t) => (x - s.sigma(t) * e) / s.alpha(t),
      timeType: ElemType.int64,
    },
    {
      prediction: "x0",
      timeInput: "sigma",
      scheduleYaml: "{ kind: ve }",
      schedule: veSchedule(),
      t: 3,
      tInput: (_, t) => t,
      data: (_, raw) => raw,
      timeRank: 0,
      timeShape: "scalar",
    },
  ];
  for (const c of cases) {
    const onnx = affineModel({ timeType: c.timeType, timeRank: c.timeRank });
    const yaml = configYaml({
      prediction: c.prediction,
      timeInput: c.timeInput,
      schedule: c.scheduleYaml,
      modelExtra: c.timeShape ? `  time_shape: ${c.timeShape}` : undefined,
    });
    await withModel(onnx, yaml, async (model) => {
      const got = await model.denoiser.denoise(X, c.t);
      const raw = affineRaw(X, c.tInput(c.schedule, c.t));
      const want = X.map((x, i) => c.data(x, raw[i], c.schedule, c.t));
      assertClose(got, want, 1e-5, `${c.prediction}/${c.timeInput}`);
      assert.equal(model.denoiser.schedule.kind, c.schedule.kind);
    });
  }
});

Deno.test("loadModel() rejects ONNX inputs and outputs that do not match the config", async () => {
  const cases: [Uint8Array, string, RegExp[]][] = [
    [
      affineModel({ names: { x: "sample", t: "timestep", out: "y" } }),
      configYaml({}),
      [
        /input "x" \(model.inputs.x\) not found \(available: "sample", "timestep"\)/,
        /input "t" \(model.inputs.t\) not found/,
        /output "out" \(model.output\) not found \(available: "y"\)/,
        /input "sample" float \[batch, 2, 3\] is not named in the config/,
      ],
    ],
    [affineModel({ shape: [6] }), configYaml({}), [
      /input "x" \(model.inputs.x\): expected rank 3, found float \[batch, 6\]/,
      /output "out" \(model.output\): expected rank 3/,
    ]],
    [affineModel({ shape: [2, 4] }), configYaml({}), [
      /input "x" \(model.inputs.x\): expected \[batch, 2, 3\], found float \[batch, 2, 4\]/,
    ]],
    [affineModel({ timeRank: 0 }), configYaml({}), [
      /input "t" \(model.inputs.t\): expected rank 1, found float \[\]/,
    ]],
    // An export that made x's batch dynamic but not t's fails here, not at the first call.
    [affineModel({ timeBatch: 2 }), configYaml({}), [
      /input "t" \(model.inputs.t\): batch axis fixed at 2, but the batch of "x" is dynamic; export both with the same batch axis/,
    ]],
    [affineModel({ outBatch: 4 }), configYaml({}), [
      /output "out" \(model.output\): batch axis fixed at 4, but the batch of "x" is dynamic/,
    ]],
    [affineModel({ timeBatch: 1 }), configYaml({}), [
      /batch axis fixed at 1, but the batch of "x" is dynamic; a network that takes one time per call wants model.time_shape: scalar/,
    ]],
    [affineModel({ timeType: ElemType.int32 }), configYaml({}), [
      /input "t" \(model.inputs.t\): expected element type float or double or int64, found int32 \[batch\]/,
    ]],
  ];
  for (const [onnx, yaml, patterns] of cases) {
    const dir = await tempFiles({ "model.onnx": onnx, "c.yml": yaml });
    try {
      await assert.rejects(() => loadModel(join(dir, "c.yml")), (e: unknown) => {
        assert.ok(e instanceof TypeError, String(e));
        assert.ok(e.message.includes(join(dir, "model.onnx")), e.message);
        for (const p of patterns) assert.match(e.message, p);
        return true;
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
});

Deno.test("denoise() refuses an output of the right size but the wrong dims, naming the file", async () => {
  const yaml = configYaml({ shape: "[1, 28, 28]" });
  await withModel(reshapingModel([1, 28, 28], [1, 14, 56]), yaml, async (model) => {
    await assert.rejects(
      () => model.denoiser.denoise(new Float64Array(2 * 784), 1),
      /^TypeError: ONNX model .*model\.onnx: output "out" has dims \[2,1,14,56\], expected \[2,1,28,28\]/,
    );
  });
  // The same network with the shape it really outputs is fine.
  await withModel(reshapingModel([1, 28, 28], [1, 28, 28]), yaml, async (model) => {
    assert.equal((await model.denoiser.denoise(new Float64Array(784), 1)).length, 784);
  });
});

Deno.test("loadModel() names the file that is not an ONNX model", async () => {
  const dir = await tempFiles({ "model.onnx": "not a model\n", "c.yml": configYaml({}) });
  try {
    await assert.rejects(
      () => loadModel(join(dir, "c.yml")),
      new RegExp(`^TypeError: Not an ONNX model: ${join(dir, "model.onnx")}: `),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("denoise() throws NonFiniteError with the step, t and model for x/0 and Log(-1)", async () => {
  const yaml = configYaml({ shape: "[3]" });
  await withModel(nonFiniteModel("div0"), yaml, async (model) => {
    await assert.rejects(
      () => model.denoiser.denoise(Float64Array.of(1, 2, 3), 0.5, { step: 3 }),
      (e: unknown) => {
        assert.ok(e instanceof NonFiniteError, String(e));
        assert.equal(e.step, 3);
        assert.equal(e.t, 0.5);
        assert.equal(e.model, "tiny");
        assert.match(
          e.message,
          /Model "tiny" .* solver step 3, t=0.5: output "out" .* holds Infinity/,
        );
        return true;
      },
    );
  });
  await withModel(nonFiniteModel("log"), yaml, async (model) => {
    // Log of a positive batch is finite; one negative value poisons exactly that element.
    const ok = await model.denoiser.denoise(Float64Array.of(1, 2, 3), 0.25);
    assertClose(ok, [0.25, Math.log(2) + 0.25, Math.log(3) + 0.25], 1e-6);
    await assert.rejects(
      () => model.denoiser.denoise(Float64Array.of(1, 2, 3, 4, -1, 6), 1.5, { step: 7 }),
      /step 7, t=1.5: .*holds NaN at sample 1, element 1/,
    );
  });
});

Deno.test("denoise() gives the same result for batch sizes 1, 7 and 16 and fixed-batch models", async () => {
  const config = await loadModelConfig("configs/gmm-mnist.yml");
  const means = (await gmmMnistMeans()).means;
  const x = new Float64Array(16 * 784);
  for (let b = 0; b < 16; b++) {
    const z = normalNoise(5, b, 784);
    for (let i = 0; i < 784; i++) x[b * 784 + i] = means[(b * 7 % 100) * 784 + i] + 1.5 * z[i];
  }
  const outputs: Float64Array[] = [];
  for (const batch_size of [1, 7, 16]) {
    const model = await loadModel({ ...config, batch_size });
    try {
      outputs.push(await model.denoiser.denoise(x, 1.5));
    } finally {
      await model.close();
    }
  }
  assertClose(outputs[1], outputs[0], 1e-5, "batch 7 vs 1");
  assertClose(outputs[2], outputs[0], 1e-5, "batch 16 vs 1");
  // A network exported for exactly 4 samples gets padded calls; 6 samples still come back right.
  await withModel(affineModel({ batch: 4 }), configYaml({}), async (model) => {
    const x6 = Float64Array.from(normalNoise(3, 0, 36));
    const got = await model.denoiser.denoise(x6, 2);
    assertClose(got, affineRaw(x6, 2), 1e-6, "fixed batch");
  });
});

Deno.test("denoise() applies classifier-free guidance on the raw output in one 2B call", async () => {
  const uncond = Float32Array.of(0.5, -1);
  const cond = Float32Array.of(1, 0, 0, 1, -2, 0.5);
  const x = Float64Array.from(normalNoise(9, 0, 9)); // batch 3 of [3]
  /** `x + y·W + t` for condition row y. */
  const raw = (b: number, y: ArrayLike<number>, t: number) =>
    [0, 1, 2].map((j) => Math.fround(x[b * 3 + j]) + y[0] * COND_W[j] + y[1] * COND_W[3 + j] + t);
  const expected = (w: number, t: number, useCond: boolean) => {
    const out: number[] = [];
    for (let b = 0; b < 3; b++) {
      const u = raw(b, uncond, t);
      const c = useCond ? raw(b, cond.subarray(2 * b, 2 * b + 2), t) : u;
      out.push(...u.map((v, j) => v + w * (c[j] - v)));
    }
    return out;
  };
  for (const [scale, batchSize] of [[3, 16], [3, 1], [1, 16]]) {
    const yaml = configYaml({
      shape: "[3]",
      modelExtra: `  condition: { input: y, shape: [2], guidance_scale: ${scale}, uncond: u.npy }`,
      extra: `batch_size: ${batchSize}`,
    });
    await withModel(conditionalModel(), yaml, async (model) => {
      assert.deepEqual(model.conditionShape, [2]);
      const got = await model.denoiser.denoise(x, 0.75, { condition: cond });
      assertClose(got, expected(scale, 0.75, true), 1e-6, `w=${scale} batch ${batchSize}`);
      // Without a condition the model samples unconditionally.
      assertClose(await model.denoiser.denoise(x, 0.75), expected(scale, 0.75, false), 1e-6);
      await assert.rejects(
        () => model.denoiser.denoise(x, 0.75, { condition: cond.subarray(0, 4) }),
        /condition must hold 3×2 values: got 4/,
      );
    }, { "u.npy": encodeNpy(uncond, [2]) });
  }
});

Deno.test("loadModel() takes its threads from the options, the config, or one per core", async () => {
  const config = await loadModelConfig("configs/gmm-mnist.yml");
  for (
    const [options, conf, expected] of [
      [{}, {}, defaultThreads()],
      [{}, { threads: 3 }, 3],
      [{ threads: 1 }, { threads: 3 }, 1],
    ] as const
  ) {
    const model = await loadModel({ ...config, ...conf }, options);
    assert.equal(model.threads, expected);
    await model.close();
  }
  await assert.rejects(
    () => loadModel(config, { threads: 0 }),
    /threads must be an integer >= 1: got 0/,
  );
});

Deno.test("loadModel() refuses unknown devices and decodes through a configured decoder", async () => {
  const yaml = configYaml({
    extra: [
      "decoder: { path: dec.onnx, input: z, output: image, scale_factor: 0.5 }",
      "data_range: [0, 1]",
    ].join("\n"),
  });
  const dir = await tempFiles({
    "model.onnx": affineModel(),
    "dec.onnx": doublingDecoder(),
    "c.yml": yaml,
  });
  try {
    await assert.rejects(
      () => loadModel(join(dir, "c.yml"), { device: "tpu" }),
      { message: /Unsupported device: "tpu"/ },
    );
    const model = await loadModel(join(dir, "c.yml"));
    try {
      assert.deepEqual(model.sampleShape, [2, 3]);
      assert.deepEqual(model.imageShape, [3, 2]);
      const images = await model.decode(X);
      // image = 2·(z / 0.5), then [0, 1] → [-1, 1].
      assertClose(images, X.map((v) => 2 * (4 * v) - 1), 1e-6, "decode");
    } finally {
      await model.close();
    }
    // A decoder exported for exactly 2 latents decodes 3 (the last call padded) the same way.
    await Deno.writeFile(join(dir, "dec.onnx"), doublingDecoder(2));
    const fixed = await loadModel(join(dir, "c.yml"));
    try {
      assert.deepEqual(fixed.imageShape, [3, 2]);
      assertClose(await fixed.decode(X), X.map((v) => 2 * (4 * v) - 1), 1e-6, "fixed decode");
    } finally {
      await fixed.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadModel() opens a graph with external-data weights, and its hash covers them", async () => {
  const dir = await tempFiles({
    "model.onnx": externalWeightsModel(),
    "model.onnx.data": externalWeight(0.5),
    "c.yml": configYaml({}),
  });
  const other = await tempFiles({
    "model.onnx": externalWeightsModel(),
    "model.onnx.data": externalWeight(0.25),
    "c.yml": configYaml({}),
  });
  try {
    const model = await loadModel(join(dir, "c.yml"));
    const changed = await loadModel(join(other, "c.yml"));
    try {
      // x0 prediction: D(x, t) is the network output 0.5·x, read from the data file.
      assertClose(await model.denoiser.denoise(X, 1), X.map((v) => 0.5 * v), 1e-6, "denoise");
      // Same graph file, other weights: another model hash (datasets and runs are told apart).
      assert.notEqual(model.modelHash, changed.modelHash);
      assert.match(model.modelHash, /^[0-9a-f]{64}$/);
    } finally {
      await model.close();
      await changed.close();
    }
    // Without the data file: one line naming it, before ONNX Runtime is asked.
    await Deno.remove(join(dir, "model.onnx.data"));
    await assert.rejects(
      () => loadModel(join(dir, "c.yml")),
      /keeps its weights in model\.onnx\.data, which is missing: .*model\.onnx\.data \(copy it beside the model\)/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(other, { recursive: true });
  }
});

Deno.test("the bundled gmm-mnist model matches the float64 mixture denoiser and its build", async () => {
  const bytes = await Deno.readFile("models/gmm-mnist/model.onnx");
  assert.ok(bytes.length < 1_000_000, `model.onnx is ${bytes.length} bytes`);
  assert.deepEqual(bytes, await buildGmmMnist(), "committed model.onnx differs from a fresh build");

  const { means } = await gmmMnistMeans();
  const K = means.length / 784;
  const rows = Array.from(
    { length: K },
    (_, k) => Array.from(means.subarray(k * 784, (k + 1) * 784)),
  );
  const gmm = createGmm(rows, new Array(K).fill(COMPONENT_STD ** 2));
  const model = await loadModel("configs/gmm-mnist.yml");
  try {
    assert.equal(model.modelHash, createHash("sha256").update(bytes).digest("hex"));
    assert.deepEqual(model.imageShape, [1, 28, 28]);
    for (const sigma of [0.002, 0.05, 0.5, 3, 20, 80]) {
      const x = new Float64Array(4 * 784);
      for (let b = 0; b < 4; b++) {
        const z = normalNoise(21, b, 784);
        for (let i = 0; i < 784; i++) {
          x[b * 784 + i] = Math.fround(means[(b * 31 % K) * 784 + i] + sigma * z[i]);
        }
      }
      const got = await model.denoiser.denoise(x, sigma);
      const want = gmmDenoiseVe(gmm, x, Math.fround(sigma));
      assertClose(got, want, 1e-4, `sigma ${sigma}`);
    }
  } finally {
    await model.close();
  }
});

Deno.test("onnxDenoiser() sends [uncond; cond] as one call of 2B samples", async () => {
  const dir = await tempFiles({ "model.onnx": conditionalModel() });
  const session = await ort.InferenceSession.create(join(dir, "model.onnx"));
  try {
    const config = parseModelConfig(
      configYaml({
        shape: "[3]",
        modelExtra: "  condition: { input: y, shape: [2], guidance_scale: 2 }",
        extra: "batch_size: 8",
      }),
      join(dir, "c.yml"),
    );
    // Record the batch of every call the adapter makes on a real session.
    const calls: number[][] = [];
    const run = session.run.bind(session);
    const spy = Object.create(session, {
      run: {
        value: (feeds: Record<string, ort.Tensor>) => {
          calls.push([feeds.x.dims[0], feeds.y.dims[0]]);
          return run(feeds);
        },
      },
    });
    const denoiser = await onnxDenoiser(spy, config);
    const cond = Float32Array.of(1, 0, 0, 1, -2, 0.5);
    const x = Float64Array.from(normalNoise(9, 0, 9));
    const got = await denoiser.denoise(x, 0.5, { condition: cond });
    assert.deepEqual(calls, [[6, 6]]);
    // Zero unconditional input: out = x + t + 2·(y·W).
    const want = [0, 1, 2].flatMap((b) =>
      [0, 1, 2].map((j) =>
        Math.fround(x[b * 3 + j]) + 0.5 +
        2 * (cond[2 * b] * COND_W[j] + cond[2 * b + 1] * COND_W[3 + j])
      )
    );
    assertClose(got, want, 1e-6);
    // 9 samples with batch_size 8 → chunks of 4, 4, 1 samples → calls of 8, 8, 2.
    calls.length = 0;
    await denoiser.denoise(new Float64Array(27), 0.5, { condition: new Float32Array(18) });
    assert.deepEqual(calls, [[8, 8], [8, 8], [2, 2]]);
  } finally {
    await session.release();
    await Deno.remove(dir, { recursive: true });
  }
});
