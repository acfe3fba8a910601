import assert from "node:assert/strict";
import { join } from "node:path";
import { generateDataset } from "../../lib/pipelines/generate.ts";

const CONFIG = "configs/gmm-mnist.yml";

async function teacherData(): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "train_task_test_" });
  const r = await generateDataset(CONFIG, {
    dataDir: root,
    totalSamples: 8,
    samplingBatchSize: 8,
    steps: 20,
    solverName: "uni_pc",
    skipType: "edm",
    progress: false,
  });
  return r.dir;
}

function trainArgs(dataDir: string, logPath: string, extra: string[] = []): string[] {
  return [
    "run",
    "-A",
    "tasks/train.ts",
    "--config",
    CONFIG,
    "--data_dir",
    dataDir,
    "--log_path",
    logPath,
    "--solver_name",
    "uni_pc",
    "--steps",
    "4",
    "--loss_type",
    "L2",
    "--num_train",
    "4",
    "--num_valid",
    "4",
    "--training_rounds_v1",
    "1",
    "--training_rounds_v2",
    "2",
    "--quiet",
    ...extra,
  ];
}

async function run(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "piped" })
    .output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

const RUN = "uni_pc-N4-b0.049-L2-lr20.1rv11-rv22-seed0";

Deno.test("train: a kill after the first checkpoint, then --resume, gives the uninterrupted grid", async () => {
  const data = await teacherData();
  const root = await Deno.makeTempDir();
  const whole = await run(trainArgs(data, join(root, "whole")));
  assert.equal(whole.code, 0, whole.stderr);
  assert.match(
    whole.stdout,
    /grid\.json: 6 steps in .*\nloss on the validation samples' original latents: LD3 [\d.e-]+; start logSNR /,
  );
  assert.match(
    whole.stdout,
    /\nthe trainer's validation loss \(its log\) is from the original latents, best /,
  );

  const logPath = join(root, "killed");
  const child = new Deno.Command(Deno.execPath(), {
    args: trainArgs(data, logPath),
    stdout: "null",
    stderr: "null",
  }).spawn();
  const ckpt = join(logPath, RUN, "checkpoint.json");
  let killed = false;
  for (let i = 0; i < 600 && !killed; i++) {
    await new Promise((r) => setTimeout(r, 20));
    try {
      const c = JSON.parse(await Deno.readTextFile(ckpt));
      if (c.trainer.globalStep >= 1) {
        child.kill("SIGKILL");
        killed = true;
      }
    } catch { /* not written yet */ }
  }
  await child.status;
  assert.ok(killed, "the run never wrote a checkpoint");
  const c = JSON.parse(await Deno.readTextFile(ckpt));
  assert.ok(c.trainer.globalStep < 6 && !c.trainer.stopped, "the kill came after the end");

  const resumed = await run(trainArgs(data, logPath, ["--resume"]));
  assert.equal(resumed.code, 0, resumed.stderr);
  const a = JSON.parse(await Deno.readTextFile(join(root, "whole", RUN, "grid.json")));
  const b = JSON.parse(await Deno.readTextFile(join(logPath, RUN, "grid.json")));
  assert.deepEqual(b.t1, a.t1);
  assert.deepEqual(b.t2, a.t2);
  await Deno.remove(root, { recursive: true });
});

Deno.test("train: bad input is one error line, exit 1, nothing written", async () => {
  const data = await teacherData();
  const root = await Deno.makeTempDir();
  const cases: [string[], RegExp][] = [
    [["--prior_bound=-1"], /^error: --prior_bound must be a number >= 0: got -1\n$/],
    [
      ["--num_train", "6"],
      /^error: Dataset .* holds 8 samples: num_train \+ num_valid = 10 needed\n$/,
    ],
    [["--loss_type", "L3"], /^error: --loss_type must be one of L2, L1, LPIPS: got "L3"/],
    [["--resume"], /^error: Nothing to resume/],
    [["--bogus"], /^error: .*bogus/],
  ];
  for (const [extra, pattern] of cases) {
    const r = await run(trainArgs(data, root, extra));
    assert.equal(r.code, 1, extra.join(" "));
    assert.match(r.stderr, pattern);
    assert.equal(r.stderr.trim().split("\n").length, 1);
  }
  assert.deepEqual([...Deno.readDirSync(root)], []);
  await Deno.remove(root, { recursive: true });
});
