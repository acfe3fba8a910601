import assert from "node:assert/strict";
import { featureStats, fidFromStats } from "../../lib/metrics/fid.ts";
import {
  addMoments,
  blockCover,
  blockTreeNodes,
  featureMoments,
  momentsStats,
  reduceBlockTree,
  treeMoments,
} from "../../lib/metrics/fid_moments.ts";
import { shardUnits } from "../../lib/shard.ts";

/** Features with a large common offset, the case where raw moments lose digits. */
function features(n: number, dim: number): Float64Array {
  return Float64Array.from(
    { length: n * dim },
    (_, i) => 50 + Math.sin(0.37 * i) + 0.5 * Math.cos(1.7 * i * i),
  );
}

Deno.test("blockCover() tiles any block range with aligned nodes, at most 2·log2 of them", () => {
  for (let first = 0; first <= 40; first++) {
    for (let end = first; end <= 40; end++) {
      const nodes = blockCover(first, end);
      let next = first;
      for (const { level, index } of nodes) {
        assert.equal(index * 2 ** level, next, `[${first}, ${end})`);
        next += 2 ** level;
      }
      assert.equal(next, end);
      assert.ok(nodes.length <= 2 * Math.ceil(Math.log2(end - first + 1)) + 1);
    }
  }
});

Deno.test("merged shards give one process's moments bit for bit, for every split", () => {
  const dim = 5;
  for (const [n, rows] of [[37, 4], [64, 8], [5, 3], [100, 7]]) {
    const x = features(n, dim);
    const shift = new Float64Array(dim).fill(50);
    const whole = treeMoments(x, n, rows, shift);
    const blocks = Math.ceil(n / rows);
    const block = (b: number) => featureMoments(x, b * rows, Math.min(rows, n - b * rows), shift);
    for (let count = 1; count <= 9; count++) {
      const nodes = Array.from({ length: count }, (_, index) => {
        const { first, end } = shardUnits(blocks, { index, count });
        return blockTreeNodes(block, first, end);
      }).flat();
      assert.deepEqual(reduceBlockTree(nodes, blocks), whole, `${n} rows in ${count} shards`);
    }
  }
});

Deno.test("the moments' statistics are the two-pass ones to float64 rounding", () => {
  const [n, dim] = [200, 6];
  const x = features(n, dim);
  const expected = featureStats(x, n, dim);
  const shift = expected.mu.map((m) => m + 0.01); // a reference mean: near, not equal
  const { mu, sigma } = momentsStats(treeMoments(x, n, 16, shift), shift);
  for (let i = 0; i < dim; i++) assert.ok(Math.abs(mu[i] - expected.mu[i]) < 1e-12);
  for (let i = 0; i < dim * dim; i++) {
    assert.ok(Math.abs(sigma[i] - expected.sigma[i]) < 1e-12 * (1 + Math.abs(expected.sigma[i])));
  }
});

Deno.test("reduceBlockTree() refuses a gap, an overlap and a node given twice", () => {
  const x = features(8, 2);
  const shift = new Float64Array(2);
  const block = (b: number) => featureMoments(x, b, 1, shift);
  const all = blockTreeNodes(block, 0, 8);
  assert.throws(
    () => reduceBlockTree(blockTreeNodes(block, 0, 6), 8),
    /Block 6 of 8 is not covered/,
  );
  assert.throws(
    () => reduceBlockTree([...all, ...blockTreeNodes(block, 2, 3)], 8),
    /overlap or lie past block 7: 1 of them unused/,
  );
  assert.throws(() => reduceBlockTree([...all, ...all], 8), /given twice/);
  assert.throws(() => addMoments(block(0), featureMoments(x, 0, 1, [0])), /do not add/);
  assert.throws(() => momentsStats(block(0), shift), /at least 2 feature vectors: got 1/);
});

Deno.test("a feature that does not vary gets variance 0, not a rounding below it, and FID works", () => {
  // 1.3 in all 3 rows: Σx² − (Σx)²/n rounds to −4.4e-16, which the pivoted Cholesky refuses.
  const n = 3;
  const f = new Float64Array(n * 2);
  for (let s = 0; s < n; s++) [f[2 * s], f[2 * s + 1]] = [1.3, Math.sin(s)];
  const m = featureMoments(f, 0, n, [0, 0]);
  assert.ok(m.outer[0] - m.sum[0] * m.sum[0] / n < 0, "the raw moments round below 0");
  const stats = momentsStats(m, [0, 0]);
  assert.equal(stats.sigma[0], 0);
  const fid = fidFromStats(stats, featureStats(features(8, 2), 8, 2));
  assert.ok(Number.isFinite(fid) && fid > 0, `${fid}`);
});
