/**
 * Benchmark: one VJP call against one forward call of a denoiser (same batch, same session
 * options), printed as a ratio, plus peak resident memory and the VJP model's size. Target:
 * ratio ≤ 3 (forward + input-gradient backward costs about 2 forward calls).
 *
 * Forward and VJP calls are interleaved (alternating which goes first) so that load from
 * other processes hits both alike; medians are reported.
 *
 * ```sh
 * deno run --allow-all bench/vjp_bench.ts [--batch 8] [--runs 30] [--threads 0] \
 *   [--model tests/fixtures/vjp/unet.onnx]
 * ```
 *
 * The model must have inputs `x` `[B, C, H, W]` and `sigma` `[B]` (the small test UNet or
 * `models/mnist-edm/model.onnx`); the first output is seeded.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { onnx, ort } from "../lib/deps.ts";
import { buildVjpModel, cotangentName, gradientName } from "../lib/vjp/mod.ts";

/** Peak resident set size of this process so far, in MiB (Linux `VmHWM`). */
function peakRssMiB(): number {
  const status = Deno.readTextFileSync("/proc/self/status");
  const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function timeMs(run: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await run();
  return performance.now() - t0;
}

const { values } = parseArgs({
  args: Deno.args,
  strict: true,
  options: {
    batch: { type: "string", default: "8" },
    runs: { type: "string", default: "30" },
    threads: { type: "string", default: "0" },
    model: {
      type: "string",
      default: new URL("../tests/fixtures/vjp/unet.onnx", import.meta.url).pathname,
    },
  },
});
const batch = Number(values.batch);
const runs = Number(values.runs);
const threads = Number(values.threads);
if (!Number.isInteger(batch) || batch < 1) throw new RangeError(`Bad --batch: ${values.batch}`);
if (!Number.isInteger(runs) || runs < 1) throw new RangeError(`Bad --runs: ${values.runs}`);
if (!Number.isInteger(threads) || threads < 0) {
  throw new RangeError(`Bad --threads: ${values.threads}`);
}
const model = await Deno.readFile(values.model);
const proto = onnx.ModelProto.decode(model);
const xInfo = proto.graph?.input?.find((v) => v.name === "x");
if (!xInfo) throw new RangeError(`Model has no input x: ${values.model}`);
const of = proto.graph!.output![0].name!;
const dims = xInfo.type!.tensorType!.shape!.dim!.map((d) => Number(d.dimValue ?? 0));
const shape = [batch, ...dims.slice(1)];
const n = shape.reduce((a, b) => a * b, 1);
const x = new ort.Tensor("float32", Float32Array.from({ length: n }, (_, i) => Math.sin(i)), shape);
const sigma = new ort.Tensor(
  "float32",
  Float32Array.from({ length: batch }, (_, i) => 0.5 + i),
  [batch],
);
const cot = new ort.Tensor("float32", Float32Array.from({ length: n }, (_, i) => Math.cos(i)), [
  ...shape,
]);

// identical options for both sessions, so the ratio compares graphs, not settings
const sessionOptions: ort.InferenceSession.SessionOptions = {
  graphOptimizationLevel: "all",
  executionMode: "sequential",
  enableMemPattern: true,
  enableCpuMemArena: true,
  ...(threads > 0 ? { intraOpNumThreads: threads } : {}),
};

const rss0 = peakRssMiB();
const forward = await ort.InferenceSession.create(model, sessionOptions);
const runForward = () => forward.run({ x, sigma });
for (let i = 0; i < 3; i++) await runForward();
const rssForward = peakRssMiB();

const t0 = performance.now();
const vjpBytes = await buildVjpModel(model, {
  wrt: ["x", "sigma"],
  of,
  returnOutput: true,
  inputShapes: { x: shape, sigma: [batch] },
});
const buildMs = performance.now() - t0;
const vjpNodes = onnx.ModelProto.decode(vjpBytes).graph!.node!.length;
const vjp = await ort.InferenceSession.create(vjpBytes, sessionOptions);
const runVjp = () => vjp.run({ x, sigma, [cotangentName(of)]: cot });
for (let i = 0; i < 3; i++) await runVjp();
const rssVjp = peakRssMiB();
const probe = await runVjp();
if (!probe[gradientName("x")] || !probe[gradientName("sigma")]) {
  throw new RangeError("VJP model lacks an output: grad_x or grad_sigma");
}

const fwdTimes: number[] = [];
const vjpTimes: number[] = [];
const ratios: number[] = [];
for (let i = 0; i < runs; i++) {
  // alternate the order so neither call always runs on a cache warmed by the other
  let f: number, v: number;
  if (i % 2 === 0) {
    f = await timeMs(runForward);
    v = await timeMs(runVjp);
  } else {
    v = await timeMs(runVjp);
    f = await timeMs(runForward);
  }
  fwdTimes.push(f);
  vjpTimes.push(v);
  ratios.push(v / f);
}
const fwdMs = median(fwdTimes);
const vjpMs = median(vjpTimes);

const name = values.model.split("/").slice(-2).join("/");
console.log(
  `${name}, batch ${batch}, ${runs} interleaved runs (median), ORT CPU, ` +
    `threads ${threads || "default"}`,
);
console.log(`forward nodes: ${proto.graph!.node!.length}, VJP model nodes: ${vjpNodes}`);
console.log(`forward call:        ${fwdMs.toFixed(2)} ms`);
console.log(`VJP call (fwd+bwd):  ${vjpMs.toFixed(2)} ms  (grad x and sigma, with output)`);
console.log(
  `ratio VJP/forward:   ${(vjpMs / fwdMs).toFixed(2)}x of medians, ` +
    `${median(ratios).toFixed(2)}x median of paired ratios  (target <= 3x)`,
);
console.log(`VJP model build:     ${buildMs.toFixed(0)} ms (once per input shape)`);
console.log(
  `peak RSS: start ${rss0.toFixed(0)} MiB, after forward ${rssForward.toFixed(0)} MiB, ` +
    `after VJP ${rssVjp.toFixed(0)} MiB (VJP session +${(rssVjp - rssForward).toFixed(0)} MiB)`,
);
console.log(
  `RESULT batch=${batch} fwd_ms=${fwdMs.toFixed(2)} vjp_ms=${vjpMs.toFixed(2)} ` +
    `ratio=${(vjpMs / fwdMs).toFixed(2)} paired_ratio=${median(ratios).toFixed(2)} ` +
    `vjp_nodes=${vjpNodes} peak_rss_mib=${rssVjp.toFixed(0)}`,
);
await forward.release();
await vjp.release();
