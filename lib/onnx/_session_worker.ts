/**
 * The worker side of `workers.ts`: one ONNX Runtime session in its own thread. Requests:
 * `{ id, kind: "open", source, options }`, `{ id, kind: "run", feeds, names }` and
 * `{ id, kind: "close" }`; every reply is `{ id, outputs? , error? }`, output data transferred.
 *
 * @module
 */
import { parentPort } from "node:worker_threads";
import { ort } from "../deps.ts";

/** A tensor as it crosses the thread boundary. */
interface WireTensor {
  type: ort.Tensor.Type;
  dims: number[];
  data: ort.Tensor.DataType;
}

let session: ort.InferenceSession | undefined;

async function handle(message: {
  id: number;
  kind: "open" | "run" | "close";
  source?: Uint8Array | string;
  options?: ort.InferenceSession.SessionOptions;
  feeds?: Record<string, WireTensor>;
  names?: string[];
}): Promise<{ outputs?: Record<string, WireTensor>; transfer: ArrayBuffer[] }> {
  switch (message.kind) {
    case "open": {
      const source = message.source!;
      session = typeof source === "string"
        ? await ort.InferenceSession.create(source, message.options ?? {})
        : await ort.InferenceSession.create(source, message.options ?? {});
      return { transfer: [] };
    }
    case "run": {
      const feeds: Record<string, ort.Tensor> = {};
      for (const [name, t] of Object.entries(message.feeds!)) {
        feeds[name] = new ort.Tensor(t.type, t.data as Float32Array, t.dims);
      }
      const result = await session!.run(feeds, message.names!);
      const outputs: Record<string, WireTensor> = {};
      const transfer: ArrayBuffer[] = [];
      for (const name of message.names!) {
        const t = result[name];
        outputs[name] = { type: t.type, dims: [...t.dims], data: t.data };
        transfer.push((t.data as Float32Array).buffer as ArrayBuffer);
      }
      return { outputs, transfer };
    }
    case "close":
      await session?.release();
      session = undefined;
      return { transfer: [] };
  }
}

parentPort!.on("message", async (message) => {
  try {
    const { outputs, transfer } = await handle(message);
    parentPort!.postMessage({ id: message.id, outputs }, transfer);
  } catch (e) {
    parentPort!.postMessage({ id: message.id, error: e instanceof Error ? e.message : String(e) });
  }
});
