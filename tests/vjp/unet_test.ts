/**
 * Whole-model check: a small PyTorch UNet with attention (GroupNorm, SiLU, sinusoidal noise
 * embedding, self-attention, down/up-sampling, EDM preconditioning), exported at opset 17,
 * against VJPs from PyTorch autograd. Fixtures come from models/vjp-unet/make_fixture.py.
 */
import assert from "node:assert/strict";
import { ort } from "../../lib/deps.ts";
import { buildVjpModel, VjpSession } from "../../lib/vjp/mod.ts";

const DIR = new URL("../fixtures/vjp/", import.meta.url);

interface Fixture {
  x: number[];
  x_shape: number[];
  sigma: number[];
  cotangent: number[];
  denoised: number[];
  grad_x: number[];
  grad_sigma: number[];
}

function assertClose(actual: ArrayLike<number>, expected: number[], tol: number, what: string) {
  assert.equal(actual.length, expected.length, `${what} length`);
  const scale = Math.max(...expected.map(Math.abs));
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    worst = Math.max(worst, Math.abs(actual[i] - expected[i]) / scale);
  }
  assert.ok(worst <= tol, `${what}: relative error ${worst} > ${tol}`);
}

Deno.test("VjpSession matches PyTorch autograd on a UNet with attention", async () => {
  const fx: Fixture = JSON.parse(await Deno.readTextFile(new URL("unet_vjp.json", DIR)));
  const model = await Deno.readFile(new URL("unet.onnx", DIR));
  const session = await VjpSession.create(model, { wrt: ["x", "sigma"], returnOutput: true });
  const n = fx.x_shape[0];
  const result = await session.run({
    x: new ort.Tensor("float32", Float32Array.from(fx.x), fx.x_shape),
    sigma: new ort.Tensor("float32", Float32Array.from(fx.sigma), [n]),
  }, new ort.Tensor("float32", Float32Array.from(fx.cotangent), fx.x_shape));
  assertClose(result.output!.data as Float32Array, fx.denoised, 1e-5, "denoised");
  assertClose(result.gradients.x.data as Float32Array, fx.grad_x, 1e-4, "grad_x");
  assertClose(result.gradients.sigma.data as Float32Array, fx.grad_sigma, 1e-4, "grad_sigma");
  await session.release();
});

Deno.test("buildVjpModel() VJP of the UNet w.r.t. x alone has only the x gradient", async () => {
  const model = await Deno.readFile(new URL("unet.onnx", DIR));
  const bytes = await buildVjpModel(model, {
    wrt: ["x"],
    inputShapes: { x: [1, 1, 16, 16], sigma: [1] },
  });
  const s = await ort.InferenceSession.create(bytes);
  assert.deepEqual(s.inputNames, ["x", "sigma", "grad_denoised"]);
  assert.deepEqual(s.outputNames, ["grad_x"]);
  await s.release();
});
