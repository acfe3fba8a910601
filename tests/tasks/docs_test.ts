/**
 * Documented defaults are real defaults: the docs people read are written from the option
 * declarations, the library resolves its defaults from the same declarations, and any default a
 * library interface still states in JSDoc agrees with them.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { expectedFiles, ROOT } from "../../tools/task_docs.ts";
import { parseTaskArgs } from "../../tasks/_cli.ts";
import { TASKS } from "../../tasks/_all.ts";
import { DEMO } from "../../tasks/demo.ts";
import { LD3_OPTIONS } from "../../lib/ld3/options.ts";
import { resolveLd3Options } from "../../lib/ld3/trainer.ts";
import { type OptionDeclarations, resolveOptions } from "../../lib/options.ts";
import { SAMPLER_OPTIONS } from "../../lib/pipelines/options.ts";
import { prepareSampler, validateSamplerOptions } from "../../lib/pipelines/sampler.ts";
import { SAMPLE_IMAGES_OPTIONS, sampleImages } from "../../lib/pipelines/sampling.ts";
import { EVAL_OPTIONS, QUALITY_OPTIONS } from "../../lib/pipelines/evaluate.ts";
import { GENERATE_OPTIONS } from "../../lib/pipelines/generate.ts";
import { TRAIN_OPTIONS } from "../../lib/pipelines/train/run.ts";
import { DEMO_OPTIONS } from "../../lib/pipelines/demo.ts";
import { SCHEDULE_BENCH_OPTIONS } from "../../lib/pipelines/grid_bench.ts";
import { CHECK_MODEL_OPTIONS } from "../../lib/onnx/model_check.ts";
import { loadModel } from "../../lib/onnx/model.ts";
import { makeTinyGmm } from "../_tiny_gmm.ts";

Deno.test("docs/tasks.md, the README task table and the deno.json descriptions match the declarations", async () => {
  for (const [path, expected] of await expectedFiles()) {
    const actual = await Deno.readTextFile(join(ROOT, path));
    assert.ok(actual === expected, `${path} is out of date: run deno task docs`);
  }
});

Deno.test("every task's --help lists each of its options with its default", async () => {
  for (const { task, script } of TASKS) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", join(ROOT, "tasks", script), "--help"],
      env: { NO_COLOR: "1" },
      stdout: "piped",
    }).output();
    const help = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 0, script);
    assert.match(help, new RegExp(`^Usage: deno task ${task.name} `), script);
    for (const d of Object.values({ ...task.options, ...task.taskOptions })) {
      assert.ok(help.includes(`--${d.flag}`), `${task.name} --help lacks --${d.flag}`);
      if (d.default !== undefined && d.default !== false && d.defaultText === undefined) {
        const shown = Array.isArray(d.default) ? d.default.join(",") : String(d.default);
        assert.ok(help.includes(`(default ${shown})`), `${task.name} --${d.flag}: ${shown}`);
      }
    }
  }
});

/** Library interfaces that may still state a default in JSDoc, and their declarations. */
const DOCUMENTED: Record<string, OptionDeclarations> = {
  Ld3Options: LD3_OPTIONS,
  RunLd3Options: TRAIN_OPTIONS,
  SamplerOptions: SAMPLER_OPTIONS,
  SampleImagesOptions: SAMPLE_IMAGES_OPTIONS,
  GenerateDatasetOptions: GENERATE_OPTIONS,
  EvaluateOptions: EVAL_OPTIONS,
  QualityOptions: QUALITY_OPTIONS,
  DemoOptions: DEMO_OPTIONS,
  ScheduleBenchOptions: SCHEDULE_BENCH_OPTIONS,
  CheckModelOptions: CHECK_MODEL_OPTIONS,
};

interface DocProperty {
  name: string;
  jsDoc?: { tags?: { kind: string; value?: string }[] };
}

Deno.test("a default stated in a library interface's JSDoc equals its declaration", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["doc", "--json", join(ROOT, "mod.ts")],
    stdout: "piped",
    stderr: "null",
  }).output();
  const doc = JSON.parse(new TextDecoder().decode(out.stdout));
  let checked = 0;
  for (const node of Object.values(doc.nodes) as { symbols?: unknown[] }[]) {
    for (const symbol of (node.symbols ?? []) as { name: string; declarations: unknown[] }[]) {
      const declarations = DOCUMENTED[symbol.name];
      if (!declarations) continue;
      for (const decl of symbol.declarations as { def?: { properties?: DocProperty[] } }[]) {
        for (const p of decl.def?.properties ?? []) {
          const stated = p.jsDoc?.tags?.find((t) => t.kind === "default")?.value;
          const declared = declarations[p.name];
          if (stated === undefined || declared?.default === undefined) continue;
          checked++;
          assert.equal(
            stated.replace(/^\{|\}$/g, ""),
            JSON.stringify(declared.default),
            `${symbol.name}.${p.name}`,
          );
        }
      }
    }
  }
  // Today every declared option's default lives only in its declaration.
  assert.equal(checked, 0);
});

Deno.test("the library's defaults are the declared ones", async () => {
  const ld3 = resolveLd3Options({}, 784);
  for (const [key, d] of Object.entries(LD3_OPTIONS as OptionDeclarations)) {
    if (d.default !== undefined) assert.deepEqual(ld3[key as keyof typeof ld3], d.default, key);
  }
  assert.equal(ld3.validOneBatchSize, LD3_OPTIONS.validBatchSize.default);
  assert.equal(ld3.shiftLr, 12 / LD3_OPTIONS.steps.default);

  const sampler = validateSamplerOptions({});
  for (const [key, d] of Object.entries(SAMPLER_OPTIONS as OptionDeclarations)) {
    if (d.default !== undefined) assert.deepEqual(sampler[key as keyof typeof sampler], d.default);
  }
  const gmm = await makeTinyGmm();
  const model = await loadModel(gmm.config);
  try {
    const prepared = await prepareSampler(model);
    assert.equal(prepared.solverName, SAMPLER_OPTIONS.solverName.default);
    assert.equal(prepared.steps, SAMPLER_OPTIONS.steps.default);
    assert.equal(prepared.gridKind, SAMPLER_OPTIONS.skipType.default);
    assert.equal(prepared.rho, SAMPLER_OPTIONS.rho.default);
    const sampled = await sampleImages(model, { steps: 2 });
    assert.equal(sampled.shape[0], SAMPLE_IMAGES_OPTIONS.numSamples.default);
  } finally {
    await model.close();
    await gmm.cleanup();
  }
  for (const declarations of [TRAIN_OPTIONS, EVAL_OPTIONS, DEMO_OPTIONS, GENERATE_OPTIONS]) {
    // Every declared default passes its own checks (declareOptions runs them at import).
    resolveOptions(declarations, { config: "c", dataDir: "d" });
  }
});

Deno.test("demo takes the other tasks' option names, and its old spellings for one release", () => {
  const now = parseTaskArgs(DEMO, [
    "--solver_name",
    "uni_pc",
    "--steps",
    "4",
    "--num_samples",
    "10",
    "--training_rounds_v1",
    "0",
    "--training_rounds_v2",
    "1",
  ]);
  const old = parseTaskArgs(DEMO, [
    "--solver",
    "uni_pc",
    "--nfe",
    "4",
    "--samples",
    "10",
    "--rounds_v1",
    "0",
    "--rounds_v2",
    "1",
  ]);
  assert.deepEqual(now.warnings, []);
  assert.equal(old.warnings.length, 5);
  for (const w of old.warnings) assert.match(w, /^--\w+ is deprecated and will be removed: use --/);
  const { nfe, ...oldValues } = old.values;
  assert.equal(nfe, 4);
  const { steps, ...nowValues } = now.values;
  assert.equal(steps, 4);
  assert.deepEqual(oldValues, nowValues);
});
