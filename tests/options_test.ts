import assert from "node:assert/strict";
import {
  checkValue,
  declaredValues,
  declareOptions,
  type OptionDeclarations,
  optionsMarkdown,
  parseCommandLine,
  pickOptions,
  rangeText,
  resolveOptions,
  usageLines,
  withDefaults,
} from "../lib/options.ts";

const OPTIONS = declareOptions({
  steps: { flag: "steps", kind: "integer", arg: "N", min: 1, default: 10, help: "solver steps" },
  rate: { flag: "lr_time", kind: "number", above: 0, max: 1, default: 0.8, help: "decay" },
  solverName: {
    flag: "solver_name",
    kind: "string",
    choices: ["euler", "heun"],
    default: "euler",
    help: "solver",
    aliases: ["solver"],
  },
  sigmas: { flag: "sigmas", kind: "numbers", help: "σ list", exclusive: "grid" },
  skipType: { flag: "skip_type", kind: "string", default: "edm", help: "grid", exclusive: "grid" },
  quiet: { flag: "quiet", kind: "boolean", default: false, help: "no bars" },
  config: { flag: "config", kind: "string", arg: "FILE", required: true, help: "config" },
  shape: { flag: "shape", kind: "strings", repeatable: true, help: "shapes" },
  nfe: { flag: "nfe", kind: "integer", min: 1, help: "NFE", deprecated: "use --steps" },
});

Deno.test("declareOptions() refuses a flag declared twice and a default that fails its own checks", () => {
  assert.throws(
    () =>
      declareOptions({
        a: { flag: "x", kind: "string", help: "" },
        b: { flag: "y", kind: "string", help: "", aliases: ["x"] },
      }),
    /--x is declared twice/,
  );
  assert.throws(
    () => declareOptions({ a: { flag: "a", kind: "integer", min: 1, default: 0, help: "" } }),
    /a must be an integer >= 1: got 0/,
  );
});

Deno.test("resolveOptions() fills defaults, keeps other fields and names a bad option by key", () => {
  const r = resolveOptions(OPTIONS, { config: "c.yml", onEvent: "kept" });
  assert.deepEqual(r, {
    config: "c.yml",
    onEvent: "kept",
    steps: 10,
    rate: 0.8,
    solverName: "euler",
    skipType: "edm",
    quiet: false,
  });
  assert.throws(() => resolveOptions(OPTIONS, { config: "c", steps: 2.5 }), {
    name: "RangeError",
    message: "steps must be an integer >= 1: got 2.5",
  });
  assert.throws(
    () => resolveOptions(OPTIONS, { config: "c", rate: 0 }),
    /rate must be a number in \(0, 1\]: got 0/,
  );
  assert.throws(
    () => resolveOptions(OPTIONS, { config: "c", solverName: "rk4" }),
    /solverName must be one of euler, heun: got "rk4"/,
  );
  assert.throws(() => resolveOptions(OPTIONS, { config: "c", steps: "4" }), TypeError);
  assert.throws(() => resolveOptions(OPTIONS, {}), /config is required/);
});

Deno.test("resolveOptions() refuses two options of one exclusive group and drops the other's default", () => {
  assert.throws(
    () => resolveOptions(OPTIONS, { config: "c", sigmas: [80, 1], skipType: "edm" }),
    /Give one of sigmas, skipType: got sigmas and skipType/,
  );
  const r = resolveOptions(OPTIONS, { config: "c", sigmas: [80, 1] });
  assert.equal(r.skipType, undefined);
  assert.deepEqual(r.sigmas, [80, 1]);
});

Deno.test("parseCommandLine() converts, checks and names options by flag", () => {
  const r = parseCommandLine(OPTIONS, [
    "--steps",
    "4",
    "--sigmas",
    "80, 1,0.002",
    "--quiet",
    "--shape",
    "x=1,2",
    "--shape",
    "t=1",
  ]);
  assert.deepEqual(r.values, {
    steps: 4,
    sigmas: [80, 1, 0.002],
    quiet: true,
    shape: ["x=1,2", "t=1"],
  });
  assert.deepEqual(r.warnings, []);
  assert.equal(r.help, false);
  assert.equal(parseCommandLine(OPTIONS, ["-h"]).help, true);
  assert.throws(() => parseCommandLine(OPTIONS, ["--steps", "four"]), {
    name: "TypeError",
    message: '--steps must be an integer: got "four"',
  });
  assert.throws(
    () => parseCommandLine(OPTIONS, ["--steps", "0"]),
    /--steps must be an integer >= 1: got 0/,
  );
  assert.throws(() => parseCommandLine(OPTIONS, ["--stpes", "4"]), /stpes/);
  assert.throws(() => parseCommandLine(OPTIONS, ["--sigmas", "1,x"]), /comma-separated list/);
  assert.throws(
    () => parseCommandLine(OPTIONS, ["--sigmas", "1", "--skip_type", "edm"]),
    /Give one of --sigmas, --skip_type: got --sigmas and --skip_type/,
  );
});

Deno.test("parseCommandLine() accepts an old spelling and a deprecated option, with a line each", () => {
  const r = parseCommandLine(OPTIONS, ["--solver", "heun", "--nfe", "3"]);
  assert.deepEqual(r.values, { solverName: "heun", nfe: 3 });
  assert.deepEqual(r.warnings, [
    "--solver is deprecated and will be removed: use --solver_name",
    "--nfe is deprecated and will be removed: use --steps",
  ]);
  assert.throws(
    () => parseCommandLine(OPTIONS, ["--solver", "heun", "--solver_name", "euler"]),
    /Give --solver_name once/,
  );
});

Deno.test("withDefaults(), pickOptions() and declaredValues() reuse one declaration", () => {
  const student = withDefaults(OPTIONS, { steps: 6 });
  assert.equal(student.steps.default, 6);
  assert.equal(student.steps.help, OPTIONS.steps.help);
  assert.equal(OPTIONS.steps.default, 10, "the original is not changed");
  assert.throws(() => withDefaults(OPTIONS, { steps: 0 }), /steps must be an integer >= 1/);
  assert.deepEqual(Object.keys(pickOptions(OPTIONS, ["rate", "steps"])), ["rate", "steps"]);
  assert.deepEqual(declaredValues(pickOptions(OPTIONS, ["steps"]), { steps: 3, other: 1 }), {
    steps: 3,
  });
});

Deno.test("checkValue() and rangeText() describe the range in one wording", () => {
  assert.equal(rangeText({ kind: "integer", min: 1 }), "an integer >= 1");
  assert.equal(rangeText({ kind: "number", above: 0, max: 1 }), "a number in (0, 1]");
  assert.equal(rangeText({ kind: "number", min: 0, max: 1 }), "a number in [0, 1]");
  assert.equal(rangeText({ kind: "number", above: 0 }), "a number > 0");
  assert.throws(() => checkValue(OPTIONS.sigmas, [], "sigmas"), /sigmas must not be empty/);
  assert.throws(() => checkValue(OPTIONS.sigmas, [1, NaN], "sigmas"), /got NaN/);
  assert.throws(() => checkValue(OPTIONS.quiet, "yes", "quiet"), /quiet must be true or false/);
});

Deno.test("usageLines() and optionsMarkdown() show every option with its default", () => {
  const lines = usageLines(OPTIONS);
  assert.equal(lines.length, Object.keys(OPTIONS).length);
  assert.match(lines[0], /^ {2}--steps N +solver steps \(default 10\)$/);
  assert.match(lines.join("\n"), /--solver_name euler\|heun +solver \(default euler\)/);
  assert.match(lines.join("\n"), /--config FILE +config \(required\)/);
  assert.match(lines.join("\n"), /--nfe N +deprecated: use --steps/);
  assert.doesNotMatch(lines.join("\n"), /default false/);
  const table = optionsMarkdown(OPTIONS).split("\n");
  assert.equal(table.length, 2 + Object.keys(OPTIONS).length);
  assert.equal(table[2], "| `--steps` | N | 10 | solver steps |");
  assert.equal(table[4], "| `--solver_name` (was `--solver`) | euler \\| heun | euler | solver |");
});

Deno.test("every option declaration set the library exports is well formed", async () => {
  const api = await import("../mod.ts") as Record<string, unknown>;
  const isDeclaration = (v: unknown) =>
    typeof v === "object" && v !== null && "flag" in v && "kind" in v && "help" in v;
  const sets = Object.entries(api).filter(([name, value]) =>
    name.endsWith("_OPTIONS") && typeof value === "object" && value !== null &&
    Object.values(value).every(isDeclaration)
  );
  assert.ok(sets.length >= 15, `found ${sets.map(([n]) => n)}`);
  for (const [name, value] of sets) {
    // Unique flags, and every default passing its own checks.
    assert.doesNotThrow(() => declareOptions(value as OptionDeclarations), name);
  }
});
