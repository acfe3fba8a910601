/**
 * Optional: the diffusers exports through diffusers itself, when `/usr/bin/python3` can import
 * diffusers and torch (CI cannot: the test is then reported as ignored). The exported snippet's
 * `from_config` arguments and `set_timesteps` argument are run as printed
 * (`grid_export_diffusers_check.py`), and the scheduler's sigmas and timesteps must be the
 * learned grid's.
 */
import { join } from "node:path";
import { makeGridFile } from "../../lib/io/grid_file.ts";
import { logSnrGrid, toGrid } from "../../lib/step_grid.ts";
import {
  discreteBetas,
  flowSchedule,
  veSchedule,
  vpDiscreteSchedule,
} from "../../lib/noise_schedule.ts";
import { type ConsumerFormat, exportSchedule } from "../../lib/pipelines/grid_export.ts";

const PYTHON = "/usr/bin/python3";

function hasDiffusers(): boolean {
  try {
    const probe = new Deno.Command(PYTHON, {
      args: ["-c", "import diffusers, torch"],
      stdout: "null",
      stderr: "null",
    }).outputSync();
    return probe.success;
  } catch {
    return false;
  }
}

const SD_BASE = { beta_schedule: "scaled_linear", beta_start: 0.00085, beta_end: 0.012 };

function cases() {
  const sd = vpDiscreteSchedule({ betas: discreteBetas("scaled_linear", 1000) });
  const table = Array.from(
    { length: 1000 },
    (_, n) => sd.sigma((n + 1) / 1000) / sd.alpha((n + 1) / 1000),
  );
  const ve = veSchedule();
  const flow = flowSchedule();
  const vp = makeGridFile(sd, toGrid(logSnrGrid(sd, 5)));
  const vf = makeGridFile(ve, toGrid(logSnrGrid(ve, 5)));
  const ff = makeGridFile(flow, toGrid(logSnrGrid(flow, 5)));
  const one = (
    name: ConsumerFormat,
    file: typeof vp,
    scheduler: string,
    base: Record<string, unknown>,
    expect: (values: number[]) => Record<string, unknown>,
  ) => {
    const out = exportSchedule(file, name);
    return { name, scheduler, base, usage: out.usage, text: out.text, expect: expect(out.values) };
  };
  return [
    one("diffusers-euler", vp, "EulerDiscreteScheduler", SD_BASE, (v) => ({
      sigmas: v,
      rtol: 1e-6,
      timesteps: vp.t1.map((t) => (t - 1e-3) * 1000),
      timesteps_atol: 0.11,
    })),
    one("diffusers-flow-euler", ff, "FlowMatchEulerDiscreteScheduler", { shift: 3.0 }, () => ({
      sigmas: [...ff.t1, 0],
      rtol: 1e-6,
      timesteps: ff.t1.map((t) => t * 1000),
      timesteps_atol: 1e-3,
    })),
    one("diffusers-flow-unipc", ff, "UniPCMultistepScheduler", {
      use_flow_sigmas: true,
      prediction_type: "flow_prediction",
      flow_shift: 3.0,
    }, () => ({
      sigmas: [...ff.t1, 0],
      rtol: 1e-6,
      timesteps: ff.t1.map((t) => Math.trunc(t * 1000)),
      timesteps_atol: 0,
    })),
    one("diffusers-edm-euler", vf, "EDMEulerScheduler", {}, () => ({
      sigmas: [...vf.t1, 0],
      rtol: 1e-6,
      timesteps: vf.t1.map((s) => 0.25 * Math.log(s)),
      timesteps_atol: 1e-5,
    })),
    one("diffusers-dpmsolver", vp, "DPMSolverMultistepScheduler", SD_BASE, (v) => ({
      sigmas: [...v.map((n) => table[n]), 0],
      rtol: 1e-4,
      timesteps: v,
      timesteps_atol: 0,
    })),
  ];
}

Deno.test({
  name: "diffusers' own schedulers turn the exports back into the learned grids",
  ignore: !hasDiffusers(),
  async fn() {
    const child = new Deno.Command(PYTHON, {
      args: [join(import.meta.dirname!, "grid_export_diffusers_check.py")],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(JSON.stringify(cases())));
    await writer.close();
    const out = await child.output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    if (!out.success) throw new Error(`diffusers disagrees:\n${text}`);
  },
});
