import assert from "node:assert/strict";
import {
  acceptIfBetter,
  defaultPriorBound,
  distance,
  projectToBall,
  relaxedStep,
} from "../../lib/ld3/ball.ts";
import { normalNoise } from "../../lib/rng.ts";

Deno.test("projectToBall() never leaves the ball and keeps points already inside", () => {
  const dim = 24;
  for (let s = 0; s < 300; s++) {
    const z = normalNoise(1, s, 2 * dim);
    const spread = 10 ** ((s % 7) - 4);
    const x = Float64Array.from(normalNoise(2, s, 2 * dim), (v, i) => z[i] + spread * v);
    const radius = 0.03;
    const before = Float64Array.from(x);
    projectToBall(x, z, { radius, batch: 2 });
    for (let b = 0; b < 2; b++) {
      const d = distance(x, z, b * dim, dim);
      assert.ok(d <= radius, `sample ${s}/${b}: ${d}`);
      if (distance(before, z, b * dim, dim) <= radius) {
        assert.deepEqual(
          x.subarray(b * dim, (b + 1) * dim),
          before.subarray(b * dim, (b + 1) * dim),
        );
      } else {
        assert.ok(d > radius * (1 - 1e-9), "projected onto the sphere");
      }
    }
  }
  assert.throws(
    () => projectToBall(new Float64Array(2), new Float64Array(2), { radius: -1, batch: 1 }),
    RangeError,
  );
});

Deno.test("relaxedStep() + acceptIfBetter() leave rejected latents unchanged", () => {
  const z = normalNoise(3, 0, 8);
  const x = Float64Array.from(z);
  const grad = normalNoise(4, 0, 8);
  const candidate = relaxedStep(x, grad, z, { lr: 10, radius: 0.1, batch: 2 });
  assert.deepEqual(x, z, "relaxedStep does not modify its input");
  const accepted = acceptIfBetter(x, candidate, { old: [1, 1], new: [0.5, 1.5] });
  assert.deepEqual(accepted, [true, false]);
  assert.deepEqual(x.subarray(0, 4), candidate.subarray(0, 4));
  assert.deepEqual(x.subarray(4), z.subarray(4));
  // A tie is not an improvement.
  const y = Float64Array.from(z);
  acceptIfBetter(y, candidate, { old: [1, 1], new: [1, 1] });
  assert.deepEqual(y, z);
});

Deno.test("defaultPriorBound() is 0.001·C·H·W/steps² (CIFAR-10, 10 steps: 0.03072)", () => {
  assert.ok(Math.abs(defaultPriorBound(3 * 32 * 32, 10) - 0.03072) < 1e-15);
});
