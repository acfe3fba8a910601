/**
 * Build the vector–Jacobian-product model of an ONNX model.
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
import { parseArgs } from "node:util";
import { buildVjpModel } from "../lib/vjp/mod.ts";

const USAGE =
  "Usage: deno task grad-model <in.onnx> --wrt x[,sigma] [--of <output>] [--shape name=d0,d1,...] [--return-output] --out <out.onnx>";

/** Parses `name=d0,d1,…` into a shape entry. */
function parseShape(text: string): [string, number[]] {
  const [name, dims] = text.split("=");
  const shape = (dims ?? "").split(",").filter((s) => s !== "").map(Number);
  if (!name || !shape.every((n) => Number.isInteger(n) && n > 0)) {
    throw new RangeError(`Invalid --shape (expected name=d0,d1,...): ${text}`);
  }
  return [name, shape];
}

async function main(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      wrt: { type: "string" },
      of: { type: "string" },
      out: { type: "string" },
      shape: { type: "string", multiple: true },
      "return-output": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (positionals.length !== 1) throw new RangeError(`Expected one input model: ${USAGE}`);
  if (!values.wrt) throw new RangeError(`Missing --wrt: ${USAGE}`);
  if (!values.out) throw new RangeError(`Missing --out: ${USAGE}`);
  const model = await Deno.readFile(positionals[0]);
  const vjp = await buildVjpModel(model, {
    wrt: values.wrt.split(",").map((s) => s.trim()).filter((s) => s !== ""),
    of: values.of,
    returnOutput: values["return-output"],
    inputShapes: values.shape ? Object.fromEntries(values.shape.map(parseShape)) : undefined,
  });
  await Deno.writeFile(values.out, vjp);
  console.log(`wrote ${values.out} (${vjp.length} bytes)`);
}

if (import.meta.main) {
  try {
    await main(Deno.args);
  } catch (e) {
    console.error(`error: ${e instanceof Error ? e.message : e}`);
    Deno.exit(1);
  }
}
