import assert from "node:assert/strict";
import { join } from "node:path";
import { pathExists, removeIfExists } from "../../lib/io/fs.ts";

Deno.test("pathExists() and removeIfExists(): missing is an answer, not an error", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "a.txt");
    assert.equal(await pathExists(file), false);
    await Deno.writeTextFile(file, "x");
    assert.equal(await pathExists(file), true);
    assert.equal(await pathExists(dir), true);
    await removeIfExists(file);
    assert.equal(await pathExists(file), false);
    await removeIfExists(file); // already gone
    // Other failures surface: a non-empty directory cannot be removed as a file.
    await Deno.mkdir(join(dir, "sub"));
    await Deno.writeTextFile(join(dir, "sub", "b"), "y");
    await assert.rejects(() => removeIfExists(join(dir, "sub")));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
