import assert from "node:assert/strict";
import { edmGrid, logSnrGrid, toGrid } from "../../lib/step_grid.ts";
import { l2Loss } from "../../lib/metrics/losses.ts";
import { distance } from "../../lib/ld3/ball.ts";
import {
  type Ld3Checkpoint,
  type Ld3Options,
  resolveLd3Options,
  roundOrder,
  trainLd3,
} from "../../lib/ld3/trainer.ts";
import type { Grid } from "../../lib/solvers/plan.ts";
import { solve, type SolverName } from "../../lib/solvers/mod.ts";
import {
  base,
  checkpointAt,
  dim,
  gmm,
  io,
  roundTrip,
  schedule,
  train,
  valid,
} from "./_training_problem.ts";

/** Validation L2 to the teacher from the original (unrelaxed) latents. */
async function validL2(name: SolverName, grid: Grid): Promise<number> {
  let s = 0;
  for (const v of valid) {
    const out = await solve(name, gmm, v.z.map((x) => x * schedule.priorScale), grid);
    s += (await l2Loss.value(out, v.teacher, 1))[0];
  }
  return s / valid.length;
}

for (const name of ["ipndm", "uni_pc"] as const) {
  Deno.test(`trainLd3() beats the logSNR and EDM grids at NFE 4 (${name})`, async () => {
    const r = await trainLd3({ ...base, solverName: name }, {
      denoiser: gmm,
      loss: l2Loss,
      train,
      valid,
    });
    const learned = await validL2(name, r.grid);
    const logSnr = await validL2(name, toGrid(logSnrGrid(schedule, 4)));
    const edm = await validL2(name, toGrid(edmGrid(schedule, 4)));
    assert.ok(learned < logSnr && learned < edm, `LD3 ${learned}, logSNR ${logSnr}, EDM ${edm}`);
    assert.ok(r.history.some((e) => e.type === "step"));
    // Relaxed latents never leave their balls.
    for (
      const [set, lat] of [[train, r.checkpoint.current.trainLatents], [
        valid,
        r.checkpoint.current.validLatents,
      ]] as const
    ) {
      set.forEach((s, i) => {
        assert.ok(distance(Float64Array.from(lat[i]), s.z, 0, dim) <= 0.05);
      });
    }
  });
}

Deno.test("trainLd3() is deterministic and resumes bit for bit", async () => {
  const options: Ld3Options = { ...base, solverName: "dpm_solver++", timeMode: "time" };
  const a = await trainLd3(options, io);
  const b = await trainLd3(options, io);
  assert.deepEqual(a.grid, b.grid);
  assert.equal(a.bestValidLoss, b.bestValidLoss);
  // A run "killed" after its 5th training step (the 8th save: round 0 saves at its start, after
  // each of its 4 steps and at its end), resumed from that checkpoint through the serialisation.
  const ckpt = roundTrip(await checkpointAt(options, 8));
  assert.equal(ckpt.globalStep, 5);
  const c = await trainLd3(options, { ...io, resumeFrom: ckpt });
  assert.deepEqual(c.grid, a.grid);
  assert.equal(c.bestValidLoss, a.bestValidLoss);
  assert.deepEqual(c.checkpoint, a.checkpoint);
  // The history of the resumed run is the uninterrupted one's from the checkpoint on.
  const from = a.history.findIndex((e) => e.type === "step" && e.step === 6);
  assert.deepEqual(c.history, a.history.slice(from));
});

Deno.test("trainLd3() with match_prior starts from the prior grid and no_v1 skips phase 1", async () => {
  const prior = edmGrid(schedule, 4);
  const events: string[] = [];
  const r = await trainLd3(
    { ...base, solverName: "ipndm", priorGrid: prior, noV1: true, trainingRoundsV2: 1, lrTime1: 0 },
    { denoiser: gmm, loss: l2Loss, train, valid, onEvent: (e) => events.push(e.type) },
  );
  // With lr1 = 0, θ1 never moves: the learned step grid is the prior.
  for (let k = 0; k < prior.length; k++) {
    assert.ok(Math.abs(r.grid.t1[k] - prior[k]) <= 1e-9 * prior[k]);
  }
  assert.equal(events.filter((e) => e === "round").length, 1);
});

Deno.test("trainLd3() rejects bad inputs with clear errors", async () => {
  await assert.rejects(() => trainLd3({ ...base, priorBound: -1 }, io), /priorBound/);
  await assert.rejects(() => trainLd3({ ...base, steps: 0 }, io), /steps/);
  await assert.rejects(
    () =>
      trainLd3(base, {
        ...io,
        train: [{ z: new Float64Array(3), teacher: new Float64Array(dim) }],
      }),
    /train\[0\]\.z/,
  );
  const other = await trainLd3({ ...base, trainingRoundsV1: 0, trainingRoundsV2: 0 }, io);
  await assert.rejects(
    () => trainLd3({ ...base, steps: 5 }, { ...io, resumeFrom: other.checkpoint }),
    /another run \(differs in: steps\)/,
  );
  // Same everything but the starting grid: still another run.
  await assert.rejects(
    () =>
      trainLd3({ ...base, priorGrid: edmGrid(schedule, base.steps ?? 4) }, {
        ...io,
        resumeFrom: other.checkpoint,
      }),
    /another run \(differs in: prior\)/,
  );
  // A checkpoint of the first format (its fields differ) is refused by its version.
  const old = { ...other.checkpoint, version: 1 } as unknown as Ld3Checkpoint;
  await assert.rejects(
    () => trainLd3(base, { ...io, resumeFrom: old }),
    /checkpoint of version 1, this ld3 reads version 2 only/,
  );
});

Deno.test("resolveLd3Options() fills in the spec's defaults", () => {
  const o = resolveLd3Options({}, 3072);
  assert.equal(o.solverName, "uni_pc");
  assert.equal(o.steps, 10);
  assert.equal(o.timeMode, "lambda");
  assert.ok(Math.abs(o.priorBound - 0.03072) < 1e-15);
  assert.equal(o.shiftLr, 1.2);
  assert.equal(o.lrTime1, 0.005);
  assert.equal(o.trainBatchSize, 2);
  assert.equal(o.validBatchSize, 150);
  // The reference's single validation batch is its first validation-loader batch.
  assert.equal(o.validOneBatchSize, 150);
  assert.equal(resolveLd3Options({ validBatchSize: 8 }, 3072).validOneBatchSize, 8);
  assert.equal(resolveLd3Options({ validOneBatchSize: 2 }, 3072).validOneBatchSize, 2);
});

Deno.test("trainLd3() decays only lr1 on phase-1 patience, and lr2 too in phase 2", async () => {
  const r = await trainLd3(
    {
      ...base,
      solverName: "ipndm",
      patient: 1,
      validOneBatchSize: 2,
      trainingRoundsV1: 1,
      trainingRoundsV2: 1,
    },
    { denoiser: gmm, loss: l2Loss, train, valid },
  );
  const reloads = r.history.filter((e) => e.type === "reload");
  const lr2 = 0.1 / 4;
  const phase1 = reloads.filter((e) => e.round === 0);
  const phase2 = reloads.filter((e) => e.round === 1);
  assert.ok(phase1.length >= 2 && phase2.length >= 1, JSON.stringify(reloads));
  for (const e of phase1) assert.equal(e.lr2, lr2, "phase 1 leaves lr2 alone");
  assert.ok(phase1.at(-1)!.lr1 < 0.005, "phase 1 decays lr1");
  assert.ok(phase2.at(-1)!.lr2 < lr2, "phase 2 decays lr2");
});

Deno.test("roundOrder() is a seeded permutation", () => {
  const a = roundOrder(10, 1, 0);
  assert.deepEqual([...a].sort((x, y) => x - y), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual(roundOrder(10, 1, 0), a);
  assert.notDeepEqual(roundOrder(10, 1, 1), a);
});

Deno.test("trainLd3() resumes exactly through reloads, decays and the lr2-floor stop", async () => {
  const options: Ld3Options = {
    ...base,
    solverName: "uni_pc",
    patient: 1,
    lr2Patient: 2,
    minLrTime2: 0.02,
    trainingRoundsV2: 4,
  };
  const full = await trainLd3(options, io);
  const types = full.history.map((e) => e.type);
  assert.ok(types.includes("reload"), "patience reloads happened");
  const stop = full.history.at(-1)!;
  assert.ok(stop.type === "stop" && stop.reason === "lr2_floor", JSON.stringify(stop));
  for (const killAt of [1, 3, 6, 9]) {
    const saved = roundTrip(await checkpointAt(options, killAt));
    const resumed = await trainLd3(options, { ...io, resumeFrom: saved });
    assert.deepEqual(resumed.grid, full.grid, `killed at checkpoint ${killAt}`);
    assert.deepEqual(resumed.checkpoint, full.checkpoint);
    assert.deepEqual(
      resumed.history,
      full.history.slice(full.history.length - resumed.history.length),
    );
  }
});

Deno.test("trainLd3() does not validate the best again when its one batch covered every sample", async () => {
  let validationCalls = 0;
  const counting = {
    schedule: gmm.schedule,
    sampleShape: gmm.sampleShape,
    denoise(x: Float64Array, t: number, info?: Parameters<typeof gmm.denoise>[2]) {
      if (x.length === valid.length * dim) validationCalls++;
      return gmm.denoise(x, t, info);
    },
    vjp: (...args: Parameters<typeof gmm.vjp>) => gmm.vjp(...args),
  };
  // The default one batch (150) holds all 8 validation samples.
  const r = await trainLd3({ ...base, solverName: "ipndm", patient: 1 }, {
    ...io,
    denoiser: counting,
  });
  const reloads = r.history.filter((e) => e.type === "reload");
  assert.ok(reloads.some((e) => e.full), "the switch to full validation happened");
  const validations = r.history.filter((e) => e.type === "validation").length;
  assert.equal(validationCalls, validations * 4, "one trajectory (NFE 4) per validation event");
  // The best keeps the loss measured when it was found, unless the next validation beats it.
  const switched = r.history.findIndex((e) => e.type === "reload");
  const before = r.history.slice(0, switched).findLast((e) => e.type === "validation");
  const after = r.history.slice(switched).find((e) => e.type === "validation");
  assert.ok(before?.type === "validation" && after?.type === "validation");
  assert.ok(after.improved ? after.loss < before.best : after.best === before.best);
});
