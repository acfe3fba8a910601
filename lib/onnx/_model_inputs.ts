/**
 * Input preparation shared by the ONNX denoiser (`model.ts`) and its gradient twin
 * (`model_grad.ts`), kept in one place so that both feed the network identically.
 *
 * @module
 */
import type { ConditionConfig, TimeShape } from "./config.ts";
import { ort } from "../deps.ts";
import { readNpy } from "../io/npy.ts";
import { ElemType } from "./build.ts";
import type { TensorSignature } from "./session.ts";

/**
 * One sample's unconditional input of classifier-free guidance: zeros, or the `.npy` named by
 * `model.condition.uncond` (which must hold `condSize` float values).
 */
export async function readUncond(
  condition: ConditionConfig | undefined,
  condSize: number,
): Promise<Float32Array> {
  if (!condition || condition.uncond === "zeros") return new Float32Array(condSize);
  const array = await readNpy(condition.uncond);
  if (array.data.length !== condSize || array.data instanceof BigInt64Array) {
    throw new TypeError(
      `model.condition.uncond ${condition.uncond}: expected ${condSize} float values, found ${array.dtype} [${array.shape}]`,
    );
  }
  return Float32Array.from(array.data as ArrayLike<number>);
}

/**
 * A maker of the network's time input for `n` samples: one value per sample (`batch`) or one
 * for the call (`scalar`, rank 0 or `[1]` as the graph declares), in the graph's element type
 * (int64 times are rounded).
 */
export function timeTensorMaker(
  timeShape: TimeShape,
  tSig: TensorSignature,
): (value: number, n: number) => ort.Tensor {
  return (value, n) => {
    const dims = timeShape === "batch" ? [n] : tSig.dims.length === 0 ? [] : [1];
    const count = timeShape === "batch" ? n : 1;
    if (tSig.elemType === ElemType.int64) {
      return new ort.Tensor(
        "int64",
        new BigInt64Array(count).fill(BigInt(Math.round(value))),
        dims,
      );
    }
    if (tSig.elemType === ElemType.double) {
      return new ort.Tensor("float64", new Float64Array(count).fill(value), dims);
    }
    return new ort.Tensor("float32", new Float32Array(count).fill(value), dims);
  };
}
