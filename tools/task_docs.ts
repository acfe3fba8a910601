/**
 * `deno task docs`: writes what the option declarations say into the files people read —
 * `docs/tasks.md` (every task's usage and option table), the task table of the README (between
 * its `tasks` markers) and the task descriptions of `deno.json`; and the export formats'
 * consumers, conventions and examples into `docs/export.md` (between its `export` markers, from
 * `lib/pipelines/export_targets.ts`). `tests/tasks/docs_test.ts` fails when one of them differs
 * from the declarations, so a changed default cannot go undocumented.
 *
 * ```sh
 * deno task docs           # rewrite the four files
 * deno task docs --check   # exit 1 when one is out of date
 * ```
 *
 * @module
 */
import { join } from "node:path";
import { taskMarkdown } from "../tasks/_cli.ts";
import { withExportSection } from "./export_docs.ts";
import { TASKS } from "../tasks/_all.ts";

/** The repository root. */
export const ROOT: string = new URL("..", import.meta.url).pathname;

const BEGIN = "<!-- tasks:begin (written by `deno task docs` from the option declarations) -->";
const END = "<!-- tasks:end -->";

/** The anchor GitHub gives the heading of a task in docs/tasks.md. */
function anchor(name: string): string {
  return `deno-task-${name.replace(/[^a-z0-9 -]/g, "").replace(/ /g, "-")}`;
}

/** The whole of `docs/tasks.md`. */
export function tasksMarkdown(): string {
  return [
    "# Tasks and their options",
    "",
    "Written by `deno task docs` from the option declarations in `lib/` and `tasks/` (each option",
    "is declared once: its flag, type, default, help and valid range); a test fails when this file",
    "and the declarations differ. Every task also prints this with `--help`.",
    "",
    ...TASKS.flatMap(({ task }) => [taskMarkdown(task), ""]),
  ].join("\n");
}

/** The task table of the README (between the markers). */
export function readmeTaskTable(): string {
  const rows = TASKS.map(({ task }) =>
    `| [\`${task.name}\`](docs/tasks.md#${anchor(task.name)}) | ${task.summary} |`
  );
  return [
    BEGIN,
    "| task | what it does |",
    "| --- | --- |",
    ...rows,
    "| `test` | the tests, the JSDoc examples and the notebooks |",
    "| `notebooks` | executes every notebook in `notebooks/` |",
    "| `docs` | rewrites docs/tasks.md, the tables of docs/export.md, this table and the deno.json descriptions |",
    END,
  ].join("\n");
}

/** The README with its task table replaced. */
export function withReadmeTable(readme: string): string {
  const start = readme.indexOf(BEGIN);
  const end = readme.indexOf(END);
  if (start < 0 || end < start) throw new RangeError("README.md lacks the tasks markers");
  return readme.slice(0, start) + readmeTaskTable() + readme.slice(end + END.length);
}

type DenoTask = string | { description?: string; command: string };

/** `deno.json` with each task's description taken from its summary. */
export function withTaskDescriptions(denoJson: string): string {
  const config = JSON.parse(denoJson) as { tasks: Record<string, DenoTask> };
  for (const { task, script } of TASKS) {
    const current = config.tasks[task.name];
    if (current === undefined) throw new RangeError(`deno.json has no task "${task.name}"`);
    const command = typeof current === "string" ? current : current.command;
    if (!command.endsWith(`tasks/${script}`)) {
      throw new RangeError(`deno.json task "${task.name}" does not run tasks/${script}`);
    }
    config.tasks[task.name] = { description: task.summary, command };
  }
  return JSON.stringify(config, null, 2) + "\n";
}

/** `text` as `deno fmt` (with the project's settings) leaves a file of extension `ext`. */
async function formatted(text: string, ext: string): Promise<string> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["fmt", `--ext=${ext}`, "-"],
    cwd: ROOT,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const out = await child.output();
  if (!out.success) throw new Error(`deno fmt: ${new TextDecoder().decode(out.stderr)}`);
  return new TextDecoder().decode(out.stdout);
}

/** The generated files as the declarations would have them (formatted): path → content. */
export async function expectedFiles(): Promise<Map<string, string>> {
  const read = (path: string) => Deno.readTextFile(join(ROOT, path));
  return new Map([
    ["docs/tasks.md", await formatted(tasksMarkdown(), "md")],
    ["README.md", await formatted(withReadmeTable(await read("README.md")), "md")],
    ["deno.json", await formatted(withTaskDescriptions(await read("deno.json")), "json")],
    ["docs/export.md", await formatted(withExportSection(await read("docs/export.md")), "md")],
  ]);
}

if (import.meta.main) {
  const check = Deno.args.includes("--check");
  let stale = 0;
  for (const [path, content] of await expectedFiles()) {
    const file = join(ROOT, path);
    const current = await Deno.readTextFile(file).catch(() => "");
    if (current === content) continue;
    stale++;
    if (check) console.error(`${path} is out of date: run deno task docs`);
    else await Deno.writeTextFile(file, content), console.log(`wrote ${path}`);
  }
  if (check && stale > 0) Deno.exit(1);
}
