/**
 * How the result documents of `eval` and `bench:schedules` name the model they measured, so
 * that results of both can be matched to each other and to a model file.
 *
 * @module
 */
import type { LoadedModel } from "../onnx/model.ts";

/** The model a result document belongs to. */
export interface ModelIdentity {
  /** Model config name and file. */
  config: { name: string; source: string };
  /** Model name and SHA-256 of its ONNX file. */
  model: { name: string; sha256: string };
}

/** The {@linkcode ModelIdentity} of a loaded model. */
export function modelIdentity(m: LoadedModel): ModelIdentity {
  return {
    config: { name: m.config.name, source: m.config.source },
    model: { name: m.config.name, sha256: m.modelHash },
  };
}
