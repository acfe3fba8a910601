/**
 * Batched network calls split over several one-thread ONNX Runtime sessions, each in its own
 * worker thread, so that the samples of a batch run on separate cores.
 *
 * onnxruntime-node runs `session.run` on the JavaScript thread, so two sessions in one thread
 * never overlap; its intra-op threads parallelise each operator instead, and on a small network
 * (about 900 operators on 28×28 images for the bundled UNet) the threads wait on one another at
 * every operator: two of them barely beat one, and lose to one as soon as another process wants
 * the cores (docs/performance.md). Independent samples need no such waiting. {@linkcode
 * SessionWorkers.run} cuts a batch into contiguous parts, one per worker, and joins the outputs.
 *
 * The workers do not keep a process alive while idle (a script that never closes its model still
 * exits); a request in flight does.
 *
 * @module
 */
import { Worker } from "node:worker_threads";
import type { ort } from "../deps.ts";

/** A tensor as it crosses the thread boundary. */
interface WireTensor {
  type: ort.Tensor.Type;
  dims: number[];
  data: ort.Tensor.DataType;
}

/** One output of {@linkcode SessionWorkers.run}: joined along the batch axis. */
export interface WorkerOutput {
  readonly type: ort.Tensor.Type;
  readonly dims: readonly number[];
  readonly data: Float32Array | Float64Array;
}

interface Pending {
  resolve: (outputs: Record<string, WireTensor> | undefined) => void;
  reject: (error: Error) => void;
}

/** One worker thread with its session, and its requests in flight. */
class SessionWorker {
  readonly #worker: Worker;
  readonly #pending = new Map<number, Pending>();
  #next = 0;
  #failed: Error | undefined;

  constructor() {
    this.#worker = new Worker(new URL("./_session_worker.ts", import.meta.url));
    this.#worker.unref();
    this.#worker.on(
      "message",
      (m: { id: number; outputs?: Record<string, WireTensor>; error?: string }) => {
        const p = this.#pending.get(m.id);
        if (!p) return;
        this.#pending.delete(m.id);
        if (this.#pending.size === 0) this.#worker.unref();
        if (m.error !== undefined) p.reject(new Error(m.error));
        else p.resolve(m.outputs);
      },
    );
    this.#worker.on("error", (e: Error) => this.#fail(e));
  }

  #fail(e: Error): void {
    this.#failed = e;
    for (const p of this.#pending.values()) p.reject(e);
    this.#pending.clear();
    this.#worker.unref();
  }

  request(
    message: Record<string, unknown>,
    transfer: ArrayBuffer[] = [],
  ): Promise<Record<string, WireTensor> | undefined> {
    if (this.#failed) return Promise.reject(this.#failed);
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.ref();
      this.#worker.postMessage({ ...message, id }, transfer);
    });
  }

  async terminate(): Promise<void> {
    await this.#worker.terminate();
  }
}

/** Contiguous parts of `n` samples for `k` workers, as equal as possible, larger first. */
export function splitBatch(n: number, k: number): { start: number; count: number }[] {
  const parts = Math.max(1, Math.min(k, n));
  const base = Math.floor(n / parts);
  const extra = n % parts;
  const out: { start: number; count: number }[] = [];
  let start = 0;
  for (let i = 0; i < parts; i++) {
    const count = base + (i < extra ? 1 : 0);
    out.push({ start, count });
    start += count;
  }
  return out;
}

/** Rows `[start, start + count)` of a tensor whose first axis is the batch, as a copy. */
function sliceRows(t: ort.Tensor, start: number, count: number): WireTensor {
  const row = t.size / t.dims[0];
  const data = (t.data as Float32Array).slice(start * row, (start + count) * row);
  return { type: t.type, dims: [count, ...t.dims.slice(1)], data };
}

/** Several one-thread sessions of one model, each in a worker thread. */
export class SessionWorkers {
  readonly #workers: SessionWorker[];
  #closed = false;

  private constructor(workers: SessionWorker[]) {
    this.#workers = workers;
  }

  /**
   * Opens `count` workers, each with a session of the model (`source`: ONNX bytes, or the path
   * of a model with external data) and `options` (their intra-op threads should be 1).
   *
   * @throws {Error} when a worker cannot open the model
   */
  static async open(
    source: Uint8Array | string,
    count: number,
    options: ort.InferenceSession.SessionOptions,
  ): Promise<SessionWorkers> {
    const workers = Array.from({ length: count }, () => new SessionWorker());
    const pool = new SessionWorkers(workers);
    try {
      await Promise.all(workers.map((w) => w.request({ kind: "open", source, options })));
    } catch (e) {
      await pool.close();
      throw e;
    }
    return pool;
  }

  /** Number of workers. */
  get count(): number {
    return this.#workers.length;
  }

  /**
   * Runs `feeds` for a batch of `batch` samples: inputs whose first axis is `batch` are cut into
   * contiguous parts (one per worker, at most `batch` parts), other inputs go whole to each;
   * the outputs `names` come back joined along the first axis, in sample order.
   */
  async run(
    feeds: Record<string, ort.Tensor>,
    batch: number,
    names: readonly string[],
  ): Promise<Record<string, WorkerOutput>> {
    if (this.#closed) throw new RangeError("SessionWorkers.run: the workers are closed");
    const parts = splitBatch(batch, this.#workers.length);
    const results = await Promise.all(parts.map(({ start, count }, k) => {
      const wire: Record<string, WireTensor> = {};
      const transfer: ArrayBuffer[] = [];
      for (const [name, t] of Object.entries(feeds)) {
        wire[name] = t.dims.length > 0 && t.dims[0] === batch
          ? sliceRows(t, start, count)
          : { type: t.type, dims: [...t.dims], data: t.data };
        if (wire[name].data !== t.data) {
          transfer.push((wire[name].data as Float32Array).buffer as ArrayBuffer);
        }
      }
      return this.#workers[k].request({ kind: "run", feeds: wire, names: [...names] }, transfer);
    }));
    const out: Record<string, WorkerOutput> = {};
    for (const name of names) {
      const pieces = results.map((r) => r![name]);
      const first = pieces[0];
      const rows = pieces.reduce((a, p) => a + p.dims[0], 0);
      const total = pieces.reduce((a, p) => a + (p.data as Float32Array).length, 0);
      const data = first.type === "float64" ? new Float64Array(total) : new Float32Array(total);
      let offset = 0;
      for (const p of pieces) {
        data.set(p.data as Float32Array, offset);
        offset += (p.data as Float32Array).length;
      }
      out[name] = { type: first.type, dims: [rows, ...first.dims.slice(1)], data };
    }
    return out;
  }

  /** Releases every session and ends the workers; later calls of `close` do nothing. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all(this.#workers.map(async (w) => {
      await w.request({ kind: "close" }).catch(() => {});
      await w.terminate();
    }));
  }
}

/** {@linkcode SessionWorkers} opened on the first call that needs them. */
export class LazySessionWorkers {
  readonly #open: () => Promise<SessionWorkers>;
  #opening: Promise<SessionWorkers> | undefined;

  /** Opens as {@linkcode SessionWorkers.open} would, when {@linkcode LazySessionWorkers.get} is first called. */
  constructor(
    source: Uint8Array | string,
    count: number,
    options: ort.InferenceSession.SessionOptions,
  ) {
    this.#open = () => SessionWorkers.open(source, count, options);
  }

  /** The workers, opening them on the first call. */
  get(): Promise<SessionWorkers> {
    this.#opening ??= this.#open();
    return this.#opening;
  }

  /** Closes the workers if they were opened. */
  async close(): Promise<void> {
    const opening = this.#opening;
    if (!opening) return;
    const workers = await opening.catch(() => undefined);
    await workers?.close();
  }
}
