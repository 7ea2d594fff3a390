/**
 * Job files for tests, the demo and the fleet benchmark: targets are `linux-target` containers
 * reached at their bridge address (the agent's port is not published, so the workstation must
 * reach the container directly), logged in as root with a key written 0600 next to the job, the
 * host key pinned. Components are small shell scripts written next to the job.
 */
import { chmod, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { stringify } from "yaml";
import type { LinuxTarget } from "./linux-target.ts";

/** A component as the job file takes it, with its files given as name → content. */
export interface TestComponent {
  readonly id: string;
  readonly version: string;
  readonly files: Readonly<Record<string, string | Buffer>>;
  readonly detect: string;
  readonly install: string;
  readonly reboot?: boolean;
  readonly timeout?: string;
}

export interface FleetJobOptions {
  readonly name?: string;
  /** Extra `options:` of the job (concurrency, ports, firewall, ...). */
  readonly options?: Record<string, unknown>;
  /** Per target (by index) overrides of its entry, e.g. a wrong `hostKey`. */
  readonly overrides?: Readonly<Record<number, Record<string, unknown>>>;
  /** Entries added as they are (an unreachable host, for instance). */
  readonly extraTargets?: readonly Record<string, unknown>[];
}

/**
 * Writes `<dir>/job.yaml` with one target per container (named `t1`, `t2`, ...) and the components;
 * returns the job file's path.
 */
export async function writeFleetJob(
  dir: string,
  targets: readonly LinuxTarget[],
  components: readonly TestComponent[],
  options: FleetJobOptions = {},
): Promise<string> {
  await mkdir(join(dir, "keys"), { recursive: true, mode: 0o700 });
  await mkdir(join(dir, "files"), { recursive: true });
  const entries: Record<string, unknown>[] = [];
  for (const [index, target] of targets.entries()) {
    const keyFile = join(dir, "keys", `t${index + 1}`);
    await writeFile(keyFile, target.users.root.privateKey, { mode: 0o600 });
    await chmod(keyFile, 0o600);
    entries.push({
      name: `t${index + 1}`,
      host: target.address,
      port: 22,
      user: "root",
      auth: { key: { file: keyFile } },
      become: false,
      hostKey: target.hostKeyFingerprint,
      ...options.overrides?.[index],
    });
  }
  entries.push(...(options.extraTargets ?? []));
  const jobComponents = [];
  for (const component of components) {
    const names: string[] = [];
    for (const [name, content] of Object.entries(component.files)) {
      await writeFile(join(dir, "files", name), content);
      names.push(`files/${name}`);
    }
    jobComponents.push({
      id: component.id,
      version: component.version,
      files: names,
      detect: component.detect,
      install: component.install,
      ...(component.reboot === undefined ? {} : { reboot: component.reboot }),
      ...(component.timeout === undefined ? {} : { timeout: component.timeout }),
    });
  }
  const job = {
    name: options.name ?? "test-fleet",
    targets: entries,
    package: { name: "test", components: jobComponents },
    ...(options.options === undefined ? {} : { options: options.options }),
  };
  const file = join(dir, "job.yaml");
  await writeFile(file, stringify(job));
  return file;
}

/**
 * A component that records its version in `/var/lib/sumac-test/<id>` and prints it as detect.
 * `installScript` runs before the version is written (a failing one leaves nothing installed).
 */
export function versionFileComponent(id: string, version: string, installScript = ""): TestComponent {
  const script = [
    "#!/bin/sh",
    "set -eu",
    `f=/var/lib/sumac-test/${id}`,
    'case "$1" in',
    '  detect) [ -f "$f" ] || exit 1; cat "$f" ;;',
    `  install) echo "sumac:progress 10"; ${installScript}`,
    `    mkdir -p /var/lib/sumac-test; echo ${version} > "$f.tmp"; mv "$f.tmp" "$f"; echo "installed ${id} ${version}" ;;`,
    "esac",
    "",
  ].join("\n");
  return {
    id,
    version,
    files: { [`${id}.sh`]: script },
    detect: `sh ${id}.sh detect`,
    install: `sh ${id}.sh install`,
  };
}
