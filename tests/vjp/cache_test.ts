import assert from "node:assert/strict";
import { join } from "node:path";
import { ort } from "../../lib/deps.ts";
import { cachedBuild, vjpCacheDir } from "../../lib/vjp/cache.ts";
import { VjpSession } from "../../lib/vjp/mod.ts";

const MODEL = new Uint8Array([1, 2, 3, 4]);

/** Every file under `dir`, relative paths. */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, prefix: string) => {
    for await (const e of Deno.readDir(d)) {
      if (e.isDirectory) await walk(join(d, e.name), `${prefix}${e.name}/`);
      else out.push(`${prefix}${e.name}`);
    }
  };
  await walk(dir, "");
  return out.sort();
}

Deno.test("cachedBuild() builds once, then reads the entry back", async () => {
  const dir = await Deno.makeTempDir();
  let builds = 0;
  const build = () => {
    builds++;
    return Promise.resolve({ files: { "a.onnx": new Uint8Array([7, 8, 9]) }, meta: { n: 3 } });
  };
  const first = await cachedBuild(MODEL, { kind: "t", shape: [1] }, build, { dir });
  const second = await cachedBuild(MODEL, { kind: "t", shape: [1] }, build, { dir });
  assert.equal(builds, 1);
  assert.deepEqual(Array.from(second.files["a.onnx"]), [7, 8, 9]);
  assert.deepEqual(second.meta, first.meta);
  // Another key, or another model, is another entry.
  await cachedBuild(MODEL, { kind: "t", shape: [2] }, build, { dir });
  await cachedBuild(new Uint8Array([5]), { kind: "t", shape: [1] }, build, { dir });
  assert.equal(builds, 3);
  const files = await filesUnder(dir);
  assert.equal(files.filter((f) => f.endsWith("entry.json")).length, 3);
  assert.ok(files.every((f) => !f.endsWith(".tmp")), "no temporary file is left");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("cachedBuild() rebuilds a corrupt, partial or unreadable entry", async () => {
  const dir = await Deno.makeTempDir();
  let builds = 0;
  const build = () => {
    builds++;
    return Promise.resolve({ files: { "a.onnx": new Uint8Array([1, 1, 1]) }, meta: null });
  };
  await cachedBuild(MODEL, { kind: "t" }, build, { dir });
  const [file] = (await filesUnder(dir)).filter((f) => f.endsWith("a.onnx"));
  const entry = file.replace("a.onnx", "entry.json");
  await Deno.writeFile(join(dir, file), new Uint8Array([1, 1, 2])); // flipped byte
  const r = await cachedBuild(MODEL, { kind: "t" }, build, { dir });
  assert.equal(builds, 2);
  assert.deepEqual(Array.from(r.files["a.onnx"]), [1, 1, 1]);
  await Deno.remove(join(dir, file)); // a file gone
  await cachedBuild(MODEL, { kind: "t" }, build, { dir });
  assert.equal(builds, 3);
  await Deno.writeTextFile(join(dir, entry), "{ not json"); // a torn record
  await cachedBuild(MODEL, { kind: "t" }, build, { dir });
  assert.equal(builds, 4);
  // The rewritten entry is whole again.
  await cachedBuild(MODEL, { kind: "t" }, build, { dir });
  assert.equal(builds, 4);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("vjpCacheDir() follows LD3_CACHE_DIR, XDG_CACHE_HOME and HOME; off turns it off", () => {
  const saved = ["LD3_CACHE_DIR", "XDG_CACHE_HOME", "HOME"].map((k) => [k, Deno.env.get(k)]);
  try {
    Deno.env.set("LD3_CACHE_DIR", "/x/cache");
    assert.equal(vjpCacheDir(), "/x/cache/vjp");
    Deno.env.set("LD3_CACHE_DIR", "off");
    assert.equal(vjpCacheDir(), undefined);
    Deno.env.delete("LD3_CACHE_DIR");
    Deno.env.set("XDG_CACHE_HOME", "/x/xdg");
    assert.equal(vjpCacheDir(), "/x/xdg/ld3/vjp");
    Deno.env.delete("XDG_CACHE_HOME");
    Deno.env.set("HOME", "/x/home");
    assert.equal(vjpCacheDir(), "/x/home/.cache/ld3/vjp");
  } finally {
    for (const [k, v] of saved) v === undefined ? Deno.env.delete(k!) : Deno.env.set(k!, v);
  }
});

Deno.test("VjpSession with cache: a second session reads the graph its first run built", async () => {
  const dir = await Deno.makeTempDir();
  const saved = Deno.env.get("LD3_CACHE_DIR");
  Deno.env.set("LD3_CACHE_DIR", dir);
  try {
    const model = await Deno.readFile(new URL("../fixtures/vjp/unet.onnx", import.meta.url));
    const inputs = {
      x: new ort.Tensor("float32", new Float32Array(256).fill(0.5), [1, 1, 16, 16]),
      sigma: new ort.Tensor("float32", Float32Array.of(2), [1]),
    };
    const cot = new ort.Tensor("float32", new Float32Array(256).fill(1), [1, 1, 16, 16]);
    const run = async () => {
      const s = await VjpSession.create(model, { wrt: ["x"], cache: true });
      const g = Array.from((await s.run(inputs, cot)).gradients.x.data as Float32Array);
      await s.release();
      return g;
    };
    const a = await run();
    const written = await filesUnder(join(dir, "vjp"));
    assert.equal(written.filter((f) => f.endsWith("vjp.onnx")).length, 1);
    const b = await run();
    assert.deepEqual(b, a);
    assert.deepEqual(await filesUnder(join(dir, "vjp")), written);
  } finally {
    saved === undefined ? Deno.env.delete("LD3_CACHE_DIR") : Deno.env.set("LD3_CACHE_DIR", saved);
    await Deno.remove(dir, { recursive: true });
  }
});
