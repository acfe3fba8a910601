/** Clear errors (library and CLI) for unsupported ops, unknown and non-float inputs. */
import assert from "node:assert/strict";
import { ort } from "../../lib/deps.ts";
import { DataType } from "../../lib/vjp/_graph.ts";
import { buildVjpModel } from "../../lib/vjp/mod.ts";
import { buildModel, type ModelSpec } from "./_harness.ts";

// "NotAnOp" cannot even be loaded by ONNX Runtime, so its error proves nothing ran first
const UNSUPPORTED: ModelSpec = {
  inputs: { x: [2, 3] },
  typedInputs: { k: { dtype: DataType.INT64, shape: [2] } },
  nodes: [
    { op: "Exp", inputs: ["x"], outputs: ["e"] },
    { op: "NotAnOp", inputs: ["e"], outputs: ["h"] },
    { op: "Add", inputs: ["h", "x"] },
  ],
  outputs: ["y"],
};

Deno.test("buildVjpModel() names the op and node without a rule before running anything", async () => {
  await assert.rejects(
    buildVjpModel(buildModel(UNSUPPORTED), { wrt: ["x"] }),
    (e: Error) =>
      e instanceof TypeError && /NotAnOp/.test(e.message) && /NotAnOp_1/.test(e.message),
  );
});

Deno.test("buildVjpModel() rejects unknown and non-float inputs and unknown outputs", async () => {
  const bytes = buildModel(UNSUPPORTED);
  await assert.rejects(
    buildVjpModel(bytes, { wrt: ["nope"] }),
    (e: Error) => e instanceof RangeError && /Unknown input in wrt: nope/.test(e.message),
  );
  await assert.rejects(
    buildVjpModel(bytes, { wrt: ["k"] }),
    (e: Error) =>
      e instanceof TypeError && /Non-float input in wrt: k has element type INT64/.test(e.message),
  );
  await assert.rejects(
    buildVjpModel(bytes, { wrt: ["x"], of: "zz" }),
    (e: Error) => e instanceof RangeError && /Unknown output in of: zz/.test(e.message),
  );
});

Deno.test("buildVjpModel() skips ops off the differentiated path and zero-fills unreached inputs", async () => {
  // TopK has no rule but only touches the constant branch; u does not reach y at all
  const bytes = buildModel({
    inputs: { x: [4], u: [4] },
    consts: { c: { values: [3, 1, 2, 5], dims: [4] }, kk: { values: [2], dims: [1], int: true } },
    nodes: [
      { op: "TopK", inputs: ["c", "kk"], outputs: ["top", "idx"] },
      { op: "ReduceSum", inputs: ["top"], outputs: ["s"], attrs: { keepdims: 1 } },
      { op: "Mul", inputs: ["x", "s"], outputs: ["y"] },
      { op: "Exp", inputs: ["u"], outputs: ["z"] },
    ],
    outputs: ["y", "z"],
  });
  const vjp = await ort.InferenceSession.create(await buildVjpModel(bytes, { wrt: ["x", "u"] }));
  const t = (v: number[]) => new ort.Tensor("float64", Float64Array.from(v), [4]);
  const r = await vjp.run({ x: t([1, 2, 3, 4]), u: t([0, 0, 0, 0]), grad_y: t([1, -1, 2, 0]) });
  assert.deepEqual(Array.from(r.grad_x.data as Float64Array), [8, -8, 16, 0]);
  assert.deepEqual(Array.from(r.grad_u.data as Float64Array), [0, 0, 0, 0]);
  await vjp.release();
});

async function cli(args: string[]): Promise<{ code: number; stderr: string }> {
  const task = new URL("../../tasks/grad_model.ts", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", task, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

Deno.test("grad-model CLI writes a VJP model and fails clearly with a non-zero exit", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const bad = `${dir}/bad.onnx`;
    await Deno.writeFile(bad, buildModel(UNSUPPORTED));
    const good = `${dir}/good.onnx`;
    await Deno.writeFile(
      good,
      buildModel({
        inputs: { x: [2, 3] },
        nodes: [{ op: "Sin", inputs: ["x"] }],
        outputs: ["y"],
      }),
    );
    const out = `${dir}/vjp.onnx`;
    const cases: [string[], RegExp][] = [
      [[bad, "--wrt", "x", "--out", out], /Unsupported op for VJP: NotAnOp at node "NotAnOp_1"/],
      [[bad, "--wrt", "x,nope", "--out", out], /Unknown input in wrt: nope/],
      [[bad, "--wrt", "k", "--out", out], /Non-float input in wrt: k/],
      [[good, "--wrt", "x", "--bogus", "--out", out], /bogus/],
      [[good, "--wrt", "x"], /--out is required/],
    ];
    for (const [args, message] of cases) {
      const r = await cli(args);
      assert.notEqual(r.code, 0, args.join(" "));
      assert.match(r.stderr, message);
    }
    const ok = await cli([good, "--wrt", "x", "--of", "y", "--return-output", "--out", out]);
    assert.equal(ok.code, 0, ok.stderr);
    const s = await ort.InferenceSession.create(await Deno.readFile(out));
    assert.deepEqual(s.outputNames, ["y", "grad_x"]);
    await s.release();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
