/**
 * FID's feature statistics as *sufficient statistics* that shards of an evaluation compute apart
 * and a merge adds up, with the very float64 result one process gets.
 *
 * The moments of a set of feature vectors `x` are its count, `Σ (x − c)` and `Σ (x − c)(x − c)ᵀ`
 * about a fixed shift `c` (the reference statistics' mean: close to the samples' mean, so the
 * covariance `(Σ dd ᵀ − s sᵀ/n)/(n − 1)` loses no digits to cancellation). Floating-point sums
 * depend on their order, so the order is fixed once for every way of splitting the work:
 *
 * - the samples are cut into *blocks* (an evaluation's batches); a block's moments add its rows
 *   in index order ({@linkcode featureMoments});
 * - blocks `0 … M − 1` are the leaves of a binary tree whose node `(l, i)` holds blocks
 *   `[i·2^l, (i+1)·2^l)`; a node is the sum of its two children, or its left child alone where
 *   the right one lies past the last block ({@linkcode reduceBlockTree}).
 *
 * A shard that owns blocks `[a, b)` keeps the few nodes that tile its range exactly
 * ({@linkcode blockCover}, at most `2·log₂ M` of them), each computed by the same recursion; a
 * merge reduces the tiles of all shards to the root. One process is the shard that owns
 * everything, so its statistics and a merged run's are the same bits, for any number of shards.
 *
 * @module
 */
import type { FeatureStats } from "./fid.ts";

/** The moments of a set of feature vectors about a shift `c`. */
export interface FeatureMoments {
  /** Number of vectors. */
  count: number;
  /** `Σ (x − c)`, length `dim`. */
  sum: Float64Array;
  /**
   * `Σ (x − c)(x − c)ᵀ`, the lower triangle packed row by row: entry `(i, j ≤ i)` at
   * `i(i+1)/2 + j`, length `dim(dim+1)/2`.
   */
  outer: Float64Array;
}

/** Length of the packed lower triangle of a `dim × dim` matrix. */
export function packedLength(dim: number): number {
  return dim * (dim + 1) / 2;
}

/** Zero moments of dimension `dim`. */
export function emptyMoments(dim: number): FeatureMoments {
  return { count: 0, sum: new Float64Array(dim), outer: new Float64Array(packedLength(dim)) };
}

/**
 * The moments of `rows` feature vectors of length `shift.length`, starting at row `from` of the
 * row-major `features`, about `shift`; the rows are added in order, four at a time.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const m = featureMoments(new Float64Array([1, 2, 3, 4]), 0, 2, new Float64Array([1, 1]));
 * assert.deepEqual([...m.sum], [2, 4]);
 * assert.deepEqual([...m.outer], [4, 6, 10]); // (0,0) (1,0) (1,1) of Σ d dᵀ
 * ```
 *
 * @throws {RangeError} When the rows run past the end of `features`.
 */
export function featureMoments(
  features: ArrayLike<number>,
  from: number,
  rows: number,
  shift: ArrayLike<number>,
): FeatureMoments {
  const dim = shift.length;
  if (from < 0 || rows < 0 || (from + rows) * dim > features.length) {
    throw new RangeError(
      `Rows ${from}…${from + rows - 1} of dimension ${dim} lie past the ${features.length} values`,
    );
  }
  const m = emptyMoments(dim);
  m.count = rows;
  const block = [0, 1, 2, 3].map(() => new Float64Array(dim));
  const [c0, c1, c2, c3] = block;
  for (let s = 0; s < rows; s += 4) {
    for (let t = 0; t < 4; t++) {
      const ct = block[t];
      if (s + t < rows) {
        const o = (from + s + t) * dim;
        for (let i = 0; i < dim; i++) ct[i] = features[o + i] - shift[i];
      } else {
        ct.fill(0);
      }
    }
    const { sum, outer } = m;
    for (let i = 0; i < dim; i++) {
      const a0 = c0[i], a1 = c1[i], a2 = c2[i], a3 = c3[i];
      sum[i] += a0 + a1 + a2 + a3;
      const ri = i * (i + 1) / 2;
      for (let j = 0; j <= i; j++) {
        outer[ri + j] += a0 * c0[j] + a1 * c1[j] + a2 * c2[j] + a3 * c3[j];
      }
    }
  }
  return m;
}

/** `a + b`, a new value (neither argument changes). */
export function addMoments(a: FeatureMoments, b: FeatureMoments): FeatureMoments {
  if (a.sum.length !== b.sum.length) {
    throw new RangeError(`Moments of dimensions ${a.sum.length} and ${b.sum.length} do not add`);
  }
  const sum = a.sum.slice();
  const outer = a.outer.slice();
  for (let i = 0; i < sum.length; i++) sum[i] += b.sum[i];
  for (let i = 0; i < outer.length; i++) outer[i] += b.outer[i];
  return { count: a.count + b.count, sum, outer };
}

/**
 * Mean and covariance (divided by `count − 1`, as `featureStats`) of moments taken about
 * `shift`.
 *
 * @throws {RangeError} For fewer than 2 vectors.
 */
export function momentsStats(m: FeatureMoments, shift: ArrayLike<number>): FeatureStats {
  const n = m.count;
  if (n < 2) throw new RangeError(`Statistics need at least 2 feature vectors: got ${n}`);
  const dim = shift.length;
  const mu = new Float64Array(dim);
  for (let i = 0; i < dim; i++) mu[i] = shift[i] + m.sum[i] / n;
  const sigma = new Float64Array(dim * dim);
  for (let i = 0; i < dim; i++) {
    const ri = i * (i + 1) / 2;
    for (let j = 0; j <= i; j++) {
      const v = (m.outer[ri + j] - m.sum[i] * m.sum[j] / n) / (n - 1);
      sigma[i * dim + j] = v;
      sigma[j * dim + i] = v;
    }
  }
  return { mu, sigma };
}

/** A node of the block tree: blocks `[index·2^level, (index+1)·2^level)`. */
export interface BlockNode {
  /** Height in the tree: the node spans 2^level blocks. */
  level: number;
  /** Position among the nodes of its level. */
  index: number;
}

/** A node of the block tree and the moments of its blocks. */
export interface MomentNode extends BlockNode {
  /** Feature moments of the node's blocks, added in the fixed order. */
  moments: FeatureMoments;
}

/**
 * The nodes of the block tree that tile blocks `[first, end)` exactly, left to right: from each
 * start the largest aligned node that fits.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.deepEqual(blockCover(3, 8), [
 *   { level: 0, index: 3 }, // block 3
 *   { level: 2, index: 1 }, // blocks 4…7
 * ]);
 * ```
 */
export function blockCover(first: number, end: number): BlockNode[] {
  if (!(Number.isSafeInteger(first) && Number.isSafeInteger(end) && 0 <= first && first <= end)) {
    throw new RangeError(`Block range must be integers 0 <= first <= end: got [${first}, ${end})`);
  }
  const nodes: BlockNode[] = [];
  for (let a = first; a < end;) {
    let level = 0;
    while (a % 2 ** (level + 1) === 0 && a + 2 ** (level + 1) <= end) level++;
    nodes.push({ level, index: a / 2 ** level });
    a += 2 ** level;
  }
  return nodes;
}

/**
 * The moments of the nodes tiling blocks `[first, end)` ({@linkcode blockCover}), each the sum
 * of its two children down to the blocks' own moments, `block(b)`.
 */
export function blockTreeNodes(
  block: (b: number) => FeatureMoments,
  first: number,
  end: number,
): MomentNode[] {
  const value = (level: number, index: number): FeatureMoments =>
    level === 0
      ? block(index)
      : addMoments(value(level - 1, 2 * index), value(level - 1, 2 * index + 1));
  return blockCover(first, end).map(({ level, index }) => ({
    level,
    index,
    moments: value(level, index),
  }));
}

/** Levels of the tree over `blocks` leaves: the root's level. */
function rootLevel(blocks: number): number {
  let level = 0;
  while (2 ** level < blocks) level++;
  return level;
}

/**
 * The root of the tree over blocks `0 … blocks − 1` from nodes that tile them (the nodes of all
 * shards): a node that is given is taken as it is, any other is the sum of its children, or its
 * left child alone where the right one lies past the last block.
 *
 * @throws {RangeError} When the nodes leave a block uncovered or overlap.
 */
export function reduceBlockTree(nodes: readonly MomentNode[], blocks: number): FeatureMoments {
  if (!Number.isSafeInteger(blocks) || blocks < 1) {
    throw new RangeError(`blocks must be an integer >= 1: got ${blocks}`);
  }
  const given = new Map<string, MomentNode>();
  for (const node of nodes) {
    const key = `${node.level}/${node.index}`;
    if (given.has(key)) throw new RangeError(`Block node ${key} is given twice`);
    given.set(key, node);
  }
  let used = 0;
  const value = (level: number, index: number): FeatureMoments | undefined => {
    const node = given.get(`${level}/${index}`);
    if (node) {
      used++;
      return node.moments;
    }
    if (index * 2 ** level >= blocks) return undefined;
    if (level === 0) throw new RangeError(`Block ${index} of ${blocks} is not covered`);
    const left = value(level - 1, 2 * index)!;
    const right = value(level - 1, 2 * index + 1);
    return right === undefined ? left : addMoments(left, right);
  };
  const root = value(rootLevel(blocks), 0)!;
  if (used !== given.size) {
    throw new RangeError(
      `Block nodes overlap or lie past block ${blocks - 1}: ${given.size - used} of them unused`,
    );
  }
  return root;
}

/**
 * The moments of `count` feature vectors in blocks of `blockRows` rows, summed over the block
 * tree: what one process computes, and what the merged shards of the same blocks add up to.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * const x = Float64Array.from({ length: 20 }, (_, i) => Math.sin(i));
 * const shift = new Float64Array(2);
 * const whole = treeMoments(x, 10, 3, shift);
 * // Two shards: blocks 0…1 and 2…3 (rows 0…5 and 6…9), merged.
 * const block = (b: number) => featureMoments(x, 3 * b, Math.min(3, 10 - 3 * b), shift);
 * const merged = reduceBlockTree(
 *   [...blockTreeNodes(block, 0, 2), ...blockTreeNodes(block, 2, 4)],
 *   4,
 * );
 * assert.deepEqual(merged, whole);
 * ```
 */
export function treeMoments(
  features: ArrayLike<number>,
  count: number,
  blockRows: number,
  shift: ArrayLike<number>,
): FeatureMoments {
  if (!Number.isSafeInteger(blockRows) || blockRows < 1) {
    throw new RangeError(`blockRows must be an integer >= 1: got ${blockRows}`);
  }
  const blocks = Math.ceil(count / blockRows);
  if (blocks === 0) return emptyMoments(shift.length);
  const block = (b: number) =>
    featureMoments(features, b * blockRows, Math.min(blockRows, count - b * blockRows), shift);
  return reduceBlockTree(blockTreeNodes(block, 0, blocks), blocks);
}
