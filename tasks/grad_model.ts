/**
 * `deno task grad-model`: build the vector–Jacobian-product model of an ONNX model.
 *
 * ```sh
 * deno task grad-model model.onnx --wrt x,sigma [--of denoised] [--shape x=2,1,16,16]
 *   [--shape sigma=2] [--return-output] --out model_vjp.onnx
 * ```
 *
 * The VJP model takes the original inputs plus `grad_<of>` and outputs `grad_<x>` for each
 * `--wrt` input. Inputs with dynamic dimensions need `--shape`.
 *
 * @module
 */
import { writeFileAtomic } from "../lib/io/atomic.ts";
import { lockOutputs } from "../lib/io/lock.ts";
import { declareOptions } from "../lib/options.ts";
import { buildVjpModel } from "../lib/vjp/mod.ts";
import { defineTask, runCli } from "./_cli.ts";

/** Parses `name=d0,d1,…` into a shape entry. */
function parseShape(text: string): [string, number[]] {
  const [name, dims] = text.split("=");
  const shape = (dims ?? "").split(",").filter((s) => s !== "").map(Number);
  if (!name || !shape.every((n) => Number.isInteger(n) && n > 0)) {
    throw new RangeError(`--shape must be name=d0,d1,… with positive dimensions: got "${text}"`);
  }
  return [name, shape];
}

/** The `grad-model` task. */
export const GRAD_MODEL = defineTask({
  name: "grad-model",
  summary: "Build the vector–Jacobian-product ONNX model of any ONNX model",
  details: [
    "The VJP model takes the original inputs plus grad_<of> and outputs grad_<x> for each --wrt",
    "input; ONNX Runtime runs it like any model. Inputs with dynamic dimensions need --shape.",
  ],
  positionals: { usage: "<in.onnx>", min: 1, max: 1 },
  options: declareOptions({
    wrt: {
      flag: "wrt",
      kind: "strings",
      arg: "LIST",
      required: true,
      help: "inputs to differentiate with respect to, e.g. x,sigma",
    },
    of: {
      flag: "of",
      kind: "string",
      arg: "NAME",
      defaultText: "the model's only output",
      help: "the output whose cotangent is fed",
    },
    shape: {
      flag: "shape",
      kind: "strings",
      arg: "NAME=D0,D1,…",
      repeatable: true,
      help: "fixed shape of an input with dynamic dimensions (repeat per input)",
    },
    returnOutput: {
      flag: "return-output",
      kind: "boolean",
      default: false,
      help: "also output the forward value",
    },
    out: { flag: "out", kind: "string", arg: "FILE", required: true, help: "the VJP model" },
  }),
  async run(v, [input]) {
    // The output's folder is made (or found unwritable) before the graph is built.
    await using _out = await lockOutputs([v.out], { what: "grad-model" });
    const vjp = await buildVjpModel(await Deno.readFile(input), {
      wrt: v.wrt,
      of: v.of,
      returnOutput: v.returnOutput ?? false,
      inputShapes: v.shape ? Object.fromEntries(v.shape.map(parseShape)) : undefined,
    });
    await writeFileAtomic(v.out, vjp);
    console.log(`wrote ${v.out} (${vjp.length} bytes)`);
  },
});

if (import.meta.main) await runCli(GRAD_MODEL);
