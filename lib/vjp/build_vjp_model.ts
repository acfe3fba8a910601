/**
 * Reverse-mode differentiation of ONNX graphs: from a forward model, build a model that
 * computes the vector–Jacobian product (VJP) `gᵀ ∂y/∂x` so that ONNX Runtime does the
 * arithmetic of backpropagation.
 *
 * @module
 */
import type {
  IGraphProto,
  IModelProto,
  INodeProto,
  ITensorProto,
  IValueInfoProto,
} from "./_graph.ts";
import { onnx } from "../deps.ts";
import { withDerivedFolder } from "../onnx/derived.ts";
import { DataType, GraphBuilder, isFloatType, makeTensor, nodeLabel, toNumber } from "./_graph.ts";
import { inferDtypes, learnValueFacts, type ValueFacts } from "./_infer.ts";
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
  /**
   * The folder of the model file when the graph references its weights in external data (a
   * graph ld3 made in memory from a model on disk: `lib/onnx/derived.ts`).
   */
  externalDataFolder?: string;
  /**
   * Rewrite some forward nodes (InstanceNormalization) into primitives whose intermediates the
   * backward reuses. Off, the forward nodes stay as they are (so a forward part computes
   * exactly what the model computes) and their rules recompute those intermediates.
   *
   * @default {true}
   */
  expand?: boolean;
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
  const { build, gradients, expanded, shapes } = await backwardPass(model, options);
  const of = build.fwd.of;
  const outputs = [
    ...(options.returnOutput ? [valueInfo(of, dtypeOf(build, of), shapeOf(build, of))] : []),
    ...gradients,
  ];
  return encodeVjpModel(build, outputs, expanded, shapes);
}

/** The backward graph of `model` built and its gradient outputs named (both builders share it). */
async function backwardPass(model: Uint8Array, options: VjpOptions) {
  const fwd = readForward(model, options);
  const { nodes, of } = fwd;
  // fail on unsupported ops before running anything
  checkRules(differentiablePath(nodes, options.wrt, of, fwd.staticTypes).path, nodes);
  const shapes = new Map(fwd.inputs.map((v) => [v.name!, concreteShape(v, options)]));
  const probeOptions = options.externalDataFolder === undefined ? {} : withDerivedFolder(
    { extra: { session: { disable_prepacking: "1" } } },
    options.externalDataFolder,
  );
  const facts = await learnValueFacts(fwd.m, shapes, fwd.staticTypes, probeOptions);
  // again with the types of the forward run, which the static pass may not know
  const { active, reaches, path } = differentiablePath(nodes, options.wrt, of, facts.dtypes);
  const build = startBuild(fwd, facts, active);
  const { expanded, saved } = options.expand === false
    ? { expanded: new Map<INodeProto, INodeProto[]>(), saved: new Map() }
    : expandForward(build, path);
  propagate(build, path, reaches, saved);
  const gradients = gradientOutputs(build, options.wrt);
  return { build, gradients, expanded, shapes };
}

/** One value the forward part of a split VJP hands to its backward part. */
export interface VjpResidual {
  /** The forward value's name: an output of the forward model, an input of the backward one. */
  readonly name: string;
  /** Its concrete shape at the input shapes the models were built for. */
  readonly shape: readonly number[];
  /** ONNX element type. */
  readonly dtype: number;
}

/** The two models of {@linkcode buildSplitVjpModels}. */
export interface SplitVjpModels {
  /**
   * The forward model: the model's own nodes, with outputs `of` and then every residual (the
   * forward values the backward part reads).
   */
  readonly forward: Uint8Array;
  /**
   * The backward model: inputs are the residuals, then the cotangent `grad_<of>`; outputs are
   * `grad_<x>` for each `wrt` input. It holds no forward node.
   */
  readonly backward: Uint8Array;
  /** The values the forward model outputs for the backward model, in input order. */
  readonly residuals: readonly VjpResidual[];
}

/**
 * Builds a VJP of `model` in two parts, so that a forward run that must happen anyway (the
 * trajectory of a solver) also keeps what the backward pass needs, and the backward pass later
 * runs without repeating the forward: `forward` is the model plus outputs for the residuals
 * (values such as activations that the backward rules read), `backward` the backward nodes
 * alone, fed those residuals and the cotangent. Model inputs the backward reads count as
 * residuals too (the forward model passes them through), so a backward call needs nothing but
 * the forward call's outputs and the cotangent.
 *
 * `expand` defaults to `false` here: the forward part then computes bit for bit what the model
 * computes (an expanded InstanceNormalization rounds differently), and the normalisation rules
 * recompute their `x̂` and `1/σ` from the saved input.
 *
 * @example
 * ```ts ignore
 * const { forward, backward, residuals } = await buildSplitVjpModels(bytes, {
 *   wrt: ["x"], of: "y", inputShapes: { x: [2, 1, 28, 28] },
 * });
 * ```
 * @throws {TypeError | RangeError} as {@linkcode buildVjpModel}
 */
export async function buildSplitVjpModels(
  model: Uint8Array,
  options: Omit<VjpOptions, "returnOutput">,
): Promise<SplitVjpModels> {
  const { build, gradients, expanded } = await backwardPass(model, {
    ...options,
    expand: options.expand ?? false,
  });
  const { residuals, baked } = residualsOf(build, gradients.map((g) => g.name!));
  const of = build.fwd.of;
  // Outputs typed but not shaped, as the inputs keep the model's (possibly dynamic) shapes.
  const forwardOutputs = [of, ...residuals.map((r) => r.name).filter((r) => r !== of)].map((
    name,
  ) =>
    onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType: dtypeOf(build, name) } } })
  );
  return {
    forward: encodeForwardPart(build, forwardOutputs, expanded),
    backward: encodeBackwardPart(build, gradients, residuals, baked),
    residuals,
  };
}

/**
 * The forward values the backward nodes read: every name a backward node reads that no
 * backward node writes and that is neither the seed nor a constant tensor (initializers of
 * either part), in first-use order. Forward values that are the same whatever the inputs and
 * whose values the shape pass learned (`Constant` nodes, shape arithmetic) are baked into the
 * backward model instead. Only the backward nodes the gradients need count, so values that
 * pruned nodes read are not saved.
 */
function residualsOf(
  build: VjpBuild,
  gradients: string[],
): { residuals: VjpResidual[]; baked: ITensorProto[] } {
  const { b, facts } = build;
  const initNames = new Set([
    ...(build.fwd.graph.initializer ?? []).map((t) => t.name!),
    ...b.initializers.map((t) => t.name!),
  ]);
  const written = new Set(b.nodes.flatMap((n) => n.output ?? []));
  const seen = new Set<string>([build.seed]);
  const residuals: VjpResidual[] = [];
  const baked: ITensorProto[] = [];
  for (const node of neededNodes(b.nodes, new Set(gradients))) {
    for (const i of node.input ?? []) {
      if (!i || written.has(i) || initNames.has(i) || seen.has(i)) continue;
      seen.add(i);
      const shape = shapeOf(build, i);
      const values = build.constants.has(i) ? facts.values.get(i) : undefined;
      if (values) baked.push(makeTensor(i, dtypeOf(build, i), shape, values));
      else residuals.push({ name: i, shape, dtype: dtypeOf(build, i) });
    }
  }
  return { residuals, baked };
}

/** The nodes of `nodes` (in order) that the values `needed` depend on. */
function neededNodes(nodes: INodeProto[], needed: Set<string>): INodeProto[] {
  const keep: INodeProto[] = [];
  for (let k = nodes.length - 1; k >= 0; k--) {
    const n = nodes[k];
    if ((n.output ?? []).some((o) => needed.has(o))) {
      keep.push(n);
      for (const i of n.input ?? []) needed.add(i);
    }
  }
  return keep.reverse();
}

/** The forward part of a split VJP: the forward nodes the outputs need, the model's inputs. */
function encodeForwardPart(
  build: VjpBuild,
  outputs: IValueInfoProto[],
  expanded: Map<INodeProto, INodeProto[]>,
): Uint8Array {
  const { fwd } = build;
  const nodes = neededNodes(
    fwd.nodes.flatMap((n) => expanded.get(n) ?? [n]),
    new Set(outputs.map((o) => o.name!)),
  );
  const used = new Set(nodes.flatMap((n) => n.input ?? []));
  const graph = onnx.GraphProto.create({
    name: `${fwd.graph.name || "model"}_vjp_forward`,
    node: nodes,
    initializer: [...fwd.graph.initializer ?? [], ...build.b.initializers].filter((t) =>
      used.has(t.name!)
    ),
    // The model's own input declarations: ONNX Runtime optimises a graph with fixed input
    // shapes differently (other rounding), and the forward part must compute what the model does.
    input: fwd.inputs,
    output: outputs,
  });
  return onnx.ModelProto.encode(onnx.ModelProto.create({ ...build.fwd.m, graph })).finish();
}

/** The backward part of a split VJP: backward nodes only, fed the residuals and the seed. */
function encodeBackwardPart(
  build: VjpBuild,
  gradients: IValueInfoProto[],
  residuals: readonly VjpResidual[],
  baked: ITensorProto[],
): Uint8Array {
  const { fwd, b } = build;
  const nodes = neededNodes(b.nodes, new Set(gradients.map((g) => g.name!)));
  const used = new Set(nodes.flatMap((n) => n.input ?? []));
  const graph = onnx.GraphProto.create({
    name: `${fwd.graph.name || "model"}_vjp_backward`,
    node: nodes,
    initializer: [...fwd.graph.initializer ?? [], ...b.initializers, ...baked].filter((t) =>
      used.has(t.name!)
    ),
    input: [
      ...residuals.map((r) => valueInfo(r.name, r.dtype, [...r.shape])),
      valueInfo(build.seed, dtypeOf(build, fwd.of), shapeOf(build, fwd.of)),
    ],
    output: gradients,
  });
  return onnx.ModelProto.encode(onnx.ModelProto.create({ ...fwd.m, graph })).finish();
}

/** The decoded forward model and what the VJP is taken of, checked. */
interface ForwardGraph {
  m: ReturnType<typeof onnx.ModelProto.decode>;
  graph: IGraphProto;
  opset: number;
  nodes: INodeProto[];
  /** Initializer names: constants, never differentiated. */
  initNames: Set<string>;
  /** Real graph inputs (initializers listed as inputs excluded). */
  inputs: IValueInfoProto[];
  inputNames: string[];
  outputNames: string[];
  /** The output whose cotangent seeds the backward pass. */
  of: string;
  /** Element types known without running the model. */
  staticTypes: Map<string, number>;
}

/** Decodes `model` and checks its opset, `of` and `wrt`, in that order. */
function readForward(model: Uint8Array, options: VjpOptions): ForwardGraph {
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
  return { m, graph, opset, nodes, initNames, inputs, inputNames, outputNames, of, staticTypes };
}

/**
 * The nodes that depend on a `wrt` input through float values and reach `of`, with the values
 * that do each (`active`: depend on `wrt`; `reaches`: flow into `of`).
 */
function differentiablePath(
  nodes: INodeProto[],
  wrt: readonly string[],
  of: string,
  types: Map<string, number>,
): { active: Set<string>; reaches: Set<string>; path: INodeProto[] } {
  const active = new Set(wrt);
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
}

/** Refuses the first node of `path` whose op has no VJP rule. */
function checkRules(path: INodeProto[], nodes: INodeProto[]): void {
  path.forEach((node) => {
    const domain = node.domain ?? "";
    if ((domain !== "" && domain !== "ai.onnx") || !vjpRules[node.opType ?? ""]) {
      const op = domain ? `${domain}.${node.opType}` : node.opType;
      throw new TypeError(
        `Unsupported op for VJP: ${op} at node "${nodeLabel(node, nodes.indexOf(node))}"`,
      );
    }
  });
}

/** The backward graph under construction, and what its rules may ask about forward values. */
interface VjpBuild {
  fwd: ForwardGraph;
  facts: ValueFacts;
  /** Values that depend on a `wrt` input. */
  active: Set<string>;
  /** Every name in use, so new ones never collide (shared with `b`). */
  taken: Set<string>;
  b: GraphBuilder;
  /** The cotangent input, seeding `of`. */
  seed: string;
  /** Cotangent contributions of each value, summed when first read ({@linkcode total}). */
  parts: Map<string, string[]>;
  /**
   * Values fixed at these input shapes: initializers, Constant nodes, shape arithmetic (their
   * learned values can be baked in).
   */
  constants: Set<string>;
  producers: Map<string, INodeProto>;
  /** How many nodes and graph outputs read each value. */
  useCount: Map<string, number>;
}

/** The build's starting state: names taken, the seed, constants, producers and use counts. */
function startBuild(fwd: ForwardGraph, facts: ValueFacts, active: Set<string>): VjpBuild {
  const { nodes } = fwd;
  const taken = new Set<string>([...fwd.initNames, ...fwd.inputNames]);
  for (const n of nodes) {
    for (const o of n.output ?? []) taken.add(o);
    if (n.name) taken.add(n.name);
  }
  const seed = uniqueName(taken, cotangentName(fwd.of));
  const constants = new Set(fwd.initNames);
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
  const useCount = new Map<string, number>(fwd.outputNames.map((o) => [o, 1]));
  for (const node of nodes) {
    for (const o of node.output ?? []) if (o) producers.set(o, node);
    for (const i of node.input ?? []) if (i) useCount.set(i, (useCount.get(i) ?? 0) + 1);
  }
  const b = new GraphBuilder(taken);
  const parts = new Map<string, string[]>([[fwd.of, [seed]]]);
  return { fwd, facts, active, taken, b, seed, parts, constants, producers, useCount };
}

/** `name`, or `name_<k>` for the first k that is not taken; taken from now on. */
function uniqueName(taken: Set<string>, name: string): string {
  let out = name;
  for (let k = 1; taken.has(out); k++) out = `${name}_${k}`;
  taken.add(out);
  return out;
}

function shapeOf(build: VjpBuild, name: string): number[] {
  const s = build.facts.shapes.get(name);
  if (!s) throw new RangeError(`Unknown shape of value: ${name}`);
  return s;
}

function dtypeOf(build: VjpBuild, name: string): number {
  return build.facts.dtypes.get(name) ?? build.fwd.staticTypes.get(name) ?? 0;
}

/** The cotangent of `v`: its contributions summed into one value, or null when none flows. */
function total(build: VjpBuild, v: string): string | null {
  const list = build.parts.get(v);
  if (!list || list.length === 0) return null;
  if (list.length > 1) {
    build.parts.set(v, [build.b.sum(list, shapeOf(build, v), dtypeOf(build, v))]);
  }
  return build.parts.get(v)![0];
}

/** What a forward expansion or a rule sees of `node`. */
function contextOf(build: VjpBuild, node: INodeProto): ExpansionContext {
  const label = nodeLabel(node, build.fwd.nodes.indexOf(node));
  return {
    node,
    b: build.b,
    opset: build.fwd.opset,
    needs: (node.input ?? []).map((i) => i !== "" && build.active.has(i)),
    shape: (name) => shapeOf(build, name),
    dtype: (name) => dtypeOf(build, name),
    values: (name) => {
      const v = build.facts.values.get(name);
      if (!v) {
        throw new RangeError(`Unknown constant value at node "${label}": ${name}`);
      }
      return v;
    },
    isConstant: (name) => build.constants.has(name),
    producer: (name) => build.producers.get(name),
    uses: (name) => build.useCount.get(name) ?? 0,
  };
}

/** Forward nodes rewritten into primitives whose intermediates the backward reuses. */
function expandForward(build: VjpBuild, path: INodeProto[]): {
  expanded: Map<INodeProto, INodeProto[]>;
  saved: Map<INodeProto, Record<string, string>>;
} {
  const expanded = new Map<INodeProto, INodeProto[]>();
  const saved = new Map<INodeProto, Record<string, string>>();
  for (const node of path) {
    const expand = forwardExpansions[node.opType ?? ""];
    if (!expand) continue;
    const { nodes: emitted, result } = build.b.capture(() => expand(contextOf(build, node)));
    if (result) {
      expanded.set(node, emitted);
      saved.set(node, result);
    }
  }
  return { expanded, saved };
}

/** The backward pass: each path node's rule, last node first, adds its inputs' cotangents. */
function propagate(
  build: VjpBuild,
  path: INodeProto[],
  reaches: Set<string>,
  saved: Map<INodeProto, Record<string, string>>,
): void {
  const { b, active, parts } = build;
  for (let k = path.length - 1; k >= 0; k--) {
    const node = path[k];
    const outs = node.output ?? [];
    const gy = outs.map((o) => (active.has(o) && reaches.has(o) ? total(build, o) : null));
    if (gy.every((g) => g === null)) continue;
    const ctx: RuleContext = {
      ...contextOf(build, node),
      gy,
      gyOrZeros: (i) => gy[i] ?? b.zeros(shapeOf(build, outs[i]), dtypeOf(build, outs[i])),
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
}

/** One output `grad_<w>` per `wrt` input: its cotangent, or zeros when none reached it. */
function gradientOutputs(build: VjpBuild, wrt: readonly string[]): IValueInfoProto[] {
  const { b } = build;
  const gradOutputs: IValueInfoProto[] = [];
  for (const w of wrt) {
    const name = uniqueName(build.taken, gradientName(w));
    const g = total(build, w);
    const shape = shapeOf(build, w);
    const dt = dtypeOf(build, w);
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
  return gradOutputs;
}

/**
 * The VJP model: forward nodes (expanded ones replaced) and backward nodes, keeping only those
 * the outputs need, with the concrete input shapes and the cotangent input.
 */
function encodeVjpModel(
  build: VjpBuild,
  outputs: IValueInfoProto[],
  expanded: Map<INodeProto, INodeProto[]>,
  shapes: Map<string, number[]>,
): Uint8Array {
  const { fwd, b } = build;
  const allNodes = [...fwd.nodes.flatMap((n) => expanded.get(n) ?? [n]), ...b.nodes];
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
    name: `${fwd.graph.name || "model"}_vjp`,
    node: keep,
    initializer: [...fwd.graph.initializer ?? [], ...b.initializers].filter((t) =>
      needed.has(t.name!)
    ),
    input: [
      ...fwd.inputs.map((v) => valueInfo(v.name!, dtypeOf(build, v.name!), shapes.get(v.name!)!)),
      valueInfo(build.seed, dtypeOf(build, fwd.of), shapeOf(build, fwd.of)),
    ],
    output: outputs,
  });
  const out = onnx.ModelProto.create({ ...fwd.m, graph: newGraph });
  return onnx.ModelProto.encode(out).finish();
}
