/**
 * Reference statistics for FID on the bundled MNIST model: the mean and covariance of the
 * bundled classifier's features over the 10,000 MNIST test digits, written as an EDM-style
 * fid-refs `.npz` (`mu`, `sigma`) by the project's own eval code (`lib/io/mnist.ts`,
 * `lib/metrics/features.ts`, `lib/metrics/fid.ts`).
 *
 * ```sh
 * deno run -A tools/make_fid_ref.ts \
 *   [--features models/mnist-features/model.onnx] [--split test] \
 *   [--out models/mnist-features/mnist_test_stats.npz]
 * ```
 *
 * Also prints the classifier's accuracy on the same images (from its `logits` output, when it
 * has one), so a wrong pixel scaling shows up at once.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { loadFeatureModel } from "../lib/metrics/features.ts";
import { featureStats, writeFidRefs } from "../lib/metrics/fid.ts";
import { type MnistSplit, readMnist } from "../lib/io/mnist.ts";

/** MNIST bytes 0–255 to the project's data range [-1, 1] (x / 127.5 − 1, as in training). */
function toDataRange(pixels: Uint8Array): Float32Array {
  const out = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) out[i] = pixels[i] / 127.5 - 1;
  return out;
}

/** Fraction of rows of `logits` (`count × classes`) whose arg-max equals the label. */
function accuracy(logits: Float64Array, classes: number, labels: Uint8Array): number {
  let correct = 0;
  for (let i = 0; i < labels.length; i++) {
    let best = 0;
    for (let c = 1; c < classes; c++) {
      if (logits[i * classes + c] > logits[i * classes + best]) best = c;
    }
    if (best === labels[i]) correct++;
  }
  return correct / labels.length;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    strict: true,
    options: {
      features: { type: "string", default: "models/mnist-features/model.onnx" },
      features_input: { type: "string", default: "image" },
      features_output: { type: "string", default: "features" },
      split: { type: "string", default: "test" },
      out: { type: "string", default: "models/mnist-features/mnist_test_stats.npz" },
    },
  });
  const split = values.split as MnistSplit;
  const set = await readMnist(split);
  const images = toDataRange(set.images);
  const model = await loadFeatureModel(values.features, {
    inputName: values.features_input,
    outputName: values.features_output,
  });
  try {
    const t0 = performance.now();
    const wantLogits = values.features_output === "features";
    const outputs = await model.run(
      images,
      set.count,
      wantLogits ? [model.outputName, "logits"] : [model.outputName],
    ).catch((error) => {
      if (!wantLogits) throw error;
      // A feature model without a `logits` output: statistics only.
      return model.run(images, set.count, [model.outputName]);
    });
    const { data, dim } = outputs[model.outputName];
    const stats = featureStats(data, set.count, dim);
    await writeFidRefs(values.out, stats);
    const seconds = (performance.now() - t0) / 1000;
    const logits = outputs["logits"];
    const acc = logits === undefined
      ? ""
      : `, accuracy ${(100 * accuracy(logits.data, logits.dim, set.labels)).toFixed(2)} %`;
    console.log(
      `${values.out}: mu [${dim}], sigma [${dim}, ${dim}] from ${set.count} MNIST ${split} ` +
        `images (${seconds.toFixed(1)} s${acc})`,
    );
  } finally {
    await model.close();
  }
}

if (import.meta.main) {
  try {
    await main();
  } catch (error) {
    console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
    Deno.exit(1);
  }
}
