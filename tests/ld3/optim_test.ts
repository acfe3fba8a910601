import assert from "node:assert/strict";
import { clipGradNorm, Rmsprop, rmspropState, Sgd, sgdState } from "../../lib/ld3/optim.ts";

function close(actual: ArrayLike<number>, expected: number[], tol = 1e-15) {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= tol, `[${i}] ${actual[i]} vs ${expected[i]}`);
  }
}

Deno.test("Rmsprop.step() matches PyTorch's RMSprop (momentum 0.9) on a hand-computed 3-parameter case", () => {
  const theta = Float64Array.from([1, -2, 0.5]);
  const opt = new Rmsprop(3, { lr: 0.01, momentum: 0.9 });
  // Step 1: v = 0.01·g² = [1e-4, 4e-4, 9e-4]; avg = √v + 1e-8 = [0.01000001, 0.02000001,
  // 0.03000001]; b = g/avg; θ −= 0.01·b.
  opt.step(theta, Float64Array.from([0.1, -0.2, 0.3]));
  const b1 = [0.1 / 0.01000001, -0.2 / 0.02000001, 0.3 / 0.03000001];
  close(theta, [1 - 0.01 * b1[0], -2 - 0.01 * b1[1], 0.5 - 0.01 * b1[2]]);
  close(theta, [0.9000000999999, -1.90000004999997, 0.40000003333332], 1e-13);
  // Step 2 with g = [−0.1, 0.1, 0]: v = 0.99·v + 0.01·g², b = 0.9·b + g/avg.
  opt.step(theta, Float64Array.from([-0.1, 0.1, 0]));
  const v2 = [0.99e-4 + 1e-4, 0.99 * 4e-4 + 1e-4, 0.99 * 9e-4];
  const b2 = [
    0.9 * b1[0] - 0.1 / (Math.sqrt(v2[0]) + 1e-8),
    0.9 * b1[1] + 0.1 / (Math.sqrt(v2[1]) + 1e-8),
    0.9 * b1[2],
  ];
  close(theta, [
    1 - 0.01 * b1[0] - 0.01 * b2[0],
    -2 - 0.01 * b1[1] - 0.01 * b2[1],
    0.5 - 0.01 * b1[2] - 0.01 * b2[2],
  ], 1e-14);
  const state = JSON.parse(JSON.stringify(opt.state()));
  assert.equal(state.step, 2);
  const copy = new Rmsprop(3, { lr: 0.01, momentum: 0.9 });
  copy.load(state);
  const a = Float64Array.from(theta);
  const b = Float64Array.from(theta);
  opt.step(a, Float64Array.from([0.3, 0.2, 0.1]));
  copy.step(b, Float64Array.from([0.3, 0.2, 0.1]));
  assert.deepEqual(a, b, "a restored state continues identically");
});

Deno.test("Rmsprop.step() without momentum and centred follows PyTorch", () => {
  const theta = Float64Array.from([0, 0, 0]);
  const opt = new Rmsprop(3, { lr: 0.1, centered: true, alpha: 0.9 });
  opt.step(theta, Float64Array.from([1, 2, -1]));
  // v = 0.1·g², ḡ = 0.1·g, avg = √(v − ḡ²) + eps = √(0.09)|g| + eps.
  close(theta, [-0.1 / (0.3 + 1e-8), -0.2 / (0.6 + 1e-8), 0.1 / (0.3 + 1e-8)]);
});

Deno.test("Sgd.step() is θ − lr·g, and with momentum starts its buffer at g", () => {
  const theta = Float64Array.from([1, 2, 3]);
  new Sgd(3, { lr: 0.5 }).step(theta, Float64Array.from([0.2, -0.4, 0]));
  close(theta, [0.9, 2.2, 3]);
  const m = Float64Array.from([0, 0, 0]);
  const opt = new Sgd(3, { lr: 1, momentum: 0.5 });
  opt.step(m, Float64Array.from([1, 1, 1]));
  opt.step(m, Float64Array.from([1, 0, -1]));
  close(m, [-1 - 1.5, -1 - 0.5, -1 + 0.5]);
});

Deno.test("clipGradNorm() scales by maxNorm/(‖g‖ + 1e-6) only when above the norm", () => {
  const g = Float64Array.from([3, 4, 0]);
  assert.equal(clipGradNorm([g], 1), 5);
  close(g, [3 / (5 + 1e-6), 4 / (5 + 1e-6), 0]);
  const small = Float64Array.from([0.3, 0.4, 0]);
  clipGradNorm([small], 1);
  close(small, [0.3, 0.4, 0]);
  assert.throws(() => clipGradNorm([g], 0), RangeError);
});

Deno.test("Rmsprop and Sgd update a state they are given in place, and refuse one of another size", () => {
  const state = rmspropState(2, 0.1);
  const opt = new Rmsprop(2, { lr: 0.5, momentum: 0.9 }, state);
  assert.equal(opt.lr, 0.1, "the state's lr wins");
  opt.step(Float64Array.from([1, 2]), Float64Array.from([0.5, -0.5]));
  assert.equal(state.step, 1);
  assert.ok(state.squareAvg[0] > 0 && state.momentumBuffer[1] < 0);
  opt.lr = 0.05;
  assert.equal(state.lr, 0.05);
  // A second optimizer over a copy of the state continues exactly like the first.
  const twin = new Rmsprop(2, { lr: 0.5, momentum: 0.9 }, structuredClone(state));
  const [a, b] = [Float64Array.from([1, 2]), Float64Array.from([1, 2])];
  opt.step(a, Float64Array.from([0.1, 0.2]));
  twin.step(b, Float64Array.from([0.1, 0.2]));
  assert.deepEqual(a, b);
  assert.throws(() => new Rmsprop(3, { lr: 0.1 }, state), /RMSprop state has 2 values: expected 3/);

  const sgd = sgdState(0.5);
  new Sgd(2, { lr: 1, momentum: 0.5 }, sgd).step(
    Float64Array.from([0, 0]),
    Float64Array.from([1, 2]),
  );
  assert.deepEqual(sgd, { lr: 0.5, step: 1, momentumBuffer: [1, 2] });
  assert.throws(() => new Sgd(3, { lr: 1 }, sgd), /SGD state has 2 values: expected 3/);
});
