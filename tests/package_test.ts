/**
 * ld3 is a publishable Deno package: `deno.json` names it, versions it and maps its entry points,
 * the repository has a license, and `deno publish --dry-run` passes every check it can run
 * offline (no slow types, every entry point resolvable, only the published files included).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ROOT } from "./_run_task.ts";

Deno.test("deno.json names, versions and exports the package, with a license", async () => {
  const config = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json")));
  assert.match(config.name, /^@[a-z0-9-]+\/[a-z0-9-]+$/);
  assert.match(config.version, /^\d+\.\d+\.\d+$/);
  assert.equal(config.exports["."], "./mod.ts");
  for (const path of Object.values(config.exports) as string[]) {
    assert.ok((await Deno.stat(join(ROOT, path))).isFile, path);
  }
  assert.match(await Deno.readTextFile(join(ROOT, "LICENSE")), /^MIT License/);
  assert.equal(config.license, "MIT");
});

Deno.test("deno publish --dry-run passes its offline checks", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["publish", "--dry-run", "--allow-dirty"],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, text);
  assert.match(text, /Success Dry run complete/);
  // The warnings allowed: the heavy optional packages (MNIST, the charting stack) are
  // imported by a specifier kept in lib/deps.ts, so that code which never draws or reads MNIST
  // (a mod.ts imported by URL, say) never downloads them.
  const warnings = [...text.matchAll(/^warning\[([\w-]+)\]/gm)].map((m) => m[1]);
  const allowed = ["unanalyzable-dynamic-import", "unanalyzable-import-meta-resolve"];
  assert.deepEqual([...new Set(warnings)].filter((w) => !allowed.includes(w)), []);
  // Only the library and its docs are published: no models, tests or benchmark outputs.
  const files = [...text.matchAll(/file:\/\/\S+/g)].map((m) => m[0].slice(`file://${ROOT}`.length));
  assert.ok(files.includes("mod.ts") && files.some((f) => f.startsWith("lib/")), text);
  assert.deepEqual(files.filter((f) => /^(tests|models|bench|tasks)\//.test(f)), []);
});
