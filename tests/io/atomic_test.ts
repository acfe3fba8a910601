import assert from "node:assert/strict";
import { isTempFileName, writeFileAtomic, writeJsonAtomic } from "../../lib/io/atomic.ts";

Deno.test("writeFileAtomic() replaces a file and leaves no temporary file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/a.bin`;
    await writeFileAtomic(path, new Uint8Array([1, 2, 3]));
    await writeFileAtomic(path, new Uint8Array([4, 5]));
    assert.deepEqual(await Deno.readFile(path), new Uint8Array([4, 5]));
    // Concurrent writers of the same target never interleave: the file is one whole version.
    await Promise.all(
      Array.from({ length: 8 }, (_, k) => writeFileAtomic(path, new Uint8Array(1000).fill(k))),
    );
    const final = await Deno.readFile(path);
    assert.equal(final.length, 1000);
    assert.ok(final.every((b) => b === final[0]));
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["a.bin"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeFileAtomic() cleans up and rethrows when the rename fails", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // The target is a non-empty directory, so renaming a file over it fails.
    await Deno.mkdir(`${dir}/target/sub`, { recursive: true });
    await assert.rejects(writeFileAtomic(`${dir}/target`, new Uint8Array([1])));
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["target"]);
    await assert.rejects(
      writeFileAtomic(`${dir}/no/such/dir/x`, new Uint8Array([1])),
      Deno.errors.NotFound,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeJsonAtomic() writes indented JSON with a final newline", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeJsonAtomic(`${dir}/m.json`, { a: [1, 2], b: "x" });
    const text = await Deno.readTextFile(`${dir}/m.json`);
    assert.equal(text, '{\n  "a": [\n    1,\n    2\n  ],\n  "b": "x"\n}\n');
    assert.ok(isTempFileName(".m.json.12.0.ab12cd.tmp"));
    assert.ok(!isTempFileName("m.json"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
