/**
 * From the checked document to the `Job`: targets (`targets.ts`), components with their files,
 * the run's policy and ports, and the checks that span fields, each problem at its place in the
 * file: no duplicate target or component, no two files staged under one name, every file present.
 */
import { basename, dirname, extname } from "node:path";
import type { PolicyOptions, StepName } from "../../machines/target/types.ts";
import { Checker } from "./checker.ts";
import type { JobProblem } from "./errors.ts";
import type { JobDocument } from "./schema.ts";
import { durationMs, sizeBytes } from "./schema-parts.ts";
import { placeOf, type DocPath, type JobSource } from "./source.ts";
import { target, targetId } from "./targets.ts";
import type { ComponentFile, Job, JobComponent, JobTarget } from "./types.ts";

function components(check: Checker, doc: JobDocument): JobComponent[] {
  const ids = new Map<string, number>();
  const names = new Map<string, DocPath>();
  return doc.package.components.map((c, i) => {
    const at: DocPath = ["package", "components", i];
    const first = ids.get(c.id);
    if (first !== undefined) {
      const { line } = placeOf(check.source, ["package", "components", first, "id"]);
      check.problem([...at, "id"], `duplicate component id "${c.id}" (first at line ${line})`, "a unique id");
    } else ids.set(c.id, i);
    const files = c.files.map((written, j): ComponentFile => {
      const path: DocPath = [...at, "files", j];
      const source = check.file(path, written, "file");
      const name = basename(source);
      const earlier = names.get(name);
      if (earlier !== undefined) {
        const { line } = placeOf(check.source, earlier);
        check.problem(
          path,
          `another file is also staged as "${name}" (line ${line})`,
          "file base names unique in the package",
        );
      } else names.set(name, path);
      return { source, name };
    });
    return {
      id: c.id,
      version: c.version,
      files,
      detect: c.detect,
      absentExitCode: c.absentExitCode,
      install: c.install,
      reboot: c.reboot,
      ...(c.timeout === undefined ? {} : { timeoutMs: durationMs(c.timeout) }),
    };
  });
}

function policy(options: JobDocument["options"]): PolicyOptions {
  const out: PolicyOptions = {};
  if (options.retries !== undefined) out.all = { maxAttempts: options.retries + 1 };
  const steps: NonNullable<PolicyOptions["steps"]> = {};
  for (const [step, value] of Object.entries(options.deadlines ?? {}))
    if (value !== undefined) steps[step as StepName] = { timeoutMs: durationMs(value) };
  if (Object.keys(steps).length > 0) out.steps = steps;
  return out;
}

/**
 * The `Job` of a checked document, or the problems that stop it (as the second element).
 *
 * @param file the job file, absolute: relative paths in it are resolved against its directory.
 */
export async function normaliseJob(
  doc: JobDocument,
  source: JobSource,
  file: string,
): Promise<{ job?: Job; problems: JobProblem[] }> {
  const check = new Checker(source, dirname(file));
  const targets: JobTarget[] = [];
  const seen = new Map<string, number>();
  let firstLocal: number | undefined;
  doc.targets.forEach((t, i) => {
    const id = targetId(doc, t);
    // Two local targets would share this machine's run directory: one's cleanup would remove the
    // other's staged files from under its agent.
    if (t.host === "local") {
      if (firstLocal === undefined) firstLocal = i;
      else {
        const { line, column } = placeOf(source, ["targets", firstLocal]);
        check.problem(
          ["targets", i, "host"],
          `a second local target (the first is at line ${line}, column ${column}): they would share this machine's run directory`,
          "at most one target with host: local",
        );
      }
    }
    const first = seen.get(id);
    if (first !== undefined) {
      const here: DocPath = ["targets", i, t.name !== undefined ? "name" : "host"];
      const { line, column } = placeOf(source, ["targets", first]);
      check.problem(
        here,
        `duplicate target "${id}" (the first is at line ${line}, column ${column})`,
        "a unique target id; give one of them a name",
      );
    } else seen.set(id, i);
    const normalised = target(check, doc, i);
    if (normalised) targets.push(normalised);
  });
  const comps = components(check, doc);
  await check.checkFiles();
  if (check.problems.length > 0) return { problems: check.problems };
  const o = doc.options;
  const range = (base: number) =>
    ({
      base,
      strategy: o.ports.strategy === "random" ? "random" : "lowest",
      window: o.ports.window,
    }) as const;
  const name = doc.name ?? basename(file, extname(file));
  return {
    problems: [],
    job: {
      file,
      name,
      targets,
      package: { name: doc.package.name ?? name, components: comps },
      options: {
        concurrency: o.concurrency,
        policy: policy(o),
        ports: {
          workstation: range(o.ports.workstation),
          callback: range(o.ports.callback),
          agent: range(o.ports.agent),
        },
        firewall: o.firewall,
        hostKeyPolicy: o.hostKeyPolicy,
        netbios: o.netbios,
        ...(o.netbiosServer !== undefined ? { netbiosServer: o.netbiosServer } : {}),
        agentCache: o.agentCache,
        output: {
          maxBytes: sizeBytes(o.output.maxBytes),
          bytesPerSecond: sizeBytes(o.output.rate),
          agentLogBytes: sizeBytes(o.output.agentLog),
        },
      },
    },
  };
}
