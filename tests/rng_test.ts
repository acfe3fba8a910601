import assert from "node:assert/strict";
import { normalNoise, normalNoiseBatch, philox4x32, shuffledOrder } from "../lib/rng.ts";

function hex(words: Uint32Array): string[] {
  return Array.from(words, (w) => w.toString(16).padStart(8, "0"));
}

Deno.test("philox4x32() matches the Random123 known-answer vectors", () => {
  const out = new Uint32Array(4);
  assert.deepEqual(hex(philox4x32([0, 0, 0, 0], [0, 0], out)), [
    "6627e8d5",
    "e169c58d",
    "bc57ac4c",
    "9b00dbd8",
  ]);
  const ones = 0xffffffff;
  assert.deepEqual(hex(philox4x32([ones, ones, ones, ones], [ones, ones], out)), [
    "408f276d",
    "41c83b0e",
    "a20bc7c6",
    "6d5451fd",
  ]);
  assert.deepEqual(
    hex(
      philox4x32([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0], out),
    ),
    ["d16cfe09", "94fdcceb", "5001e420", "24126ea1"],
  );
});

Deno.test("normalNoise() is deterministic and depends on seed and index", () => {
  const a = normalNoise(42, 3, 101);
  assert.deepEqual(a, normalNoise(42, 3, 101));
  assert.notDeepEqual(a, normalNoise(43, 3, 101));
  assert.notDeepEqual(a, normalNoise(42, 4, 101));
  // A shorter request is a prefix of a longer one (sizes not multiple of 4 included).
  assert.deepEqual(normalNoise(42, 3, 7), a.subarray(0, 7));
  // Large seeds and indices use the high counter/key words.
  assert.notDeepEqual(normalNoise(2 ** 32 + 1, 0, 8), normalNoise(1, 0, 8));
  assert.notDeepEqual(normalNoise(0, 2 ** 32 + 1, 8), normalNoise(0, 1, 8));
});

Deno.test("normalNoise() has standard-normal moments", () => {
  const n = 200_000;
  const z = normalNoise(7, 0, n);
  let mean = 0;
  for (const v of z) mean += v;
  mean /= n;
  let variance = 0;
  let fourth = 0;
  let tail = 0;
  for (const v of z) {
    variance += (v - mean) ** 2;
    fourth += (v - mean) ** 4;
    if (Math.abs(v) > 1.959964) tail++;
  }
  variance /= n;
  fourth /= n;
  // Standard errors: mean 1/√n ≈ 0.0022, variance √(2/n) ≈ 0.0032; allow ~5σ.
  assert.ok(Math.abs(mean) < 0.012, `mean ${mean}`);
  assert.ok(Math.abs(variance - 1) < 0.016, `variance ${variance}`);
  assert.ok(Math.abs(fourth - 3) < 0.1, `fourth moment ${fourth}`);
  assert.ok(Math.abs(tail / n - 0.05) < 0.003, `two-sided 5% tail ${tail / n}`);
  // Neighbouring samples are uncorrelated.
  const a = normalNoise(7, 1, n);
  let cross = 0;
  for (let i = 0; i < n; i++) cross += z[i] * a[i];
  assert.ok(Math.abs(cross / n) < 0.012, `correlation ${cross / n}`);
});

Deno.test("normalNoiseBatch() does not depend on how samples are batched", () => {
  const size = 13;
  const whole = normalNoiseBatch(5, 0, { count: 10, size });
  const parts = [
    normalNoiseBatch(5, 0, { count: 1, size }),
    normalNoiseBatch(5, 1, { count: 7, size }),
    normalNoiseBatch(5, 8, { count: 2, size }),
  ];
  const joined = new Float64Array(whole.length);
  let offset = 0;
  for (const p of parts) {
    joined.set(p, offset);
    offset += p.length;
  }
  assert.deepEqual(joined, whole);
  assert.deepEqual(whole.subarray(3 * size, 4 * size), normalNoise(5, 3, size));
});

Deno.test("normalNoise() rejects bad arguments", () => {
  assert.throws(() => normalNoise(-1, 0, 4), /seed must be a non-negative safe integer: got -1/);
  assert.throws(() => normalNoise(0, 1.5, 4), /index must be .*: got 1.5/);
  assert.throws(() => normalNoise(0, 0, NaN), RangeError);
});

Deno.test("shuffledOrder() is a fixed permutation of its key: learned grids depend on it", () => {
  assert.deepEqual(shuffledOrder(10, 0, 0), [8, 9, 3, 5, 6, 2, 7, 1, 4, 0]);
  assert.deepEqual(shuffledOrder(10, 3, 2), [6, 1, 5, 7, 4, 0, 9, 2, 8, 3]);
  assert.deepEqual(shuffledOrder(1, 5, 5), [0]);
  assert.deepEqual(shuffledOrder(0, 5, 5), []);
  assert.throws(() => shuffledOrder(-1, 0, 0), RangeError);
});
