/**
 * Benchmark: one VJP call against one forward call of the small UNet (same batch), printed as
 * a ratio, plus peak resident memory. Target: ratio ≤ 3 (forward + input-gradient backward
 * costs about 2 forward calls).
 *
 * ```sh
 * deno run --allow-all bench/vjp_bench.ts [--batch 8] [--runs 20]
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { ort } from "../lib/deps.ts";
import { buildVjpModel } from "../lib/vjp/mod.ts";

/** Peak resident set size of this process so far, in MiB (Linux `VmHWM`). */
function peakRssMiB(): number {
  const status = Deno.readTextFileSync("/proc/self/status");
  const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

async function medianMs(run: () => Promise<unknown>, runs: number): Promise<number> {
  for (let i = 0; i < 3; i++) await run();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await run();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

const { values } = parseArgs({
  args: Deno.args,
  strict: true,
  options: {
    batch: { type: "string", default: "8" },
    runs: { type: "string", default: "20" },
    model: {
      type: "string",
      default: new URL("../tests/fixtures/vjp/unet.onnx", import.meta.url).pathname,
    },
  },
});
const batch = Number(values.batch);
const runs = Number(values.runs);
const model = await Deno.readFile(values.model);
const shape = [batch, 1, 16, 16];
const n = batch * 256;
const x = new ort.Tensor("float32", Float32Array.from({ length: n }, (_, i) => Math.sin(i)), shape);
const sigma = new ort.Tensor("float32", Float32Array.from({ length: batch }, (_, i) => 0.5 + i), [
  batch,
]);
const cot = new ort.Tensor(
  "float32",
  Float32Array.from({ length: n }, (_, i) => Math.cos(i)),
  shape,
);

const rss0 = peakRssMiB();
const forward = await ort.InferenceSession.create(model);
const fwdMs = await medianMs(() => forward.run({ x, sigma }), runs);
const rssForward = peakRssMiB();

const t0 = performance.now();
const vjpBytes = await buildVjpModel(model, {
  wrt: ["x", "sigma"],
  returnOutput: true,
  inputShapes: { x: shape, sigma: [batch] },
});
const buildMs = performance.now() - t0;
const vjp = await ort.InferenceSession.create(vjpBytes);
const vjpMs = await medianMs(() => vjp.run({ x, sigma, grad_denoised: cot }), runs);
const rssVjp = peakRssMiB();

console.log(`small UNet, batch ${batch}, ${runs} runs (median), ORT CPU`);
console.log(`forward call:        ${fwdMs.toFixed(2)} ms`);
console.log(`VJP call (fwd+bwd):  ${vjpMs.toFixed(2)} ms  (grad x and sigma, with output)`);
console.log(`ratio VJP/forward:   ${(vjpMs / fwdMs).toFixed(2)}x  (target <= 3x)`);
console.log(`VJP model build:     ${buildMs.toFixed(0)} ms (once per input shape)`);
console.log(
  `peak RSS: start ${rss0.toFixed(0)} MiB, after forward ${rssForward.toFixed(0)} MiB, ` +
    `after VJP ${rssVjp.toFixed(0)} MiB`,
);
await forward.release();
await vjp.release();
