import assert from "node:assert/strict";
import { join } from "node:path";
import { pathExists } from "../../../lib/io/fs.ts";
import { loadGridFile } from "../../../lib/io/grid_file.ts";
import { type Ld3GridEntry, trainLd3Grids } from "../../../lib/pipelines/train/grid_set.ts";
import { makeTinyGmm } from "../../_tiny_gmm.ts";

Deno.test("trainLd3Grids() trains the missing grids of a matrix once, then keeps them", async () => {
  const gmm = await makeTinyGmm();
  try {
    const ld3Dir = join(gmm.dir, "grids");
    const seen: string[] = [];
    const options = {
      solvers: ["uni_pc", "heun"],
      nfes: [3, 4],
      ld3Dir,
      workDir: join(gmm.dir, "work"),
      samples: 4,
      rounds: { v1: 1, v2: 0 },
      progress: false as const,
      onGrid: (g: Ld3GridEntry) => seen.push(`${g.solver}/${g.nfe} ${g.status}`),
    };
    const first = await trainLd3Grids(gmm.config, options);
    // Heun spends 2N − 1 NFE on N steps (the last one is an Euler step): NFE 3, not NFE 4.
    assert.deepEqual(first.map((e) => `${e.solver}/${e.nfe} ${e.status}`), [
      "uni_pc/3 trained",
      "uni_pc/4 trained",
      "heun/3 trained",
      "heun/4 n/a",
    ]);
    assert.deepEqual(seen, ["uni_pc/3 trained", "uni_pc/4 trained", "heun/3 trained"]);
    const file = await loadGridFile(join(ld3Dir, "uni_pc-NFE4.json"));
    assert.equal(file.nfe, 4);
    assert.equal(file.solver, "uni_pc");
    assert.ok((file.meta?.train_seconds as number) > 0);
    assert.equal(file.meta?.train_seconds, first[1].trainSeconds);
    assert.equal((await loadGridFile(join(ld3Dir, "heun-NFE3.json"))).steps, 2);
    assert.equal(await pathExists(join(ld3Dir, "heun-NFE4.json")), false);

    // Everything there: nothing is trained, the files are kept as they are.
    const before = await Deno.readTextFile(join(ld3Dir, "uni_pc-NFE3.json"));
    const again = await trainLd3Grids(gmm.config, { ...options, onGrid: undefined });
    assert.deepEqual(again.map((e) => e.status), ["kept", "kept", "kept", "n/a"]);
    assert.equal(await Deno.readTextFile(join(ld3Dir, "uni_pc-NFE3.json")), before);

    // A deleted grid is made again by resuming its finished run: the same grid.
    await Deno.remove(join(ld3Dir, "uni_pc-NFE3.json"));
    const redo = await trainLd3Grids(gmm.config, { ...options, onGrid: undefined });
    assert.equal(redo[0].status, "trained");
    const a = JSON.parse(before);
    const b = JSON.parse(await Deno.readTextFile(join(ld3Dir, "uni_pc-NFE3.json")));
    assert.deepEqual(b.t1, a.t1);
    assert.deepEqual(b.t2, a.t2);

    await assert.rejects(
      () => trainLd3Grids(gmm.config, { ...options, solvers: ["rk4"] }),
      /solvers must be one of .*: got "rk4"/,
    );
    await assert.rejects(
      () => trainLd3Grids(gmm.config, { ...options, samples: 1 }),
      /samples must be an integer >= 2: got 1/,
    );
  } finally {
    await gmm.cleanup();
  }
});
