/**
 * The contract of a VJP rule: given the cotangents of a node's outputs, emit nodes that
 * compute the cotangents of its inputs.
 *
 * @module
 */
import type { INodeProto } from "../_graph.ts";
import type { GraphBuilder } from "../_graph.ts";

/** What a rule sees about one forward node. */
export interface RuleContext {
  /** The forward node (its output names are forward values usable in backward nodes). */
  node: INodeProto;
  /** Emits backward nodes and constants. */
  b: GraphBuilder;
  /** Default-domain opset version of the model. */
  opset: number;
  /** Cotangent value of each output, or `null` where nothing flows back. */
  gy: (string | null)[];
  /** Whether each input needs a cotangent. */
  needs: boolean[];
  /** Concrete shape of a forward value (learned by one forward run). */
  shape(name: string): number[];
  /** Element type of a forward value. */
  dtype(name: string): number;
  /** Concrete values of a non-differentiated forward value (constants, shape arithmetic). */
  values(name: string): number[];
  /** A cotangent for every output, zeros where none flows back. */
  gyOrZeros(i: number): string;
  /**
   * Whether a value is the same whatever the model inputs (an initializer, a `Constant` or
   * arithmetic on them), so that its learned value can be baked into the VJP graph.
   */
  isConstant(name: string): boolean;
  /** The forward node that computes a value (`undefined` for inputs and initializers). */
  producer(name: string): INodeProto | undefined;
  /** How many forward nodes and graph outputs use a value. */
  uses(name: string): number;
  /** Values saved for this node by its {@linkcode ForwardExpansion}, if it was expanded. */
  saved?: Record<string, string>;
}

/** What a forward expansion sees: a rule context without cotangents. */
export type ExpansionContext = Omit<RuleContext, "gy" | "gyOrZeros" | "saved">;

/**
 * Optionally replaces a forward node by primitive nodes (emitted with `ctx.b`, writing the
 * node's own outputs) so that its VJP rule can reuse their intermediates instead of
 * recomputing them. Returns the names of the saved intermediates, or `null` to keep the node.
 */
export type ForwardExpansion = (ctx: ExpansionContext) => Record<string, string> | null;

/** A VJP rule returns one cotangent name (or `null` for zero) per input. */
export type VjpRule = (ctx: RuleContext) => (string | null)[];

/** Normalises a possibly negative axis for a tensor of rank `rank`. */
export function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}
