import assert from "node:assert/strict";
import { join } from "node:path";
import { runTask } from "../_run_task.ts";

/** A VE model config (σ range 80 … 0.002). */
const CONFIG = "configs/gmm-mnist.yml";

/** A 3-step VE grid file whose middle evaluation time is decoupled (t2 ≠ t1). */
const GRID = {
  format: "ld3-grid",
  version: 1,
  schedule: { kind: "ve", tMax: 80, tMin: 0.002 },
  t1: [80, 5, 0.3, 0.002],
  t2: [80, 4.5, 0.3, 0.002],
  sigma1: [80, 5, 0.3, 0.002],
  sigma2: [80, 4.5, 0.3, 0.002],
  lambda1: [0, 0, 0, 0],
  steps: 3,
};

async function gridFile(root: string): Promise<string> {
  const path = join(root, "grid.json");
  await Deno.writeTextFile(path, JSON.stringify(GRID));
  return path;
}

Deno.test("export-schedule prints the line to paste, and the consumer and warnings on stderr", async () => {
  const root = await Deno.makeTempDir();
  const path = await gridFile(root);
  const r = await runTask("export_schedule", [path, "--config", CONFIG, "--format", "comfyui"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "80.0, 5.0, 0.3, 0.002, 0.0\n");
  assert.match(r.stderr, /^warning: The grid has decoupled evaluation times/);
  assert.match(r.stderr, /\nfor: ComfyUI: the ManualSigmas node/);
  assert.match(r.stderr, /\n {2}trailing 0: included/);
  assert.match(
    r.stderr,
    /\nusage:\n {2}ManualSigmas node, sigmas: 80\.0, 5\.0, 0\.3, 0\.002, 0\.0\n/,
  );
  await Deno.remove(root, { recursive: true });
});

Deno.test("export-schedule refuses a consumer that cannot run the grid, naming one that can", async () => {
  const root = await Deno.makeTempDir();
  const path = await gridFile(root);
  for (const format of ["diffusers-euler", "diffusers-timesteps"]) {
    const bad = await runTask("export_schedule", [path, "--format", format]);
    assert.equal(bad.code, 1);
    assert.equal(bad.stdout, "");
    assert.match(
      bad.stderr,
      /^error: Format diffusers-\S+ \(\w+\) cannot run a "ve" grid: .*diffusers-edm-euler/,
    );
    assert.equal(bad.stderr.trim().split("\n").length, 1);
  }
  await Deno.remove(root, { recursive: true });
});

Deno.test("export-schedule --out writes the text form (or the JSON) atomically instead of stdout", async () => {
  const root = await Deno.makeTempDir();
  const path = await gridFile(root);
  const text = join(root, "ramp.txt");
  const r = await runTask("export_schedule", [
    path,
    "--format",
    "diffusers-edm-euler",
    "--out",
    text,
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "");
  const written = await Deno.readTextFile(text);
  assert.match(written, /^sigmas=torch\.tensor\(\[0\.0, .*, 1\.0\], dtype=torch\.float64\)\n$/);
  assert.match(r.stderr, new RegExp(`wrote ${text}\n$`));
  const json = join(root, "out.json");
  const j = await runTask("export_schedule", [
    path,
    "--format",
    "k-diffusion",
    "--json",
    "--out",
    json,
  ]);
  assert.equal(j.code, 0, j.stderr);
  const parsed = JSON.parse(await Deno.readTextFile(json));
  assert.equal(parsed.format, "k-diffusion");
  assert.deepEqual(parsed.values, [80, 5, 0.3, 0.002, 0]);
  assert.match(parsed.consumer, /^k-diffusion: /);
  assert.equal(parsed.warnings.length, 1);
  assert.equal(parsed.warning, parsed.warnings[0]);
  // Only the two outputs and the grid: no temporary file left behind.
  assert.deepEqual([...Deno.readDirSync(root)].map((e) => e.name).sort(), [
    "grid.json",
    "out.json",
    "ramp.txt",
  ]);
  await Deno.remove(root, { recursive: true });
});
