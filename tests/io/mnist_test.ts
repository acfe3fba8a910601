import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { mnistDataDir, parseIdx, readMnist } from "../../lib/io/mnist.ts";

Deno.test("readMnist() reads both splits with their known first labels", async () => {
  const train = await readMnist("train");
  assert.equal(train.count, 60000);
  assert.equal(train.rows, 28);
  assert.equal(train.cols, 28);
  assert.equal(train.images.length, 60000 * 784);
  // The first training digits of MNIST are 5, 0, 4, 1, 9; the first test digits 7, 2, 1, 0.
  assert.deepEqual([...train.labels.subarray(0, 5)], [5, 0, 4, 1, 9]);
  const test = await readMnist("test");
  assert.equal(test.count, 10000);
  assert.deepEqual([...test.labels.subarray(0, 4)], [7, 2, 1, 0]);
  // Digits are white strokes on black: mostly 0, with some saturated pixels.
  const first = train.images.subarray(0, 784);
  assert.ok(first.filter((p) => p === 0).length > 500);
  assert.equal(Math.max(...first), 255);
});

Deno.test("parseIdx() and readMnist() reject bad input", async () => {
  assert.throws(() => parseIdx(new Uint8Array([0, 0, 9, 1, 0, 0, 0, 1, 7])), /magic 0,0,9,1/);
  assert.throws(
    () => parseIdx(new Uint8Array([0, 0, 8, 1, 0, 0, 0, 3, 7])),
    /Truncated IDX data: dims \[3\] need 3 bytes, got 1/,
  );
  assert.deepEqual(parseIdx(new Uint8Array([0, 0, 8, 1, 0, 0, 0, 2, 7, 9])), {
    dims: [2],
    data: new Uint8Array([7, 9]),
  });
  await assert.rejects(() => readMnist("valid" as "train"), /split must be "train" or "test"/);
});

Deno.test("mnistDataDir() also finds the package without a node_modules folder", async () => {
  // Copy the module and its deps file away from the project's node_modules and run it
  // with no config, so Node resolution fails and Deno's npm cache is the only source.
  const here = dirname(fileURLToPath(import.meta.url));
  const tmp = await Deno.makeTempDir();
  try {
    await Deno.mkdir(join(tmp, "lib", "io"), { recursive: true });
    for (const file of ["io/mnist.ts", "deps.ts", "_no_telemetry.ts"]) {
      await Deno.copyFile(join(here, "..", "..", "lib", file), join(tmp, "lib", file));
    }
    await Deno.writeTextFile(
      join(tmp, "main.ts"),
      'import { mnistDataDir } from "./lib/io/mnist.ts";\nconsole.log(await mnistDataDir());\n',
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-config", "--node-modules-dir=none", "-A", "main.ts"],
      cwd: tmp,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout).trim();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    assert.ok(!stdout.startsWith(tmp), `should not use a local node_modules: ${stdout}`);
    assert.ok(!stdout.includes("node_modules"), `expected the Deno npm cache: ${stdout}`);
    const bytes = await Deno.readFile(join(stdout, "train-labels-idx1-ubyte"));
    assert.equal(parseIdx(bytes).dims[0], 60000);
    // In the project itself the node_modules copy is used.
    assert.match(await mnistDataDir(), /node_modules/);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
