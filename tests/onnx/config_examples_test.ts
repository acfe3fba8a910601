/**
 * The model templates in `configs/examples/` (docs/your-model.md): each must validate, and each
 * must load and sample when an ONNX file with the input/output signature its comments describe
 * (names, element types, ranks) stands where `model.path` points. The stand-in networks compute
 * `0.5·x` and ignore their other inputs' values, so the test checks the wiring — input names,
 * time and condition layout, decoder and guidance paths — not image quality.
 */
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadModelConfig, parseModelConfig } from "../../lib/onnx/config.ts";
import { loadModel } from "../../lib/onnx/model.ts";
import { writeNpy } from "../../lib/io/npy.ts";
import { buildModel, ElemType, node, tensor, valueInfo } from "../../lib/onnx/build.ts";
import { sampleImages } from "../../lib/pipelines/sampling.ts";

const EXAMPLES = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "configs", "examples");

/** The files and ONNX signatures each template expects (what its comments document). */
const TEMPLATES: Record<string, {
  x: string;
  t: string;
  timeType: number;
  out: string;
  condition?: { name: string; shape: number[] };
  decoder?: { input: string; output: string };
  uncondNpy?: string;
}> = {
  "ddpm-cifar10.yml": { x: "sample", t: "timestep", timeType: ElemType.int64, out: "out_sample" },
  "edm-cifar10-cond.yml": {
    x: "x",
    t: "sigma",
    timeType: ElemType.float,
    out: "denoised",
    condition: { name: "class_labels", shape: [10] },
  },
  "sd15.yml": {
    x: "sample",
    t: "timestep",
    timeType: ElemType.int64,
    out: "out_sample",
    condition: { name: "encoder_hidden_states", shape: [77, 768] },
    decoder: { input: "latent_sample", output: "sample" },
    uncondNpy: "sd15/empty_prompt.npy",
  },
  "rectified-flow.yml": { x: "x", t: "t", timeType: ElemType.float, out: "v" },
};

/** `out = 0.5·x + 0·t + 0·mean(condition)`: every input is consumed, as in a real network. */
function standIn(
  spec: (typeof TEMPLATES)[string],
  shape: readonly number[],
): Uint8Array {
  const spatial = shape.map((_, i) => BigInt(i + 1));
  const nodes = [
    node("Cast", [spec.t], ["t_f"], { to: ElemType.float }),
    node("Unsqueeze", ["t_f", "axes"], ["t_b"]),
    node("Mul", ["t_b", "zero"], ["t0"]),
    node("Mul", [spec.x, "half"], ["hx"]),
    node("Add", ["hx", "t0"], [spec.condition ? "xt" : spec.out]),
  ];
  if (spec.condition) {
    const axes = spec.condition.shape.map((_, i) => i + 1);
    nodes.push(
      node("ReduceMean", [spec.condition.name], ["c_mean"], { axes, keepdims: 0 }),
      node("Unsqueeze", ["c_mean", "axes"], ["c_b"]),
      node("Mul", ["c_b", "zero"], ["c0"]),
      node("Add", ["xt", "c0"], [spec.out]),
    );
  }
  return buildModel({
    nodes,
    initializers: [
      tensor("half", [], [0.5]),
      tensor("zero", [], [0]),
      tensor("axes", [spatial.length], BigInt64Array.from(spatial)),
    ],
    inputs: [
      valueInfo(spec.x, ElemType.float, ["batch", ...shape]),
      valueInfo(spec.t, spec.timeType, ["batch"]),
      ...(spec.condition
        ? [valueInfo(spec.condition.name, ElemType.float, ["batch", ...spec.condition.shape])]
        : []),
    ],
    outputs: [valueInfo(spec.out, ElemType.float, ["batch", ...shape])],
  });
}

/** A decoder that keeps the first three latent channels: [B, 4, H, W] → [B, 3, H, W]. */
function sliceDecoder(input: string, output: string, shape: readonly number[]): Uint8Array {
  const [, h, w] = shape;
  return buildModel({
    nodes: [node("Slice", [input, "starts", "ends", "axes"], [output])],
    initializers: [
      tensor("starts", [1], BigInt64Array.of(0n)),
      tensor("ends", [1], BigInt64Array.of(3n)),
      tensor("axes", [1], BigInt64Array.of(1n)),
    ],
    inputs: [valueInfo(input, ElemType.float, ["batch", ...shape])],
    outputs: [valueInfo(output, ElemType.float, ["batch", 3, h, w])],
  });
}

Deno.test("every template in configs/examples is listed here", async () => {
  const files = [];
  for await (const e of Deno.readDir(EXAMPLES)) if (e.name.endsWith(".yml")) files.push(e.name);
  assert.deepEqual(files.sort(), Object.keys(TEMPLATES).sort());
});

for (const [file, spec] of Object.entries(TEMPLATES)) {
  Deno.test(`configs/examples/${file} validates, loads and samples with its documented signature`, async () => {
    const text = await Deno.readTextFile(join(EXAMPLES, file));
    const parsed = parseModelConfig(text, join(EXAMPLES, file));

    // Without the model file the loader names the field and the path.
    const dir = await Deno.makeTempDir({ prefix: "config_examples_" });
    try {
      const configPath = join(dir, file);
      await Deno.writeTextFile(configPath, text);
      await assert.rejects(() => loadModelConfig(configPath), /model\.path/);

      const at = (p: string) => join(dir, p.slice(EXAMPLES.length + 1));
      await Deno.mkdir(dirname(at(parsed.model.path)), { recursive: true });
      await Deno.writeFile(at(parsed.model.path), standIn(spec, parsed.shape));
      if (parsed.decoder && spec.decoder) {
        await Deno.mkdir(dirname(at(parsed.decoder.path)), { recursive: true });
        await Deno.writeFile(
          at(parsed.decoder.path),
          sliceDecoder(spec.decoder.input, spec.decoder.output, parsed.shape),
        );
      }
      if (spec.uncondNpy && spec.condition) {
        const size = spec.condition.shape.reduce((a, b) => a * b, 1);
        await Deno.mkdir(dirname(join(dir, spec.uncondNpy)), { recursive: true });
        await writeNpy(
          join(dir, spec.uncondNpy),
          new Float32Array(size).fill(0.1),
          spec.condition.shape,
        );
      }

      // Sampling on CPU whatever device the template names (sd15 says cuda).
      const model = await loadModel(configPath, { device: "cpu" });
      try {
        assert.equal(model.config.name, parsed.name);
        const condSize = spec.condition?.shape.reduce((a, b) => a * b, 1);
        const sampled = await sampleImages(model, {
          solverName: "dpm_solver++",
          steps: 3,
          skipType: "logSNR",
          numSamples: 2,
          ...(condSize
            ? {
              condition: {
                data: new Float32Array(2 * condSize).fill(1),
                shape: [2, ...spec.condition!.shape],
              },
            }
            : {}),
        });
        const imageShape = parsed.decoder ? [3, ...parsed.shape.slice(1)] : parsed.shape;
        assert.deepEqual(sampled.shape, [2, ...imageShape]);
        assert.ok(sampled.images.every(Number.isFinite));
      } finally {
        await model.close();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}
