/**
 * The Kubernetes examples (`examples/k8s/`): every document is checked against the batch/v1 Job
 * and v1 PersistentVolumeClaim fields it uses (`k8s.schema.json`, a schema written for these
 * tests: the official one is out of reach offline), and against what ld3 needs of them — an
 * Indexed Job whose pods get JOB_COMPLETION_INDEX and pass `--shards` equal to `completions`,
 * the shared volume mounted where the paths point, command lines that parse, and merges of
 * exactly the folders the shards write.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { datasetDirName } from "../../lib/io/dataset.ts";
import { type SolverName, solverNfe } from "../../lib/solvers/mod.ts";
import { parseTaskArgs } from "../../tasks/_cli.ts";
import { TASKS } from "../../tasks/_all.ts";
import { ROOT } from "../_run_task.ts";
import { type Schema, validate } from "./_json_schema.ts";

const EXAMPLES = join(ROOT, "examples", "k8s");
const SCHEMA = JSON.parse(await Deno.readTextFile(join(ROOT, "tests/cluster/k8s.schema.json")));
const INDEX_FIELD = "metadata.annotations['batch.kubernetes.io/job-completion-index']";

// deno-lint-ignore no-explicit-any
type Doc = any;

async function documents(): Promise<{ file: string; doc: Doc }[]> {
  const out: { file: string; doc: Doc }[] = [];
  for await (const entry of Deno.readDir(EXAMPLES)) {
    if (!entry.name.endsWith(".yaml")) continue;
    for (const d of parseAllDocuments(await Deno.readTextFile(join(EXAMPLES, entry.name)))) {
      assert.deepEqual(d.errors, [], entry.name);
      out.push({ file: entry.name, doc: d.toJS() });
    }
  }
  return out.sort((a, b) => a.file.localeCompare(b.file));
}

/** The ld3 command line of a Job's container: `deno task <name> <args…>`. */
function taskOf(job: Doc): { name: string; args: string[] } {
  const [container] = job.spec.template.spec.containers;
  assert.deepEqual(container.command, ["deno"], job.metadata.name);
  const [task, name, ...args] = container.args;
  assert.equal(task, "task", job.metadata.name);
  return { name, args };
}

/** The value after `flag` in `args`. */
function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i < 0 ? undefined : args[i + 1];
}

/** What ld3 needs of a Job, besides the schema: problems as lines. */
function jobProblems(job: Doc, claims: Set<string>): string[] {
  const problems: string[] = [];
  const name = job.metadata.name;
  const pod = job.spec.template.spec;
  const volumes = new Map<string, Doc>(pod.volumes?.map((v: Doc) => [v.name, v]) ?? []);
  for (const v of volumes.values()) {
    if (!claims.has(v.persistentVolumeClaim.claimName)) {
      problems.push(
        `${name}: volume ${v.name} claims ${v.persistentVolumeClaim.claimName}, no such PVC`,
      );
    }
  }
  const [container] = pod.containers;
  const mounts: string[] = (container.volumeMounts ?? []).map((m: Doc) => {
    if (!volumes.has(m.name)) problems.push(`${name}: mount of undeclared volume ${m.name}`);
    return m.mountPath;
  });
  const onVolume = (path: string) => mounts.some((m) => path === m || path.startsWith(`${m}/`));
  if (!onVolume(container.workingDir)) problems.push(`${name}: workingDir off the shared volume`);
  const { name: task, args } = taskOf(job);
  for (const f of ["--data_dir", "--out", "--out_dir"]) {
    const path = flag(args, f);
    if (path !== undefined && !onVolume(path)) {
      problems.push(`${name}: ${f} ${path} off the volume`);
    }
  }
  if (task === "merge" && !onVolume(args[0])) {
    problems.push(`${name}: merge of ${args[0]} off the volume`);
  }
  const indexed = job.spec.completionMode === "Indexed";
  const env = new Map<string, Doc>((container.env ?? []).map((e: Doc) => [e.name, e]));
  if (indexed) {
    const shards = flag(args, "--shards");
    if (shards !== String(job.spec.completions)) {
      problems.push(`${name}: --shards ${shards} is not completions ${job.spec.completions}`);
    }
    if (!(job.spec.parallelism >= 1 && job.spec.parallelism <= job.spec.completions)) {
      problems.push(`${name}: parallelism must be 1…completions`);
    }
    if (env.get("JOB_COMPLETION_INDEX")?.valueFrom?.fieldRef?.fieldPath !== INDEX_FIELD) {
      problems.push(`${name}: JOB_COMPLETION_INDEX must come from ${INDEX_FIELD}`);
    }
  } else if (job.spec.completions !== 1) {
    problems.push(`${name}: a job that is not Indexed runs one pod (completions 1)`);
  }
  return problems;
}

Deno.test("the Kubernetes examples fit the batch/v1 Job and v1 PersistentVolumeClaim schema", async () => {
  const docs = await documents();
  assert.ok(docs.length >= 5);
  for (const { file, doc } of docs) {
    const schema: Schema | undefined = SCHEMA.kinds[`${doc.apiVersion} ${doc.kind}`];
    assert.ok(schema, `${file}: ${doc.apiVersion} ${doc.kind} is not a kind the examples use`);
    assert.deepEqual(validate(doc, schema, SCHEMA), [], file);
  }
});

Deno.test("the schema check catches what it is for", () => {
  const job = SCHEMA.kinds["batch/v1 Job"];
  const bad = {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name: "Bad_Name" },
    spec: {
      completionsMode: "Indexed",
      completions: 0,
      template: {
        spec: {
          restartPolicy: "Always",
          containers: [{ name: "c", image: "i", env: [{ name: "N", value: 4 }] }],
        },
      },
    },
  };
  const problems = validate(bad, job, SCHEMA).join("\n");
  for (
    const expected of [
      /\$\.metadata\.name: "Bad_Name" does not match/,
      /\$\.spec: unknown field "completionsMode"/,
      /\$\.spec\.completions: 0 is below 1/,
      /restartPolicy: must be one of Never, OnFailure, got "Always"/,
      /env\[0\]\.value: must be string, got integer 4/,
    ]
  ) assert.match(problems, expected);
});

Deno.test("the Indexed Jobs shard on the shared volume, and the merges join what they write", async () => {
  const docs = await documents();
  const claims = new Set<string>(
    docs.filter((d) => d.doc.kind === "PersistentVolumeClaim").map((d) => d.doc.metadata.name),
  );
  for (const { doc } of docs.filter((d) => d.doc.kind === "PersistentVolumeClaim")) {
    assert.ok(doc.spec.accessModes.includes("ReadWriteMany"), "shards on many nodes share it");
  }
  const jobs = new Map<string, Doc>(
    docs.filter((d) => d.doc.kind === "Job").map((d) => [d.doc.metadata.name, d.doc]),
  );
  for (const job of jobs.values()) assert.deepEqual(jobProblems(job, claims), []);
  // Every command line parses as the task's own.
  for (const job of jobs.values()) {
    const { name, args } = taskOf(job);
    const entry = TASKS.find((e) => e.task.name === name);
    assert.ok(entry, `${job.metadata.name}: no task ${name}`);
    // deno-lint-ignore no-explicit-any
    parseTaskArgs(entry.task as any, args);
  }
  // The merges take exactly the folders the shards write into.
  const generate = taskOf(jobs.get("ld3-generate")).args;
  const solver = flag(generate, "--solver_name") as SolverName;
  const nfe = solverNfe(solver, Number(flag(generate, "--steps")));
  const teacher = join(
    flag(generate, "--data_dir")!,
    datasetDirName(solver, nfe, flag(generate, "--skip_type")!),
  );
  assert.deepEqual(taskOf(jobs.get("ld3-merge-teacher")).args, [teacher]);
  const evaluate = taskOf(jobs.get("ld3-eval")).args;
  assert.equal(flag(evaluate, "--data_dir"), teacher);
  assert.deepEqual(taskOf(jobs.get("ld3-merge-eval")).args, [flag(evaluate, "--out")]);
});
