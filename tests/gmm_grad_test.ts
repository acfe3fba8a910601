import assert from "node:assert/strict";
import { GmmDenoiser } from "../lib/gmm_grad.ts";
import { flowSchedule, veSchedule, vpLinearSchedule } from "../lib/noise_schedule.ts";
import { normalNoise } from "../lib/rng.ts";
import { relativeError, smallGmm, stencil } from "./ld3/_gmm_problem.ts";

const schedules = [
  ["ve", veSchedule(), [80, 3, 0.5, 0.01]],
  ["vp_linear", vpLinearSchedule(), [0.9, 0.5, 0.2, 0.01]],
  ["flow", flowSchedule(), [0.95, 0.5, 0.1, 0.01]],
] as const;

for (const [name, schedule, times] of schedules) {
  Deno.test(`GmmDenoiser.vjp() matches finite differences in x and t (${name})`, async () => {
    const gmm = smallGmm(schedule, { dim: 8 });
    const batch = 2;
    for (const t of times) {
      const scale = schedule.sigma(t) / schedule.alpha(t);
      const x = Float64Array.from(normalNoise(1, 0, 8 * batch), (v, i) => {
        const mean = i < 8 ? 0.3 : -0.2;
        return schedule.alpha(t) * (mean + Math.min(scale, 2) * v);
      });
      const cot = normalNoise(2, 0, x.length);
      const dot = async (xx: Float64Array, tt: number) => {
        const d = await gmm.denoise(xx, tt);
        return d.reduce((s, v, i) => s + v * cot[i], 0);
      };
      const vjp = await gmm.vjp(x, t, cot);
      const fdx = new Float64Array(x.length);
      const h = 1e-3 * schedule.alpha(t) * Math.min(scale, 1);
      for (let i = 0; i < x.length; i++) {
        fdx[i] = await stencil((e) => {
          const xx = Float64Array.from(x);
          xx[i] += e;
          return dot(xx, t);
        }, h);
      }
      assert.ok(relativeError(vjp.x, fdx) < 1e-7, `x gradient at t=${t}`);
      const fdt = await stencil((e) => dot(x, t + e), 1e-4 * t);
      assert.ok(
        Math.abs(vjp.t - fdt) <= 1e-6 * Math.max(Math.abs(fdt), 1e-8),
        `t gradient at t=${t}: ${vjp.t} vs ${fdt}`,
      );
    }
  });
}

Deno.test("GmmDenoiser.denoise() snaps to the nearest mean of a sharp mixture", async () => {
  const gmm = new GmmDenoiser(veSchedule(), [2], {
    means: Float64Array.from([1, 1, -1, -1]),
    components: 2,
    variances: [1e-4, 1e-4],
  });
  const d = await gmm.denoise(Float64Array.from([2, 2, -3, -1]), 1);
  assert.ok(Math.abs(d[0] - 1) < 0.02 && Math.abs(d[2] + 1) < 0.03);
  const far = await gmm.denoise(Float64Array.from([0.5, 0.5]), 1000);
  assert.ok(Math.abs(far[0]) < 1e-3, "at huge noise the posterior mean is the prior mean");
});

Deno.test("GmmDenoiser rejects malformed parameters", () => {
  assert.throws(
    () =>
      new GmmDenoiser(veSchedule(), [2], {
        means: new Float64Array(3),
        components: 2,
        variances: [1, 1],
      }),
    RangeError,
  );
  assert.throws(
    () =>
      new GmmDenoiser(veSchedule(), [2], {
        means: new Float64Array(4),
        components: 2,
        variances: [1, 0],
      }),
    RangeError,
  );
});
