/**
 * Per-sample distances between student and teacher images, with their gradients: the LD3
 * objective `d(student(x'), teacher)`.
 *
 * `L2` is the mean squared difference and `L1` the mean absolute difference over the C·H·W
 * values of each sample (the reference tool's per-sample means). `LPIPS` plugs in through the
 * same {@linkcode SampleLoss} interface.
 *
 * @module
 */

/** Teacher images may come straight from a float32 dataset file. */
export type ImageArray = Float64Array | Float32Array;

/** A per-sample loss with its gradient. */
export interface SampleLoss {
  /** Name as on the command line (`L2`, `L1`, `LPIPS`). */
  readonly name: string;
  /** Per-sample loss of `batch` samples of `a` (student) against `b` (teacher). */
  value(a: Float64Array, b: ImageArray, batch: number): Promise<Float64Array>;
  /**
   * Per-sample losses and `∂(Σ_b loss_b)/∂a` (so sample b's gradient is that of its own loss).
   */
  grad(
    a: Float64Array,
    b: ImageArray,
    batch: number,
  ): Promise<{ value: Float64Array; grad: Float64Array }>;
}

/** A learned perceptual loss (LPIPS) is one more {@linkcode SampleLoss}. */
export type PerceptualLoss = SampleLoss;

/** Loss names the trainer understands. */
export type LossType = "L2" | "L1" | "LPIPS";

/** Every {@linkcode LossType}. */
export const LOSS_TYPES: readonly LossType[] = ["L2", "L1", "LPIPS"];

function check(a: Float64Array, b: ImageArray, batch: number): number {
  if (a.length !== b.length) {
    throw new RangeError(`Loss inputs must have equal lengths: got ${a.length} and ${b.length}`);
  }
  const size = a.length / batch;
  if (!Number.isInteger(batch) || batch < 1 || !Number.isInteger(size) || size < 1) {
    throw new RangeError(`Loss batch ${batch} does not divide ${a.length} values`);
  }
  return size;
}

/**
 * A per-sample mean over C·H·W of `penalty(a − b)`, with gradient `slope(a − b)/size`: the shape
 * L2 and L1 share.
 */
function pixelMeanLoss(
  name: string,
  penalty: (e: number) => number,
  slope: (e: number) => number,
): SampleLoss {
  function run(a: Float64Array, b: ImageArray, batch: number, withGrad: boolean) {
    const size = check(a, b, batch);
    const value = new Float64Array(batch);
    const grad = new Float64Array(withGrad ? a.length : 0);
    for (let s = 0; s < batch; s++) {
      let acc = 0;
      for (let i = s * size; i < (s + 1) * size; i++) {
        const e = a[i] - b[i];
        acc += penalty(e);
        if (withGrad) grad[i] = slope(e) / size;
      }
      value[s] = acc / size;
    }
    return { value, grad };
  }
  return {
    name,
    value: (a, b, batch) => Promise.resolve().then(() => run(a, b, batch, false).value),
    grad: (a, b, batch) => Promise.resolve().then(() => run(a, b, batch, true)),
  };
}

/** Mean squared difference per sample; gradient `2(a−b)/size`. */
export const l2Loss: SampleLoss = pixelMeanLoss("L2", (e) => e * e, (e) => 2 * e);

/** Mean absolute difference per sample; gradient `sign(a−b)/size` (0 where equal). */
export const l1Loss: SampleLoss = pixelMeanLoss("L1", Math.abs, Math.sign);

/**
 * The built-in loss of a name. `LPIPS` needs a model: build it with the LPIPS ONNX loader and
 * pass it to the trainer directly.
 *
 * @throws {RangeError} For `LPIPS` or an unknown name.
 */
export function lossByName(name: string): SampleLoss {
  switch (name) {
    case "L2":
      return l2Loss;
    case "L1":
      return l1Loss;
    case "LPIPS":
      // LPIPS runs a user-supplied ONNX model: `loadLpips(path)` in lib/metrics/lpips.ts builds it.
      throw new RangeError(
        `Loss "LPIPS" needs an LPIPS ONNX model: load it with loadLpips() (lib/metrics/lpips.ts) and pass it in`,
      );
    default:
      throw new RangeError(
        `Unknown loss type: "${name}" (expected one of ${LOSS_TYPES.join(", ")})`,
      );
  }
}
