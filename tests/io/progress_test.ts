import assert from "node:assert/strict";
import { formatDuration, formatProgress, ProgressBar } from "../../lib/io/progress.ts";

Deno.test("formatDuration() and formatProgress() show rate, elapsed and ETA", () => {
  assert.equal(formatDuration(65), "1:05");
  assert.equal(formatDuration(3725), "1:02:05");
  assert.equal(formatDuration(NaN), "--:--");
  assert.equal(
    formatProgress({ done: 5, total: 10, elapsedMs: 2000, unit: "samples", label: "gen" }, 10),
    "gen [#####.....] 5/10 2.50 samples/s elapsed 0:02 ETA 0:02",
  );
  assert.equal(
    formatProgress({ done: 0, total: 4, elapsedMs: 0 }, 0),
    "0/4 - items/s elapsed 0:00 ETA --:--",
  );
});

Deno.test("ProgressBar is quiet off a terminal except periodic and final lines", () => {
  let clock = 0;
  const lines: string[] = [];
  const bar = new ProgressBar(100, {
    interactive: false,
    logEveryMs: 1000,
    unit: "samples",
    write: (t) => lines.push(t),
    now: () => clock,
  });
  for (let i = 0; i < 100; i++) {
    clock += 25;
    bar.increment();
  }
  bar.finish();
  bar.finish();
  // 2.5 s of work with a line per second: two periodic lines plus the final one.
  assert.equal(lines.length, 3);
  assert.ok(lines.every((l) => l.endsWith("\n") && !l.includes("\r")));
  assert.equal(lines[2], "100/100 40.00 samples/s elapsed 0:03 ETA 0:00\n");
});

Deno.test("ProgressBar redraws in place on a terminal, throttled", () => {
  let clock = 0;
  const out: string[] = [];
  const bar = new ProgressBar(10, {
    interactive: true,
    intervalMs: 100,
    write: (t) => out.push(t),
    now: () => clock,
  });
  for (let i = 0; i < 10; i++) {
    clock += 50;
    bar.increment();
  }
  bar.finish();
  assert.equal(out.length, 6); // draws at 50 (first), 150, 250, 350, 450 ms + final
  assert.ok(out.every((t) => t.startsWith("\r")));
  assert.ok(out[5].endsWith("\n") && out[5].includes("10/10"));
});

Deno.test("A resumed count (initial) shows in the bar but not in the rate or ETA", () => {
  // 60 of 100 were done by an earlier run; this one did 10 more in 5 s: 2/s, 30 left → 15 s.
  assert.equal(
    formatProgress({ done: 70, total: 100, elapsedMs: 5000, unit: "samples", initial: 60 }, 0),
    "70/100 2.00 samples/s elapsed 0:05 ETA 0:15",
  );
  let clock = 0;
  const lines: string[] = [];
  const bar = new ProgressBar(100, {
    interactive: false,
    initial: 60,
    write: (t) => lines.push(t),
    now: () => clock,
  });
  assert.equal(bar.done, 60);
  clock = 5000;
  bar.increment(10);
  bar.finish();
  assert.equal(lines.at(-1), "70/100 2.00 items/s elapsed 0:05 ETA 0:15\n");
});
