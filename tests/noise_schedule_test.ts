import { equal, ok, throws } from "node:assert/strict";
import {
  discreteBetas,
  flowSchedule,
  type NoiseSchedule,
  sigmaOf,
  timeOfSigma,
  veSchedule,
  vpCosineSchedule,
  vpDiscreteSchedule,
  vpLinearSchedule,
} from "../lib/noise_schedule.ts";

function almost(actual: number, expected: number, tol: number, what: string): void {
  ok(
    Math.abs(actual - expected) <= tol * Math.max(1, Math.abs(expected)),
    `${what}: ${actual} vs ${expected} (tol ${tol})`,
  );
}

const cumprod = (() => {
  const b = discreteBetas("scaled_linear");
  const out = new Float64Array(b.length);
  let acc = 1;
  for (let i = 0; i < b.length; i++) out[i] = acc *= 1 - b[i];
  return out;
})();

const SCHEDULES: Record<string, NoiseSchedule> = {
  ve: veSchedule(),
  vp_linear: vpLinearSchedule(),
  vp_discrete_betas: vpDiscreteSchedule({ betas: discreteBetas("scaled_linear") }),
  vp_discrete_cumprod: vpDiscreteSchedule({ alphasCumprod: cumprod }),
  vp_discrete_linear: vpDiscreteSchedule({ betas: discreteBetas("linear") }),
  vp_cosine: vpCosineSchedule(),
  flow: flowSchedule(),
};

function timesOf(s: NoiseSchedule, n = 257): number[] {
  // Log-spaced for wide ranges (VE), linear otherwise, endpoints included.
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const u = i / (n - 1);
    out.push(
      s.kind === "ve"
        ? Math.exp(Math.log(s.tMin) + u * (Math.log(s.tMax) - Math.log(s.tMin)))
        : s.tMin + u * (s.tMax - s.tMin),
    );
  }
  return out;
}

for (const [name, s] of Object.entries(SCHEDULES)) {
  Deno.test(`${name}: inverseLambda(lambda(t)) = t to 1e-10`, () => {
    for (const t of timesOf(s)) almost(s.inverseLambda(s.lambda(t)), t, 1e-10, `t=${t}`);
  });

  Deno.test(`${name}: lambda(inverseLambda(l)) = l to 1e-10`, () => {
    const lo = s.lambda(s.tMax);
    const hi = s.lambda(s.tMin);
    for (let i = 0; i <= 200; i++) {
      const l = lo + (hi - lo) * (i / 200);
      almost(s.lambda(s.inverseLambda(l)), l, 1e-10, `lambda=${l}`);
    }
  });

  Deno.test(`${name}: lambda is log(alpha/sigma) and strictly decreasing`, () => {
    let prev = Infinity;
    for (const t of timesOf(s)) {
      const l = s.lambda(t);
      almost(l, Math.log(s.alpha(t)) - Math.log(s.sigma(t)), 1e-10, `t=${t}`);
      ok(l < prev, `lambda not decreasing at t=${t}`);
      prev = l;
    }
  });

  if (name.startsWith("vp")) {
    Deno.test(`${name}: alpha^2 + sigma^2 = 1 to 1e-10`, () => {
      for (const t of timesOf(s)) almost(s.alpha(t) ** 2 + s.sigma(t) ** 2, 1, 1e-10, `t=${t}`);
    });
  }

  Deno.test(`${name}: sigmaOf and timeOfSigma are inverse`, () => {
    for (const t of timesOf(s, 33)) almost(timeOfSigma(s, sigmaOf(s, t)), t, 1e-10, `t=${t}`);
  });
}

Deno.test("veSchedule() is EDM's: sigma = t, prior scale T", () => {
  const s = veSchedule();
  equal(s.sigma(3.5), 3.5);
  equal(s.alpha(3.5), 1);
  equal(s.priorScale, 80);
  equal(s.tMin, 0.002);
});

Deno.test("vpLinearSchedule() matches the closed-form log alpha", () => {
  const s = vpLinearSchedule();
  const t = 0.37;
  almost(Math.log(s.alpha(t)), -0.25 * t * t * 19.9 - 0.5 * t * 0.1, 1e-14, "log alpha");
});

Deno.test("vpDiscreteSchedule() hits the knots exactly: log alpha(n/Nd) = ½ log ᾱ_n", () => {
  const s = vpDiscreteSchedule({ alphasCumprod: cumprod });
  for (const n of [1, 2, 10, 500, 999, 1000]) {
    almost(Math.log(s.alpha(n / 1000)), 0.5 * Math.log(cumprod[n - 1]), 1e-12, `n=${n}`);
  }
  equal(s.tMin, 1 / 1000);
  equal(s.tMax, 1);
});

Deno.test("vpDiscreteSchedule() rejects bad input with a clear error", () => {
  throws(() => vpDiscreteSchedule({}), /exactly one of/);
  throws(() => vpDiscreteSchedule({ alphasCumprod: [0.9, 0.95] }), /must decrease/);
  throws(() => vpDiscreteSchedule({ alphasCumprod: [0.9, 1.5] }), /alphas_cumprod\[1\]/);
});

Deno.test("flowSchedule() is alpha = 1 - t, sigma = t", () => {
  const s = flowSchedule();
  equal(s.alpha(0.25), 0.75);
  equal(s.sigma(0.25), 0.25);
  ok(s.tMax < 1);
});

Deno.test("schedules reject inverted time ranges", () => {
  throws(() => veSchedule({ sigmaMax: 0.001, sigmaMin: 0.002 }), RangeError);
  throws(() => vpCosineSchedule({ tMax: 1.2 }), /tMax must be < 1/);
});
