/**
 * A float32 interface around float16 networks (`optimum-cli export onnx --fp16`, diffusers'
 * `--fp16` conversion): Cast nodes turn each float16 input into float32 at the graph's edge and
 * each float16 output back, and the network inside computes in float16 as exported.
 *
 * Why: Deno has `Float16Array`, so onnxruntime-common hands float16 data to onnxruntime-node's
 * Node-API binding as one, and the binding reads it as an empty buffer (checked with 1.30). ld3
 * therefore exchanges float32 with every session; its solvers keep their state in float64.
 *
 * @module
 */
import { onnx } from "../deps.ts";
import { ElemType, type ModelProto, type ValueInfoProto } from "./build.ts";
import type { OnnxSignature, TensorSignature } from "./session.ts";

/** Element types ld3 exchanges as float32 through a Cast: float16 and bfloat16. */
const HALF_TYPES: readonly number[] = [ElemType.float16, 16];

/** The inputs and outputs of a signature that are half precision (float16 or bfloat16). */
export function halfPrecisionIo(signature: OnnxSignature): string[] {
  return [...signature.inputs, ...signature.outputs]
    .filter((s) => HALF_TYPES.includes(s.elemType))
    .map((s) => s.name);
}

/**
 * The signature ld3 sees through {@linkcode withFloat32Interface}: half-precision inputs and
 * outputs read as float32, everything else as declared.
 */
export function float32Signature(signature: OnnxSignature): OnnxSignature {
  const widen = (s: TensorSignature): TensorSignature =>
    HALF_TYPES.includes(s.elemType) ? { ...s, elemType: ElemType.float, elemTypeName: "float" } : s;
  return {
    ...signature,
    inputs: signature.inputs.map(widen),
    outputs: signature.outputs.map(widen),
  };
}

function elemTypeOf(v: ValueInfoProto): number {
  return v.type?.tensorType?.elemType ?? 0;
}

/** A name not used by any value or node of the graph. */
function freshName(taken: Set<string>, hint: string): string {
  let name = hint;
  for (let k = 1; taken.has(name); k++) name = `${hint}_${k}`;
  taken.add(name);
  return name;
}

function castNode(input: string, output: string, to: number, name: string) {
  return onnx.NodeProto.create({
    opType: "Cast",
    name,
    input: [input],
    output: [output],
    attribute: [
      onnx.AttributeProto.create({
        name: "to",
        type: onnx.AttributeProto.AttributeType.INT,
        i: to,
      }),
    ],
  });
}

/** Every name of the graph: values, initializers and nodes. */
function takenNames(model: ModelProto): Set<string> {
  const graph = model.graph!;
  const taken = new Set<string>();
  for (const v of [...graph.input ?? [], ...graph.output ?? []]) taken.add(v.name ?? "");
  for (const t of graph.initializer ?? []) taken.add(t.name ?? "");
  for (const n of graph.node ?? []) {
    taken.add(n.name ?? "");
    for (const o of [...n.input ?? [], ...n.output ?? []]) taken.add(o);
  }
  return taken;
}

/** Replaces every use of value `from` by nodes of the graph with `to`. */
function renameUses(model: ModelProto, from: string, to: string): void {
  for (const n of model.graph!.node ?? []) {
    n.input = (n.input ?? []).map((i) => i === from ? to : i);
  }
}

/**
 * `model` (changed in place and returned) with a float32 interface: each half-precision input
 * `x` becomes a float32 input `x` cast to the original type for the nodes that read it, and each
 * half-precision output `y` is computed under another name and cast to a float32 output `y`.
 * Names of inputs and outputs stay as they were, so a config written for the network still fits.
 */
export function withFloat32Interface(model: ModelProto): ModelProto {
  const graph = model.graph;
  if (!graph) throw new TypeError("withFloat32Interface: the model has no graph");
  const taken = takenNames(model);
  const entry: InstanceType<typeof onnx.NodeProto>[] = [];
  for (const input of graph.input ?? []) {
    const type = elemTypeOf(input);
    if (!HALF_TYPES.includes(type)) continue;
    const inner = freshName(
      taken,
      `${input.name}/ld3_${type === ElemType.float16 ? "f16" : "bf16"}`,
    );
    renameUses(model, input.name!, inner);
    entry.push(castNode(input.name!, inner, type, freshName(taken, `${input.name}/ld3_cast_in`)));
    input.type!.tensorType!.elemType = ElemType.float;
  }
  const exit: InstanceType<typeof onnx.NodeProto>[] = [];
  for (const output of graph.output ?? []) {
    const type = elemTypeOf(output);
    if (!HALF_TYPES.includes(type)) continue;
    const inner = freshName(
      taken,
      `${output.name}/ld3_${type === ElemType.float16 ? "f16" : "bf16"}`,
    );
    for (const n of graph.node ?? []) {
      n.output = (n.output ?? []).map((o) => o === output.name ? inner : o);
    }
    // A graph input passed straight through as an output is read under its own name.
    if ((graph.input ?? []).some((i) => i.name === output.name)) continue;
    renameUses(model, output.name!, inner);
    exit.push(
      castNode(
        inner,
        output.name!,
        ElemType.float,
        freshName(taken, `${output.name}/ld3_cast_out`),
      ),
    );
    output.type!.tensorType!.elemType = ElemType.float;
  }
  graph.node = [...entry, ...graph.node ?? [], ...exit];
  // Value types declared for the old names would contradict the float32 ones.
  const widened = new Set([...graph.input ?? [], ...graph.output ?? []].map((v) => v.name));
  graph.valueInfo = (graph.valueInfo ?? []).filter((v) => !widened.has(v.name));
  return model;
}
