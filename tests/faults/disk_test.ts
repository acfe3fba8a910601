/**
 * Outputs on a disk that fills up or cannot be written. A full disk is a small tmpfs, which
 * needs root and a `mount` that works (a container may forbid it): without them those cases are
 * skipped with a message. A read-only place is a read-only tmpfs as root, a mode-0555 folder
 * otherwise (root ignores modes).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { hashTree, makeTinyGmm } from "../_tiny_gmm.ts";
import {
  assertFailed,
  assertNoStrayFiles,
  assertOk,
  datasetDir,
  exists,
  generateArgs,
  listFiles,
  nanModel,
  runTask,
  writeModel,
} from "./_harness.ts";
import { decodeNpz } from "../../lib/io/npz.ts";

async function sh(cmd: string, ...args: string[]): Promise<boolean> {
  const out = await new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).output();
  return out.success;
}

/** Whether this process may mount a tmpfs (root, and a `mount` that works here). */
async function tmpfsWorks(): Promise<boolean> {
  if (Deno.uid() !== 0) return false;
  const probe = await Deno.makeTempDir({ prefix: "ld3-mount-probe-" });
  try {
    if (!await sh("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", probe)) return false;
    await sh("umount", probe);
    return true;
  } catch {
    return false;
  } finally {
    await Deno.remove(probe).catch(() => {});
  }
}

const TMPFS = await tmpfsWorks();
if (!TMPFS) {
  console.log(
    "skipped: the full-disk cases need root and a working `mount -t tmpfs` " +
      `(uid ${Deno.uid()})`,
  );
}

/** Runs `fn` on a tmpfs of `size` mounted on a fresh folder. */
async function withTmpfs(
  options: string,
  fn: (dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ld3-tmpfs-" });
  assert.ok(await sh("mount", "-t", "tmpfs", "-o", options, "tmpfs", dir), "mount failed");
  try {
    await fn(dir);
  } finally {
    await sh("umount", dir);
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "generate on a disk that fills up fails with one line, keeps what is whole, resumes",
  ignore: !TMPFS,
  async fn() {
    const gmm = await makeTinyGmm();
    try {
      const args = (dir: string) => generateArgs(gmm.config, dir, ["--total_samples", "120"]);
      assertOk(await runTask("generate", args(join(gmm.dir, "ref"))));
      await withTmpfs("size=160k", async (disk) => {
        const data = join(disk, "data");
        const full = await runTask("generate", args(data));
        assertFailed(full, /No space left on device.*\.tmp/);
        await assertNoStrayFiles(disk);
        // What is there is whole: every sample decodes, and a manifest came with the first.
        const files = await listFiles(join(datasetDir(data), "samples"));
        assert.ok(files.length > 0 && files.length < 120, `${files.length} samples`);
        for (const f of files) decodeNpz(await Deno.readFile(join(datasetDir(data), "samples", f)));
        JSON.parse(await Deno.readTextFile(join(datasetDir(data), "manifest.json")));
        // More room: the rerun finishes the dataset as one uninterrupted run makes it.
        assert.ok(await sh("mount", "-o", "remount,size=4m", disk), "remount failed");
        assertOk(await runTask("generate", args(data)));
        const { "manifest.json": _a, ...got } = await hashTree(datasetDir(data));
        const { "manifest.json": _b, ...want } = await hashTree(datasetDir(join(gmm.dir, "ref")));
        assert.deepEqual(got, want);
        await assertNoStrayFiles(disk);
      });
    } finally {
      await gmm.cleanup();
    }
  },
});

Deno.test({
  name: "eval onto a full disk fails before any work, naming the file, leaving nothing",
  ignore: !TMPFS,
  async fn() {
    const gmm = await makeTinyGmm();
    try {
      await withTmpfs("size=64k", async (disk) => {
        // Fill it up.
        const filler = await Deno.open(join(disk, "filler"), { write: true, create: true });
        try {
          const block = new Uint8Array(4096);
          for (;;) await filler.write(block);
        } catch {
          /* full */
        } finally {
          filler.close();
        }
        const out = join(disk, "eval.json");
        const run = await runTask("eval", [
          ...["--config", gmm.config, "--steps", "4", "--exact_gmm", "--num_samples", "5000"],
          ...["--out", out],
        ]);
        // The lock is taken before the model is sampled: this error comes before any work.
        assertFailed(run, /Cannot write the lock .*\.eval\.json\.lock: No space left on device/);
        assert.deepEqual(await listFiles(disk), ["filler"]);
      });
    } finally {
      await gmm.cleanup();
    }
  },
});

/** Runs `fn` on a folder nobody may write: a read-only tmpfs as root, mode 0555 otherwise. */
async function withReadOnlyDir(fn: (dir: string) => Promise<void>): Promise<void> {
  if (TMPFS) return await withTmpfs("ro,size=64k", fn);
  const dir = await Deno.makeTempDir({ prefix: "ld3-ro-" });
  await Deno.chmod(dir, 0o555);
  try {
    await fn(dir);
  } finally {
    await Deno.chmod(dir, 0o755);
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "every task refuses a read-only output place before any work, with one line",
  // As root without a tmpfs nothing is read-only to us.
  ignore: Deno.uid() === 0 && !TMPFS,
  async fn() {
    const gmm = await makeTinyGmm();
    try {
      // A network that would fail at its first call: the refusal must come first.
      const nan = await writeModel(join(gmm.dir, "nan"), nanModel([1, 4, 4]), [1, 4, 4]);
      const data = join(gmm.dir, "data");
      assertOk(await runTask("generate", generateArgs(gmm.config, data, ["--total_samples", "8"])));
      await withReadOnlyDir(async (ro) => {
        const refused = /^error: Cannot write beside /;
        assertFailed(
          await runTask("generate", generateArgs(nan, join(ro, "data"), ["--total_samples", "8"])),
          refused,
        );
        assertFailed(
          await runTask("sample", ["--config", nan, "--steps", "4", "--out", join(ro, "s.png")]),
          refused,
        );
        assertFailed(
          await runTask("eval", [
            ...["--config", nan, "--steps", "4", "--data_dir", datasetDir(data)],
            ...["--out", join(ro, "sub", "e.json")],
          ]),
          refused,
        );
        assertFailed(
          await runTask("train", [
            ...["--config", gmm.config, "--data_dir", datasetDir(data), "--log_path", ro],
            ...["--num_train", "4", "--num_valid", "4", "--steps", "3", "--quiet"],
          ]),
          refused,
        );
        assert.deepEqual(await listFiles(ro), []);
      });
      assert.equal(await exists(join(gmm.dir, "logs")), false);
    } finally {
      await gmm.cleanup();
    }
  },
});
