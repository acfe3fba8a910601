import assert from "node:assert/strict";
import {
  deserializeLd3Checkpoint,
  type Ld3Checkpoint,
  serializeLd3Checkpoint,
} from "../../lib/ld3/state.ts";
import type { Ld3Options } from "../../lib/ld3/trainer.ts";
import { base, checkpointAt, roundTrip, train } from "./_training_problem.ts";

/**
 * A phase-2 state after reloads and decays: patience 1 switches to full validation early and
 * then decays both learning rates, down to lr2's floor.
 */
const options: Ld3Options = {
  ...base,
  solverName: "uni_pc",
  patient: 1,
  lr2Patient: 3,
  minLrTime2: 0.02,
  trainingRoundsV2: 4,
};
// Each round saves 6 times (start, 4 steps, end): the 17th save is after round 2's last step.
const live = await checkpointAt(options, 17);

Deno.test("the state after real training steps has left its initial values", () => {
  assert.deepEqual([live.round, live.batch, live.globalStep], [2, 4, 12]);
  assert.ok(live.roundStarted && !live.validOnOne && !live.stopped);
  assert.ok(live.best !== null && live.best.loss > 0);
  assert.ok(live.rmsprop.step === 12 && live.rmsprop.lr < 0.005, "θ1 trained, lr1 decayed");
  assert.ok(live.sgd.step === 8 && live.sgd.lr === 0.02, "θ2 trained, lr2 on its floor");
  assert.equal(live.countMinLrHit, 2);
  assert.ok(live.current.theta2.some((v) => v !== 0));
  assert.ok(live.current.trainLatents.some((x, i) => x.some((v, j) => v !== train[i].z[j])));
  assert.deepEqual([...live.order].sort(), [0, 1, 2, 3, 4, 5, 6, 7]);
});

Deno.test("every field of the trainer state survives serialisation bit for bit", () => {
  const restored = roundTrip(live);
  // The keys of the live object, not a list kept by hand: a field the serialisation forgets
  // is missing here.
  assert.deepEqual(Object.keys(restored).sort(), Object.keys(live).sort());
  for (const key of Object.keys(live) as (keyof Ld3Checkpoint)[]) {
    assert.deepEqual(restored[key], live[key], `field ${key}`);
  }
  assert.deepEqual(restored, live);
  // Float vectors come back as float64 arrays, not as plain arrays that compare equal.
  assert.ok(restored.current.theta1 instanceof Float64Array);
  assert.ok(restored.best!.trainLatents[0] instanceof Float64Array);
});

Deno.test("the JSON part holds no latents: they are float64 tables named by field", () => {
  const { json, tables } = serializeLd3Checkpoint(live);
  assert.deepEqual(Object.keys(tables).sort(), [
    "best.trainLatents",
    "best.validLatents",
    "current.trainLatents",
    "current.validLatents",
  ]);
  assert.deepEqual(tables["current.trainLatents"].shape, [8, 32]);
  assert.equal(json.current.trainLatents, "current.trainLatents");
  assert.equal(json.globalStep, 12);
  assert.ok(JSON.stringify(json).length < 4000, "the JSON part stays small");
});

Deno.test("a checkpoint lacking a field or table, or of another version, is refused by name", () => {
  const { json, tables } = serializeLd3Checkpoint(live);
  const without = (key: string) =>
    Object.fromEntries(Object.entries(json).filter(([k]) => k !== key));
  assert.throws(
    () => deserializeLd3Checkpoint(without("countWorse"), tables),
    /lacks "countWorse"/,
  );
  const noTheta = { ...json, current: { ...json.current, theta2: undefined } };
  delete noTheta.current.theta2;
  assert.throws(() => deserializeLd3Checkpoint(noTheta, tables), /lacks "current\.theta2"/);
  const { ["best.validLatents"]: _, ...fewer } = tables;
  assert.throws(
    () => deserializeLd3Checkpoint(json, fewer, "ckpt.npz"),
    /ckpt\.npz lacks the table "best\.validLatents"/,
  );
  assert.throws(
    () => deserializeLd3Checkpoint({ ...json, version: 1 }, tables),
    /checkpoint of version 1, this ld3 reads version 2 only/,
  );
  assert.throws(
    () => deserializeLd3Checkpoint({ format: "other" }, tables),
    /not an ld3 checkpoint/,
  );
});
