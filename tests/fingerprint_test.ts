import assert from "node:assert/strict";
import { canonicalJson, fingerprintDiff } from "../lib/fingerprint.ts";

Deno.test("canonicalJson() ignores key order, keeps array order", () => {
  assert.equal(canonicalJson({ b: 1, a: { d: 2, c: [3, 1] } }), '{"a":{"c":[3,1],"d":2},"b":1}');
  assert.equal(canonicalJson({ a: 1, b: 2 }), canonicalJson({ b: 2, a: 1 }));
  assert.notEqual(canonicalJson([1, 2]), canonicalJson([2, 1]));
});

Deno.test("fingerprintDiff() names the differing top-level fields", () => {
  const a = { seed: 0, grid: { t1: [1, 0.5] }, n: 10 };
  assert.deepEqual(fingerprintDiff(a, { n: 10, grid: { t1: [1, 0.5] }, seed: 0 }), []);
  assert.deepEqual(fingerprintDiff(a, { seed: 1, grid: { t1: [1, 0.4] }, n: 10 }), [
    "grid",
    "seed",
  ]);
  assert.deepEqual(fingerprintDiff(a, { seed: 0, grid: { t1: [1, 0.5] } }), ["n"]);
});
