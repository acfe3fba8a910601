/**
 * The exact denoiser of an isotropic Gaussian mixture under VE noise, as an ONNX graph.
 *
 * For components (weight π_k, mean μ_k, variance s_k²) in d dimensions, noise level σ:
 *
 * ```
 * w = softmax_k( log π_k − (d/2)·log(s_k²+σ²) − ‖x−μ_k‖² / (2(s_k²+σ²)) )
 * D(x, σ) = Σ_k w_k [ μ_k + s_k²/(s_k²+σ²)·(x − μ_k) ]
 * ```
 *
 * With μ_k set to real images this is a "memorizing" image model whose ODE is known exactly,
 * which makes it a cheap stand-in for a trained network in tests and demos. Only standard
 * opset-17 ops are used, so any ONNX runtime can run it.
 *
 * @module
 */
import { onnx } from "../deps.ts";
import { createGmm, type Gmm } from "../gmm.ts";
import {
  buildModel,
  ElemType,
  node,
  type NodeProto,
  tensor,
  type TensorProto,
  valueInfo,
} from "./build.ts";

/** Parameters of {@linkcode buildGmmOnnx}. */
export interface GmmOnnxOptions {
  /** Component means, K × d values in C order (d = prod(sampleShape)). */
  means: Float32Array | Float64Array;
  /** Shape of one sample, without the batch axis, e.g. `[1, 28, 28]`. */
  sampleShape: readonly number[];
  /** Per-component isotropic variances s_k² (K values, ≥ 0). */
  variances: ArrayLike<number>;
  /** Mixture weights π_k (K positive values, normalised here). @default {uniform} */
  weights?: ArrayLike<number>;
  /** ONNX input name of the noisy sample. @default {"x"} */
  xName?: string;
  /** ONNX input name of the noise level σ (shape `[batch]`). @default {"sigma"} */
  sigmaName?: string;
  /** ONNX output name of the denoised sample. @default {"denoised"} */
  outputName?: string;
}

/**
 * Build the ONNX model (opset 17) of the exact Gaussian-mixture denoiser: inputs
 * `x` `[B, ...sampleShape]` and `sigma` `[B]` (float32), output `denoised` like `x`.
 *
 * ‖x−μ_k‖² is computed as ‖x'‖² − 2x'·μ'_k + ‖μ'_k‖² with one matrix product, after shifting
 * x and the means by the mean of the means (x' = x − c): the mixture is translation
 * equivariant, and the shift keeps the float32 cancellation error small when x is near a mean.
 *
 * @returns the ONNX model bytes (deterministic for equal inputs)
 * @throws {RangeError} for inconsistent sizes or non-positive weights / negative variances
 */
export function buildGmmOnnx(options: GmmOnnxOptions): Uint8Array {
  const shape = [...options.sampleShape];
  if (shape.length === 0 || !shape.every((n) => Number.isInteger(n) && n > 0)) {
    throw new RangeError(`sampleShape must be positive integers: got [${shape.join(", ")}]`);
  }
  const d = shape.reduce((a, b) => a * b, 1);
  const K = options.variances.length;
  if (K < 1 || options.means.length !== K * d) {
    throw new RangeError(
      `means must hold K·d = ${K}·${d} = ${K * d} values: got ${options.means.length}`,
    );
  }
  const variances = Float64Array.from(options.variances);
  if (!variances.every((v) => v >= 0 && Number.isFinite(v))) {
    throw new RangeError(`variances must be finite and >= 0: got [${[...variances].join(", ")}]`);
  }
  const weights = options.weights
    ? Float64Array.from(options.weights)
    : new Float64Array(K).fill(1);
  if (weights.length !== K || !weights.every((w) => w > 0 && Number.isFinite(w))) {
    throw new RangeError(`weights must be ${K} positive numbers: got ${weights.length} values`);
  }
  const total = weights.reduce((a, b) => a + b, 0);
  const logPi = weights.map((w) => Math.log(w / total));

  // Centre in float64: c = mean of the means, μ' = μ − c, ‖μ'‖².
  const center = new Float64Array(d);
  for (let k = 0; k < K; k++) {
    for (let i = 0; i < d; i++) center[i] += options.means[k * d + i] / K;
  }
  const centered = new Float32Array(K * d);
  const meanNorms = new Float64Array(K);
  for (let k = 0; k < K; k++) {
    let acc = 0;
    for (let i = 0; i < d; i++) {
      const v = Math.fround(options.means[k * d + i] - center[i]);
      centered[k * d + i] = v;
      acc += v * v;
    }
    meanNorms[k] = acc;
  }

  const xName = options.xName ?? "x";
  const sigmaName = options.sigmaName ?? "sigma";
  const outName = options.outputName ?? "denoised";
  const initializers: TensorProto[] = [
    tensor("mu", [K, d], centered),
    tensor("center", [1, d], center),
    tensor("mu_norm2", [K], meanNorms),
    tensor("s2", [K], variances),
    tensor("log_pi", [K], logPi),
    tensor("half_d", [], [d / 2]),
    tensor("two", [], [2]),
    tensor("flat_shape", [2], BigInt64Array.of(-1n, BigInt(d))),
    tensor("axis1", [1], BigInt64Array.of(1n)),
  ];
  const nodes: NodeProto[] = [
    // x' = reshape(x, [B, d]) − c
    node("Reshape", [xName, "flat_shape"], ["x_flat"]),
    node("Sub", ["x_flat", "center"], ["xc"]),
    // v_k = s_k² + σ², [B, K]
    node("Mul", [sigmaName, sigmaName], ["sigma2"]),
    node("Unsqueeze", ["sigma2", "axis1"], ["sigma2_col"]),
    node("Add", ["sigma2_col", "s2"], ["var"]),
    // ‖x' − μ'_k‖² = ‖x'‖² − 2 x'·μ'_k + ‖μ'_k‖², [B, K]
    node("Mul", ["xc", "xc"], ["xc_sq"]),
    node("ReduceSum", ["xc_sq", "axis1"], ["x_norm2"], { keepdims: 1 }),
    node("Gemm", ["xc", "mu"], ["x_dot_mu"], { transB: 1 }),
    node("Mul", ["x_dot_mu", "two"], ["two_x_dot_mu"]),
    node("Sub", ["x_norm2", "two_x_dot_mu"], ["dist_a"]),
    node("Add", ["dist_a", "mu_norm2"], ["dist2"]),
    // logits = log π − (d/2) log v − dist² / (2v)
    node("Log", ["var"], ["log_var"]),
    node("Mul", ["log_var", "half_d"], ["log_det"]),
    node("Mul", ["var", "two"], ["two_var"]),
    node("Div", ["dist2", "two_var"], ["quad"]),
    node("Sub", ["log_pi", "log_det"], ["logits_a"]),
    node("Sub", ["logits_a", "quad"], ["logits"]),
    node("Softmax", ["logits"], ["w"], { axis: 1 }),
    // D' = Σ_k w_k σ²/v_k · μ'_k + (Σ_k w_k s_k²/v_k) · x'
    node("Div", ["sigma2_col", "var"], ["keep_mean"]),
    node("Mul", ["w", "keep_mean"], ["a"]),
    node("MatMul", ["a", "mu"], ["mean_part"]),
    node("Div", ["s2", "var"], ["keep_x"]),
    node("Mul", ["w", "keep_x"], ["b"]),
    node("ReduceSum", ["b", "axis1"], ["b_sum"], { keepdims: 1 }),
    node("Mul", ["b_sum", "xc"], ["x_part"]),
    node("Add", ["mean_part", "x_part"], ["dc"]),
    node("Add", ["dc", "center"], ["d_flat"]),
    node("Shape", [xName], ["x_shape"]),
    node("Reshape", ["d_flat", "x_shape"], [outName]),
  ];
  return buildModel({
    name: "gmm_denoiser",
    docString: `Exact VE denoiser of a ${K}-component isotropic Gaussian mixture in ${d} dims`,
    nodes,
    initializers,
    inputs: [
      valueInfo(xName, ElemType.float, ["batch", ...shape]),
      valueInfo(sigmaName, ElemType.float, ["batch"]),
    ],
    outputs: [valueInfo(outName, ElemType.float, ["batch", ...shape])],
  });
}

//----------------------------------------------------------------------------
// Reading the mixture back: the inverse of buildGmmOnnx

function initializerValues(t: TensorProto): Float64Array {
  const FLOAT = 1;
  const DOUBLE = 11;
  const raw = t.rawData as Uint8Array | undefined;
  if (raw && raw.length > 0) {
    const copy = raw.slice(); // aligned copy of a view into the protobuf buffer
    if (t.dataType === FLOAT) return Float64Array.from(new Float32Array(copy.buffer));
    if (t.dataType === DOUBLE) return new Float64Array(copy.buffer);
  }
  if (t.dataType === FLOAT && t.floatData?.length) return Float64Array.from(t.floatData);
  if (t.dataType === DOUBLE && t.doubleData?.length) return Float64Array.from(t.doubleData);
  throw new TypeError(`Initializer "${t.name}" is not a float tensor`);
}

/**
 * The {@linkcode Gmm} a `buildGmmOnnx` graph computes the denoiser of, read from its
 * initializers (`mu` + `center`, `s2`, `log_pi`), so the exact solution refers to exactly the
 * mixture the ONNX model evaluates.
 *
 * @throws {TypeError} When the bytes are not such a graph.
 */
export function gmmFromOnnx(bytes: Uint8Array, source = "model"): Gmm {
  let model: ReturnType<typeof onnx.ModelProto.decode>;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new TypeError(`Cannot read ONNX ${source}: ${(e as Error).message}`);
  }
  const inits = new Map((model.graph?.initializer ?? []).map((t) => [t.name ?? "", t]));
  const need = ["mu", "center", "s2", "log_pi"];
  const missing = need.filter((n) => !inits.has(n));
  if (!String(model.docString ?? "").startsWith("Exact VE denoiser") || missing.length > 0) {
    throw new TypeError(
      `Exact GMM error needs a Gaussian-mixture graph built by buildGmmOnnx: ${source} is not one` +
        (missing.length > 0 ? ` (no initializer ${missing.join(", ")})` : ""),
    );
  }
  const mu = initializerValues(inits.get("mu")!);
  const center = initializerValues(inits.get("center")!);
  const s2 = initializerValues(inits.get("s2")!);
  const logPi = initializerValues(inits.get("log_pi")!);
  const k = s2.length;
  const d = center.length;
  if (mu.length !== k * d || logPi.length !== k) {
    throw new TypeError(
      `Gaussian-mixture graph ${source} has inconsistent sizes: mu ${mu.length}, K ${k}, d ${d}`,
    );
  }
  const means: number[][] = [];
  for (let j = 0; j < k; j++) {
    // The graph adds the float32 center to the float32 centred mean in float32.
    means.push(Array.from({ length: d }, (_, i) => Math.fround(mu[j * d + i] + center[i])));
  }
  return createGmm(means, s2, { weights: Array.from(logPi, Math.exp) });
}
