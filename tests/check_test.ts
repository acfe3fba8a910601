import assert from "node:assert/strict";
import { checkCount, checkIntegerIn } from "../lib/_check.ts";

Deno.test("checkCount accepts integers from min and names the argument otherwise", () => {
  checkCount("samples", 2, 2);
  checkCount("seed", 0, 0);
  assert.throws(
    () => checkCount("samples", 1, 2),
    /^RangeError: samples must be an integer >= 2: got 1$/,
  );
  assert.throws(() => checkCount("nfe", 2.5, 1), /nfe must be an integer >= 1: got 2.5/);
  assert.throws(() => checkCount("nfe", NaN, 1), /nfe must be an integer >= 1: got NaN/);
  assert.throws(() => checkCount("nfe", 2 ** 53, 1), /nfe must be an integer/);
});

Deno.test("checkIntegerIn checks both ends", () => {
  checkIntegerIn("scale", 1, 1, 64);
  checkIntegerIn("scale", 64, 1, 64);
  assert.throws(
    () => checkIntegerIn("scale", 65, 1, 64),
    /scale must be an integer in \[1, 64\]: got 65/,
  );
  assert.throws(() => checkIntegerIn("scale", 0, 1, 64), /got 0/);
});
