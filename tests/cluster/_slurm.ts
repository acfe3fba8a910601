/**
 * Test helper: a single-node Slurm cluster of Debian's packages (`slurm-wlm`, `munge`), started
 * for one test in a temporary folder without systemd: `munged`, `slurmctld` and `slurmd` run in
 * the foreground as children of the test, on free ports, with a generated `slurm.conf`, state
 * and spool folders, and a fresh munge key; {@linkcode SlurmCluster.stop} ends them.
 *
 * Starting needs root (slurmd runs jobs as their users, munged and slurmd refuse otherwise) and
 * the binaries; {@linkcode slurmUnavailable} says why not in one line.
 *
 * @module
 */
import { join } from "node:path";

/** The daemons and client commands a cluster needs. */
const BINARIES = ["munged", "slurmctld", "slurmd", "sbatch", "sinfo", "scontrol"];

/** The path of an executable on PATH (or /usr/sbin, where Debian puts the daemons). */
function which(name: string): string | undefined {
  const dirs = [...(Deno.env.get("PATH") ?? "").split(":"), "/usr/sbin", "/sbin"];
  for (const dir of dirs) {
    try {
      const path = join(dir, name);
      if (Deno.statSync(path).isFile) return path;
    } catch { /* not here */ }
  }
  return undefined;
}

/** Why a cluster cannot be started here (one line), or undefined when it can be tried. */
export function slurmUnavailable(): string | undefined {
  if (Deno.uid() !== 0) return "not root (munged and slurmd need root)";
  const missing = BINARIES.filter((b) => which(b) === undefined);
  if (missing.length > 0) {
    return `no ${missing.join(", ")} (apt-get install slurm-wlm munge; .ci/run does)`;
  }
  return undefined;
}

/** A free TCP port on loopback (closed again: the daemon takes it). */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** A running cluster. */
export interface SlurmCluster {
  /** The folder holding its configuration, state, logs and munge socket. */
  dir: string;
  /** The environment its client commands need (`SLURM_CONF`). */
  env: Record<string, string>;
  /** Runs a client command (`sbatch`, `scontrol`, …); its stdout, or an error with stderr. */
  run(
    command: string,
    args: string[],
    options?: { cwd?: string; env?: Record<string, string> },
  ): Promise<string>;
  /** Ends the daemons (SIGTERM, then SIGKILL after 5 s) and waits for them. */
  stop(): Promise<void>;
}

function slurmConf(dir: string, ports: { ctld: number; d: number }): string {
  return [
    "ClusterName=ld3test",
    "SlurmctldHost=localhost",
    `SlurmctldPort=${ports.ctld}`,
    `SlurmdPort=${ports.d}`,
    "SlurmUser=root",
    "SlurmdUser=root",
    "AuthType=auth/munge",
    "CredType=cred/munge",
    `AuthInfo=socket=${dir}/munge/munge.socket`,
    `StateSaveLocation=${dir}/state`,
    `SlurmdSpoolDir=${dir}/spool`,
    `SlurmctldPidFile=${dir}/slurmctld.pid`,
    `SlurmdPidFile=${dir}/slurmd.pid`,
    `SlurmctldLogFile=${dir}/log/slurmctld.log`,
    `SlurmdLogFile=${dir}/log/slurmd.log`,
    "ProctrackType=proctrack/linuxproc",
    "TaskPlugin=task/none",
    "SelectType=select/cons_tres",
    "SelectTypeParameters=CR_CPU",
    "SchedulerType=sched/builtin",
    "MpiDefault=none",
    "ReturnToService=2",
    "JobCompType=jobcomp/none",
    "AccountingStorageType=accounting_storage/none",
    "JobAcctGatherType=jobacct_gather/none",
    "MinJobAge=600",
    // Four CPUs on any machine, so a four-task array runs at once (the shards of one job
    // writing one folder together).
    "SlurmdParameters=config_overrides",
    "NodeName=localhost CPUs=4 State=UNKNOWN",
    "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
    "",
  ].join("\n");
}

async function output(command: string, args: string[], options: Deno.CommandOptions = {}) {
  const out = await new Deno.Command(command, {
    ...options,
    args,
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  if (!out.success) {
    throw new Error(
      `${command} ${args.join(" ")} failed (${out.code}): ${decode(out.stderr).trim()}`,
    );
  }
  return decode(out.stdout);
}

/** A daemon in the foreground (each writes its own log file in the cluster folder). */
function spawnDaemon(command: string, args: string[], env: Record<string, string>) {
  return new Deno.Command(command, { args, env, stdin: "null", stdout: "null", stderr: "null" })
    .spawn();
}

async function stopDaemon(child: Deno.ChildProcess): Promise<void> {
  try {
    child.kill("SIGTERM");
  } catch { /* already gone */ }
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone meanwhile */ }
  }, 5000);
  await child.status;
  clearTimeout(timer);
}

/** Waits until `path` exists; false after `seconds`. */
async function appears(path: string, seconds: number): Promise<boolean> {
  const until = Date.now() + seconds * 1000;
  while (Date.now() < until) {
    try {
      await Deno.stat(path);
      return true;
    } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

/** Waits until `sinfo` shows the node idle; false after `seconds`. */
async function nodeIdle(env: Record<string, string>, seconds: number): Promise<boolean> {
  const until = Date.now() + seconds * 1000;
  while (Date.now() < until) {
    const state = await output("sinfo", ["-h", "-o", "%t"], { env }).catch(() => "");
    if (state.trim() === "idle") return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

/**
 * Starts munged, slurmctld and slurmd (in the foreground, as children) in a fresh temporary
 * folder and waits until the node is idle.
 *
 * @returns The cluster, or a one-line reason why the daemons did not come up (then nothing is
 * left running).
 */
export async function startSlurm(): Promise<SlurmCluster | string> {
  const dir = await Deno.makeTempDir({ prefix: "ld3-slurm-" });
  await Deno.chmod(dir, 0o755);
  for (const sub of ["munge", "state", "spool", "log"]) await Deno.mkdir(join(dir, sub));
  // Every client must reach the socket; munged checks it (and refuses other modes).
  await Deno.chmod(join(dir, "munge"), 0o755);
  const key = join(dir, "munge", "munge.key");
  await Deno.writeFile(key, crypto.getRandomValues(new Uint8Array(128)), { mode: 0o600 });
  const conf = join(dir, "slurm.conf");
  await Deno.writeTextFile(conf, slurmConf(dir, { ctld: freePort(), d: freePort() }));
  const env = { SLURM_CONF: conf };
  const children: Deno.ChildProcess[] = [];
  const stop = async () => {
    // Jobs still running (a failed test) end with the cluster, not after it.
    if (children.length === 3) await output("scancel", ["--user=root"], { env }).catch(() => {});
    for (const child of children.reverse()) await stopDaemon(child);
    children.length = 0;
  };
  try {
    const m = join(dir, "munge");
    children.push(spawnDaemon("munged", [
      "--foreground",
      `--key-file=${key}`,
      `--socket=${m}/munge.socket`,
      `--pid-file=${m}/munged.pid`,
      `--log-file=${m}/munged.log`,
      `--seed-file=${m}/munged.seed`,
    ], env));
    if (!await appears(join(m, "munge.socket"), 10)) {
      throw new Error("munged made no socket in 10 s");
    }
    children.push(spawnDaemon("slurmctld", ["-D", "-i"], env));
    children.push(spawnDaemon("slurmd", ["-D", "-N", "localhost"], env));
    if (!await nodeIdle(env, 30)) {
      const log = await Deno.readTextFile(join(dir, "log", "slurmd.log")).catch(() => "");
      await stop();
      await Deno.remove(dir, { recursive: true });
      return `the Slurm node did not come up in 30 s (${
        log.trim().split("\n").at(-1) ?? "no log"
      })`;
    }
  } catch (e) {
    await stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    return `the Slurm daemons did not start: ${(e as Error).message}`;
  }
  return {
    dir,
    env,
    run: (command, args, options = {}) =>
      output(command, args, { cwd: options.cwd, env: { ...env, ...options.env } }),
    async stop() {
      await stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** A job's state from `scontrol show job` (the first task's for an array), e.g. `COMPLETED`. */
export async function jobStates(cluster: SlurmCluster, job: string): Promise<string[]> {
  const text = await cluster.run("scontrol", ["show", "job", job, "-o"]).catch(() => "");
  return [...text.matchAll(/JobState=(\S+)/g)].map((m) => m[1]);
}

/**
 * Waits until every job of `jobs` (array jobs: all their tasks) has ended, up to `seconds`.
 *
 * @returns Each job's task states.
 * @throws {Error} When they run past `seconds`, or a job waits on a dependency that failed.
 */
export async function waitForJobs(
  cluster: SlurmCluster,
  jobs: readonly string[],
  seconds: number,
): Promise<Record<string, string[]>> {
  const until = Date.now() + seconds * 1000;
  const ended = ["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"];
  for (;;) {
    const states: Record<string, string[]> = {};
    for (const job of jobs) states[job] = await jobStates(cluster, job);
    if (Object.values(states).every((s) => s.length > 0 && s.every((x) => ended.includes(x)))) {
      return states;
    }
    const stuck = await cluster.run("squeue", ["-h", "-o", "%i %r"]).catch(() => "");
    if (/DependencyNeverSatisfied/.test(stuck)) {
      throw new Error(`a job's dependency failed: ${JSON.stringify(states)} ${stuck.trim()}`);
    }
    if (Date.now() > until) {
      throw new Error(`jobs still running after ${seconds} s: ${JSON.stringify(states)}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}
