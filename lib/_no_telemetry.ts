/**
 * Turns ONNX Runtime's telemetry off in every process that uses ld3, before onnxruntime-node's
 * native library loads: `lib/deps.ts` imports this module ahead of `npm:onnxruntime-node`, and
 * ES modules run in the order they are imported. Left on, that library writes
 * `$TMPDIR/mat-debug-<pid>.log` and updates a device database under
 * `~/.cache/Microsoft/DeveloperTools/` from every process, and it ships a telemetry collector;
 * a scientific tool should leave nothing outside its output folders.
 *
 * `LD3_ORT_TELEMETRY=1` turns it back on (ld3 then leaves `ORT_DISABLE_TELEMETRY` alone), and a
 * value of `ORT_DISABLE_TELEMETRY` given in the environment is kept. Setting the variable needs
 * env permission (the tasks run with `--allow-all`); without it nothing is asked or changed —
 * set `ORT_DISABLE_TELEMETRY=1` in the environment yourself.
 *
 * @module
 */

/** The variable that turns ONNX Runtime's telemetry back on in ld3 processes. */
export const TELEMETRY_OPT_IN = "LD3_ORT_TELEMETRY";

function granted(variable: string): boolean {
  try {
    return Deno.permissions.querySync({ name: "env", variable }).state === "granted";
  } catch {
    return false;
  }
}

if (granted(TELEMETRY_OPT_IN) && granted("ORT_DISABLE_TELEMETRY")) {
  if (
    Deno.env.get(TELEMETRY_OPT_IN) !== "1" && Deno.env.get("ORT_DISABLE_TELEMETRY") === undefined
  ) {
    Deno.env.set("ORT_DISABLE_TELEMETRY", "1");
  }
}
