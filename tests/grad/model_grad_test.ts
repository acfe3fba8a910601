import assert from "node:assert/strict";
import { join } from "node:path";
import { forwardPlan, type Planner, solveVjp } from "../../lib/grad/backprop.ts";
import type {
  ModelConfig,
  PredictionType,
  ScheduleConfig,
  TimeInput,
} from "../../lib/onnx/config.ts";
import { stencilDerivative } from "../../lib/differentiable.ts";
import { sampleSize } from "../../lib/denoiser.ts";
import { GmmDenoiser } from "../../lib/gmm_grad.ts";
import { logSnrGrid } from "../../lib/step_grid.ts";
import { loadModel, networkTime } from "../../lib/onnx/model.ts";
import {
  dataPredictionCoefficients,
  differentiableDecoder,
  differentiableDenoiser,
  networkTimeDerivative,
} from "../../lib/grad/model_grad.ts";
import { buildModel, type Dim, ElemType, node, tensor, valueInfo } from "../../lib/onnx/build.ts";
import { normalNoise } from "../../lib/rng.ts";
import { flowSchedule, veSchedule, vpLinearSchedule } from "../../lib/noise_schedule.ts";
import { planSolver } from "../../lib/solvers/mod.ts";
import { COMPONENT_STD, gmmMnistMeans } from "../../models/gmm-mnist/build.ts";
import { relativeError, stencil } from "../ld3/_gmm_problem.ts";
import { externalWeight, externalWeightsModel } from "../fixtures/tiny_models.ts";
import { SD_TINY } from "../_sd_tiny.ts";
import { onnx } from "../../lib/deps.ts";

// ---------------------------------------------------------------------------------------------
// Small smooth networks and their configs

const SHAPE = [2, 3];
const D = 6;
const HIDDEN = 8;
const COND = 3;

/** Seeded weights, scaled. */
function weights(seed: number, count: number, scale: number): Float32Array {
  return Float32Array.from(normalNoise(seed, 0, count), (v) => v * scale);
}

interface NetOptions {
  /** Element type of the time input. */
  timeType: number;
  /** `[B]` or scalar time input. */
  timeRank: 0 | 1;
  /** Add a condition input `[B, 3]`. */
  condition?: boolean;
  /** A fixed batch size of x and the output. */
  fixedBatch?: number;
}

/**
 * `out = tanh(x·W1 + τ·b1 + c1 [+ cond·Wc])·W2 + 0.3·x` over x `[B, 2, 3]`: smooth in x, τ and
 * the condition, so finite differences of it are accurate.
 */
function smoothNet(options: NetOptions): Uint8Array {
  const batch = options.fixedBatch ?? "batch";
  const nodes = [
    node("Reshape", ["x", "flat"], ["xf"]),
    node("Cast", ["tau"], ["tf"], { to: ElemType.float }),
    node("Reshape", ["tf", "column"], ["tb"]),
    node("MatMul", ["xf", "w1"], ["xw"]),
    node("Mul", ["tb", "b1"], ["tw"]),
    node("Add", ["xw", "tw"], ["s1"]),
    node("Add", ["s1", "c1"], options.condition ? ["s2"] : ["pre"]),
    ...(options.condition
      ? [node("MatMul", ["cond", "wc"], ["cw"]), node("Add", ["s2", "cw"], ["pre"])]
      : []),
    node("Tanh", ["pre"], ["h"]),
    node("MatMul", ["h", "w2"], ["hw"]),
    node("Mul", ["xf", "skip"], ["xs"]),
    node("Add", ["hw", "xs"], ["of"]),
    node("Reshape", ["of", "unflat"], ["out"]),
  ];
  return buildModel({
    nodes,
    initializers: [
      tensor("flat", [2], BigInt64Array.of(-1n, BigInt(D))),
      tensor("column", [2], BigInt64Array.of(-1n, 1n)),
      tensor("unflat", [3], BigInt64Array.of(-1n, 2n, 3n)),
      tensor("w1", [D, HIDDEN], weights(1, D * HIDDEN, 0.5)),
      tensor("b1", [1, HIDDEN], weights(2, HIDDEN, 0.4)),
      tensor("c1", [HIDDEN], weights(3, HIDDEN, 0.3)),
      tensor("w2", [HIDDEN, D], weights(4, HIDDEN * D, 0.6)),
      tensor("skip", [], [0.3]),
      ...(options.condition ? [tensor("wc", [COND, HIDDEN], weights(5, COND * HIDDEN, 0.7))] : []),
    ],
    inputs: [
      valueInfo("x", ElemType.float, [batch, ...SHAPE]),
      valueInfo("tau", options.timeType, options.timeRank === 1 ? [batch] : []),
      ...(options.condition ? [valueInfo("cond", ElemType.float, [batch, COND])] : []),
    ],
    outputs: [valueInfo("out", ElemType.float, [batch, ...SHAPE])],
  });
}

const dir = await Deno.makeTempDir({ prefix: "ld3_model_grad_" });
let files = 0;

interface CaseOptions extends Partial<NetOptions> {
  prediction: PredictionType;
  timeInput: TimeInput;
  schedule: ScheduleConfig;
  batchSize?: number;
  guidance?: number;
}

/** Write the network and return its config (time input double unless told). */
async function smoothConfig(c: CaseOptions): Promise<ModelConfig> {
  const path = join(dir, `net${files++}.onnx`);
  const net: NetOptions = {
    timeType: c.timeType ?? ElemType.double,
    timeRank: c.timeRank ?? 1,
    condition: c.condition,
    fixedBatch: c.fixedBatch,
  };
  await Deno.writeFile(path, smoothNet(net));
  return {
    name: "smooth",
    source: "model_grad_test.ts",
    model: {
      path,
      inputs: { x: "x", t: "tau" },
      output: "out",
      prediction: c.prediction,
      time_input: c.timeInput,
      time_shape: net.timeRank === 1 ? "batch" : "scalar",
      ...(c.condition
        ? {
          condition: {
            input: "cond",
            shape: [COND],
            guidance_scale: c.guidance ?? 1,
            uncond: "zeros",
          },
        }
        : {}),
    },
    schedule: c.schedule,
    shape: SHAPE,
    data_range: [-1, 1],
    device: "cpu",
    batch_size: c.batchSize ?? 16,
  };
}

const VE: ScheduleConfig = { kind: "ve", sigma_max: 80, sigma_min: 0.002 };
const VP: ScheduleConfig = { kind: "vp_linear", beta0: 0.1, beta1: 20, t_max: 1, t_min: 1e-3 };
const FLOW: ScheduleConfig = { kind: "flow", t_max: 0.999, t_min: 0.001 };
const TIMES: Record<string, number> = { ve: 1.7, vp_linear: 0.43, flow: 0.37 };

/** ⟨cot, D(x + s·v, t + e)⟩. */
function probe(
  denoise: (x: Float64Array, t: number) => Promise<Float64Array>,
  x: Float64Array,
  t: number,
  cot: Float64Array,
) {
  return async (s: number, v: Float64Array | null, e: number) => {
    const xs = v ? Float64Array.from(x, (xi, i) => xi + s * v[i]) : x;
    const out = await denoise(xs, t + e);
    return out.reduce((acc, o, i) => acc + o * cot[i], 0);
  };
}

/** Check vjp against 4-point finite differences in x (a random direction) and in t. */
async function checkAgainstFd(config: ModelConfig, batch: number, tolerance: number) {
  const model = await loadModel(config);
  const dd = await differentiableDenoiser(model);
  try {
    const t = TIMES[config.schedule.kind];
    const x = normalNoise(11, 0, batch * D);
    const cot = normalNoise(12, 0, batch * D);
    const v = normalNoise(13, 0, batch * D);
    const g = await dd.vjp(x, t, cot);
    const f = probe((xs, ts) => dd.denoise(xs, ts), x, t, cot);
    const fdx = await stencil((s) => f(s, v, 0), 1e-2);
    const anx = g.x.reduce((acc, gi, i) => acc + gi * v[i], 0);
    assert.ok(
      Math.abs(fdx - anx) <= tolerance * Math.abs(anx),
      `x: FD ${fdx} vs VJP ${anx}`,
    );
    // A wide step: the float32 network output limits short differences.
    const fdt = await stencil((e) => f(0, null, e), 2e-2 * t);
    assert.ok(Math.abs(fdt - g.t) <= tolerance * Math.abs(g.t), `t: FD ${fdt} vs VJP ${g.t}`);
    // Each sample's x-gradient is its own: one sample alone gives the same.
    const one = await dd.vjp(x.slice(D, 2 * D), t, cot.slice(D, 2 * D));
    assert.ok(relativeError(one.x, g.x.subarray(D, 2 * D)) < 1e-6);
    await checkKeptForward(dd, x, t, cot, g);
  } finally {
    await dd.close();
    await model.close();
  }
}

/**
 * `denoiseForVjp` gives `denoise`'s output bit for bit, and the VJP from what it kept equals
 * the VJP that recomputes the forward (to float32 rounding: two graphs).
 */
async function checkKeptForward(
  dd: Awaited<ReturnType<typeof differentiableDenoiser>>,
  x: Float64Array,
  t: number,
  cot: Float64Array,
  recomputed: { x: Float64Array; t: number },
) {
  const kept = await dd.denoiseForVjp!(x, t);
  assert.deepEqual(kept.output, await dd.denoise(x, t));
  if (!kept.saved) return;
  assert.ok(kept.saved.bytes > 0);
  const g = await dd.vjp(x, t, cot, { saved: kept.saved });
  assert.ok(relativeError(g.x, recomputed.x) < 1e-5, "x gradient from the kept forward");
  assert.ok(Math.abs(g.t - recomputed.t) <= 1e-5 * Math.abs(recomputed.t), "t gradient");
}

// ---------------------------------------------------------------------------------------------
// Pure derivatives

Deno.test("networkTimeDerivative() is the derivative of networkTime for every time input", async () => {
  const schedules = [veSchedule(), vpLinearSchedule(), flowSchedule()];
  const kinds: TimeInput[] = ["t", "sigma", "lambda", "log_sigma_quarter"];
  const config = await smoothConfig({ prediction: "eps", timeInput: "t", schedule: VE });
  for (const schedule of schedules) {
    for (const kind of kinds) {
      const c = { ...config, model: { ...config.model, time_input: kind } };
      for (const t of [0.05, 0.3, 0.8]) {
        const want = stencilDerivative((s) => networkTime(c, schedule, s), t, 1e-4 * t);
        const got = networkTimeDerivative(kind, schedule, t);
        assert.ok(
          Math.abs(got - want) <= 1e-7 * Math.abs(want),
          `${schedule.kind} ${kind} t=${t}: ${got} vs ${want}`,
        );
      }
    }
  }
});

Deno.test("dataPredictionCoefficients() matches the conversions and their t-derivatives", () => {
  for (const schedule of [veSchedule(), vpLinearSchedule(), flowSchedule()]) {
    for (const prediction of ["x0", "eps", "v", "flow"] as PredictionType[]) {
      if (prediction === "flow" && schedule.kind !== "flow") continue;
      const t = 0.4;
      const c = dataPredictionCoefficients(prediction, schedule, t);
      // D at x = 1, out = 0 is a; at x = 0, out = 1 is b.
      const direct = (s: number) => {
        const alpha = schedule.alpha(s);
        const sigma = schedule.sigma(s);
        switch (prediction) {
          case "x0":
            return [0, 1];
          case "eps":
            return [1 / alpha, -sigma / alpha];
          case "v":
            return [alpha, -sigma];
          case "flow":
            return [1, -sigma];
        }
      };
      assert.deepEqual(
        [c.a, c.b].map((v) => v.toPrecision(12)),
        direct(t).map((v) => v.toPrecision(12)),
      );
      const da = stencilDerivative((s) => direct(s)[0], t, 1e-4);
      const db = stencilDerivative((s) => direct(s)[1], t, 1e-4);
      assert.ok(Math.abs(c.da - da) <= 1e-7 * Math.max(1, Math.abs(da)), `${prediction} da`);
      assert.ok(Math.abs(c.db - db) <= 1e-7 * Math.max(1, Math.abs(db)), `${prediction} db`);
    }
  }
});

// ---------------------------------------------------------------------------------------------
// Against finite differences

const fdCases: CaseOptions[] = [
  { prediction: "eps", timeInput: "sigma", schedule: VP },
  { prediction: "v", timeInput: "t", schedule: VP },
  { prediction: "eps", timeInput: "lambda", schedule: VP },
  { prediction: "v", timeInput: "log_sigma_quarter", schedule: VP },
  { prediction: "x0", timeInput: "log_sigma_quarter", schedule: VE },
  { prediction: "eps", timeInput: "sigma", schedule: VE },
  { prediction: "flow", timeInput: "t", schedule: FLOW },
  { prediction: "flow", timeInput: "lambda", schedule: FLOW },
  { prediction: "eps", timeInput: "sigma", schedule: FLOW },
  // float32 and scalar time inputs
  { prediction: "v", timeInput: "t", schedule: VP, timeType: ElemType.float },
  { prediction: "eps", timeInput: "sigma", schedule: VE, timeRank: 0 },
];

for (const c of fdCases) {
  const label = `${c.prediction}, ${c.timeInput}, ${c.schedule.kind}${
    c.timeType === ElemType.float ? ", float32 time" : ""
  }${c.timeRank === 0 ? ", scalar time" : ""}`;
  Deno.test(`differentiableDenoiser() vjp matches finite differences (${label})`, async () => {
    // float32 time: τ is rounded to float32, so the t difference is only good to ~1e-3.
    await checkAgainstFd(await smoothConfig(c), 3, c.timeType === ElemType.float ? 1e-2 : 2e-4);
  });
}

Deno.test("differentiableDenoiser() batches like denoise, with fixed-batch padding", async () => {
  // Batch 5 in chunks of 2, and a network exported for exactly 2 samples (last chunk padded).
  const chunked = await smoothConfig({
    prediction: "eps",
    timeInput: "t",
    schedule: VP,
    batchSize: 2,
  });
  await checkAgainstFd(chunked, 5, 2e-4);
  const fixed = await smoothConfig({
    prediction: "v",
    timeInput: "t",
    schedule: VP,
    fixedBatch: 2,
  });
  await checkAgainstFd(fixed, 5, 2e-4);
  // Chunking does not change the result.
  const whole = await loadModel({ ...chunked, batch_size: 16 });
  const parts = await loadModel(chunked);
  const a = await differentiableDenoiser(whole);
  const b = await differentiableDenoiser(parts);
  const x = normalNoise(21, 0, 5 * D);
  const cot = normalNoise(22, 0, 5 * D);
  const ga = await a.vjp(x, 0.3, cot);
  const gb = await b.vjp(x, 0.3, cot);
  assert.ok(relativeError(gb.x, ga.x) < 1e-6);
  assert.ok(Math.abs(gb.t - ga.t) < 1e-6 * Math.abs(ga.t));
  for (const r of [a, b, whole, parts]) await r.close();
});

Deno.test("differentiableDenoiser() differentiates classifier-free guidance", async () => {
  for (const guidance of [1, 2.5]) {
    const config = await smoothConfig({
      prediction: "eps",
      timeInput: "sigma",
      schedule: VP,
      condition: true,
      guidance,
      batchSize: 4,
    });
    const model = await loadModel(config);
    const dd = await differentiableDenoiser(model);
    try {
      const batch = 5;
      const t = 0.43;
      const x = normalNoise(31, 0, batch * D);
      const cot = normalNoise(32, 0, batch * D);
      const v = normalNoise(33, 0, batch * D);
      const condition = Float32Array.from(normalNoise(34, 0, batch * COND));
      const g = await dd.vjp(x, t, cot, { condition });
      const f = probe((xs, ts) => dd.denoise(xs, ts, { condition }), x, t, cot);
      const fdx = await stencil((s) => f(s, v, 0), 1e-2);
      const anx = g.x.reduce((acc, gi, i) => acc + gi * v[i], 0);
      assert.ok(Math.abs(fdx - anx) <= 2e-4 * Math.abs(anx), `w=${guidance} x: ${fdx} vs ${anx}`);
      const fdt = await stencil((e) => f(0, null, e), 5e-3 * t);
      assert.ok(Math.abs(fdt - g.t) <= 2e-4 * Math.abs(g.t), `w=${guidance} t: ${fdt} vs ${g.t}`);
      // Without a condition the unconditional input is used, as in denoise.
      const u = await dd.vjp(x, t, cot);
      const fu = probe((xs, ts) => dd.denoise(xs, ts), x, t, cot);
      const fdu = await stencil((s) => fu(s, v, 0), 1e-2);
      const anu = u.x.reduce((acc, gi, i) => acc + gi * v[i], 0);
      assert.ok(Math.abs(fdu - anu) <= 2e-4 * Math.abs(anu), `w=${guidance} uncond`);
      assert.ok(Math.abs(anu - anx) > 1e-3 * Math.abs(anx), "the condition matters");
      await assert.rejects(
        () => dd.vjp(x, t, cot, { condition: condition.subarray(1) }),
        RangeError,
      );
    } finally {
      await dd.close();
      await model.close();
    }
  }
});

Deno.test("differentiableDenoiser() gives no time gradient for an int64 time input, warning once", async () => {
  const config = await smoothConfig({
    prediction: "eps",
    timeInput: "discrete",
    schedule: { kind: "vp_discrete", betas: "linear", num_steps: 1000 },
    timeType: ElemType.int64,
  });
  const model = await loadModel(config);
  const warnings: string[] = [];
  const dd = await differentiableDenoiser(model, { onWarning: (m) => warnings.push(m) });
  try {
    assert.equal(dd.hasTimeGradient, false);
    const t = model.denoiser.schedule.tMin + 400 / 1000;
    const x = normalNoise(41, 0, 2 * D);
    const cot = normalNoise(42, 0, 2 * D);
    const v = normalNoise(43, 0, 2 * D);
    const g = await dd.vjp(x, t, cot);
    await dd.vjp(x, t, cot);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /integer time input "tau"/);
    // Only the conversion's own t-dependence remains: ⟨cot, da·x + db·out⟩.
    const c = dataPredictionCoefficients("eps", model.denoiser.schedule, t);
    const out = await model.denoiser.denoise(x, t);
    // out = a·x + b·raw, so raw = (out − a·x)/b.
    let want = 0;
    for (let i = 0; i < x.length; i++) {
      const raw = (out[i] - c.a * x[i]) / c.b;
      want += cot[i] * (c.da * x[i] + c.db * raw);
    }
    assert.ok(Math.abs(g.t - want) <= 1e-5 * Math.abs(want), `${g.t} vs ${want}`);
    const f = probe((xs, ts) => dd.denoise(xs, ts), x, t, cot);
    const fdx = await stencil((s) => f(s, v, 0), 1e-2);
    const anx = g.x.reduce((acc, gi, i) => acc + gi * v[i], 0);
    assert.ok(Math.abs(fdx - anx) <= 2e-4 * Math.abs(anx), `x: ${fdx} vs ${anx}`);
  } finally {
    await dd.close();
    await model.close();
  }
});

// ---------------------------------------------------------------------------------------------
// The decoder

/** `img = tanh(z·W)` from z `[B, 2, 3]` to images `[B, 1, 4, 4]`. */
function smoothDecoder(batch: Dim = "batch"): Uint8Array {
  return buildModel({
    nodes: [
      node("Reshape", ["z", "flat"], ["zf"]),
      node("MatMul", ["zf", "w"], ["zw"]),
      node("Tanh", ["zw"], ["y"]),
      node("Reshape", ["y", "image"], ["img"]),
    ],
    initializers: [
      tensor("flat", [2], BigInt64Array.of(-1n, BigInt(D))),
      tensor("image", [4], BigInt64Array.of(-1n, 1n, 4n, 4n)),
      tensor("w", [D, 16], weights(51, D * 16, 0.5)),
    ],
    inputs: [valueInfo("z", ElemType.float, [batch, ...SHAPE])],
    outputs: [valueInfo("img", ElemType.float, [batch, 1, 4, 4])],
  });
}

Deno.test("differentiableDecoder() differentiates decode with scale_factor and data_range", async () => {
  const base = await smoothConfig({
    prediction: "eps",
    timeInput: "t",
    schedule: VP,
    batchSize: 2,
  });
  const path = join(dir, "decoder.onnx");
  await Deno.writeFile(path, smoothDecoder());
  // A decoder exported for exactly 2 latents: batches of 3 run as 2 + (1 padded to 2).
  const fixedPath = join(dir, "decoder_fixed.onnx");
  await Deno.writeFile(fixedPath, smoothDecoder(2));
  for (const decoderPath of [path, fixedPath, undefined]) {
    const withDecoder = decoderPath !== undefined;
    const config: ModelConfig = {
      ...base,
      data_range: [0, 1],
      ...(decoderPath
        ? { decoder: { path: decoderPath, input: "z", output: "img", scale_factor: 0.7 } }
        : {}),
    };
    const model = await loadModel(config);
    const dec = await differentiableDecoder(model);
    try {
      const batch = 3;
      assert.equal(dec.imageSize, withDecoder ? 16 : D);
      const x = normalNoise(52, 0, batch * D);
      const cot = normalNoise(53, 0, batch * dec.imageSize);
      const v = normalNoise(54, 0, batch * D);
      const images = await dec.decode(x, batch);
      assert.equal(images.length, batch * dec.imageSize);
      const g = await dec.vjp(x, cot, batch);
      const f = async (s: number) => {
        const img = await dec.decode(Float64Array.from(x, (xi, i) => xi + s * v[i]), batch);
        return img.reduce((acc, o, i) => acc + o * cot[i], 0);
      };
      const fd = await stencil(f, 1e-2);
      const an = g.reduce((acc, gi, i) => acc + gi * v[i], 0);
      assert.ok(Math.abs(fd - an) <= 2e-4 * Math.abs(an), `decoder ${decoderPath}: ${fd} vs ${an}`);
      if (!withDecoder) {
        // data_range [0, 1] → [-1, 1] is ×2.
        assert.ok(relativeError(g, cot.map((c) => 2 * c)) < 1e-15);
      }
      await assert.rejects(() => dec.vjp(x, cot.subarray(1), batch), RangeError);
    } finally {
      await dec.close();
      await model.close();
    }
  }
});

// ---------------------------------------------------------------------------------------------
// The bundled GMM model against its exact float64 VJP

const gmmModel = await loadModel("configs/gmm-mnist.yml");
const { means } = await gmmMnistMeans();
const K = means.length / 784;
const exact = new GmmDenoiser(gmmModel.denoiser.schedule, [1, 28, 28], {
  means: Float64Array.from(means),
  components: K,
  variances: new Array(K).fill(COMPONENT_STD * COMPONENT_STD),
});

/** Noisy digits: component means plus σ·z. */
function noisyDigits(sigma: number, batch: number, seed: number): Float64Array {
  const x = new Float64Array(batch * 784);
  for (let b = 0; b < batch; b++) {
    const z = normalNoise(seed, b, 784);
    const k = (b * 37 + seed) % K;
    for (let i = 0; i < 784; i++) x[b * 784 + i] = means[k * 784 + i] + sigma * z[i];
  }
  return x;
}

Deno.test("differentiableDenoiser() on gmm-mnist matches the exact GMM vjp", async () => {
  const dd = await differentiableDenoiser(gmmModel);
  try {
    for (const [k, sigma] of [0.05, 0.3, 1, 5, 40].entries()) {
      const x = noisyDigits(sigma, 3, 60 + k);
      const cot = normalNoise(70 + k, 0, x.length);
      const got = await dd.vjp(x, sigma, cot);
      const want = await exact.vjp(x, sigma, cot);
      const errX = relativeError(got.x, want.x);
      assert.ok(errX < 2e-4, `sigma ${sigma}: x relative error ${errX}`);
      // The t-gradient is a sum with cancellation (small at large σ): float32 leaves ~1e-4.
      const errT = Math.abs(got.t - want.t) / Math.abs(want.t);
      assert.ok(errT < 1e-3, `sigma ${sigma}: t ${got.t} vs ${want.t}`);
    }
  } finally {
    await dd.close();
  }
});

Deno.test("solveVjp() through the ONNX gmm-mnist denoiser matches the exact GMM (euler, N=4)", async () => {
  const dd = await differentiableDenoiser(gmmModel);
  try {
    const schedule = gmmModel.denoiser.schedule;
    const steps = 4;
    const planner: Planner = (g) => planSolver("euler", schedule, g);
    const t1 = logSnrGrid(schedule, steps);
    const t2 = Float64Array.from(t1, (t, k) => k === 0 || k === steps ? t : t * 1.05);
    const batch = 2;
    const xT = Float64Array.from(normalNoise(81, 0, batch * 784), (v) => v * schedule.priorScale);
    const cot = normalNoise(82, 0, batch * 784);
    const viaOnnx = await solveVjp(
      planner,
      { t1, t2 },
      await forwardPlan(planner({ t1, t2 }), dd, xT),
      dd,
      cot,
    );
    const viaExact = await solveVjp(
      planner,
      { t1, t2 },
      await forwardPlan(planner({ t1, t2 }), exact, xT),
      exact,
      cot,
    );
    const errors = {
      x: relativeError(viaOnnx.x, viaExact.x),
      t1: relativeError(viaOnnx.t1, viaExact.t1),
      t2: relativeError(viaOnnx.t2, viaExact.t2),
    };
    for (const [name, err] of Object.entries(errors)) {
      assert.ok(err < 1e-4, `${name}: relative error ${err}`);
    }
    assert.ok(viaExact.t2.some((v, k) => k > 0 && k < steps && Math.abs(v) > 0), "t2 gradient");
  } finally {
    await dd.close();
  }
});

Deno.test("differentiableDenoiser() keeps the forward for its VJP only where it may", async () => {
  const config = await smoothConfig({ prediction: "eps", timeInput: "t", schedule: VP });
  const model = await loadModel(config);
  const chunked = await loadModel({ ...config, batch_size: 2 });
  const keeping = await differentiableDenoiser(model);
  const recomputing = await differentiableDenoiser(model, { keepResiduals: false });
  const split = await differentiableDenoiser(chunked);
  try {
    const x = normalNoise(31, 0, 3 * D);
    assert.ok((await keeping.denoiseForVjp!(x, 0.4)).saved !== undefined);
    assert.equal((await recomputing.denoiseForVjp!(x, 0.4)).saved, undefined);
    // Three samples in calls of two: the kept forward would be two calls, so nothing is kept.
    assert.equal((await split.denoiseForVjp!(x, 0.4)).saved, undefined);
    // A tape keeps the residuals of every network call, and says how much they hold.
    const grid = { t1: Float64Array.of(0.9, 0.5, 0.1), t2: Float64Array.of(0.9, 0.5, 0.1) };
    const plan = planSolver("euler", keeping.schedule, grid);
    const tape = await forwardPlan(plan, keeping, x);
    assert.equal(tape.saved.filter(Boolean).length, plan.nfe);
    assert.ok(tape.savedBytes > 0);
    assert.equal((await forwardPlan(plan, keeping, x, { keepForVjp: false })).savedBytes, 0);
    assert.equal((await forwardPlan(plan, recomputing, x)).savedBytes, 0);
  } finally {
    await keeping.close();
    await recomputing.close();
    await split.close();
    await model.close();
    await chunked.close();
  }
});

Deno.test("differentiableDenoiser() checks lengths and reuses the forward output", async () => {
  const dd = await differentiableDenoiser(gmmModel);
  try {
    const x = noisyDigits(1, 2, 90);
    await assert.rejects(() => dd.vjp(x, 1, x.subarray(1)), RangeError);
    await assert.rejects(() => dd.vjp(x.subarray(1), 1, x.subarray(1)), RangeError);
    assert.equal(dd.hasTimeGradient, true);
    assert.deepEqual(await dd.denoise(x, 1), await gmmModel.denoiser.denoise(x, 1));
  } finally {
    await dd.close();
  }
});

Deno.test({
  name: "model_grad test cleanup",
  async fn() {
    await gmmModel.close();
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test("differentiableDenoiser() reads external-data weights back in for the gradient graph", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(join(dir, "model.onnx"), externalWeightsModel());
    await Deno.writeFile(join(dir, "model.onnx.data"), externalWeight(0.5));
    await Deno.writeTextFile(
      join(dir, "c.yml"),
      [
        "name: external",
        "model: { path: model.onnx, inputs: { x: x, t: t }, output: out, prediction: x0, time_input: t }",
        "schedule: { kind: ve }",
        "shape: [2, 3]",
      ].join("\n"),
    );
    const model = await loadModel(join(dir, "c.yml"));
    const denoiser = await differentiableDenoiser(model);
    try {
      // D(x, t) = 0.5·x: the vjp is 0.5·cotangent in x and 0 in t.
      const x = Float64Array.from({ length: 12 }, (_, i) => i - 5);
      const cot = Float64Array.from({ length: 12 }, (_, i) => 1 + i / 4);
      const g = await denoiser.vjp(x, 1, cot);
      assert.ok(relativeError(g.x, cot.map((c) => 0.5 * c)) < 1e-6);
      assert.equal(g.t, 0);
    } finally {
      await denoiser.close();
      await model.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** ⟨a, b⟩. */
function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** The twin's UNet and VAE decoder VJPs at batch 1 with guidance: gradients and raw values. */
async function sdTwinGradients(folder: string) {
  const model = await loadModel(folder, { guidanceScale: 3 });
  const denoiser = await differentiableDenoiser(model);
  const decoder = await differentiableDecoder(model);
  try {
    const d = sampleSize(model.sampleShape);
    const c = model.conditionShape!.reduce((a, b) => a * b, 1);
    const condition = Float32Array.from({ length: c }, (_, i) => Math.cos(i) / 2);
    const x = Float64Array.from({ length: d }, (_, i) => 2 * Math.sin(i + 1));
    const v = Float64Array.from({ length: d }, (_, i) => Math.cos(3 * i));
    const cot = Float64Array.from({ length: d }, (_, i) => Math.sin(5 * i));
    const sigma = 2;
    const info = { condition };
    const g = await denoiser.vjp(x, sigma, cot, info);
    const h = 1e-2;
    const along = async (s: number) =>
      dot(cot, await denoiser.denoise(x.map((xi, i) => xi + s * h * v[i]), sigma, info));
    const fdDenoiser = (await along(1) - await along(-1)) / (2 * h);
    const image = sampleSize(model.imageShape);
    const imgCot = Float64Array.from({ length: image }, (_, i) => Math.cos(7 * i));
    const gDec = await decoder.vjp(x.map((xi) => xi / 4), imgCot, 1);
    const decAlong = async (s: number) =>
      dot(imgCot, await decoder.decode(x.map((xi, i) => xi / 4 + s * h * v[i]), 1));
    const fdDecoder = (await decAlong(1) - await decAlong(-1)) / (2 * h);
    return {
      denoiser: { x: g.x, along: dot(g.x, v), fd: fdDenoiser },
      decoder: { x: gDec, along: dot(gDec, v), fd: fdDecoder },
    };
  } finally {
    await decoder.close();
    await denoiser.close();
    await model.close();
  }
}

Deno.test("differentiableDenoiser() and differentiableDecoder() on the SD twins, float32 and float16", async () => {
  const cache = await Deno.makeTempDir();
  const before = Deno.env.get("LD3_CACHE_DIR");
  Deno.env.set("LD3_CACHE_DIR", cache);
  try {
    const g32 = await sdTwinGradients(SD_TINY.fp32);
    // Directional derivatives through guidance, the UNet and the VAE decoder: finite differences.
    for (const [what, g] of Object.entries(g32)) {
      assert.ok(
        Math.abs(g.along - g.fd) <= 2e-3 * Math.abs(g.fd),
        `${what}: ${g.along} vs ${g.fd}`,
      );
    }
    // The gradient graphs leave every large weight in the model's files: none holds a copy.
    const graphs: string[] = [];
    const walk = async (dir: string) => {
      for await (const e of Deno.readDir(dir)) {
        if (e.isDirectory) await walk(join(dir, e.name));
        else if (e.name.endsWith(".onnx")) graphs.push(join(dir, e.name));
      }
    };
    await walk(cache);
    let referenced = 0;
    for (const path of graphs) {
      const m = onnx.ModelProto.decode(await Deno.readFile(path));
      for (const t of m.graph!.initializer!) {
        assert.ok((t.rawData?.length ?? 0) <= 1 << 16, `${path}: ${t.name} copied`);
        if (t.externalData?.some((e) => e.key === "location")) referenced++;
      }
    }
    assert.ok(graphs.length >= 2 && referenced > 10, `${graphs.length} graphs, ${referenced} refs`);
    // float16: the same graphs behind the float32 interface, close to the float32 twin's.
    const g16 = await sdTwinGradients(SD_TINY.fp16);
    assert.ok(relativeError(g16.denoiser.x, g32.denoiser.x) < 0.05, "float16 UNet VJP");
    assert.ok(relativeError(g16.decoder.x, g32.decoder.x) < 0.05, "float16 decoder VJP");
  } finally {
    if (before === undefined) Deno.env.delete("LD3_CACHE_DIR");
    else Deno.env.set("LD3_CACHE_DIR", before);
    await Deno.remove(cache, { recursive: true });
  }
});
