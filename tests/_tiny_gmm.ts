/**
 * Test helper: a tiny Gaussian-mixture ONNX model (3 components on 1×4×4 "images") and its
 * YAML config in a fresh temporary folder, so data tests run in milliseconds per sample.
 */
import { buildGmmOnnx } from "../lib/onnx/gmm_onnx.ts";

/** A temporary folder holding `model.onnx` and `model.yml`. */
export interface TinyGmm {
  dir: string;
  config: string;
  cleanup(): Promise<void>;
}

/** Writes the tiny model; `extraYaml` is appended to the config (e.g. a bad field). */
export async function makeTinyGmm(extraYaml = ""): Promise<TinyGmm> {
  const dir = await Deno.makeTempDir({ prefix: "ld3-data-" });
  const d = 16;
  const means = new Float32Array(3 * d);
  // Three distinct smooth patterns in [-0.8, 0.8].
  for (let k = 0; k < 3; k++) {
    for (let j = 0; j < d; j++) means[k * d + j] = 0.8 * Math.sin((k + 1) * (j + 1) * 0.7);
  }
  await Deno.writeFile(
    `${dir}/model.onnx`,
    buildGmmOnnx({ means, sampleShape: [1, 4, 4], variances: [0.01, 0.02, 0.015] }),
  );
  const yaml = `name: tiny-gmm
model:
  path: model.onnx
  inputs: { x: x, t: sigma }
  output: denoised
  prediction: x0
  time_input: sigma
schedule: { kind: ve, sigma_max: 80, sigma_min: 0.002 }
shape: [1, 4, 4]
${extraYaml}`;
  await Deno.writeTextFile(`${dir}/model.yml`, yaml);
  return {
    dir,
    config: `${dir}/model.yml`,
    cleanup: () => Deno.remove(dir, { recursive: true }),
  };
}

/** SHA-256 hex of every file under `root`, keyed by relative path, sorted. */
export async function hashTree(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  async function walk(dir: string, rel: string): Promise<void> {
    for await (const e of Deno.readDir(dir)) {
      const path = `${dir}/${e.name}`;
      const key = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory) await walk(path, key);
      else {
        const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
        out[key] = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0"))
          .join("");
      }
    }
  }
  await walk(root, "");
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}
