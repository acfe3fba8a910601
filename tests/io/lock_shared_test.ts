/**
 * Shared locks (`lockOutput(target, { shared: true })`): the shards of one job hold a folder
 * together, while a plain run (an exclusive lock) and they keep each other out.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { LockedError, lockFileOf, lockOutput } from "../../lib/io/lock.ts";
import { pathExists } from "../../lib/io/fs.ts";

Deno.test("shared locks hold a target together and keep an exclusive owner out", async () => {
  const root = await Deno.makeTempDir();
  try {
    const target = join(root, "data", "set");
    const a = await lockOutput(target, { shared: true });
    const b = await lockOutput(target, { shared: true });
    assert.equal(a.lockFile, lockFileOf(target));
    // Shared holders write no record.
    assert.equal(await Deno.readTextFile(a.lockFile), "");
    const error = await lockOutput(target, { what: "generate" }).catch((e) => e);
    assert.ok(error instanceof LockedError, String(error));
    assert.match(
      error.message,
      /set is in use by the shards of a sharded run \(lock .*\.set\.lock\)/,
    );
    await a.release();
    assert.ok(await pathExists(b.lockFile), "the other holder still holds it");
    await b.release();
    assert.ok(!await pathExists(b.lockFile), "the last holder removes the lock file");
    // The folders made for the target stay: another shard may be writing there.
    assert.ok(await pathExists(join(root, "data")));
    const plain = await lockOutput(target, { what: "generate" });
    await plain.release();
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a shared lock is refused while an exclusive owner holds the target, naming it", async () => {
  const root = await Deno.makeTempDir();
  try {
    const target = join(root, "set");
    const owner = await lockOutput(target, { what: "generate" });
    const error = await lockOutput(target, { shared: true }).catch((e) => e);
    assert.ok(error instanceof LockedError, String(error));
    assert.equal(error.owner?.pid, Deno.pid);
    assert.match(error.message, /in use by generate, process \d+ on /);
    await owner.release();
    const shard = await lockOutput(target, { shared: true });
    await shard.release();
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
