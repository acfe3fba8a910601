import assert from "node:assert/strict";
import { join } from "node:path";
import {
  datasetFingerprint,
  decodeSample,
  encodeSample,
  readDataset,
  readManifest,
  samplePath,
} from "../../lib/io/dataset.ts";
import type { DenoiseInfo } from "../../lib/denoiser.ts";
import { pathExists } from "../../lib/io/fs.ts";
import { loadModel } from "../../lib/onnx/model.ts";
import { decodeNpz } from "../../lib/io/npz.ts";
import { normalNoise } from "../../lib/rng.ts";
import { generateDataset, type GenerateDatasetOptions } from "../../lib/pipelines/generate.ts";
import { hashTree, makeTinyGmm } from "../_tiny_gmm.ts";

const CREATED = new Date("2026-01-01T00:00:00Z");

function options(dataDir: string, extra: GenerateDatasetOptions = {}): GenerateDatasetOptions {
  return {
    dataDir,
    totalSamples: 9,
    samplingBatchSize: 4,
    steps: 4,
    solverName: "dpm_solver++",
    skipType: "logSNR",
    seed: 3,
    progress: false,
    created: CREATED,
    ...extra,
  };
}

Deno.test("generateDataset() writes z, x, PNGs and a manifest", async () => {
  const gmm = await makeTinyGmm();
  try {
    const root = join(gmm.dir, "data");
    const result = await generateDataset(gmm.config, options(root, { savePng: true }));
    assert.equal(result.dir, join(root, "dpm_solver++_NFE4_logSNR"));
    assert.equal(result.generated, 9);
    const manifest = await readManifest(result.dir);
    assert.equal(manifest.count, 9);
    assert.equal(manifest.solver.nfe, 4);
    assert.equal(manifest.grid.t1.length, 5);
    assert.equal(manifest.grid.t1[0], 80);
    assert.deepEqual(manifest.grid.t2, manifest.grid.t1);
    assert.deepEqual(manifest.shapes, { z: [1, 4, 4], x: [1, 4, 4] });
    assert.match(manifest.model.sha256, /^[0-9a-f]{64}$/);
    assert.equal(manifest.created, CREATED.toISOString());

    const data = await readDataset(result.dir);
    assert.deepEqual(data.indices, [0, 1, 2, 3, 4, 5, 6, 7, 8]);
    for await (const sample of data) {
      // z is the float32 rounding of the counter-based noise of (seed, index).
      assert.deepEqual(sample.z, Float32Array.from(normalNoise(3, sample.index, 16)));
      assert.ok(sample.x.every(Number.isFinite));
    }
    // With 4 steps from σ = 80 the teacher output lies near the mixture's means (|μ| ≤ 0.8).
    const x0 = (await data.read(0)).x;
    assert.ok(x0.every((v) => Math.abs(v) < 1.5), `x0 = ${x0}`);
    const files = await hashTree(result.dir);
    assert.ok("grid.png" in files && "png/000008.png" in files && "manifest.json" in files);
  } finally {
    await gmm.cleanup();
  }
});

Deno.test("generateDataset() is byte-identical for the same seed and batch size", async () => {
  const gmm = await makeTinyGmm();
  try {
    const a = await generateDataset(gmm.config, options(join(gmm.dir, "a"), { savePng: true }));
    const b = await generateDataset(gmm.config, {
      ...options(join(gmm.dir, "b"), { savePng: true }),
      created: new Date(),
    });
    const ha = await hashTree(a.dir);
    const hb = await hashTree(b.dir);
    // The manifest differs only in its creation time; every other file is byte-identical.
    const { "manifest.json": ma, ...restA } = ha;
    const { "manifest.json": mb, ...restB } = hb;
    assert.notEqual(ma, mb);
    assert.deepEqual(restA, restB);
    assert.equal(Object.keys(restA).length, 9 + 9 + 1);
    const strip = async (dir: string) => {
      const { created: _c, config: _config, grid, ...m } = await readManifest(dir);
      return { ...m, grid };
    };
    assert.deepEqual(await strip(a.dir), await strip(b.dir));
  } finally {
    await gmm.cleanup();
  }
});

Deno.test("generateDataset() gives the same z and x for batch size 1 and 7", async () => {
  const gmm = await makeTinyGmm();
  try {
    const one = await generateDataset(
      gmm.config,
      options(join(gmm.dir, "one"), { samplingBatchSize: 1, solverName: "uni_pc" }),
    );
    const seven = await generateDataset(
      gmm.config,
      options(join(gmm.dir, "seven"), { samplingBatchSize: 7, solverName: "uni_pc" }),
    );
    const a = await readDataset(one.dir);
    const b = await readDataset(seven.dir);
    // Tolerance: the network runs in float32, and ONNX Runtime's batched matrix product may
    // round differently from a single-sample one. The first evaluations see x_T = 80·z, where
    // one float32 ulp is 2^-17 ≈ 7.6e-6; those rounding differences carry through the solve.
    // We allow 32 ulps at that scale, 32·2^-17 ≈ 2.4e-4 absolute (outputs are of size ~1).
    const TOLERANCE = 32 * 2 ** -17;
    let maxDiff = 0;
    for (const i of a.indices) {
      const sa = await a.read(i);
      const sb = await b.read(i);
      assert.deepEqual(sa.z, sb.z); // noise: exactly equal
      for (let j = 0; j < sa.x.length; j++) {
        maxDiff = Math.max(maxDiff, Math.abs(sa.x[j] - sb.x[j]));
      }
    }
    assert.ok(maxDiff <= TOLERANCE, `max |x1 - x7| = ${maxDiff} > ${TOLERANCE}`);
  } finally {
    await gmm.cleanup();
  }
});

Deno.test("generateDataset() resumes: deleted samples are regenerated identically", async () => {
  const gmm = await makeTinyGmm();
  try {
    const first = await generateDataset(gmm.config, options(join(gmm.dir, "d"), { savePng: true }));
    const before = await hashTree(first.dir);
    await Deno.remove(samplePath(first.dir, 2));
    await Deno.remove(samplePath(first.dir, 7));
    await Deno.remove(join(first.dir, "png", "000005.png"));
    // A stale temporary file from an interrupted write is cleaned up.
    await Deno.writeFile(join(first.dir, "samples", ".000003.npz.1.0.abc.tmp"), new Uint8Array(3));
    // A truncated sample file (not written by ld3) is detected and regenerated.
    const bytes = await Deno.readFile(samplePath(first.dir, 4));
    await Deno.writeFile(samplePath(first.dir, 4), bytes.subarray(0, 50));
    await assert.rejects(readDataset(first.dir), /incomplete: 2 of 9 samples missing/);

    const again = await generateDataset(gmm.config, {
      ...options(join(gmm.dir, "d"), { savePng: true }),
      created: new Date(),
    });
    assert.equal(again.generated, 4);
    assert.equal(again.skipped, 5);
    assert.deepEqual(await hashTree(first.dir), before);
  } finally {
    await gmm.cleanup();
  }
});

Deno.test("generateDataset() refuses a folder made with other parameters", async () => {
  const gmm = await makeTinyGmm();
  try {
    const root = join(gmm.dir, "d");
    const first = await generateDataset(gmm.config, options(root));
    const before = await hashTree(first.dir);
    await assert.rejects(
      generateDataset(gmm.config, options(root, { seed: 4 })),
      /holds a dataset made with different parameters \(noise\.seed: 3 vs 4\)/,
    );
    await assert.rejects(
      generateDataset(gmm.config, options(root, { totalSamples: 10 })),
      /different parameters \(count: 9 vs 10\)/,
    );
    assert.deepEqual(await hashTree(first.dir), before);
  } finally {
    await gmm.cleanup();
  }
});

Deno.test("generateDataset() leaves nothing behind on bad input", async () => {
  const gmm = await makeTinyGmm();
  try {
    const root = join(gmm.dir, "d");
    await assert.rejects(
      generateDataset(gmm.config, options(root, { solverName: "rk45" })),
      /solverName must be one of .*: got "rk45"/,
    );
    await assert.rejects(
      generateDataset(gmm.config, options(root, { skipType: "cosine" })),
      /skipType must be one of .*: got "cosine"/,
    );
    await assert.rejects(
      generateDataset(
        gmm.config,
        options(root, { skipType: undefined, loadFrom: join(gmm.dir, "nope.json") }),
      ),
      /nope\.json/,
    );
    await assert.rejects(
      generateDataset(join(gmm.dir, "missing.yml"), options(root)),
      /missing\.yml/,
    );
    await assert.rejects(Deno.stat(root), Deno.errors.NotFound);
  } finally {
    await gmm.cleanup();
  }
});

Deno.test("sample files are plain npz archives of float32 arrays and a meta record", async () => {
  const gmm = await makeTinyGmm();
  try {
    const r = await generateDataset(gmm.config, options(join(gmm.dir, "d"), { totalSamples: 1 }));
    const arrays = decodeNpz(await Deno.readFile(samplePath(r.dir, 0)));
    assert.deepEqual(Object.keys(arrays), ["z", "x", "meta"]);
    assert.equal(arrays.z.dtype, "float32");
    assert.deepEqual(arrays.x.shape, [1, 4, 4]);
    // meta: UTF-8 JSON of what made the sample (numpy: json.loads(a["meta"].tobytes())).
    assert.equal(arrays.meta.dtype, "uint8");
    const meta = JSON.parse(new TextDecoder().decode(arrays.meta.data as Uint8Array));
    assert.deepEqual(meta, {
      dataset: datasetFingerprint(r.manifest),
      format: "ld3-sample",
      index: 0,
      seed: 3,
    });
    assert.match(meta.dataset, /^[0-9a-f]{64}$/);
  } finally {
    await gmm.cleanup();
  }
});

Deno.test("generateDataset() on an explicit sigma list records it as the grid", async () => {
  const gmm = await makeTinyGmm();
  try {
    const sigmas = [80, 5, 0.5, 0.002];
    const r = await generateDataset(
      gmm.config,
      options(join(gmm.dir, "data"), { skipType: undefined, steps: undefined, sigmas }),
    );
    assert.match(r.dir, /dpm_solver\+\+_NFE3_sigmas$/);
    assert.equal(r.manifest.grid.skip_type, "sigmas");
    // VE: the step times are the σ themselves.
    assert.deepEqual(r.manifest.grid.t1.map((t) => Number(t.toPrecision(12))), sigmas);
    await assert.rejects(
      () => generateDataset(gmm.config, options(join(gmm.dir, "other"), { sigmas })),
      /Give one of skipType, loadFrom, sigmas: got skipType and sigmas/,
    );
  } finally {
    await gmm.cleanup();
  }
});

/** The tiny model with a denoiser that throws from network call `failAt` on. */
async function failingModel(config: string, failAt: number) {
  const model = await loadModel(config);
  let calls = 0;
  const denoiser = {
    ...model.denoiser,
    denoise(x: Float64Array, t: number, info?: DenoiseInfo) {
      if (++calls >= failAt) throw new RangeError(`network call ${calls} failed`);
      return model.denoiser.denoise(x, t, info);
    },
  };
  return { ...model, denoiser };
}

Deno.test("generateDataset() that fails before its first sample leaves no trace", async () => {
  const gmm = await makeTinyGmm();
  try {
    const root = join(gmm.dir, "data");
    const model = await failingModel(gmm.config, 1);
    try {
      await assert.rejects(generateDataset(model, options(root)), /network call 1 failed/);
    } finally {
      await model.close();
    }
    // The data dir did not exist: it does not now, and a corrected rerun just works.
    assert.equal(await pathExists(root), false);
    const r = await generateDataset(gmm.config, options(root));
    assert.equal(r.generated, 9);
  } finally {
    await gmm.cleanup();
  }
});

Deno.test("generateDataset() that fails later keeps its samples, and a rerun finishes", async () => {
  const gmm = await makeTinyGmm();
  try {
    const reference = await generateDataset(gmm.config, options(join(gmm.dir, "ref")));
    const root = join(gmm.dir, "data");
    // 4 steps per batch of 4: the third batch's first call fails.
    const model = await failingModel(gmm.config, 9);
    try {
      await assert.rejects(generateDataset(model, options(root)), /network call 9 failed/);
    } finally {
      await model.close();
    }
    const dir = join(root, "dpm_solver++_NFE4_logSNR");
    assert.deepEqual(await readManifest(dir), reference.manifest);
    assert.deepEqual((await readDataset(dir, { requireComplete: false })).indices, [
      0,
      1,
      2,
      3,
      4,
      5,
      6,
      7,
    ]);
    const again = await generateDataset(gmm.config, options(root));
    assert.equal(again.generated, 1);
    assert.deepEqual(await hashTree(dir), await hashTree(reference.dir));
  } finally {
    await gmm.cleanup();
  }
});

Deno.test("a sample of another dataset is refused by readers and made again by generate", async () => {
  const gmm = await makeTinyGmm();
  try {
    const ours = await generateDataset(gmm.config, options(join(gmm.dir, "a")));
    const before = await hashTree(ours.dir);
    const theirs = await generateDataset(gmm.config, options(join(gmm.dir, "b"), { seed: 4 }));
    await Deno.copyFile(samplePath(theirs.dir, 5), samplePath(ours.dir, 5));
    const data = await readDataset(ours.dir);
    await assert.rejects(
      data.read(5),
      new RegExp(
        `Sample file ${samplePath(ours.dir, 5).replaceAll("+", "\\+")} is not sample 5 of ` +
          `dataset .*: it belongs to another dataset \\(seed 4`,
      ),
    );
    const again = await generateDataset(gmm.config, options(join(gmm.dir, "a")));
    assert.equal(again.generated, 1);
    assert.deepEqual(await hashTree(ours.dir), before);
  } finally {
    await gmm.cleanup();
  }
});

Deno.test("older sample files without a record are read, and checked by their noise", async () => {
  const gmm = await makeTinyGmm();
  try {
    const ours = await generateDataset(gmm.config, options(join(gmm.dir, "a")));
    const theirs = await generateDataset(gmm.config, options(join(gmm.dir, "b"), { seed: 4 }));
    const { shapes } = ours.manifest;
    // Rewrite every sample as an older ld3 wrote it (z and x only); sample 2 from seed 4.
    for (let i = 0; i < 9; i++) {
      const from = i === 2 ? theirs.dir : ours.dir;
      const s = decodeSample(await Deno.readFile(samplePath(from, i)), i, shapes);
      await Deno.writeFile(
        samplePath(ours.dir, i),
        encodeSample({ index: i, z: s.z, x: s.x }, shapes),
      );
    }
    const data = await readDataset(ours.dir);
    assert.equal((await data.read(2)).meta, undefined); // accepted as it is
    const again = await generateDataset(gmm.config, options(join(gmm.dir, "a")));
    assert.equal(again.generated, 1); // only sample 2: its z is not seed 3's
    const repaired = await data.read(2);
    assert.deepEqual(repaired.z, Float32Array.from(normalNoise(3, 2, 16)));
    assert.equal(repaired.meta?.seed, 3);
  } finally {
    await gmm.cleanup();
  }
});

Deno.test("decodeSample() names the file of a corrupt sample", () => {
  assert.throws(
    () => decodeSample(new Uint8Array(10), 3, { z: [1], x: [1] }, "/data/samples/000003.npz"),
    /^TypeError: \/data\/samples\/000003\.npz: Not an \.npz file/,
  );
});
