import assert from "node:assert/strict";
import { sameShape, sampleSize } from "../lib/denoiser.ts";

Deno.test("sampleSize multiplies the dimensions; a scalar sample has one value", () => {
  assert.equal(sampleSize([1, 28, 28]), 784);
  assert.equal(sampleSize([3, 32, 32]), 3072);
  assert.equal(sampleSize([]), 1);
});

Deno.test("sameShape compares rank and every dimension, and an absent shape is never the same", () => {
  assert.ok(sameShape([1, 28, 28], [1, 28, 28]));
  assert.ok(!sameShape([1, 28, 28], [1, 28, 27]));
  assert.ok(!sameShape([1, 28, 28], [1, 28]));
  assert.ok(!sameShape([10], undefined));
  assert.ok(sameShape([], []));
});
