import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import {
  cachedPath,
  fetchCached,
  isUrl,
  resolveReference,
  verifySha256,
} from "../../lib/io/remote.ts";
import { loadModelConfig } from "../../lib/onnx/config.ts";
import { sampleImages } from "../../lib/pipelines/sampling.ts";
import { ROOT } from "../_run_task.ts";

const hex = (bytes: Uint8Array | string) => createHash("sha256").update(bytes).digest("hex");

/** A loopback server of `files` that honours Range requests, with a log of what was asked. */
function serve(files: Record<string, Uint8Array<ArrayBuffer>>) {
  const log: { path: string; range: string | null }[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const path = new URL(req.url).pathname;
    const range = req.headers.get("range");
    log.push({ path, range });
    const body = files[path];
    if (!body) return new Response("Not found", { status: 404 });
    const from = range ? Number(/bytes=(\d+)-/.exec(range)![1]) : 0;
    return new Response(body.slice(from), {
      status: range ? 206 : 200,
      headers: { "content-length": String(body.length - from) },
    });
  });
  return { server, url: `http://127.0.0.1:${server.addr.port}`, log };
}

/**
 * A raw HTTP server whose first response promises `body` but sends half of it and closes the
 * connection (a dropped download); later requests are answered in full, or from a Range.
 */
function flakyServer(body: Uint8Array) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const ranges: (string | null)[] = [];
  const done = (async () => {
    for await (const conn of listener) {
      const request = new TextDecoder().decode(await readHead(conn));
      const range = /^range: bytes=(\d+)-/im.exec(request);
      ranges.push(range ? range[0].split(": ")[1] : null);
      const from = range ? Number(range[1]) : 0;
      const rest = body.subarray(from);
      const head = `HTTP/1.1 ${range ? "206 Partial Content" : "200 OK"}\r\n` +
        `content-length: ${rest.length}\r\nconnection: close\r\n\r\n`;
      await writeAll(conn, new TextEncoder().encode(head));
      await writeAll(conn, ranges.length === 1 ? rest.subarray(0, rest.length >> 1) : rest);
      conn.close();
    }
  })();
  const port = (listener.addr as Deno.NetAddr).port;
  return { url: `http://127.0.0.1:${port}`, ranges, close: () => (listener.close(), done) };
}

async function readHead(conn: Deno.Conn): Promise<Uint8Array> {
  const buf = new Uint8Array(4096);
  const n = await conn.read(buf);
  return buf.subarray(0, n ?? 0);
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
}

Deno.test("isUrl() and resolveReference() treat relative paths of a remote config as URLs beside it", () => {
  assert.ok(isUrl("https://h/x.yml") && isUrl("file:///tmp/x") && isUrl(new URL("http://h/")));
  assert.ok(!isUrl("configs/x.yml") && !isUrl("/abs/x.yml"));
  assert.equal(
    resolveReference("https://h/ld3/configs/a.yml", "../models/m.onnx"),
    "https://h/ld3/models/m.onnx",
  );
  assert.equal(resolveReference("https://h/a/b.yml", "https://o/m.onnx"), "https://o/m.onnx");
});

Deno.test("fetchCached() downloads once into a content-addressed cache and verifies the hash", async () => {
  const root = await Deno.makeTempDir();
  const body = crypto.getRandomValues(new Uint8Array(5000));
  const { server, url, log } = serve({ "/d/model.onnx": body });
  try {
    const path = await fetchCached(`${url}/d/model.onnx`, { cacheDir: root, sha256: hex(body) });
    assert.equal(path, cachedPath(`${url}/d/model.onnx`, root));
    assert.deepEqual(await Deno.readFile(path), body);
    assert.deepEqual(await Deno.readFile(join(root, "blobs", hex(body))), body);
    await fetchCached(`${url}/d/model.onnx`, { cacheDir: root });
    assert.equal(log.length, 1, "the second call is served from the cache");

    await assert.rejects(
      fetchCached(`${url}/d/model.onnx`, { cacheDir: join(root, "other"), sha256: "0".repeat(64) }),
      /model\.onnx has sha256 [0-9a-f]{64}: the config expects 0{64}/,
    );
    await assert.rejects(Deno.stat(join(root, "other", "blobs")), Deno.errors.NotFound);
    await assert.rejects(fetchCached(`${url}/d/missing.onnx`, { cacheDir: root }), /HTTP 404/);
  } finally {
    await server.shutdown();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("fetchCached() resumes an interrupted download with a Range request", async () => {
  const root = await Deno.makeTempDir();
  const body = crypto.getRandomValues(new Uint8Array(64 * 1024));
  const flaky = flakyServer(body);
  try {
    await assert.rejects(fetchCached(`${flaky.url}/w.bin`, { cacheDir: root, progress: false }));
    const path = await fetchCached(`${flaky.url}/w.bin`, { cacheDir: root, progress: false });
    assert.deepEqual(await Deno.readFile(path), body);
    assert.equal(flaky.ranges.length, 2);
    assert.equal(flaky.ranges[0], null);
    assert.equal(flaky.ranges[1], `bytes=${body.length >> 1}-`, "the second request resumes");
  } finally {
    await flaky.close().catch(() => {});
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("verifySha256() names the file and both hashes", async () => {
  const dir = await Deno.makeTempDir();
  const file = join(dir, "x.npz");
  await Deno.writeTextFile(file, "abc");
  await verifySha256(file, hex("abc").toUpperCase());
  await assert.rejects(verifySha256(file, "1".repeat(64)), /x\.npz has sha256 ba7816bf/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a config given by URL loads with its files from the cache, and samples", async () => {
  const cache = await Deno.makeTempDir();
  const files: Record<string, Uint8Array<ArrayBuffer>> = {};
  for (const path of ["configs/gmm-mnist.yml", "models/gmm-mnist/model.onnx"]) {
    files[`/${path}`] = await Deno.readFile(join(ROOT, path));
  }
  const { server, url } = serve(files);
  const previous = Deno.env.get("LD3_CACHE_DIR");
  Deno.env.set("LD3_CACHE_DIR", cache);
  try {
    const config = await loadModelConfig(`${url}/configs/gmm-mnist.yml`);
    assert.equal(config.source, `${url}/configs/gmm-mnist.yml`);
    assert.ok(config.model.path.startsWith(cache), config.model.path);
    const sampled = await sampleImages(config.source, { steps: 3, numSamples: 2 });
    assert.deepEqual(sampled.shape, [2, 1, 28, 28]);

    // A wrong sha256 entry is one error naming the field, and nothing new is cached.
    const yaml = new TextDecoder().decode(files["/configs/gmm-mnist.yml"]);
    files["/configs/bad.yml"] = new TextEncoder().encode(
      yaml + `sha256:\n  ../models/gmm-mnist/model.onnx: ${"ab".repeat(32)}\n`,
    );
    const other = await Deno.makeTempDir();
    Deno.env.set("LD3_CACHE_DIR", other);
    await assert.rejects(
      loadModelConfig(`${url}/configs/bad.yml`),
      /field "model\.path".*has sha256 [0-9a-f]{64}: the config expects (ab){32}/,
    );
    const blobs = [...Deno.readDirSync(join(other, "blobs"))].map((e) => e.name);
    assert.deepEqual(blobs, [hex(files["/configs/bad.yml"])], "only the config itself");
    await Deno.remove(other, { recursive: true });
  } finally {
    if (previous === undefined) Deno.env.delete("LD3_CACHE_DIR");
    else Deno.env.set("LD3_CACHE_DIR", previous);
    await server.shutdown();
    await Deno.remove(cache, { recursive: true });
  }
});
