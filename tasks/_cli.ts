/**
 * What every task's command line shares: a task is a name, a one-line summary, its option
 * declarations (`lib/options.ts`) and a `run` function that calls `lib/`. From the declarations
 * come the parser, `--help` and the option tables of `docs/tasks.md`; {@linkcode runCli} turns any
 * error into one `error:` line and exit code 1.
 *
 * @module
 */
import { readNpy } from "../lib/io/npy.ts";
import {
  declareOptions,
  markdownCell,
  type OptionDeclaration,
  type OptionDeclarations,
  optionsMarkdown,
  type OptionValues,
  parseCommandLine,
  type ResolvedOptions,
  resolveOptions,
  usageLines,
} from "../lib/options.ts";
import type { ConditionInput } from "../lib/pipelines/sampling.ts";
import type { TextConditioning } from "../lib/pipelines/prompts.ts";

/**
 * A `deno task`: its command line and what it runs. `options` are the library's (declared in
 * `lib/`): the task passes them on as given and the library fills in their defaults, which may
 * depend on other inputs (a teacher dataset's size, `--quick`). `taskOptions` are the task's own
 * (output files, `--quiet`): their defaults are filled in here.
 */
export interface Task<L extends OptionDeclarations, C extends OptionDeclarations = EmptyOptions> {
  /** The `deno task` name, e.g. `train` or `bench:schedules`. */
  name: string;
  /** One line: what the task does (also its `deno task` description). */
  summary: string;
  /** Further lines of `--help` after the usage line. */
  details?: readonly string[];
  /** Positional arguments, e.g. `<grid.json>` (none when absent). */
  positionals?: { usage: string; min: number; max: number };
  /** The library's options the task takes, declared once in `lib/`. */
  options: L;
  /** The task's own options. */
  taskOptions?: C;
  /** Does the work with the checked values and the positionals. */
  run(values: TaskValues<L, C>, positionals: string[]): Promise<void>;
}

/** No options. */
export type EmptyOptions = Record<never, never>;

/** What `run` gets: the library's options as given (required ones present), the task's resolved. */
export type TaskValues<L extends OptionDeclarations, C extends OptionDeclarations> =
  & OptionValues<L>
  & ResolvedOptions<C>;

/** `--help`, for the usage lines only (the parser handles it itself). */
const HELP: OptionDeclaration = { flag: "help", kind: "boolean", short: "h", help: "this text" };

/** What help and docs need of a task (everything but `run`). */
export type TaskInfo = Omit<Task<OptionDeclarations, OptionDeclarations>, "run">;

/** Every option of a task, the library's first. */
export function allOptions(task: TaskInfo): OptionDeclarations {
  return { ...task.options, ...task.taskOptions };
}

/** Returns the task as given, typed from its declarations. */
export function defineTask<
  const L extends OptionDeclarations,
  const C extends OptionDeclarations = EmptyOptions,
>(task: Task<L, C>): Task<L, C> {
  declareOptions(allOptions(task)); // one flag, one option: a clash fails at import
  return task;
}

/** The usage line of a task: required options and positionals first. */
function usageLine(task: TaskInfo): string {
  const required = Object.values(allOptions(task))
    .filter((d) => d.required)
    .map((d) => `--${d.flag} <${(d.arg ?? "value").toLowerCase()}>`);
  const positionals = task.positionals ? [task.positionals.usage] : [];
  return ["deno task", task.name, ...positionals, ...required, "[options]"].join(" ");
}

/** The `--help` text of a task: usage, summary, details and every option with its default. */
export function taskHelp(task: TaskInfo): string {
  return [
    `Usage: ${usageLine(task)}`,
    "",
    task.summary,
    ...(task.details?.length ? ["", ...task.details] : []),
    "",
    "Options:",
    ...usageLines({ ...allOptions(task), help: HELP }),
  ].join("\n");
}

/** The section of `docs/tasks.md` for a task: heading, summary, usage and the option table. */
export function taskMarkdown(task: TaskInfo): string {
  return [
    `## \`deno task ${task.name}\``,
    "",
    markdownCell(task.summary),
    ...(task.details?.length ? ["", ...task.details.map(markdownCell)] : []),
    "",
    "```sh",
    usageLine(task),
    "```",
    "",
    optionsMarkdown(allOptions(task)),
  ].join("\n");
}

/**
 * Parses the arguments against the task's declarations: every value checked, required options
 * present, the task's own defaults filled in (the library fills its own).
 */
export function parseTaskArgs<
  const L extends OptionDeclarations,
  const C extends OptionDeclarations,
>(
  task: Task<L, C>,
  args: readonly string[],
): { values: TaskValues<L, C>; positionals: string[]; help: boolean; warnings: string[] } {
  const all = allOptions(task);
  const parsed = parseCommandLine(all, args, { positionals: !!task.positionals });
  if (parsed.help) return { ...parsed, values: {} as TaskValues<L, C> };
  const count = parsed.positionals.length;
  const p = task.positionals;
  if (p ? count < p.min || count > p.max : count > 0) {
    throw new TypeError(
      p
        ? `Expected ${p.min === p.max ? p.min : `${p.min} to ${p.max}`} ${p.usage}: got ${count}`
        : `Unexpected argument: ${parsed.positionals[0]}`,
    );
  }
  for (const [key, d] of Object.entries(all)) {
    if (d.required && (parsed.values as Record<string, unknown>)[key] === undefined) {
      throw new TypeError(`--${d.flag} is required: ${d.help}`);
    }
  }
  const values = resolveOptions(task.taskOptions ?? {}, parsed.values, "flag");
  return { ...parsed, values: values as unknown as TaskValues<L, C> };
}

/**
 * Runs a task from the command line: `--help` prints its help; deprecated flags print a warning;
 * any error is one `error: …` line on stderr (no stack trace) and exit code 1.
 */
export async function runCli<
  const L extends OptionDeclarations,
  const C extends OptionDeclarations,
>(
  task: Task<L, C>,
  args: readonly string[] = Deno.args,
): Promise<void> {
  try {
    const parsed = parseTaskArgs(task, args);
    if (parsed.help) {
      console.log(taskHelp(task));
      return;
    }
    for (const warning of parsed.warnings) console.error(`warning: ${warning}`);
    await task.run(parsed.values, parsed.positionals);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    console.error(`error: ${message.replace(/\s*\n\s*/g, " ")}`);
    Deno.exit(1);
  }
}

/** `--condition FILE` and `--labels LIST`: the conditions of a conditional model. */
export const CONDITION_OPTIONS = declareOptions({
  conditionFile: {
    flag: "condition",
    kind: "string",
    arg: "FILE",
    exclusive: "condition",
    help: ".npy of conditions, one row per sample, cycled (conditional models)",
  },
  labels: {
    flag: "labels",
    kind: "integers",
    arg: "LIST",
    min: 0,
    exclusive: "condition",
    defaultText: "0, 1, … for class-conditional models",
    help: "class labels, e.g. 3,1,4",
  },
});

/** `--features FILE`: the feature model of FID, as a file (the library takes a spec). */
export const FEATURES_OPTIONS = declareOptions({
  features: {
    flag: "features",
    kind: "string",
    arg: "FILE",
    defaultText: "the config's eval.features",
    help: "feature ONNX model for FID (with --fid_ref)",
  },
});

/** `--quiet`: no progress bars. */
export const QUIET_OPTION = declareOptions({
  quiet: { flag: "quiet", kind: "boolean", default: false, help: "no progress bars" },
});

/**
 * The conditions of `--condition FILE` (a `.npy` of rows, one sample's condition each) or
 * `--labels 3,1,4` (classes of a class-conditional model, one-hot).
 */
export async function conditionOf(
  values: { conditionFile?: string; labels?: number[] },
): Promise<ConditionInput | undefined> {
  if (values.labels !== undefined) return { labels: values.labels };
  if (values.conditionFile === undefined) return undefined;
  const array = await readNpy(values.conditionFile);
  const data = array.data instanceof BigInt64Array
    ? Float32Array.from(array.data, Number)
    : Float32Array.from(array.data);
  return { data, shape: array.shape };
}

/**
 * The conditions of a run: the prompts' embeddings, or `--condition` / `--labels`; both at once
 * is refused.
 */
export function textOrCondition(
  text: TextConditioning | undefined,
  given: ConditionInput | undefined,
): ConditionInput | undefined {
  if (text && given) {
    throw new TypeError(
      "--condition and --labels cannot be combined with prompts: a text-conditioned model " +
        "takes --prompt or --prompts",
    );
  }
  return text?.condition ?? given;
}
