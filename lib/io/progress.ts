/**
 * A progress bar on stderr: count/total, rate, elapsed time and ETA.
 *
 * On a terminal it redraws one line in place (at most every `intervalMs`). When stderr is not
 * a terminal (CI logs, pipes) it stays quiet apart from a plain line every `logEveryMs` and a
 * final summary line, so logs remain readable.
 *
 * @module
 */

/** What one progress line shows. */
export interface ProgressState {
  /** Items done. */
  done: number;
  /** Items in all. */
  total: number;
  /** Milliseconds since the start. */
  elapsedMs: number;
  /** What is counted. @default {"items"} */
  unit?: string;
  /** Text before the bar. */
  label?: string;
  /**
   * Items already done when the clock started (a resumed run): part of `done`, but not of the
   * rate, so rate and ETA describe this run. @default {0}
   */
  initial?: number;
}

/** `h:mm:ss` or `m:ss`; `--:--` for an unknown (non-finite) duration. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "--:--";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/**
 * One progress line, e.g. `generate [#####.....] 5/10 2.50 samples/s 0:02 ETA 0:02`.
 *
 * @param state Counts and elapsed time.
 * @param width Bar width in characters; 0 leaves the bar out.
 *
 * @example
 * ```ts
 * const line = formatProgress({ done: 5, total: 10, elapsedMs: 2000, unit: "samples" }, 10);
 * console.log(line); // "[#####.....] 5/10 2.50 samples/s elapsed 0:02 ETA 0:02"
 * ```
 */
export function formatProgress(state: ProgressState, width = 30): string {
  const { done, total, elapsedMs } = state;
  const fraction = total > 0 ? Math.min(done / total, 1) : 1;
  const seconds = elapsedMs / 1000;
  const doneHere = done - (state.initial ?? 0);
  const rate = seconds > 0 ? doneHere / seconds : NaN;
  const eta = doneHere > 0 && rate > 0 ? (total - done) / rate : NaN;
  const parts: string[] = [];
  if (state.label) parts.push(state.label);
  if (width > 0) {
    const filled = Math.round(fraction * width);
    parts.push(`[${"#".repeat(filled)}${".".repeat(width - filled)}]`);
  }
  parts.push(`${done}/${total}`);
  parts.push(`${Number.isFinite(rate) ? rate.toFixed(2) : "-"} ${state.unit ?? "items"}/s`);
  parts.push(`elapsed ${formatDuration(seconds)}`);
  parts.push(`ETA ${formatDuration(eta)}`);
  return parts.join(" ");
}

/** Options of {@linkcode ProgressBar}. */
export interface ProgressBarOptions {
  /** Text before the bar. */
  label?: string;
  /** What is counted. @default {"items"} */
  unit?: string;
  /** Whether to redraw in place; defaults to whether stderr is a terminal. */
  interactive?: boolean;
  /** Minimum time between terminal redraws. @default {100} */
  intervalMs?: number;
  /** Time between plain log lines when not interactive; 0 for only the final line. @default {30000} */
  logEveryMs?: number;
  /** Where lines go. @default {writes to stderr} */
  write?: (text: string) => void;
  /** Clock in milliseconds, for tests. @default {performance.now} */
  now?: () => number;
  /** Suppress all output. @default {false} */
  silent?: boolean;
  /** Items already done before this bar started (a resumed run); see {@linkcode ProgressState.initial}. @default {0} */
  initial?: number;
}

/**
 * A progress bar for `total` items.
 *
 * @example
 * ```ts
 * const bar = new ProgressBar(3, { unit: "samples", silent: true });
 * bar.increment(3);
 * bar.finish();
 * ```
 */
export class ProgressBar {
  /** Items done so far. */
  done: number;
  readonly #total: number;
  readonly #options: ProgressBarOptions;
  readonly #interactive: boolean;
  readonly #write: (text: string) => void;
  readonly #now: () => number;
  readonly #start: number;
  #lastDraw = -Infinity;
  #lastLog: number;
  #finished = false;

  /** A bar for `total` items (`options.initial` of them already done). */
  constructor(total: number, options: ProgressBarOptions = {}) {
    this.#total = total;
    this.#options = options;
    this.done = options.initial ?? 0;
    this.#interactive = options.interactive ?? Deno.stderr.isTerminal();
    const encoder = new TextEncoder();
    this.#write = options.write ?? ((text) => Deno.stderr.writeSync(encoder.encode(text)));
    this.#now = options.now ?? (() => performance.now());
    this.#start = this.#now();
    this.#lastLog = this.#start;
  }

  /** Milliseconds since construction. */
  get elapsedMs(): number {
    return this.#now() - this.#start;
  }

  #line(): string {
    return formatProgress({
      done: this.done,
      total: this.#total,
      elapsedMs: this.elapsedMs,
      unit: this.#options.unit,
      label: this.#options.label,
      initial: this.#options.initial,
    }, this.#interactive ? 30 : 0);
  }

  /** Sets the count and redraws if due. */
  update(done: number): void {
    this.done = done;
    if (this.#options.silent || this.#finished) return;
    const now = this.#now();
    if (this.#interactive) {
      if (now - this.#lastDraw >= (this.#options.intervalMs ?? 100)) {
        this.#lastDraw = now;
        this.#write(`\r${this.#line()}\x1b[K`);
      }
    } else {
      const every = this.#options.logEveryMs ?? 30000;
      if (every > 0 && now - this.#lastLog >= every) {
        this.#lastLog = now;
        this.#write(`${this.#line()}\n`);
      }
    }
  }

  /** Adds `count` items and redraws if due. */
  increment(count = 1): void {
    this.update(this.done + count);
  }

  /** Writes the final line (once). */
  finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    if (this.#options.silent) return;
    this.#write(this.#interactive ? `\r${this.#line()}\x1b[K\n` : `${this.#line()}\n`);
  }
}
