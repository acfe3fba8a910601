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
import type { OrtSessionOptions, OrtTensor, OrtTensorType } from "../deps.ts";

/** A tensor a worker takes or gives: element type, dimensions and its data. */
export interface WorkerOutput {
  /** ONNX Runtime element type, `"float32"` or `"float64"`. */
  readonly type: OrtTensorType;
  /** Dimensions, batch first. */
  readonly dims: readonly number[];
  /** The values, row-major. */
  readonly data: Float32Array | Float64Array;
}

/** A worker's reply: outputs, and the handle of what the run kept there. */
interface Reply {
  outputs?: Record<string, WorkerOutput>;
  handle?: number;
}

interface Pending {
  resolve: (reply: Reply) => void;
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
      (m: Reply & { id: number; error?: string }) => {
        const p = this.#pending.get(m.id);
        if (!p) return;
        this.#pending.delete(m.id);
        if (this.#pending.size === 0) this.#worker.unref();
        if (m.error !== undefined) p.reject(new Error(m.error));
        else p.resolve(m);
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
  ): Promise<Reply> {
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
export function sliceRows(
  t: { type: OrtTensorType; dims: readonly number[]; data: unknown },
  start: number,
  count: number,
): WorkerOutput {
  const data = t.data as Float32Array | Float64Array;
  const row = data.length / t.dims[0];
  return {
    type: t.type,
    dims: [count, ...t.dims.slice(1)],
    data: data.slice(start * row, (start + count) * row),
  };
}

/** Several worker threads, each holding the same named one-thread sessions. */
export class SessionWorkers {
  readonly #workers: SessionWorker[];
  readonly #opened = new Map<string, Promise<void>>();
  #closed = false;

  private constructor(workers: SessionWorker[]) {
    this.#workers = workers;
  }

  /** Starts `count` workers with no session yet. */
  static start(count: number): SessionWorkers {
    return new SessionWorkers(Array.from({ length: count }, () => new SessionWorker()));
  }

  /**
   * Starts `count` workers, each with a session `"model"` of the model (`source`: ONNX bytes,
   * or the path of a model with external data) and `options` (their intra-op threads should
   * be 1).
   *
   * @throws {Error} when a worker cannot open the model
   */
  static async open(
    source: Uint8Array | string,
    count: number,
    options: OrtSessionOptions,
  ): Promise<SessionWorkers> {
    const pool = SessionWorkers.start(count);
    try {
      await pool.openSession("model", source, options);
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
   * Opens session `name` on every worker, once: later calls with the same name wait for the
   * first and open nothing.
   */
  openSession(
    name: string,
    source: Uint8Array | string,
    options: OrtSessionOptions,
  ): Promise<void> {
    if (this.#closed) {
      return Promise.reject(new RangeError("SessionWorkers: the workers are closed"));
    }
    let opened = this.#opened.get(name);
    if (!opened) {
      opened = Promise.all(
        this.#workers.map((w) => w.request({ kind: "open", name, source, options })),
      ).then(() => {});
      this.#opened.set(name, opened);
    }
    return opened;
  }

  /**
   * Runs session `name` of worker `k` on `feeds` (their data is handed over: a caller that
   * needs it afterwards passes copies) and returns its outputs `names`. `keep` names outputs
   * the worker keeps under the returned handle instead of sending them; `use` feeds the
   * tensors kept under a handle of the same worker (and frees it).
   */
  async runOn(
    k: number,
    name: string,
    feeds: Record<string, WorkerOutput>,
    names: readonly string[],
    options: { keep?: readonly string[]; use?: number } = {},
  ): Promise<{ outputs: Record<string, WorkerOutput>; handle?: number }> {
    if (this.#closed) throw new RangeError("SessionWorkers: the workers are closed");
    const transfer = new Set<ArrayBuffer>();
    for (const t of Object.values(feeds)) transfer.add(t.data.buffer as ArrayBuffer);
    const reply = await this.#worker(k).request(
      { kind: "run", name, feeds, names: [...names], keep: options.keep, use: options.use },
      [...transfer],
    );
    return { outputs: reply.outputs ?? {}, handle: reply.handle };
  }

  /** Frees tensors kept under `handles` in worker `k` (no reply awaited). */
  drop(k: number, handles: readonly number[]): void {
    if (this.#closed || handles.length === 0) return;
    this.#worker(k).request({ kind: "drop", handles: [...handles] }).catch(() => {});
  }

  #worker(k: number): SessionWorker {
    return this.#workers[k % this.#workers.length];
  }

  /**
   * Runs session `name` (default `"model"`) on `feeds` for a batch of `batch` samples: inputs
   * whose first axis is `batch` are cut into contiguous parts (one per worker, at most `batch`
   * parts), other inputs go whole to each; the outputs `names` come back joined along the first
   * axis, in sample order.
   */
  async run(
    feeds: Record<string, OrtTensor>,
    batch: number,
    names: readonly string[],
    name = "model",
  ): Promise<Record<string, WorkerOutput>> {
    const parts = splitBatch(batch, this.#workers.length);
    const results = await Promise.all(parts.map(({ start, count }, k) => {
      const wire: Record<string, WorkerOutput> = {};
      for (const [input, t] of Object.entries(feeds)) {
        wire[input] = t.dims.length > 0 && t.dims[0] === batch
          ? sliceRows(t, start, count)
          : { type: t.type, dims: [...t.dims], data: (t.data as Float32Array).slice() };
      }
      return this.runOn(k, name, wire, names).then((r) => r.outputs);
    }));
    return joinRows(results, names);
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

/** The outputs `names` of several parts of a batch, joined along the first axis. */
export function joinRows(
  parts: readonly Record<string, WorkerOutput>[],
  names: readonly string[],
): Record<string, WorkerOutput> {
  const out: Record<string, WorkerOutput> = {};
  for (const name of names) {
    const pieces = parts.map((r) => r[name]);
    if (pieces.length === 1) {
      out[name] = pieces[0];
      continue;
    }
    const first = pieces[0];
    const rows = pieces.reduce((a, p) => a + p.dims[0], 0);
    const total = pieces.reduce((a, p) => a + p.data.length, 0);
    const data = first.type === "float64" ? new Float64Array(total) : new Float32Array(total);
    let offset = 0;
    for (const p of pieces) {
      data.set(p.data, offset);
      offset += p.data.length;
    }
    out[name] = { type: first.type, dims: [rows, ...first.dims.slice(1)], data };
  }
  return out;
}

/** {@linkcode SessionWorkers} opened on the first call that needs them. */
export class LazySessionWorkers {
  readonly #open: () => Promise<SessionWorkers>;
  #opening: Promise<SessionWorkers> | undefined;

  /** Opens as {@linkcode SessionWorkers.open} would, when {@linkcode LazySessionWorkers.get} is first called. */
  constructor(
    source: Uint8Array | string,
    count: number,
    options: OrtSessionOptions,
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
