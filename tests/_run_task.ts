/**
 * Test helper: run a `tasks/<name>.ts` script as a user would (a separate Deno process with the
 * project's permissions), and collect its exit code and output.
 */
import { join } from "node:path";

/** The repository root. */
export const ROOT: string = new URL("..", import.meta.url).pathname;

/** What a task run printed and returned. */
export interface TaskOutput {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `tasks/<task>.ts` with `args` in `cwd` (default: the repository root), without colours,
 * with `env` added to the environment.
 */
export async function runTask(
  task: string,
  args: string[],
  cwd = ROOT,
  env: Record<string, string> = {},
): Promise<TaskOutput> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", join(ROOT, "tasks", `${task}.ts`), ...args],
    cwd,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...env },
  }).output();
  return {
    code,
    stdout: new TextDecoder().decode(stdout),
    stderr: new TextDecoder().decode(stderr),
  };
}
