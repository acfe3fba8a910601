/**
 * A small LD3 training problem shared by the trainer, state and run-checkpoint tests: a 4-component
 * mixture in 32 dimensions, its UniPC teacher (20 steps on the EDM grid), 8 training and 8
 * validation pairs, and options that train in a few milliseconds.
 *
 * @module
 */
import { edmGrid, toGrid } from "../../lib/step_grid.ts";
import { l2Loss } from "../../lib/metrics/losses.ts";
import { type Ld3Io, type Ld3Options, type Ld3Sample, trainLd3 } from "../../lib/ld3/trainer.ts";
import {
  deserializeLd3Checkpoint,
  type Ld3Checkpoint,
  serializeLd3Checkpoint,
} from "../../lib/ld3/state.ts";
import { veSchedule } from "../../lib/noise_schedule.ts";
import { solve } from "../../lib/solvers/mod.ts";
import { latents, smallGmm } from "./_gmm_problem.ts";

export const schedule = veSchedule();
export const dim = 32;
export const gmm = smallGmm(schedule, { dim, components: 4 });
const teacherGrid = toGrid(edmGrid(schedule, 20));

async function teach(z: Float64Array): Promise<Ld3Sample> {
  const teacher = await solve("uni_pc", gmm, z.map((v) => v * schedule.priorScale), teacherGrid);
  return { z, teacher };
}
export const train = await Promise.all(latents(1, 0, 8, dim).map(teach));
export const valid = await Promise.all(latents(1, 100, 8, dim).map(teach));

/** The model, loss and data of the problem. */
export const io: Ld3Io = { denoiser: gmm, loss: l2Loss, train, valid };

/**
 * NFE-4 training, one phase-1 and two phase-2 rounds of 4 steps. It validates on the relaxed
 * latents, as the reference: the state tests below were laid out for its reloads and decays.
 */
export const base: Ld3Options = {
  validLatents: "relaxed",
  steps: 4,
  trainingRoundsV1: 1,
  trainingRoundsV2: 2,
  validBatchSize: 8,
  priorBound: 0.05,
  seed: 3,
};

/**
 * The checkpoint a run hands out at its `count`-th save, the run stopped right after it (as
 * if killed there).
 */
export async function checkpointAt(options: Ld3Options, count: number): Promise<Ld3Checkpoint> {
  let saved: Ld3Checkpoint | undefined;
  let saves = 0;
  const killed = new Error("killed");
  try {
    await trainLd3(options, {
      ...io,
      saveCheckpoint(checkpoint) {
        saved = checkpoint;
        if (++saves === count) throw killed;
      },
    });
  } catch (e) {
    if (e !== killed) throw e;
  }
  if (saves < count) throw new Error(`The run saved ${saves} checkpoints, not ${count}`);
  return saved!;
}

/** A checkpoint through the trainer's serialisation, its JSON part through text. */
export function roundTrip(checkpoint: Ld3Checkpoint): Ld3Checkpoint {
  const { json, tables } = serializeLd3Checkpoint(checkpoint);
  return deserializeLd3Checkpoint(JSON.parse(JSON.stringify(json)), tables);
}
