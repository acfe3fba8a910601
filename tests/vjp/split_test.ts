/**
 * The split VJP (forward part keeping residuals, backward part alone) on the test UNet with
 * attention: the forward part computes what the model computes, bit for bit, and the backward
 * part gives PyTorch's gradients, as the one-graph VJP does.
 */
import assert from "node:assert/strict";
import { onnx, ort } from "../../lib/deps.ts";
import {
  buildSplitVjpModels,
  cotangentName,
  SplitVjpSession,
  VjpSession,
} from "../../lib/vjp/mod.ts";
import { SessionWorkers } from "../../lib/onnx/workers.ts";

const DIR = new URL("../fixtures/vjp/", import.meta.url);

interface Fixture {
  x: number[];
  x_shape: number[];
  sigma: number[];
  cotangent: number[];
  grad_x: number[];
  grad_sigma: number[];
}

async function fixture() {
  const fx: Fixture = JSON.parse(await Deno.readTextFile(new URL("unet_vjp.json", DIR)));
  const model = await Deno.readFile(new URL("unet.onnx", DIR));
  const n = fx.x_shape[0];
  const inputs = {
    x: new ort.Tensor("float32", Float32Array.from(fx.x), fx.x_shape),
    sigma: new ort.Tensor("float32", Float32Array.from(fx.sigma), [n]),
  };
  const cot = new ort.Tensor("float32", Float32Array.from(fx.cotangent), fx.x_shape);
  return { fx, model, inputs, cot };
}

function worstRelative(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let scale = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]));
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    worst = Math.max(worst, Math.abs(actual[i] - expected[i]) / scale);
  }
  return worst;
}

Deno.test("SplitVjpSession: the forward part is the model, the backward part PyTorch's VJP", async () => {
  const { fx, model, inputs, cot } = await fixture();
  const plain = await ort.InferenceSession.create(model, { graphOptimizationLevel: "all" });
  const expected = (await plain.run(inputs)).denoised.data as Float32Array;
  const split = await SplitVjpSession.create(model, { wrt: ["x", "sigma"] });
  const { output, saved } = await split.forward(inputs);
  assert.deepEqual(Array.from(output.data as Float32Array), Array.from(expected));
  assert.ok(saved.bytes > 0);
  assert.equal(saved.bytes, await split.residualBytes(inputs));
  const g = await split.backward(saved, cot);
  assert.ok(worstRelative(g.x.data as Float32Array, fx.grad_x) <= 1e-4, "grad_x");
  assert.ok(worstRelative(g.sigma.data as Float32Array, fx.grad_sigma) <= 1e-4, "grad_sigma");
  // What a forward call saved serves one backward call.
  await assert.rejects(() => split.backward(saved, cot), /served a backward call already/);
  const twice = new ort.Tensor("float32", Float32Array.from(fx.cotangent, (v) => 2 * v), cot.dims);
  const g2 = await split.backward((await split.forward(inputs)).saved, twice);
  const gx = g.x.data as Float32Array;
  assert.ok(worstRelative(g2.x.data as Float32Array, Array.from(gx, (v) => 2 * v)) <= 1e-6);
  await split.release();
  await plain.release();
});

Deno.test("SplitVjpSession agrees with the one-graph VjpSession", async () => {
  const { model, inputs, cot } = await fixture();
  const split = await SplitVjpSession.create(model, { wrt: ["x", "sigma"] });
  const fused = await VjpSession.create(model, { wrt: ["x", "sigma"] });
  const a = await split.backward((await split.forward(inputs)).saved, cot);
  const b = (await fused.run(inputs, cot)).gradients;
  assert.ok(worstRelative(a.x.data as Float32Array, b.x.data as Float32Array) <= 1e-5);
  assert.ok(worstRelative(a.sigma.data as Float32Array, b.sigma.data as Float32Array) <= 1e-5);
  await split.release();
  await fused.release();
});

Deno.test("buildSplitVjpModels(): residuals are non-constant forward values, the backward holds no forward node", async () => {
  const { model, inputs } = await fixture();
  const shapes = { x: [...inputs.x.dims], sigma: [...inputs.sigma.dims] };
  const m = await buildSplitVjpModels(model, { wrt: ["x"], of: "denoised", inputShapes: shapes });
  const forwardGraph = onnx.ModelProto.decode(m.forward).graph!;
  const backwardGraph = onnx.ModelProto.decode(m.backward).graph!;
  const forwardOutputs = new Set(forwardGraph.node!.flatMap((n) => n.output ?? []));
  const constantOps = new Set(
    onnx.ModelProto.decode(model).graph!.node!.filter((n) => n.opType === "Constant")
      .flatMap((n) => n.output ?? []),
  );
  assert.ok(m.residuals.length > 0);
  for (const r of m.residuals) {
    assert.ok(forwardOutputs.has(r.name) || r.name === "x", `${r.name} is computed forward`);
    assert.ok(!constantOps.has(r.name), `${r.name} is a Constant: baked, not saved`);
  }
  // The forward part keeps the model's own input declarations and outputs `of` first.
  assert.equal(forwardGraph.output![0].name, "denoised");
  const backwardInputs = backwardGraph.input!.map((v) => v.name);
  assert.deepEqual(backwardInputs, [...m.residuals.map((r) => r.name), cotangentName("denoised")]);
  for (const n of backwardGraph.node!) {
    for (const o of n.output ?? []) assert.ok(!forwardOutputs.has(o), `${o} recomputed backward`);
  }
});

Deno.test("SplitVjpSession.backward() refuses what another session's forward kept", async () => {
  const { model, cot } = await fixture();
  const split = await SplitVjpSession.create(model, { wrt: ["x"] });
  await assert.rejects(
    () => split.backward({ bytes: 0, release() {} }, cot),
    /saved is not what this session's forward call kept/,
  );
  await split.release();
});

Deno.test("SplitVjpSession on workers: each sample's part on its own worker, the same gradients", async () => {
  const { fx, model, inputs, cot } = await fixture();
  const n = inputs.x.dims[0];
  assert.ok(n >= 2, "the fixture has a batch to share out");
  const workers = SessionWorkers.start(2);
  const local = await SplitVjpSession.create(model, { wrt: ["x", "sigma"] });
  const shared = await SplitVjpSession.create(model, {
    wrt: ["x", "sigma"],
    workers,
    workerSessionOptions: { intraOpNumThreads: 1 },
  });
  try {
    const a = await local.forward(inputs);
    const b = await shared.forward(inputs);
    assert.deepEqual(b.output.dims, a.output.dims);
    assert.ok(worstRelative(b.output.data as Float32Array, a.output.data as Float32Array) <= 1e-6);
    assert.equal(b.saved.bytes, a.saved.bytes);
    const gb = await shared.backward(b.saved, cot);
    assert.ok(worstRelative(gb.x.data as Float32Array, fx.grad_x) <= 1e-4, "grad_x");
    assert.ok(worstRelative(gb.sigma.data as Float32Array, fx.grad_sigma) <= 1e-4, "grad_sigma");
    assert.deepEqual(gb.sigma.dims, [n]);
    // Residuals no backward call needs are freed in the workers by release().
    const unused = await shared.forward(inputs);
    unused.saved.release();
    await assert.rejects(() => shared.backward(unused.saved, cot), /served a backward call/);
  } finally {
    await local.release();
    await shared.release();
    await workers.close();
  }
});
