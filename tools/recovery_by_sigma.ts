/**
 * Where does the bundled UNet lose readable digits? For noise levels σ_s it noises real MNIST test
 * digits to x0 + σ_s·ε, solves the ODE back with Heun on the EDM ρ = 7 grid from σ_s to 0.002,
 * and scores the results with the bundled classifier: the share of samples at top-class
 * probability ≥ 0.9 (the quality bar of models/mnist-edm) and the share whose predicted class is
 * still the digit's label. At small σ_s the network only has to restore detail; at σ = 80 the
 * start is pure noise and the numbers are those of generation. The σ range where the shares fall
 * is the range whose training the model needs more of (models/mnist-edm/README.md, Quality).
 *
 * ```sh
 * deno run -A tools/recovery_by_sigma.ts [--num 1000] [--steps 18] [--sigmas 0.5,1,2,4,8,16,80]
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { classifierQuality } from "../lib/pipelines/evaluate.ts";
import { loadFeatureModel } from "../lib/metrics/features.ts";
import { gridFromSigmas, toGrid } from "../lib/step_grid.ts";
import { readMnist } from "../lib/io/mnist.ts";
import { loadModel } from "../lib/onnx/model.ts";
import { normalNoise } from "../lib/rng.ts";
import { runPlan } from "../lib/solvers/plan.ts";
import { planSolver } from "../lib/solvers/mod.ts";

const { values } = parseArgs({
  args: Deno.args,
  strict: true,
  options: {
    num: { type: "string", default: "1000" },
    steps: { type: "string", default: "18" },
    sigmas: { type: "string", default: "0.5,1,2,4,8,16,80" },
    config: { type: "string", default: "configs/mnist-edm.yml" },
    classifier: { type: "string", default: "models/mnist-features/model.onnx" },
  },
});
const num = Number(values.num);
const steps = Number(values.steps);
const starts = values.sigmas.split(",").map(Number);

/** EDM's ρ = 7 noise levels from `sigmaStart` down to `sigmaMin`, `steps + 1` of them. */
function edmSigmas(sigmaStart: number, sigmaMin: number, n: number, rho = 7): number[] {
  const a = sigmaStart ** (1 / rho);
  const b = sigmaMin ** (1 / rho);
  return Array.from({ length: n + 1 }, (_, i) => (a + (i / n) * (b - a)) ** rho);
}

const model = await loadModel(values.config);
const classifier = await loadFeatureModel(values.classifier, { sampleShape: model.imageShape });
const test = await readMnist("test");
const d = test.rows * test.cols;
const x0 = new Float64Array(num * d);
for (let i = 0; i < num * d; i++) x0[i] = test.images[i] / 127.5 - 1;

console.log(
  `| σ_start | top-class prob ≥ 0.9 | class kept | (${num} test digits, heun ${steps}) |`,
);
console.log("| ---: | ---: | ---: | --- |");
for (const sigma of starts) {
  const sigmas = edmSigmas(sigma, 0.002, steps);
  const grid = toGrid(gridFromSigmas(model.denoiser.schedule, sigmas));
  const plan = planSolver("heun", model.denoiser.schedule, grid);
  const eps = normalNoise(0, 0, num * d);
  const x = Float64Array.from(x0, (v, i) => v + sigma * eps[i]);
  const out = await runPlan(plan, model.denoiser, x);
  const images = await model.decode(out);
  const { logits } = await classifier.run(images, num, ["logits"]);
  const q = classifierQuality(logits.data, num, logits.dim);
  let kept = 0;
  for (let i = 0; i < num; i++) {
    let best = 0;
    for (let c = 1; c < logits.dim; c++) {
      if (logits.data[i * logits.dim + c] > logits.data[i * logits.dim + best]) best = c;
    }
    if (best === test.labels[i]) kept++;
  }
  console.log(
    `| ${sigma} | ${(100 * q.confident).toFixed(1)} % | ${(100 * kept / num).toFixed(1)} % | |`,
  );
}
await classifier.close();
await model.close();
