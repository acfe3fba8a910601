/**
 * The real-size architectures (issue 13) measured, ld3 beside PyTorch eager on the same network:
 * EDM's DDPM++ CIFAR-10 UNet and the DiT-XL/2-shape rectified-flow transformer, both with random
 * weights (models/ddpmpp-cifar10, models/dit-xl2-flow; exported first if missing).
 *
 * Per model, ld3 in a process of its own (so that its peak RSS is its own), at batch 2:
 *
 * - **forward**: one denoiser call `D(x, t)` (the model's ONNX session), per sample;
 * - **VJP**: one network VJP w.r.t. x and t, as one graph (its own forward, then the backward),
 *   against that forward: the ratio PyTorch's forward+backward/forward sits beside;
 * - **LD3 step**: one training step's loss and gradient (iPNDM, NFE 6, L2 to a zero teacher),
 *   as the trainer runs it (forward calls that keep what the VJPs read, then the backward),
 *   against PyTorch's forward+backward of the same trajectory (the same plan, times, latents);
 * - **peak RSS** of the process after all of it (VmHWM), against PyTorch's process's;
 * - **agreement**: ld3's network VJP against torch.autograd on the same inputs and cotangent
 *   (relative error to the largest entry).
 *
 * PyTorch (bench/realsize/torch_side.py) runs after ld3's process has exited, in its own
 * process, on the same machine, at 1 thread and at ONNX Runtime's thread count; the faster of the
 * two (by forward+backward) runs the trajectory and fills the table. A table in Markdown follows the per-model lines.
 *
 * ```sh
 * deno run -A bench/realsize/bench.ts [--models ddpmpp,dit] [--repeats 3] [--step_repeats 1]
 *   [--threads N]
 * deno run -A bench/realsize/bench.ts --table LOG   # the table again from a run's JSON lines
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { dirname, join } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";
import { ld3LossAndGradient, type Ld3Problem } from "../../lib/ld3/loss.ts";
import { thetaToGrid } from "../../lib/ld3/parameterization.ts";
import { l2Loss } from "../../lib/metrics/losses.ts";
import { loadModel } from "../../lib/onnx/model.ts";
import { differentiableDenoiser } from "../../lib/grad/model_grad.ts";
import { readNpy, writeNpy } from "../../lib/io/npy.ts";
import { normalNoise } from "../../lib/rng.ts";
import { planSolver } from "../../lib/solvers/mod.ts";

const HERE = dirname(fromFileUrl(import.meta.url));
const ROOT = join(HERE, "..", "..");
const PYTHON = Deno.env.get("PYTHON") ?? "/usr/bin/python3";

interface ModelSpec {
  folder: string;
  label: string;
  /** Evaluation time of the single-call measurements. */
  t: number;
  classes?: number;
}
const MODELS: Record<string, ModelSpec> = {
  ddpmpp: { folder: "ddpmpp-cifar10", label: "DDPM++ CIFAR-10 (EDM)", t: 2.5 },
  dit: { folder: "dit-xl2-flow", label: "DiT-XL/2-shape flow", t: 0.6, classes: 1000 },
};

const { values } = parseArgs({
  args: Deno.args,
  strict: true,
  options: {
    models: { type: "string", default: "ddpmpp,dit" },
    one: { type: "string" },
    repeats: { type: "string", default: "3" },
    step_repeats: { type: "string", default: "1" },
    threads: { type: "string" },
    table: { type: "string" },
    io: { type: "string" },
  },
});

/** What one model's process measures. */
interface Measured {
  model: string;
  label: string;
  params: number;
  onnxBytes: number;
  ortThreads: number;
  forwardMs: number;
  vjpMs: number;
  stepMs: number;
  peakRssMiB: number;
  agreement: { x: number; t: number };
  torch: {
    torch: string;
    /** The faster of 1 and ORT's thread count, whose times these are. */
    threads: number;
    forward_ms: number;
    forward_backward_ms: number;
    trajectory_forward_ms: number;
    /** Null where PyTorch ran out of the machine's free memory (`memory_limit_mib`). */
    trajectory_forward_backward_ms: number | null;
    memory_limit_mib?: number;
    peak_rss_mib: number;
  };
}

function peakRssMiB(): number {
  const status = Deno.readTextFileSync("/proc/self/status");
  return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024;
}

async function median(f: () => Promise<unknown>, warmup: number, repeats: number) {
  for (let i = 0; i < warmup; i++) await f();
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    await f();
    times.push(performance.now() - t0);
  }
  return times.sort((a, b) => a - b)[Math.floor(times.length / 2)];
}

function fileSize(path: string): number {
  try {
    return Deno.statSync(path).size;
  } catch {
    return 0;
  }
}

function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let scale = 0, worst = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]));
  for (let i = 0; i < expected.length; i++) {
    worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
  }
  return worst / scale;
}

async function ensureExported(spec: ModelSpec): Promise<string> {
  const onnxPath = join(ROOT, "models", spec.folder, "out", "model.onnx");
  if (fileSize(onnxPath) > 0) return onnxPath;
  const script = join(ROOT, "models", spec.folder, "export.py");
  const r = await new Deno.Command(PYTHON, { args: [script], stderr: "null" }).output();
  if (!r.success) throw new Error(`${script} failed`);
  return onnxPath;
}

/** The inputs of the single-call measurements, written for PyTorch too. */
async function inputs(spec: ModelSpec, size: number, shape: readonly number[], dir: string) {
  const batch = 2;
  const x = Float64Array.from(normalNoise(1, 0, batch * size));
  const cot = Float64Array.from(normalNoise(2, 0, batch * size));
  const condition = spec.classes ? new Float32Array(batch * spec.classes) : undefined;
  if (condition && spec.classes) {
    for (let b = 0; b < batch; b++) condition[b * spec.classes + 7 * b] = 1;
  }
  await writeNpy(join(dir, "x.npy"), Float32Array.from(x), [batch, ...shape]);
  await writeNpy(join(dir, "t.npy"), new Float32Array(batch).fill(spec.t), [batch]);
  await writeNpy(join(dir, "cot.npy"), Float32Array.from(cot), [batch, ...shape]);
  if (condition) await writeNpy(join(dir, "cond.npy"), condition, [batch, spec.classes!]);
  return { x, cot, condition, batch };
}

/** What the ld3 process measures (`--one`), before PyTorch runs. */
type Ld3Measured = Omit<Measured, "params" | "agreement" | "torch"> & { vjpT: number };

/** ld3's side, in a process of its own; leaves the inputs, the plan and its VJP in `dir`. */
async function measureLd3(name: string, dir: string): Promise<Ld3Measured> {
  const spec = MODELS[name];
  if (!spec) throw new RangeError(`--models: unknown model ${name} (ddpmpp or dit)`);
  const onnxPath = await ensureExported(spec);
  const repeats = Number(values.repeats), stepRepeats = Number(values.step_repeats);
  const threads = values.threads === undefined ? undefined : Number(values.threads);
  const model = await loadModel(join(HERE, `${name}.yml`), { threads });
  const denoiser = await differentiableDenoiser(model);
  const schedule = denoiser.schedule;
  const shape = model.sampleShape;
  const size = shape.reduce((a, b) => a * b, 1);
  const { x, cot, condition, batch } = await inputs(spec, size, shape, dir);
  const info = { condition };
  const forwardMs = await median(() => denoiser.denoise(x, spec.t, info), 1, repeats);
  const vjpMs = await median(() => denoiser.vjp(x, spec.t, cot, info), 1, repeats);
  const vjp = await denoiser.vjp(x, spec.t, cot, info);
  await writeNpy(join(dir, "ld3_grad_x.npy"), vjp.x, [batch, ...shape]);
  // one LD3 step: iPNDM, NFE 6, from the start grid (θ1 = ones in λ)
  const steps = 6;
  const theta = {
    theta1: new Float64Array(steps + 1).fill(1),
    theta2: new Float64Array(steps + 1),
  };
  const grid = thetaToGrid(schedule, theta.theta1, theta.theta2);
  const plan = planSolver("ipndm", schedule, grid);
  await Deno.writeTextFile(
    join(dir, "plan.json"),
    JSON.stringify({
      ops: plan.ops,
      output: plan.output,
      times: Array.from(grid.t2),
      batch,
      shape,
      priorScale: schedule.priorScale,
    }),
  );
  const problem: Ld3Problem = {
    denoiser,
    planner: (g) => planSolver("ipndm", schedule, g),
    loss: l2Loss,
    param: { timeMode: "lambda" },
  };
  const data = {
    latents: Float64Array.from(normalNoise(0, 0, batch * size)),
    teacher: new Float64Array(batch * size),
    batch,
    condition,
  };
  const stepMs = await median(() => ld3LossAndGradient(problem, theta, data), 1, stepRepeats);
  const peak = peakRssMiB();
  const ortThreads = model.threads;
  await denoiser.close();
  await model.close();
  return {
    model: name,
    label: spec.label,
    onnxBytes: fileSize(onnxPath) + fileSize(`${onnxPath}.data`),
    ortThreads,
    forwardMs,
    vjpMs,
    stepMs,
    peakRssMiB: peak,
    vjpT: vjp.t,
  };
}

/** One model: ld3 in a child process, then PyTorch in another, then the VJPs compared. */
async function measureOne(name: string): Promise<Measured> {
  const dir = await Deno.makeTempDir({ prefix: "realsize_bench_" });
  const args = ["run", "-A", fromFileUrl(import.meta.url), "--one", name, "--io", dir];
  args.push("--repeats", values.repeats, "--step_repeats", values.step_repeats);
  if (values.threads) args.push("--threads", values.threads);
  const child = await new Deno.Command(Deno.execPath(), { args, stderr: "inherit" }).output();
  if (!child.success) throw new Error(`bench/realsize/bench.ts --one ${name} failed`);
  const lines = new TextDecoder().decode(child.stdout).trim().split("\n");
  const ld3 = JSON.parse(lines[lines.length - 1]) as Ld3Measured;
  const py = [join(HERE, "torch_side.py"), "--model", name, "--io", dir];
  py.push("--plan", join(dir, "plan.json"), "--repeats", values.repeats);
  py.push("--step_repeats", values.step_repeats, "--threads", String(ld3.ortThreads));
  const out = await new Deno.Command(PYTHON, { args: py, stderr: "inherit" }).output();
  if (!out.success) throw new Error("bench/realsize/torch_side.py failed");
  const torch = JSON.parse(new TextDecoder().decode(out.stdout));
  const gx = (await readNpy(join(dir, "grad_x.npy"))).data as Float32Array;
  const gt = (await readNpy(join(dir, "grad_t.npy"))).data as Float32Array;
  const ld3Gx = (await readNpy(join(dir, "ld3_grad_x.npy"))).data as Float64Array;
  const gtSum = gt.reduce((a, b) => a + b, 0);
  await Deno.remove(dir, { recursive: true });
  const { vjpT, ...rest } = ld3;
  return {
    ...rest,
    params: torch.params,
    agreement: { x: relativeError(ld3Gx, gx), t: Math.abs(vjpT - gtSum) / Math.abs(gtSum) },
    torch,
  };
}

function row(m: Measured): string {
  const t = m.torch;
  const s = (ms: number) => (ms / 1000).toFixed(2);
  const cells = [
    m.label,
    `${(m.params / 1e6).toFixed(1)} M`,
    `${(m.onnxBytes / 1e6).toFixed(0)} MB`,
    `${s(m.forwardMs / 2)} / ${s(t.forward_ms / 2)}`,
    `${(m.vjpMs / m.forwardMs).toFixed(2)} / ${(t.forward_backward_ms / t.forward_ms).toFixed(2)}`,
    t.trajectory_forward_backward_ms === null
      ? `${s(m.stepMs)} / out of memory (> ${(t.memory_limit_mib! / 1024).toFixed(1)} GiB)`
      : `${s(m.stepMs)} / ${s(t.trajectory_forward_backward_ms)} (${
        (m.stepMs / t.trajectory_forward_backward_ms).toFixed(2)
      }×)`,
    `${m.peakRssMiB.toFixed(0)} / ${t.peak_rss_mib.toFixed(0)} MiB`,
    `${m.agreement.x.toExponential(1)} / ${m.agreement.t.toExponential(1)}`,
  ];
  return `| ${cells.join(" | ")} |`;
}

function printTable(results: Measured[]) {
  const load = Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  const r0 = results[0];
  console.log(
    `\nld3 / PyTorch ${r0.torch.torch} eager, batch 2, ${r0.ortThreads} ORT thread(s), PyTorch ` +
      `threads: ${results.map((m) => `${m.model} ${m.torch.threads}`).join(", ")} (the faster ` +
      `of 1 and ${r0.ortThreads}); load average at the end ${load}:\n`,
  );
  console.log(
    "| model | parameters | ONNX size | forward s/sample | VJP/forward (PyTorch fwd+bwd/fwd) " +
      "| s per LD3 step, NFE 6 (PyTorch fwd+bwd of the trajectory) | peak RSS | VJP vs autograd, rel. err. x / t |",
  );
  console.log("| --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const m of results) console.log(row(m));
}

if (values.one) {
  if (!values.io) throw new TypeError("--one needs --io DIR");
  console.log(JSON.stringify(await measureLd3(values.one, values.io)));
} else if (values.table) {
  const lines = Deno.readTextFileSync(values.table).split("\n").filter((l) => l.startsWith("{"));
  printTable(lines.map((l) => JSON.parse(l) as Measured));
} else {
  const results: Measured[] = [];
  for (const name of values.models.split(",")) {
    const m = await measureOne(name);
    console.log(JSON.stringify(m));
    results.push(m);
  }
  printTable(results);
}
