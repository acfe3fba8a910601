import assert from "node:assert/strict";
import { hostname } from "node:os";
import { join } from "node:path";
import {
  LockedError,
  lockFileOf,
  lockOutput,
  lockOutputs,
  type LockOwner,
  ownerAlive,
} from "../../lib/io/lock.ts";
import { pathExists } from "../../lib/io/fs.ts";

const LOCK_MODULE = new URL("../../lib/io/lock.ts", import.meta.url).href;

Deno.test("lockOutput() makes the target's folders, records its owner, and cleans up", async () => {
  const root = await Deno.makeTempDir();
  try {
    const target = join(root, "a", "b", "data");
    const lock = await lockOutput(target, { what: "generate" });
    assert.equal(lock.lockFile, join(root, "a", "b", ".data.lock"));
    assert.deepEqual(lock.createdDirs, [join(root, "a"), join(root, "a", "b")]);
    assert.equal(lock.tookOverFrom, undefined);
    const owner = JSON.parse(await Deno.readTextFile(lock.lockFile)) as LockOwner;
    assert.equal(owner.pid, Deno.pid);
    assert.equal(owner.host, hostname());
    assert.equal(owner.what, "generate");
    await lock.release();
    await lock.release(); // twice: nothing
    // Nothing was written: the folders it made are gone again.
    assert.deepEqual([...Deno.readDirSync(root)], []);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("lockOutput() keeps folders that hold something at release", async () => {
  const root = await Deno.makeTempDir();
  try {
    const target = join(root, "out", "result.json");
    const lock = await lockOutput(target);
    await Deno.writeTextFile(target, "{}");
    await lock.release();
    assert.deepEqual([...Deno.readDirSync(join(root, "out"))].map((e) => e.name), ["result.json"]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("lockOutput() refuses a target another lock holds, naming the owner", async () => {
  const root = await Deno.makeTempDir();
  try {
    const target = join(root, "run");
    const first = await lockOutput(target, { what: "train" });
    const error = await lockOutput(target).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(error instanceof LockedError, String(error));
    assert.equal(error.owner?.pid, Deno.pid);
    assert.match(
      error.message,
      new RegExp(
        `^.*run is in use by train, process ${Deno.pid} on .* since .*\\(lock .*\\.run\\.lock\\)`,
      ),
    );
    // The first lock is untouched by the failed attempt.
    assert.ok(await pathExists(first.lockFile));
    await first.release();
    const again = await lockOutput(target);
    await again.release();
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("lockOutput() refuses a target another process holds", async () => {
  const root = await Deno.makeTempDir();
  try {
    const target = join(root, "data");
    const lock = await lockOutput(target, { what: "generate" });
    const script = `import { lockOutput } from "${LOCK_MODULE}";
try { await lockOutput(${JSON.stringify(target)}); console.log("got it"); }
catch (e) { console.log(e.name + ": " + e.message); }`;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--quiet", script],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    const line = new TextDecoder().decode(out.stdout).trim();
    assert.match(line, new RegExp(`^LockedError: .* in use by generate, process ${Deno.pid}`));
    await lock.release();
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("lockOutput() takes over the lock of a process that died", async () => {
  const root = await Deno.makeTempDir();
  try {
    const target = join(root, "data");
    // A process that has exited: its pid is free, and no OS lock is held on its lock file.
    const child = new Deno.Command("true").spawn();
    await child.status;
    const dead: LockOwner = {
      pid: child.pid,
      host: hostname(),
      started: "2026-01-01T00:00:00.000Z",
      what: "generate",
    };
    assert.equal(ownerAlive(dead), false);
    await Deno.writeTextFile(lockFileOf(target), JSON.stringify(dead));
    const lock = await lockOutput(target);
    assert.deepEqual(lock.tookOverFrom, dead);
    assert.equal(JSON.parse(await Deno.readTextFile(lock.lockFile)).pid, Deno.pid);
    await lock.release();
    assert.equal(await pathExists(lockFileOf(target)), false);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("ownerAlive() knows this process and leaves other hosts alone", () => {
  const now = new Date().toISOString();
  assert.equal(ownerAlive({ pid: Deno.pid, host: hostname(), started: now }), true);
  assert.equal(ownerAlive({ pid: 1, host: `${hostname()}-elsewhere`, started: now }), true);
});

Deno.test("lockOutputs() releases the locks it took when one fails", async () => {
  const root = await Deno.makeTempDir();
  try {
    const held = await lockOutput(join(root, "b.png"));
    await assert.rejects(
      lockOutputs([join(root, "new", "a.json"), join(root, "b.png")]),
      LockedError,
    );
    assert.equal(await pathExists(join(root, "new")), false);
    await held.release();
    const both = await lockOutputs([join(root, "a.json"), join(root, "a.json"), join(root, "b")]);
    assert.equal(both.locks.length, 2);
    await both.release();
    assert.deepEqual([...Deno.readDirSync(root)], []);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("concurrent lockOutput() calls: exactly one wins each round", async () => {
  const root = await Deno.makeTempDir();
  try {
    const target = join(root, "data");
    for (let round = 0; round < 20; round++) {
      const results = await Promise.allSettled(
        Array.from({ length: 4 }, () => lockOutput(target)),
      );
      const won = results.filter((r) => r.status === "fulfilled");
      assert.equal(won.length, 1, `round ${round}`);
      for (const r of results) {
        if (r.status === "rejected") assert.ok(r.reason instanceof LockedError);
      }
      await (won[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof lockOutput>>>).value
        .release();
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("lockOutput() never has two owners while owners come and go", async () => {
  const root = await Deno.makeTempDir();
  try {
    const target = join(root, "data");
    let owners = 0;
    let most = 0;
    let wins = 0;
    const worker = async () => {
      for (let k = 0; k < 60; k++) {
        let lock;
        try {
          lock = await lockOutput(target);
        } catch (e) {
          if (!(e instanceof LockedError)) throw e;
          await new Promise((r) => setTimeout(r, 0));
          continue;
        }
        owners++;
        wins++;
        most = Math.max(most, owners);
        await new Promise((r) => setTimeout(r, 0));
        owners--;
        await lock.release();
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    assert.equal(most, 1);
    assert.ok(wins > 0);
    assert.deepEqual([...Deno.readDirSync(root)], []);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("lockOutput() removes what a killed owner left half-written, and only that", async () => {
  const root = await Deno.makeTempDir();
  try {
    const out = join(root, "eval.json");
    const folder = join(root, "run");
    await Deno.mkdir(folder);
    const stale = [
      join(root, ".eval.json.4242.0.ab12cd.tmp"),
      join(folder, ".checkpoint.json.4242.3.zz.tmp"),
    ];
    const kept = [
      join(root, ".eval.json.partial.npz.4242.1.ab12cd.tmp"), // another target's
      join(root, "notes.tmp"),
      join(folder, "log.jsonl"),
    ];
    for (const f of [...stale, ...kept]) await Deno.writeTextFile(f, "x");
    const a = await lockOutput(out);
    const b = await lockOutput(folder);
    for (const f of stale) assert.equal(await pathExists(f), false, f);
    for (const f of kept) assert.equal(await pathExists(f), true, f);
    await b.release();
    await a.release();
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
