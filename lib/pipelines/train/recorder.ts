/**
 * The live record of an LD3 run folder while the trainer runs: every event as a line of
 * `log.jsonl`, every improvement as `grid.json` (and a frame for `schedule.gif`), a checkpoint
 * after every step, and a progress line on stderr. Nothing is drawn while the trainer runs:
 * `schedule.svg`/`.png` and `schedule.gif` are drawn once, when the run ends (`summary.ts`), or on
 * demand ({@linkcode RunRecorder.drawPictures}); the frames they need travel in every
 * checkpoint, so a resumed run draws the same pictures.
 *
 * @module
 */
import { join } from "node:path";
import { writeFileAtomic } from "../../io/atomic.ts";
import { type GridFileInfo, makeGridFile, saveGridFile } from "../../io/grid_file.ts";
import { formatProgress } from "../../io/progress.ts";
import type { CheckpointReason, Ld3Checkpoint, Ld3Event } from "../../ld3/trainer.ts";
import type { NoiseSchedule } from "../../noise_schedule.ts";
import { toGrid } from "../../step_grid.ts";
import { type LatentSizes, type RunCheckpoint, saveRunCheckpoint } from "./checkpoint.ts";
import { type ScheduleFrame, scheduleGif, writeSchedulePictures } from "./report.ts";

/** Options of the training progress line. */
export interface Ld3ProgressOptions {
  /** Redraw in place; defaults to whether stderr is a terminal. */
  interactive?: boolean;
  /** Where lines go. @default {stderr} */
  write?: (text: string) => void;
  /** Time between plain lines when not interactive. @default {30000} */
  logEveryMs?: number;
}

/** A one-line progress display of round, step, loss and ETA. */
class TrainProgress {
  readonly #total: number;
  readonly #startDone: number;
  readonly #start = performance.now();
  readonly #interactive: boolean;
  readonly #write: (text: string) => void;
  readonly #logEveryMs: number;
  #last = -Infinity;
  #done: number;
  constructor(total: number, done: number, options: Ld3ProgressOptions) {
    this.#total = total;
    this.#done = done;
    this.#startDone = done;
    this.#interactive = options.interactive ?? Deno.stderr.isTerminal();
    const enc = new TextEncoder();
    this.#write = options.write ?? ((t) => Deno.stderr.writeSync(enc.encode(t)));
    this.#logEveryMs = options.logEveryMs ?? 30000;
  }
  #line(label: string): string {
    // `initial`: rate and ETA describe this process, not the steps a resumed run inherited.
    return formatProgress({
      done: this.#done,
      total: this.#total,
      elapsedMs: performance.now() - this.#start,
      unit: "steps",
      label,
      initial: this.#startDone,
    }, this.#interactive ? 20 : 0);
  }
  update(done: number, label: string, force = false): void {
    this.#done = done;
    const now = performance.now();
    const every = this.#interactive ? 100 : this.#logEveryMs;
    if (!force && now - this.#last < every) return;
    this.#last = now;
    this.#write(this.#interactive ? `\r${this.#line(label)}\x1b[K` : `${this.#line(label)}\n`);
  }
  finish(label: string): void {
    this.#write(this.#interactive ? `\r${this.#line(label)}\x1b[K\n` : `${this.#line(label)}\n`);
  }
}

/** Thrown by `stopAfterStep`: the run stopped after a checkpoint, as if killed. */
export class Ld3Interrupted extends Error {
  /** The global step of the last checkpoint. */
  readonly step: number;
  /** Stopped after the checkpoint of global step `step`. */
  constructor(step: number) {
    super(`Training stopped after the checkpoint of step ${step} (stopAfterStep)`);
    this.name = "Ld3Interrupted";
    this.step = step;
  }
}

/** What a {@linkcode RunRecorder} needs to know of its run. */
export interface RecorderSetup {
  runDir: string;
  schedule: NoiseSchedule;
  /** Title of the schedule plots: solver and steps. */
  title: string;
  /** The run's resolved options, recorded in every checkpoint (a resume must match them). */
  recordedOptions: Record<string, unknown>;
  sizes: LatentSizes;
  /** The checkpoint this session resumes, if any. */
  previous?: RunCheckpoint;
  /** Fields of every grid file written (solver, NFE, model, …), plus per-write `meta` extras. */
  gridInfo: (extra: Record<string, unknown>) => GridFileInfo;
  /** Steps of the whole run, for the progress line; `false` for no progress line. */
  progress: { totalSteps: number; roundsTotal: number; options: Ld3ProgressOptions } | false;
  /** Receives every trainer event after it is logged. */
  onEvent?: (event: Ld3Event) => void;
  /** See `RunLd3Options.stopAfterStep`. */
  stopAfterStep?: number;
}

/**
 * Keeps the run folder current while {@linkcode trainLd3} runs: pass {@linkcode onEvent} and
 * {@linkcode saveCheckpoint} to the trainer. State that must survive a resume (log lines,
 * checkpoint generation, elapsed time, GIF frames) starts from the previous checkpoint.
 */
export class RunRecorder {
  readonly frames: ScheduleFrame[];
  readonly #setup: RecorderSetup;
  readonly #log: Deno.FsFile;
  readonly #encoder = new TextEncoder();
  readonly #bar?: TrainProgress;
  readonly #sessionStart = performance.now();
  #logLines: number;
  #generation: number;
  #elapsedBefore: number;
  #improved = false;
  #lastLoss = NaN;
  #bestLoss: number;
  #round: number;

  constructor(setup: RecorderSetup, log: Deno.FsFile, logLines: number) {
    const previous = setup.previous;
    this.#setup = setup;
    this.#log = log;
    this.#logLines = logLines;
    this.frames = previous ? [...previous.frames] : [];
    this.#generation = previous ? previous.generation : 0;
    this.#elapsedBefore = previous ? previous.elapsedSeconds : 0;
    this.#bestLoss = previous?.trainer.best?.loss ?? NaN;
    this.#round = previous?.trainer.round ?? 0;
    if (setup.progress) {
      const { totalSteps, options } = setup.progress;
      this.#bar = new TrainProgress(totalSteps, previous?.trainer.globalStep ?? 0, options);
    }
  }

  /** Training seconds of all sessions of this run so far. */
  elapsed(): number {
    return this.#elapsedBefore + (performance.now() - this.#sessionStart) / 1000;
  }

  /** Appends one JSON line to log.jsonl. */
  log(value: unknown): void {
    this.#log.writeSync(this.#encoder.encode(JSON.stringify(value) + "\n"));
    this.#logLines++;
  }

  #label(): string {
    const total = this.#setup.progress ? this.#setup.progress.roundsTotal : 0;
    return `round ${Math.min(this.#round + 1, total)}/${total} ` +
      `loss ${this.#lastLoss.toPrecision(4)} best ${this.#bestLoss.toPrecision(4)}`;
  }

  /** The trainer's event callback: log, track what the progress line shows, pass on. */
  readonly onEvent = (e: Ld3Event): void => {
    this.log(e);
    if (e.type === "validation" && e.improved) this.#improved = true;
    if (e.type === "validation") this.#bestLoss = e.best;
    if (e.type === "round") this.#round = e.round;
    if (e.type === "step") {
      this.#lastLoss = e.loss;
      this.#bar?.update(e.step, this.#label());
    }
    this.#setup.onEvent?.(e);
  };

  /** Writes schedule.gif from the frames so far (nothing before the first improvement). */
  async writeGif(): Promise<void> {
    if (this.frames.length === 0) return;
    const { runDir, schedule, title } = this.#setup;
    await writeFileAtomic(
      join(runDir, "schedule.gif"),
      await scheduleGif(schedule, this.frames, { title }),
    );
  }

  /**
   * Draws `schedule.png` (the best grid so far) and `schedule.gif` (its evolution) now: what
   * the end of the run does, for a caller that wants the pictures while it trains.
   */
  async drawPictures(): Promise<void> {
    const last = this.frames.at(-1);
    if (!last) return;
    const { runDir, schedule, title } = this.#setup;
    await writeSchedulePictures(runDir, schedule, toGrid(last.t1, last.t2), {
      title: `${title}: step ${last.step}, validation loss ${last.loss.toPrecision(4)}`,
    });
    await this.writeGif();
  }

  /** An improvement: a GIF frame, a log line and grid.json of the best grid. */
  async #recordImprovement(c: Ld3Checkpoint & { best: NonNullable<Ld3Checkpoint["best"]> }) {
    const { runDir, schedule } = this.#setup;
    // Plain arrays: the frames go into checkpoint.json as they are.
    const [t1, t2] = [Array.from(c.best.t1), Array.from(c.best.t2)];
    const frame = { step: c.globalStep, loss: c.best.loss, t1, t2 };
    this.frames.push(frame);
    this.log({ type: "improvement", ...frame });
    const grid = toGrid(c.best.t1, c.best.t2);
    const info = this.#setup.gridInfo({ validLoss: c.best.loss, step: c.globalStep });
    await saveGridFile(join(runDir, "grid.json"), makeGridFile(schedule, grid, info));
  }

  /** The trainer's checkpoint callback: grid.json on improvement, then the checkpoint itself. */
  readonly saveCheckpoint = async (c: Ld3Checkpoint, _reason: CheckpointReason) => {
    if (this.#improved && c.best) {
      this.#improved = false;
      await this.#recordImprovement({ ...c, best: c.best });
    }
    this.#generation++;
    await saveRunCheckpoint(this.#setup.runDir, c, {
      options: this.#setup.recordedOptions,
      generation: this.#generation,
      logLines: this.#logLines,
      elapsedSeconds: this.elapsed(),
      frames: this.frames,
    }, this.#setup.sizes);
    const stopAfter = this.#setup.stopAfterStep;
    if (stopAfter !== undefined && c.globalStep >= stopAfter) {
      throw new Ld3Interrupted(c.globalStep);
    }
  };

  /** Ends the progress line; returns the training seconds of the whole run. */
  finish(): number {
    const seconds = this.elapsed();
    this.#bar?.finish(this.#label());
    return seconds;
  }
}
