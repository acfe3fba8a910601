/**
 * The shape of `lib/`: every module sits in one layer of `tools/lint_plugin.ts`, imports point
 * only downwards, there are no import cycles, each layer folder has a `mod.ts`, and no function
 * runs past the length limit. `deno lint` enforces the per-file rules as well; this test adds
 * the whole-graph check (cycles) and keeps the rules honest with cases they must catch.
 */
import assert from "node:assert/strict";
import { relative } from "node:path";
import plugin, {
  layerIndex,
  LAYERS,
  MAX_FUNCTION_LINES,
  resolveLibPath,
  upwardImport,
} from "../tools/lint_plugin.ts";
import { importSpecifiers, libraryModules, ROOT } from "./_imports.ts";

/** `lib/`-relative path → the `lib/` modules it imports. */
async function libGraph(): Promise<Map<string, string[]>> {
  const graph = new Map<string, string[]>();
  for (const file of await libraryModules()) {
    const path = relative(`${ROOT}lib`, file);
    if (path.startsWith("..")) continue; // mod.ts at the root
    const source = await Deno.readTextFile(file);
    const targets = importSpecifiers(source)
      .map((s) => resolveLibPath(path, s))
      .filter((t): t is string => t !== undefined && t !== path);
    graph.set(path, targets);
  }
  return graph;
}

/** One import cycle of `graph` as a path `a → b → … → a`, or undefined. */
function findCycle(graph: Map<string, string[]>): string[] | undefined {
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (node: string): string[] | undefined => {
    state.set(node, "open");
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === "open") return [...stack.slice(stack.indexOf(next)), next];
      if (!state.has(next)) {
        const cycle = visit(next);
        if (cycle) return cycle;
      }
    }
    stack.pop();
    state.set(node, "done");
    return undefined;
  };
  for (const node of graph.keys()) {
    if (!state.has(node)) {
      const cycle = visit(node);
      if (cycle) return cycle;
    }
  }
  return undefined;
}

Deno.test("every lib/ module belongs to a layer and imports only from its layer or below", async () => {
  const graph = await libGraph();
  assert.ok(graph.size > 60, `only ${graph.size} modules found`);
  const problems: string[] = [];
  for (const [path, targets] of graph) {
    layerIndex(path); // throws for a module outside every layer
    for (const target of targets) {
      const problem = upwardImport(path, `./${relative(path.replace(/[^/]*$/, ""), target)}`);
      if (problem) problems.push(problem);
    }
  }
  assert.deepEqual(problems, []);
});

Deno.test("lib/ has no import cycles", async () => {
  assert.equal(findCycle(await libGraph())?.join(" → "), undefined);
});

Deno.test("findCycle() and upwardImport() catch what they are for", () => {
  const cyclic = new Map([["a.ts", ["b.ts"]], ["b.ts", ["c.ts"]], ["c.ts", ["a.ts"]]]);
  assert.deepEqual(findCycle(cyclic), ["a.ts", "b.ts", "c.ts", "a.ts"]);
  assert.equal(findCycle(new Map([["a.ts", ["b.ts"]], ["b.ts", []]])), undefined);
  assert.match(upwardImport("noise_schedule.ts", "./onnx/model.ts")!, /math core.*ONNX runtime/);
  assert.match(upwardImport("ld3/trainer.ts", "../pipelines/train/run.ts")!, /a layer above/);
  assert.equal(upwardImport("pipelines/train/run.ts", "../../ld3/trainer.ts"), undefined);
  assert.equal(upwardImport("solvers/euler.ts", "../noise_schedule.ts"), undefined);
  assert.throws(() => layerIndex("elsewhere/x.ts"), /in no layer/);
});

Deno.test("each layer folder of lib/ has a mod.ts", async () => {
  for (const layer of LAYERS) {
    for (const folder of layer.folders) {
      const stat = await Deno.stat(`${ROOT}lib/${folder}mod.ts`);
      assert.ok(stat.isFile, `lib/${folder}mod.ts`);
    }
  }
});

Deno.test(`no function in lib/ is longer than ${MAX_FUNCTION_LINES} lines, and no import points up`, async () => {
  const problems: string[] = [];
  for (const file of await libraryModules()) {
    if (!file.includes("/lib/")) continue;
    const diagnostics = Deno.lint.runPlugin(plugin, file, await Deno.readTextFile(file));
    for (const d of diagnostics) problems.push(`${relative(ROOT, file)}: ${d.message}`);
  }
  assert.deepEqual(problems, []);
});

Deno.test("the lint rules report a long function and an upward import", () => {
  const body = Array.from({ length: MAX_FUNCTION_LINES }, (_, i) => `  const v${i} = ${i};`);
  const long = `export function tooLong() {\n${body.join("\n")}\n}\n`;
  const upward = `import { loadModel } from "./onnx/model.ts";\nexport const x = loadModel;\n`;
  const messages = (path: string, source: string) =>
    Deno.lint.runPlugin(plugin, path, source).map((d) => d.message);
  assert.match(messages("/repo/lib/step_grid.ts", long).join(), /tooLong is 122 lines/);
  assert.match(messages("/repo/lib/step_grid.ts", upward).join(), /a layer above it/);
  assert.deepEqual(messages("/repo/tests/x_test.ts", long + upward), []);
});
