/**
 * Builds `model.onnx`: the exact denoiser of a Gaussian mixture centred on real MNIST digits.
 *
 * Components: the first {@linkcode PER_CLASS} training digits of each class 0–9 in file
 * order (K = 100), pixels scaled from 0–255 to [-1, 1], shape [1, 28, 28]; isotropic standard
 * deviation {@linkcode COMPONENT_STD} per component; uniform weights. The build reads only the
 * MNIST files and is deterministic: running it again writes the same bytes.
 *
 * Run: `deno run -A models/gmm-mnist/build.ts`
 *
 * @module
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildGmmOnnx } from "../../lib/onnx/gmm_onnx.ts";
import { readMnist } from "../../lib/io/mnist.ts";

/** Digits per class used as component means. */
export const PER_CLASS = 10;
/** Per-component standard deviation s (in the [-1, 1] pixel scale): grain of ±6/255. */
export const COMPONENT_STD = 0.05;

/** The K × 784 component means, in [-1, 1], and their class labels. */
export async function gmmMnistMeans(): Promise<{ means: Float32Array; labels: number[] }> {
  const train = await readMnist("train");
  const d = train.rows * train.cols;
  const picked: number[] = [];
  for (let digit = 0; digit < 10; digit++) {
    let found = 0;
    for (let i = 0; i < train.count && found < PER_CLASS; i++) {
      if (train.labels[i] === digit) {
        picked.push(i);
        found++;
      }
    }
  }
  const means = new Float32Array(picked.length * d);
  picked.forEach((index, k) => {
    for (let j = 0; j < d; j++) means[k * d + j] = (train.images[index * d + j] / 255) * 2 - 1;
  });
  return { means, labels: picked.map((i) => train.labels[i]) };
}

/** The ONNX bytes of the GMM-MNIST denoiser. */
export async function buildGmmMnist(): Promise<Uint8Array> {
  const { means } = await gmmMnistMeans();
  const K = means.length / 784;
  return buildGmmOnnx({
    means,
    sampleShape: [1, 28, 28],
    variances: new Float64Array(K).fill(COMPONENT_STD * COMPONENT_STD),
  });
}

if (import.meta.main) {
  const bytes = await buildGmmMnist();
  const path = join(dirname(fileURLToPath(import.meta.url)), "model.onnx");
  await Deno.writeFile(path, bytes);
  console.log(`wrote ${path} (${bytes.length} bytes)`);
}
