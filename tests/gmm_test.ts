import assert from "node:assert/strict";
import { createGmm, gmmDenoiser, gmmDenoiseVe, gmmReferenceSolve } from "../lib/gmm.ts";
import { flowSchedule, veSchedule, vpLinearSchedule } from "../lib/noise_schedule.ts";

const gmm = createGmm([[1, 0, -1], [-1, 2, 0], [0, 0, 3]], [0.2, 0.5, 1], { weights: [2, 1, 1] });

/** log p_σ(x) of the noised mixture, for a finite-difference score. */
function logDensity(x: readonly number[], sigma: number): number {
  let total = 0;
  for (let k = 0; k < 3; k++) {
    const v = gmm.variances[k] + sigma * sigma;
    let dist = 0;
    for (let c = 0; c < 3; c++) dist += (x[c] - gmm.means[k * 3 + c]) ** 2;
    total += gmm.weights[k] * Math.exp(-dist / (2 * v)) / (2 * Math.PI * v) ** 1.5;
  }
  return Math.log(total);
}

Deno.test("gmmDenoiseVe() satisfies Tweedie's formula D = x + σ²∇log p_σ", () => {
  for (const sigma of [0.05, 0.7, 3]) {
    for (const x of [[0.3, 0.1, -0.2], [-1, 1.5, 2], [2, -1, 0.5]]) {
      const d = gmmDenoiseVe(gmm, Float64Array.from(x), sigma);
      for (let c = 0; c < 3; c++) {
        const e = 1e-5;
        const plus = x.map((v, i) => i === c ? v + e : v);
        const minus = x.map((v, i) => i === c ? v - e : v);
        const score = (logDensity(plus, sigma) - logDensity(minus, sigma)) / (2 * e);
        assert.ok(Math.abs(d[c] - (x[c] + sigma * sigma * score)) < 1e-6, `σ=${sigma} c=${c}`);
      }
    }
  }
});

Deno.test("gmmDenoiseVe() stays finite far from every component (log-sum-exp)", () => {
  const d = gmmDenoiseVe(gmm, Float64Array.of(1e4, -1e4, 1e4), 1e-3);
  assert.ok(d.every(Number.isFinite));
});

Deno.test("gmmDenoiser() maps any schedule to the VE denoiser through x/α, σ/α", async () => {
  const schedule = vpLinearSchedule();
  const t = 0.4;
  const x = Float64Array.of(0.2, -0.4, 0.9);
  const a = schedule.alpha(t);
  const got = await gmmDenoiser(gmm, schedule).denoise(x, t);
  assert.deepEqual(got, gmmDenoiseVe(gmm, x.map((v) => v / a), schedule.sigma(t) / a));
});

Deno.test("gmmReferenceSolve() converges and is schedule-independent in x/α", () => {
  const ve = veSchedule();
  const xT = Float64Array.of(10, -30, 45);
  const a = gmmReferenceSolve(gmm, xT, ve.tMax, ve.tMin, { steps: 2000 });
  const b = gmmReferenceSolve(gmm, xT, ve.tMax, ve.tMin, { steps: 4000 });
  assert.ok(Math.max(...a.map((v, i) => Math.abs(v - b[i]))) < 1e-9);
  // The same trajectory seen through the flow schedule: start at the flow time with the same
  // σ/α and scale the state by α.
  const flow = flowSchedule();
  const tFrom = flow.inverseLambda(-Math.log(80));
  const tTo = flow.inverseLambda(-Math.log(0.002));
  const c = gmmReferenceSolve(gmm, xT.map((v) => v * flow.alpha(tFrom)), tFrom, tTo, {
    schedule: flow,
  });
  const scale = flow.alpha(tTo);
  assert.ok(Math.max(...c.map((v, i) => Math.abs(v / scale - b[i]))) < 1e-8);
});

Deno.test("createGmm() validates its input", () => {
  assert.throws(() => createGmm([[0, 0], [1]], [1, 1]), /means\[1\] has length 1/);
  assert.throws(() => createGmm([[0]], [0]), /variances\[0\] must be > 0: got 0/);
  assert.throws(() => createGmm([[0]], [1], { weights: [-1] }), /weights\[0\] must be > 0/);
});
