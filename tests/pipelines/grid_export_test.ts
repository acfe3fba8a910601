/**
 * The exports are checked against what each consumer does with them: the consumer's documented
 * rule (its `set_timesteps`, node parser or σ → timestep mapping) is redone here on the exported
 * numbers, and what comes out must be the learned grid — its noise levels, its times, its number
 * of steps — or the warning must say how far it is off.
 */
import assert from "node:assert/strict";
import { type GridFile, makeGridFile } from "../../lib/io/grid_file.ts";
import { edmGrid, logSnrGrid, toGrid } from "../../lib/step_grid.ts";
import {
  discreteBetas,
  flowSchedule,
  type NoiseSchedule,
  type ScheduleKind,
  veSchedule,
  vpCosineSchedule,
  vpDiscreteSchedule,
  vpLinearSchedule,
} from "../../lib/noise_schedule.ts";
import {
  EXPORT_FORMATS,
  EXPORT_TARGETS,
  exportSchedule,
  exportSigmas,
  hasDecoupledTimes,
  plainDecimal,
} from "../../lib/pipelines/grid_export.ts";

const ve = veSchedule();
/** Stable Diffusion's table: scaled_linear β, 1000 steps. */
const SD_BETAS = discreteBetas("scaled_linear", 1000);
const sd = vpDiscreteSchedule({ betas: SD_BETAS });
const flow = flowSchedule();

const SCHEDULES: Record<ScheduleKind, NoiseSchedule> = {
  ve,
  vp_linear: vpLinearSchedule(),
  vp_discrete: sd,
  vp_cosine: vpCosineSchedule(),
  flow,
};

/** A grid the way LD3 leaves one: 5 steps, times between the training steps. */
function learned(schedule: NoiseSchedule, steps = 5): GridFile {
  return makeGridFile(schedule, toGrid(logSnrGrid(schedule, steps)));
}

function alphasCumprod(betas: ArrayLike<number>): Float64Array {
  const out = new Float64Array(betas.length);
  let acc = 1;
  for (let n = 0; n < out.length; n++) out[n] = acc *= 1 - betas[n];
  return out;
}

/** diffusers' `((1 − ᾱ)/ᾱ)^½` table, ascending in the training step. */
function sigmaTable(betas: ArrayLike<number>): Float64Array {
  return alphasCumprod(betas).map((a) => Math.sqrt((1 - a) / a));
}

/**
 * `EulerDiscreteScheduler._sigma_to_t`: the fractional training step of σ by linear
 * interpolation of log σ between the two table entries around it, clamped to the table.
 */
function diffusersSigmaToT(sigma: number, table: Float64Array): number {
  const logs = Array.from(table, Math.log);
  const ls = Math.log(Math.max(sigma, 1e-10));
  let low = 0;
  for (let i = 0; i < logs.length; i++) if (ls - logs[i] >= 0) low = i;
  low = Math.min(low, logs.length - 2);
  const w = Math.min(Math.max((logs[low] - ls) / (logs[low] - logs[low + 1]), 0), 1);
  return (1 - w) * low + w * (low + 1);
}

/** ld3's training step of a vp_discrete time: the network's input `(t − 1/Nd)·Nd`. */
function ld3Step(t: number, nd = 1000): number {
  return (t - 1 / nd) * nd;
}

const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-300);

Deno.test("diffusers-euler: the list ends in its own 0 and σ/α gives back the learned steps", () => {
  const file = learned(sd);
  const out = exportSchedule(file, "diffusers-euler", { schedule: sd });
  assert.deepEqual(out.warnings, []);
  // set_timesteps(sigmas=…) takes the list as it is: N+2 values, N+1 steps, one trailing 0.
  const sigmas = out.values;
  assert.equal(sigmas.length, file.steps + 2);
  assert.equal(sigmas.at(-1), 0);
  assert.equal(sigmas.filter((s) => s === 0).length, 1);
  // Units: σ/α = ((1 − ᾱ)/ᾱ)^½; the first is the table's top, the last learned one its bottom.
  const table = sigmaTable(SD_BETAS);
  assert.ok(rel(sigmas[0], table[999]) < 1e-12);
  assert.ok(rel(sigmas[file.steps], table[0]) < 1e-12);
  // The scheduler's timesteps come from sigmas[:-1] through its log-σ table. ld3 interpolates
  // log α between the same knots, diffusers log σ: they agree within a tenth of a step.
  const timesteps = sigmas.slice(0, -1).map((s) => diffusersSigmaToT(s, table));
  assert.equal(timesteps.length, file.steps + 1);
  timesteps.forEach((t, k) => assert.ok(Math.abs(t - ld3Step(file.t1[k])) < 0.1, `step ${k}`));
  assert.equal(timesteps[0], 999);
  assert.equal(timesteps.at(-1), 0);
  assert.match(out.text, /^sigmas=\[14\.61\d*, .*, 0\.0\]$/);
  assert.deepEqual(out.usage.slice(1), [
    "pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)",
    `image = pipe(prompt, ${out.text}).images[0]`,
  ]);
});

/** FlowMatchEulerDiscreteScheduler.set_timesteps(sigmas=…) without dynamic shifting. */
function flowMatchSigmas(given: readonly number[], shift: number): number[] {
  return [...given.map((s) => shift * s / (1 + (shift - 1) * s)), 0];
}

Deno.test("diffusers-flow-euler: no trailing 0, flow times, and the snippet turns the shift off", () => {
  const file = learned(flow);
  const out = exportSchedule(file, "diffusers-flow-euler", { schedule: flow });
  assert.deepEqual(out.warnings, []);
  // len(sigmas) = num_inference_steps: N+1 values, no 0 (the scheduler appends the only one).
  assert.equal(out.values.length, file.steps + 1);
  assert.ok(!out.values.includes(0));
  assert.deepEqual(out.values, file.t1);
  const run = flowMatchSigmas(out.values, 1);
  assert.deepEqual(run, [...file.t1, 0]);
  assert.equal(run.filter((s) => s === 0).length, 1);
  // timesteps = σ·1000: the flow time, not σ/α.
  assert.ok(Math.abs(run[0] * 1000 - 999) < 1e-9);
  // The scheduler shifts what it is given: with SD3's shift 3 the grid would be shifted twice.
  assert.ok(rel(flowMatchSigmas(out.values, 3)[2], file.t1[2]) > 0.1);
  assert.match(out.usage[1], /from_config\(pipe\.scheduler\.config, shift=1\.0, /);
  assert.match(out.usage[1], /use_dynamic_shifting=False/);
  assert.match(out.usage[1], /shift_terminal=None/);
  assert.equal(out.usage[2], `image = pipe(prompt, ${out.text}).images[0]`);
});

Deno.test("diffusers-flow-unipc: flow sigmas without 0, and the integer network times are reported", () => {
  const file = makeGridFile(flow, toGrid([0.999, 0.6, 0.25, 0.0125, 0.001]), {
    solver: "uni_pc",
    solverOptions: { order: 2, variant: "bh2" },
  });
  const out = exportSchedule(file, "diffusers-flow-unipc");
  assert.deepEqual(out.values, file.t1);
  const config = out.usage.find((l) => l.includes("from_config")) ?? "";
  assert.match(config, /use_flow_sigmas=True, prediction_type="flow_prediction", /);
  assert.match(config, /flow_shift=1\.0, use_dynamic_shifting=False/);
  assert.match(config, /solver_order=2, solver_type="bh2"/);
  // An array: the scheduler multiplies what it gets by flow_shift, which a list does not allow.
  assert.match(out.text, /^sigmas=np\.array\(\[0\.999, .*, 0\.001\]\)$/);
  assert.equal(out.usage[0], "import numpy as np");
  // timesteps = int64(σ·1000): 12.5 → 12, half a step below the learned 0.0125.
  assert.equal(out.warnings.length, 1);
  assert.match(out.warnings[0], /int\(1000·t\): up to 0\.0005 below the learned t/);
  const exact = makeGridFile(flow, toGrid([0.999, 0.5, 0.25, 0.001]), { solver: "uni_pc" });
  assert.deepEqual(exportSchedule(exact, "diffusers-flow-unipc").warnings, []);
});

/** EDMEulerScheduler: the Karras formula on the ramp, then the appended 0. */
function edmEulerSigmas(ramp: readonly number[], min: number, max: number, rho: number) {
  const lo = Math.pow(min, 1 / rho);
  const hi = Math.pow(max, 1 / rho);
  return [...ramp.map((r) => Math.pow(hi + r * (lo - hi), rho)), 0];
}

Deno.test("diffusers-edm-euler: a ramp from exactly 0 to 1 that the scheduler's Karras formula turns back into the grid", () => {
  const file = learned(ve);
  const out = exportSchedule(file, "diffusers-edm-euler", { schedule: ve });
  assert.deepEqual(out.warnings, []);
  const ramp = out.values;
  assert.equal(ramp.length, file.steps + 1);
  assert.equal(ramp[0], 0);
  assert.equal(ramp.at(-1), 1);
  for (let k = 1; k < ramp.length; k++) assert.ok(ramp[k] > ramp[k - 1]);
  // The snippet sets the scheduler's σ range and ρ; the formula with them gives the grid back.
  const config = out.usage.find((l) => l.includes("from_config")) ?? "";
  const read = (key: string) => Number(new RegExp(`${key}=([0-9.]+)`).exec(config)?.[1]);
  assert.equal(read("sigma_min"), 0.002);
  assert.equal(read("sigma_max"), 80);
  assert.equal(read("rho"), 7);
  assert.match(config, /sigma_schedule="karras", final_sigmas_type="zero"/);
  const sigmas = edmEulerSigmas(ramp, read("sigma_min"), read("sigma_max"), read("rho"));
  file.t1.forEach((t, k) => assert.ok(rel(sigmas[k], t) < 1e-12, `σ_${k}`));
  assert.equal(sigmas.at(-1), 0);
  // A tensor, not a list: the scheduler calls .to() on it.
  assert.match(out.text, /^sigmas=torch\.tensor\(\[0\.0, .*, 1\.0\], dtype=torch\.float64\)$/);
  assert.equal(out.usage[0], "import torch");
});

/** ComfyUI's ManualSigmas: every number its pattern finds, as float32. */
function manualSigmas(text: string): number[] {
  return [...text.matchAll(/[-+]?(?:\d*\.*\d+)/g)].map((m) => Math.fround(parseFloat(m[0])));
}

Deno.test("comfyui: ManualSigmas and CustomSigmas read back the levels, in the model's own σ", () => {
  const cases: [NoiseSchedule, (t: number) => number][] = [
    [ve, (t) => t],
    [sd, (t) => sd.sigma(t) / sd.alpha(t)],
    [flow, (t) => t], // ComfyUI's flow models take σ = t and shift no given list
  ];
  for (const [schedule, units] of cases) {
    const file = learned(schedule);
    const out = exportSchedule(file, "comfyui", { schedule });
    assert.equal(out.values.length, file.steps + 2, schedule.kind);
    assert.equal(out.values.at(-1), 0);
    file.t1.forEach((t, k) => assert.ok(rel(out.values[k], units(t)) < 1e-12, schedule.kind));
    assert.deepEqual(manualSigmas(out.text), out.values.map(Math.fround), schedule.kind);
    // KJNodes' CustomSigmas: split on ", ", and N+2 values with interpolate_to_steps = N+1.
    assert.deepEqual(out.text.split(", ").map(Number), out.values, schedule.kind);
  }
  // A level below 1e-6 is still written without an exponent.
  const tiny = makeGridFile(ve, toGrid([80, 1, 2.5e-7]));
  const out = exportSchedule(tiny, "comfyui", { schedule: ve });
  assert.equal(out.text, "80.0, 1.0, 0.00000025, 0.0");
  assert.deepEqual(manualSigmas(out.text), [80, 1, Math.fround(2.5e-7), 0]);
});

/** ComfyUI's ModelSamplingDiscrete.timestep: the nearest table entry in log σ. */
function comfyTimestep(sigma: number, table: Float64Array): number {
  let best = 0;
  for (let i = 1; i < table.length; i++) {
    if (Math.abs(Math.log(sigma / table[i])) < Math.abs(Math.log(sigma / table[best]))) best = i;
  }
  return best;
}

Deno.test("comfyui: a discrete VP grid between training steps warns how far ComfyUI rounds it", () => {
  const file = learned(sd);
  const out = exportSchedule(file, "comfyui", { schedule: sd });
  assert.equal(out.warnings.length, 1);
  const said = Number(/up to ([0-9.]+) steps/.exec(out.warnings[0])?.[1]);
  const table = sigmaTable(SD_BETAS);
  const rounded = out.values.slice(0, -1).map((s) => comfyTimestep(s, table));
  const off = Math.max(...rounded.map((n, k) => Math.abs(n - ld3Step(file.t1[k]))));
  assert.ok(Math.abs(said - off) <= 0.01, `said ${said}, ComfyUI rounds by ${off}`);
  // A grid on whole training steps reaches the network as learned: no warning.
  const whole = makeGridFile(sd, toGrid([1, 0.5, 0.1, 0.001]));
  assert.deepEqual(exportSchedule(whole, "comfyui").warnings, []);
});

Deno.test("k-diffusion: σ/α with a trailing 0, as its get_sigmas_* functions give", () => {
  for (const kind of ["ve", "vp_linear", "vp_discrete", "vp_cosine", "flow"] as const) {
    const s = SCHEDULES[kind];
    const file = learned(s);
    const out = exportSchedule(file, "k-diffusion", { schedule: s });
    assert.equal(out.values.length, file.steps + 2, kind);
    assert.equal(out.values.at(-1), 0);
    file.t1.forEach((t, k) => assert.ok(rel(out.values[k], s.sigma(t) / s.alpha(t)) < 1e-12, kind));
    assert.deepEqual(JSON.parse(out.text), out.values);
    assert.equal(out.warnings.length, kind === "flow" ? 1 : 0, kind);
  }
});

Deno.test("diffusers-dpmsolver: N+1 integer steps ending at 0, and the rounding is reported", () => {
  const file = learned(sd);
  const out = exportSchedule(file, "diffusers-dpmsolver");
  const steps = out.values;
  // The scheduler casts to int64 and appends σ = 0 itself: the list ends with step 0 (t_min).
  assert.equal(steps.length, file.steps + 1);
  assert.equal(steps[0], 999);
  assert.equal(steps.at(-1), 0);
  for (const n of steps) assert.ok(Number.isInteger(n));
  for (let k = 1; k < steps.length; k++) assert.ok(steps[k] < steps[k - 1]);
  const off = Math.max(...steps.map((n, k) => Math.abs(n - ld3Step(file.t1[k]))));
  assert.ok(off > 0 && off <= 0.5);
  assert.equal(out.warnings.length, 1);
  assert.match(
    out.warnings[0],
    new RegExp(`rounded, moving them by up to ${off.toFixed(2)} steps`),
  );
  assert.match(out.text, /^timesteps=\[999, \d+, \d+, \d+, \d+, 0\]$/);
  assert.match(out.usage[1], /use_karras_sigmas=False, use_lu_lambdas=False/);
  assert.match(out.usage[1], /final_sigmas_type="zero"/);
  // σ of each step is the table's: the σ/α of the rounded times.
  const table = sigmaTable(SD_BETAS);
  const vd = exportSchedule(makeGridFile(sd, toGrid([1, 0.5, 0.1, 0.001])), "diffusers-dpmsolver");
  assert.deepEqual(vd.values, [999, 499, 99, 0]);
  assert.deepEqual(vd.warnings, []);
  assert.ok(rel(table[499], sd.sigma(0.5) / sd.alpha(0.5)) < 1e-12);
});

Deno.test("every format × schedule kind is exported, exported with a warning, or refused by name", () => {
  for (const format of EXPORT_FORMATS) {
    for (const [kind, schedule] of Object.entries(SCHEDULES) as [ScheduleKind, NoiseSchedule][]) {
      const support = EXPORT_TARGETS[format].support[kind];
      const file = learned(schedule);
      const label = `${format} × ${kind}`;
      if (support.status === "refused") {
        assert.throws(
          () => exportSchedule(file, format, { schedule }),
          (e: Error) => {
            assert.ok(e instanceof RangeError, label);
            assert.match(
              e.message,
              new RegExp(`^Format ${format} \\(.+\\) cannot run a "${kind}"`),
            );
            // It names a format that can.
            const alternatives = EXPORT_FORMATS.filter((f) =>
              f !== format && e.message.includes(f) &&
              EXPORT_TARGETS[f].support[kind].status !== "refused"
            );
            assert.ok(alternatives.length > 0, `${label}: ${e.message}`);
            return true;
          },
        );
        continue;
      }
      const out = exportSchedule(file, format, { schedule });
      assert.equal(out.format, format);
      assert.equal(out.consumer, EXPORT_TARGETS[format].consumer);
      assert.equal(out.warnings.length, support.status === "warned" ? 1 : 0, label);
      assert.ok(out.usage.some((line) => line.includes(out.text)), label);
      // One trailing 0, and only where the consumer does not append its own (the training steps
      // end at step 0, t_min, and the EDM ramp starts at 0).
      const last = out.values.at(-1);
      const appends = /left out/.test(EXPORT_TARGETS[format].conventions.join(" "));
      if (format === "diffusers-dpmsolver") assert.equal(last, 0, label);
      else if (appends) assert.ok(last !== 0 && out.values.lastIndexOf(0) <= 0, label);
      else assert.deepEqual([out.values.indexOf(0), last], [out.values.length - 1, 0], label);
    }
  }
});

Deno.test("the old format names still work, with a deprecation line", () => {
  const vp = learned(sd);
  const old = exportSchedule(vp, "diffusers-sigmas");
  assert.deepEqual(old.values, exportSchedule(vp, "diffusers-euler").values);
  assert.equal(old.format, "diffusers-euler");
  assert.match(old.warnings[0], /^format diffusers-sigmas is deprecated and will be removed: use/);
  // A flow grid now gets the flow scheduler's convention: no trailing 0 to run a step at t = 0.
  const fl = learned(flow);
  const oldFlow = exportSchedule(fl, "diffusers-sigmas");
  assert.equal(oldFlow.format, "diffusers-flow-euler");
  assert.deepEqual(oldFlow.values, fl.t1);
  assert.throws(() => exportSchedule(learned(ve), "diffusers-sigmas"), /diffusers-edm-euler/);
  const steps = exportSchedule(vp, "diffusers-timesteps");
  assert.equal(steps.format, "diffusers-dpmsolver");
  assert.match(steps.warnings[0], /deprecated.*use diffusers-dpmsolver/);
  assert.throws(() => exportSchedule(vp, "diffusers" as "comfyui"), /format must be one of/);
});

Deno.test("decoupled evaluation times produce a warning", () => {
  const t1 = logSnrGrid(ve, 4);
  const t2 = Float64Array.from(t1);
  t2[2] *= 1.01;
  const file = makeGridFile(ve, toGrid(t1, t2));
  assert.ok(hasDecoupledTimes(file));
  const out = exportSchedule(file, "comfyui");
  assert.match(out.warning ?? "", /decoupled evaluation times.*dropped/);
  assert.equal(out.warnings.length, 1);
  // The exported sigmas are those of t1, not t2.
  assert.equal(out.values[2], t1[2]);
  assert.equal(exportSchedule(makeGridFile(ve, toGrid(t1)), "comfyui").warning, undefined);
});

Deno.test("a grid learned for another solver than the consumer's says so", () => {
  const file = makeGridFile(ve, toGrid(edmGrid(ve, 4)), { solver: "uni_pc" });
  const out = exportSchedule(file, "diffusers-edm-euler");
  assert.match(out.warnings[0], /learned for uni_pc, and diffusers-edm-euler steps with euler/);
  const euler = makeGridFile(ve, toGrid(edmGrid(ve, 4)), { solver: "euler" });
  assert.deepEqual(exportSchedule(euler, "diffusers-edm-euler").warnings, []);
  // ComfyUI and k-diffusion take any sampler: the usage names the grid's.
  assert.match(exportSchedule(file, "comfyui").usage[1], /sampler of the grid's solver \(uni_pc\)/);
});

Deno.test("sigmas of a VP grid are σ/α; a config of another schedule kind is refused", () => {
  const file = learned(sd);
  const sigmas = exportSigmas(file, { schedule: sd });
  assert.ok(Math.abs(sigmas[0] - sd.sigma(1) / sd.alpha(1)) < 1e-12 * sigmas[0]);
  const vp = vpDiscreteSchedule({ betas: discreteBetas("linear", 1000) });
  const veFile = makeGridFile(ve, toGrid(edmGrid(ve, 4)));
  assert.throws(() => exportSchedule(veFile, "comfyui", { schedule: vp }), /"ve" schedule/);
});

Deno.test("plain decimals read back to the same float and never use an exponent", () => {
  assert.equal(plainDecimal(80), "80.0");
  assert.equal(plainDecimal(0.002), "0.002");
  assert.equal(plainDecimal(1e-7), "0.0000001");
  assert.equal(plainDecimal(-1.25e-8), "-0.0000000125");
  assert.equal(plainDecimal(2e21), "2000000000000000000000.0");
  for (const v of [1 / 3, 14.614641229333643, 2.5e-7, 1.2345678901234567e-12, 123456.789]) {
    assert.equal(Number(plainDecimal(v)), v);
    assert.doesNotMatch(plainDecimal(v), /e/);
  }
});
