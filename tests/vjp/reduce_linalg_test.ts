/** Per-op finite-difference checks of reductions, softmax and matrix products. */
import { checkVjp, type ModelSpec } from "./_harness.ts";

Deno.test("buildVjpModel() differentiates reductions over random axes", async () => {
  const cases: [number[], number][] = [[[1], 1], [[0, 2], 0], [[-1], 1], [[], 0]];
  let seed = 1;
  for (
    const op of [
      "ReduceSum",
      "ReduceMean",
      "ReduceSumSquare",
      "ReduceL2",
      "ReduceLogSumExp",
      "ReduceMax",
    ]
  ) {
    for (const [axes, keepdims] of cases) {
      // ReduceSum takes axes as an input since opset 13, the others since opset 18
      const consts: ModelSpec["consts"] = axes.length
        ? { axes: { values: axes, dims: [axes.length], int: true } }
        : {};
      await checkVjp({
        inputs: { x: [2, 3, 4] },
        consts,
        nodes: [{ op, inputs: axes.length ? ["x", "axes"] : ["x"], attrs: { keepdims } }],
        outputs: ["y"],
        opset: 18,
      }, { wrt: ["x"], seed: seed++ });
    }
  }
  // opset 17: axes as an attribute
  await checkVjp({
    inputs: { x: [2, 3, 4] },
    nodes: [{ op: "ReduceMean", inputs: ["x"], attrs: { axes: [1, 2], keepdims: 0 } }],
    outputs: ["y"],
  }, { wrt: ["x"] });
});

Deno.test("buildVjpModel() differentiates Softmax and LogSoftmax on every axis", async () => {
  for (const op of ["Softmax", "LogSoftmax"]) {
    for (const axis of [0, 1, -1]) {
      await checkVjp({
        inputs: { x: [2, 3, 4] },
        nodes: [{ op, inputs: ["x"], attrs: { axis } }],
        outputs: ["y"],
      }, { wrt: ["x"], seed: axis + 5 });
    }
  }
});

Deno.test("buildVjpModel() differentiates MatMul with batch broadcasting and 1-D operands", async () => {
  const cases: [number[], number[]][] = [
    [[3, 4], [4, 5]],
    [[2, 3, 4], [4, 5]],
    [[2, 1, 3, 4], [3, 4, 2]],
    [[4], [2, 4, 3]],
    [[2, 3, 4], [4]],
    [[4], [4]],
  ];
  let seed = 1;
  for (const [a, b] of cases) {
    await checkVjp({
      inputs: { a, b },
      nodes: [{ op: "MatMul", inputs: ["a", "b"] }],
      outputs: ["y"],
    }, { wrt: ["a", "b"], seed: seed++ });
  }
});

Deno.test("buildVjpModel() differentiates Gemm for every transA/transB/alpha/beta", async () => {
  let seed = 1;
  for (const transA of [0, 1]) {
    for (const transB of [0, 1]) {
      await checkVjp({
        inputs: {
          a: transA ? [4, 3] : [3, 4],
          b: transB ? [5, 4] : [4, 5],
          c: seed % 2 ? [5] : [3, 1],
        },
        nodes: [{
          op: "Gemm",
          inputs: ["a", "b", "c"],
          attrs: { transA, transB, alpha: { f: 0.5 + seed }, beta: { f: 1.5 - seed / 2 } },
        }],
        outputs: ["y"],
      }, { wrt: ["a", "b", "c"], seed: seed++ });
    }
  }
});

Deno.test("buildVjpModel() differentiates Einsum patterns", async () => {
  const cases: [string, number[][]][] = [
    ["ij,jk->ik", [[3, 4], [4, 5]]],
    ["bij,bjk->bik", [[2, 3, 4], [2, 4, 5]]],
    ["bhqd,bhkd->bhqk", [[2, 2, 3, 4], [2, 2, 5, 4]]],
    ["...ij,...j->...i", [[2, 3, 4], [2, 4]]],
    ["ij,ij->i", [[3, 4], [3, 4]]],
    ["ij,kl->il", [[3, 4], [2, 5]]],
    ["ij,jk", [[3, 4], [4, 5]]],
    ["ijk->kj", [[2, 3, 4]]],
  ];
  let seed = 1;
  for (const [equation, shapes] of cases) {
    const names = shapes.map((_, i) => `in${i}`);
    await checkVjp({
      inputs: Object.fromEntries(shapes.map((s, i) => [names[i], s])),
      nodes: [{ op: "Einsum", inputs: names, attrs: { equation } }],
      outputs: ["y"],
    }, { wrt: names, seed: seed++ });
  }
});
