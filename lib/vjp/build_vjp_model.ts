/**
 * Reverse-mode differentiation of ONNX graphs: from a forward model, build a model that
 * computes the vector–Jacobian product (VJP) `gᵀ ∂y/∂x` so that ONNX Runtime does the
 * arithmetic of backpropagation.
 *
 * @module
 */
import type { IModelProto, INodeProto, IValueInfoProto } from "./_graph.ts";
import { onnx } from "../deps.ts";
import { DataType, GraphBuilder, isFloatType, nodeLabel, toNumber } from "./_graph.ts";
import { inferDtypes, learnValueFacts } from "./_infer.ts";
import {
  type ExpansionContext,
  forwardExpansions,
  type RuleContext,
  vjpRules,
} from "./rules/mod.ts";

/** Options of {@linkcode buildVjpModel}. */
export interface VjpOptions {
  /** Graph inputs to differentiate with respect to (float tensors). */
  wrt: string[];
  /**
   * Graph output whose cotangent seeds the backward pass.
   *
   * @default {the first graph output}
   */
  of?: string;
  /**
   * Also output the forward value of `of`, so one call gives both.
   *
   * @default {false}
   */
  returnOutput?: boolean;
  /**
   * Concrete shape of each input; needed for inputs with dynamic dimensions. The VJP model is
   * specialised to these shapes.
   *
   * @default {the static shapes declared by the model}
   */
  inputShapes?: Record<string, number[]>;
}

/** Name of the cotangent input of a VJP model seeded at output `of`. */
export function cotangentName(of: string): string {
  return `grad_${of}`;
}

/** Name of the VJP model output holding the cotangent of input `x`. */
export function gradientName(x: string): string {
  return `grad_${x}`;
}

/** Default-domain opset of a model. */
function defaultOpset(model: IModelProto): number {
  const imp = (model.opsetImport ?? []).find((o) => !o.domain || o.domain === "ai.onnx");
  return imp ? toNumber(imp.version) : 0;
}

function typeName(t: number | undefined): string {
  return (DataType as unknown as Record<number, string>)[t ?? 0] ?? String(t);
}

function valueInfo(name: string, dtype: number, shape: number[]): IValueInfoProto {
  return onnx.ValueInfoProto.create({
    name,
    type: { tensorType: { elemType: dtype, shape: { dim: shape.map((d) => ({ dimValue: d })) } } },
  });
}

/** Concrete shape of input `v`, from `inputShapes` or its static type. */
function concreteShape(v: IValueInfoProto, options: VjpOptions): number[] {
  const given = options.inputShapes?.[v.name!];
  const dims = v.type?.tensorType?.shape?.dim ?? [];
  if (given) {
    if (given.length !== dims.length && dims.length > 0) {
      throw new RangeError(
        `Input shape has the wrong rank: inputShapes.${v.name} is [${given}], model has rank ${dims.length}`,
      );
    }
    return given;
  }
  return dims.map((d) => {
    const n = toNumber(d.dimValue);
    if (d.dimParam || !(n > 0)) {
      throw new RangeError(
        `Dynamic input shape needs inputShapes: ${v.name} has dimension ${d.dimParam || "?"}`,
      );
    }
    return n;
  });
}

/**
 * Builds a model that computes a vector–Jacobian product of `model`.
 *
 * The new model keeps the forward graph (so intermediates are available to the backward
 * nodes) and appends backward nodes, accumulating the cotangents of fan-out with `Sum`. Its
 * inputs are the original inputs plus the cotangent `grad_<of>`; its outputs are
 * `grad_<x>` for each `x` in `wrt` (preceded by `of` itself when `returnOutput` is set).
 * Initializers are constants: no weight gradients are produced. Only float values that
 * depend on a `wrt` input and reach `of` are differentiated, so integer shape arithmetic
 * passes through untouched. The graph is specialised to concrete input shapes, learned by
 * one forward run with every intermediate value exposed.
 *
 * @example Gradient of a sum of squares
 * ```ts ignore
 * const vjp = await buildVjpModel(bytes, { wrt: ["x"], of: "y" });
 * // run it with { x, grad_y } and read grad_x
 * ```
 *
 * @param model The forward model, ONNX protobuf bytes (default-domain opset ≥ 13).
 * @param options What to differentiate.
 * @returns The VJP model, ONNX protobuf bytes.
 * @throws {TypeError} An op on the differentiated path has no rule (the message names the op
 * and the node), or a `wrt` input is not a float tensor.
 * @throws {RangeError} A `wrt` input or `of` output does not exist, or an input shape is
 * unknown.
 */
export async function buildVjpModel(model: Uint8Array, options: VjpOptions): Promise<Uint8Array> {
  const m = onnx.ModelProto.decode(model);
  const graph = m.graph;
  if (!graph) throw new RangeError("Model has no graph: graph is empty");
  const opset = defaultOpset(m);
  if (opset < 13) throw new RangeError(`Unsupported opset (13 or newer needed): ${opset}`);
  const initNames = new Set((graph.initializer ?? []).map((t) => t.name!));
  const inputs = (graph.input ?? []).filter((v) => !initNames.has(v.name!));
  const inputNames = inputs.map((v) => v.name!);
  const outputNames = (graph.output ?? []).map((v) => v.name!);
  const of = options.of ?? outputNames[0];
  if (!outputNames.includes(of)) {
    throw new RangeError(`Unknown output in of: ${of} (outputs: ${outputNames.join(", ")})`);
  }
  if (options.wrt.length === 0) throw new RangeError("Nothing to differentiate: wrt is empty");
  const staticTypes = inferDtypes(graph);
  for (const w of options.wrt) {
    if (!inputNames.includes(w)) {
      throw new RangeError(`Unknown input in wrt: ${w} (inputs: ${inputNames.join(", ")})`);
    }
    if (!isFloatType(staticTypes.get(w))) {
      throw new TypeError(
        `Non-float input in wrt: ${w} has element type ${typeName(staticTypes.get(w))}`,
      );
    }
  }
  const nodes = graph.node ?? [];

  // nodes that depend on a wrt input through float values and reach `of`
  const pathOf = (types: Map<string, number>) => {
    const active = new Set(options.wrt);
    for (const node of nodes) {
      if (!(node.input ?? []).some((i) => active.has(i))) continue;
      for (const o of node.output ?? []) {
        const t = types.get(o);
        if (o && (t === undefined || isFloatType(t))) active.add(o);
      }
    }
    const reaches = new Set([of]);
    for (let k = nodes.length - 1; k >= 0; k--) {
      if ((nodes[k].output ?? []).some((o) => reaches.has(o))) {
        for (const i of nodes[k].input ?? []) reaches.add(i);
      }
    }
    const path = nodes.filter((n) =>
      (n.input ?? []).some((i) => active.has(i)) &&
      (n.output ?? []).some((o) => active.has(o) && reaches.has(o))
    );
    return { active, reaches, path };
  };

  // fail on unsupported ops before running anything
  pathOf(staticTypes).path.forEach((node) => {
    const domain = node.domain ?? "";
    if ((domain !== "" && domain !== "ai.onnx") || !vjpRules[node.opType ?? ""]) {
      const op = domain ? `${domain}.${node.opType}` : node.opType;
      throw new TypeError(
        `Unsupported op for VJP: ${op} at node "${nodeLabel(node, nodes.indexOf(node))}"`,
      );
    }
  });

  const shapes = new Map(inputs.map((v) => [v.name!, concreteShape(v, options)]));
  const facts = await learnValueFacts(m, shapes, staticTypes);
  const { active, reaches, path } = pathOf(facts.dtypes);

  const taken = new Set<string>([...initNames, ...inputNames]);
  for (const n of nodes) {
    for (const o of n.output ?? []) taken.add(o);
    if (n.name) taken.add(n.name);
  }
  const unique = (name: string) => {
    let out = name;
    for (let k = 1; taken.has(out); k++) out = `${name}_${k}`;
    taken.add(out);
    return out;
  };
  const seed = unique(cotangentName(of));
  const b = new GraphBuilder(taken);
  const parts = new Map<string, string[]>([[of, [seed]]]);
  const total = (v: string): string | null => {
    const list = parts.get(v);
    if (!list || list.length === 0) return null;
    if (list.length > 1) parts.set(v, [b.sum(list, shapeOf(v), dtypeOf(v))]);
    return parts.get(v)![0];
  };
  const shapeOf = (name: string) => {
    const s = facts.shapes.get(name);
    if (!s) throw new RangeError(`Unknown shape of value: ${name}`);
    return s;
  };
  const dtypeOf = (name: string) => facts.dtypes.get(name) ?? staticTypes.get(name) ?? 0;

  // values fixed at these input shapes: initializers, Constant nodes, shape arithmetic
  const constants = new Set(initNames);
  for (const node of nodes) {
    const op = node.opType ?? "";
    const ins = (node.input ?? []).filter((i) => i !== "");
    if (
      !op.startsWith("Random") && op !== "Multinomial" &&
      (op === "Shape" || op === "Size" || ins.every((i) => constants.has(i)))
    ) {
      for (const o of node.output ?? []) if (o) constants.add(o);
    }
  }
  const producers = new Map<string, INodeProto>();
  const useCount = new Map<string, number>(outputNames.map((o) => [o, 1]));
  for (const node of nodes) {
    for (const o of node.output ?? []) if (o) producers.set(o, node);
    for (const i of node.input ?? []) if (i) useCount.set(i, (useCount.get(i) ?? 0) + 1);
  }
  const contextOf = (node: INodeProto): ExpansionContext => {
    const label = nodeLabel(node, nodes.indexOf(node));
    return {
      node,
      b,
      opset,
      needs: (node.input ?? []).map((i) => i !== "" && active.has(i)),
      shape: shapeOf,
      dtype: dtypeOf,
      values: (name) => {
        const v = facts.values.get(name);
        if (!v) {
          throw new RangeError(`Unknown constant value at node "${label}": ${name}`);
        }
        return v;
      },
      isConstant: (name) => constants.has(name),
      producer: (name) => producers.get(name),
      uses: (name) => useCount.get(name) ?? 0,
    };
  };

  // forward nodes rewritten into primitives whose intermediates the backward reuses
  const expanded = new Map<INodeProto, INodeProto[]>();
  const saved = new Map<INodeProto, Record<string, string>>();
  for (const node of path) {
    const expand = forwardExpansions[node.opType ?? ""];
    if (!expand) continue;
    const { nodes: emitted, result } = b.capture(() => expand(contextOf(node)));
    if (result) {
      expanded.set(node, emitted);
      saved.set(node, result);
    }
  }

  for (let k = path.length - 1; k >= 0; k--) {
    const node = path[k];
    const outs = node.output ?? [];
    const gy = outs.map((o) => (active.has(o) && reaches.has(o) ? total(o) : null));
    if (gy.every((g) => g === null)) continue;
    const ctx: RuleContext = {
      ...contextOf(node),
      gy,
      gyOrZeros: (i) => gy[i] ?? b.zeros(shapeOf(outs[i]), dtypeOf(outs[i])),
      saved: saved.get(node),
    };
    const gx = vjpRules[node.opType!](ctx);
    (node.input ?? []).forEach((i, j) => {
      const g = gx[j];
      if (!ctx.needs[j] || !g) return;
      const list = parts.get(i) ?? [];
      list.push(g);
      parts.set(i, list);
    });
  }

  const gradOutputs: IValueInfoProto[] = [];
  for (const w of options.wrt) {
    const name = unique(gradientName(w));
    const g = total(w);
    const shape = shapeOf(w);
    const dt = dtypeOf(w);
    b.nodes.push(
      g ? { opType: "Identity", name: b.fresh("grad_out"), input: [g], output: [name] } : {
        opType: "ConstantOfShape",
        name: b.fresh("grad_zero"),
        input: [b.int64(shape)],
        output: [name],
        attribute: [{
          name: "value",
          type: onnx.AttributeProto.AttributeType.TENSOR,
          t: onnx.TensorProto.create({
            dataType: dt,
            dims: [1],
            rawData: dt === DataType.DOUBLE ? new Uint8Array(8) : new Uint8Array(4),
          }),
        }],
      },
    );
    gradOutputs.push(valueInfo(name, dt, shape));
  }

  const outputs = [
    ...(options.returnOutput ? [valueInfo(of, dtypeOf(of), shapeOf(of))] : []),
    ...gradOutputs,
  ];
  // keep only the nodes the outputs need
  const allNodes = [...nodes.flatMap((n) => expanded.get(n) ?? [n]), ...b.nodes];
  const needed = new Set(outputs.map((o) => o.name));
  const keep: INodeProto[] = [];
  for (let k = allNodes.length - 1; k >= 0; k--) {
    const n = allNodes[k];
    if ((n.output ?? []).some((o) => needed.has(o))) {
      keep.push(n);
      for (const i of n.input ?? []) needed.add(i);
    }
  }
  keep.reverse();
  const newGraph = onnx.GraphProto.create({
    name: `${graph.name || "model"}_vjp`,
    node: keep,
    initializer: [...graph.initializer ?? [], ...b.initializers].filter((t) => needed.has(t.name!)),
    input: [
      ...inputs.map((v) => valueInfo(v.name!, dtypeOf(v.name!), shapes.get(v.name!)!)),
      valueInfo(seed, dtypeOf(of), shapeOf(of)),
    ],
    output: outputs,
  });
  const out = onnx.ModelProto.create({ ...m, graph: newGraph });
  return onnx.ModelProto.encode(out).finish();
}
