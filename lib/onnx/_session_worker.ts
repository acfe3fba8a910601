/**
 * The worker side of `workers.ts`: named ONNX Runtime sessions in their own thread. Requests:
 * `{ id, kind: "open", name, source, options }`, `{ id, kind: "run", name, feeds, names, keep?,
 * use? }`, `{ id, kind: "drop", handles }` and `{ id, kind: "close" }` (every session); every
 * reply is `{ id, outputs?, handle?, error? }`, with the output data transferred, not copied.
 * A run can keep some outputs here under a new handle (`keep`) instead of sending them, and a
 * later run can take kept tensors as feeds (`use`, which frees the handle): large intermediate
 * values then never cross the thread boundary.
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

interface Request {
  id: number;
  kind: "open" | "run" | "drop" | "close";
  name?: string;
  source?: Uint8Array | string;
  options?: ort.InferenceSession.SessionOptions;
  feeds?: Record<string, WireTensor>;
  names?: string[];
  keep?: string[];
  use?: number;
  handles?: number[];
}

interface Reply {
  outputs?: Record<string, WireTensor>;
  handle?: number;
  transfer: ArrayBuffer[];
}

const sessions = new Map<string, ort.InferenceSession>();
/** Outputs kept by earlier runs, by handle. */
const kept = new Map<number, Record<string, ort.Tensor>>();
let nextHandle = 0;

async function open(r: Request): Promise<Reply> {
  if (!sessions.has(r.name!)) {
    const source = r.source!;
    const session = typeof source === "string"
      ? await ort.InferenceSession.create(source, r.options ?? {})
      : await ort.InferenceSession.create(source, r.options ?? {});
    sessions.set(r.name!, session);
  }
  return { transfer: [] };
}

/** The feeds of a run: the kept tensors of `use` (freed), then the sent ones. */
function feedsOf(r: Request): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  if (r.use !== undefined) {
    const saved = kept.get(r.use);
    if (!saved) throw new RangeError(`No kept tensors under handle ${r.use} in this worker`);
    kept.delete(r.use);
    Object.assign(feeds, saved);
  }
  for (const [name, t] of Object.entries(r.feeds ?? {})) {
    feeds[name] = new ort.Tensor(t.type, t.data as Float32Array, t.dims);
  }
  return feeds;
}

async function run(r: Request): Promise<Reply> {
  const session = sessions.get(r.name!);
  if (!session) throw new RangeError(`No session "${r.name}" is open in this worker`);
  const names = r.names ?? [];
  const keep = r.keep ?? [];
  const result = await session.run(feedsOf(r), [
    ...names,
    ...keep.filter((k) => !names.includes(k)),
  ]);
  let handle: number | undefined;
  if (keep.length > 0) {
    handle = nextHandle++;
    kept.set(handle, Object.fromEntries(keep.map((k) => [k, result[k]])));
  }
  const outputs: Record<string, WireTensor> = {};
  const transfer = new Set<ArrayBuffer>();
  for (const name of names) {
    const t = result[name];
    outputs[name] = { type: t.type, dims: [...t.dims], data: t.data };
    transfer.add((t.data as Float32Array).buffer as ArrayBuffer);
  }
  return { outputs, handle, transfer: [...transfer] };
}

async function handle(r: Request): Promise<Reply> {
  switch (r.kind) {
    case "open":
      return await open(r);
    case "run":
      return await run(r);
    case "drop":
      for (const h of r.handles ?? []) kept.delete(h);
      return { transfer: [] };
    case "close":
      for (const s of sessions.values()) await s.release();
      sessions.clear();
      kept.clear();
      return { transfer: [] };
  }
}

parentPort!.on("message", async (r: Request) => {
  try {
    const { outputs, handle: h, transfer } = await handle(r);
    parentPort!.postMessage({ id: r.id, outputs, handle: h }, transfer);
  } catch (e) {
    parentPort!.postMessage({ id: r.id, error: e instanceof Error ? e.message : String(e) });
  }
});
