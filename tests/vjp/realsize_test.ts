/**
 * The reduced-width twins of the real-size architectures (issue 13) against PyTorch autograd:
 * EDM's DDPM++ CIFAR-10 UNet (models/ddpmpp-cifar10) and the DiT-XL/2-shape rectified-flow
 * transformer (models/dit-xl2-flow), the same op graphs as the full-size exports at a few MB.
 * Fixtures come from tests/fixtures/realsize/make_fixtures.py.
 */
import assert from "node:assert/strict";
import { ort } from "../../lib/deps.ts";
import { vjpRules, VjpSession } from "../../lib/vjp/mod.ts";

const DIR = new URL("../fixtures/realsize/", import.meta.url);

/** Op types that only compute shapes, indices or constants: nothing differentiable flows through. */
const NON_DIFFERENTIABLE = new Set(["Constant", "Shape"]);

interface Fixture {
  inputs: Record<string, { shape: number[]; data: number[] }>;
  output: string;
  value: number[];
  cotangent: number[];
  grads: Record<string, number[]>;
  op_types: string[];
}

function relativeError(actual: ArrayLike<number>, expected: number[]): number {
  assert.equal(actual.length, expected.length);
  const scale = Math.max(...expected.map(Math.abs));
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    worst = Math.max(worst, Math.abs(actual[i] - expected[i]) / scale);
  }
  return worst;
}

async function fixture(name: string): Promise<Fixture> {
  return JSON.parse(await Deno.readTextFile(new URL(`${name}_vjp.json`, DIR)));
}

async function checkTwin(name: string, expectedOps: string[]) {
  const fx = await fixture(name);
  assert.deepEqual(fx.op_types, expectedOps, `${name}: op types of the export`);
  const missing = fx.op_types.filter((op) => !NON_DIFFERENTIABLE.has(op) && !(op in vjpRules));
  assert.deepEqual(missing, [], `${name}: op types without a VJP rule`);
  const wrt = Object.keys(fx.inputs);
  const model = await Deno.readFile(new URL(`${name}_twin.onnx`, DIR));
  const session = await VjpSession.create(model, { wrt, returnOutput: true });
  const feeds = Object.fromEntries(
    Object.entries(fx.inputs).map(([k, v]) => [
      k,
      new ort.Tensor("float32", Float32Array.from(v.data), v.shape),
    ]),
  );
  const shape = fx.inputs.x.shape;
  const cot = new ort.Tensor("float32", Float32Array.from(fx.cotangent), shape);
  const result = await session.run(feeds, cot);
  await session.release();
  const errors: Record<string, number> = {
    [fx.output]: relativeError(result.output!.data as Float32Array, fx.value),
  };
  for (const k of wrt) {
    errors[`grad_${k}`] = relativeError(result.gradients[k].data as Float32Array, fx.grads[k]);
  }
  for (const [k, e] of Object.entries(errors)) {
    assert.ok(e <= 1e-4, `${name} ${k}: relative error ${e} > 1e-4`);
  }
}

Deno.test("VJP of the DDPM++ twin matches PyTorch autograd w.r.t. x and sigma", async () => {
  await checkTwin("ddpmpp", [
    "Add",
    "AveragePool",
    "Concat",
    "Constant",
    "Conv",
    "Cos",
    "Div",
    "Einsum",
    "Gather",
    "Gemm",
    "InstanceNormalization",
    "Log",
    "Mul",
    "Pad",
    "Pow",
    "Reciprocal",
    "Reshape",
    "Resize",
    "Shape",
    "Sigmoid",
    "Sin",
    "Softmax",
    "Split",
    "Sqrt",
    "Squeeze",
    "Unsqueeze",
  ]);
});

Deno.test("VJP of the DiT twin matches PyTorch autograd w.r.t. x, t and class_labels", async () => {
  await checkTwin("dit", [
    "Add",
    "Cast",
    "Concat",
    "Constant",
    "Conv",
    "Cos",
    "Div",
    "Gather",
    "Gemm",
    "Identity",
    "LayerNormalization",
    "MatMul",
    "Mul",
    "Pow",
    "Reshape",
    "Shape",
    "Sigmoid",
    "Sin",
    "Slice",
    "Softmax",
    "Split",
    "Squeeze",
    "Tanh",
    "Transpose",
    "Unsqueeze",
  ]);
});
